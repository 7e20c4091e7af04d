//! A server wired to the Google emulator for Sign in with Google: directory synchronized (every
//! user holds `login`), an OAuth client registered at the emulator, the OIDC configuration saved.
//! The redirects are driven by hand (the test client follows none).

use dirsync_entity::{sessions, user_privileges, users};
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};

use crate::google::GoogleEnv;
use crate::{spawn_app_with, Reply};

/// The OAuth client registered at the emulator.
pub const CLIENT_ID: &str = "123456789012-dirsync.apps.googleusercontent.com";

/// A server, its Google, and the OAuth client's secret.
pub struct OidcEnv {
    /// Server and emulator.
    pub env: GoogleEnv,
    /// The client secret stored in dirsync (a fresh random one per test).
    pub client_secret: String,
    /// `{server}/oidc/signin`.
    pub redirect_uri: String,
    /// The sign-in cookie (`name=value`) that `/oidc/login` gave this env's browser, sent back
    /// to `/oidc/login` and `/oidc/signin` as a browser would.
    pub browser_cookie: std::sync::Mutex<Option<String>>,
}

/// `ada`, `bob` and `carol` at example.com.
pub fn directory() -> Directory {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_user("bob@example.com", "Bob", "Builder").unwrap();
    d.add_user("carol@example.com", "Carol", "Shaw").unwrap();
    d
}

/// Starts the emulator and a server, syncs `directory`, and configures Sign in with Google with
/// `allowed_domains` = `["example.com"]`.
pub async fn spawn_with_oidc(directory: Directory) -> OidcEnv {
    let google = Emulator::start(EmulatorOptions::with_directory(directory))
        .await
        .expect("the emulator starts");
    let base = google.base_url();
    let discovery = google.discovery_url();
    let token_url = google.token_uri();
    let app = spawn_app_with(|s| {
        s.google_directory_url = base.clone();
        s.google_token_url = token_url.clone();
        s.google_discovery_url = discovery.clone();
        s.job_lease_seconds = 3;
        // Tests start many sign-ins from one address.
        s.rate_limit_signin_per_minute = 0;
    })
    .await;
    let env = GoogleEnv { app, google };
    env.upload_key(&env.google.service_account_key_json())
        .await
        .expect(200);
    env.configure(json!({})).await.expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let redirect_uri = format!("{}/oidc/signin", env.app.address);
    let client_secret = format!("GOCSPX-{}", crate::random_secret(28));
    env.google
        .control()
        .add_oauth_client(CLIENT_ID, &client_secret, &[&redirect_uri]);
    let o = OidcEnv {
        env,
        client_secret,
        redirect_uri,
        browser_cookie: Default::default(),
    };
    o.configure(json!({})).await.expect(200);
    o
}

/// Query parameters of a URL.
pub fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// One query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl OidcEnv {
    /// Saves the OIDC configuration: the defaults of this env with `changes` merged over them.
    pub async fn configure(&self, changes: Value) -> Reply {
        let mut body = json!({
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "allowed_domains": ["example.com"],
            "session_ttl_minutes": 480
        });
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        self.env.app.put("/api/v1/auth/oidc", &body).await
    }

    /// `GET /oidc/login?{query}`: expects a 302, keeps the sign-in cookie it sets (as this env's
    /// browser), and returns Google's authorization URL.
    pub async fn start(&self, query: &str) -> String {
        let mut rb =
            self.env
                .app
                .request_as(reqwest::Method::GET, &format!("/oidc/login?{query}"), None);
        if let Some(c) = self.browser_cookie() {
            rb = rb.header("cookie", c);
        }
        let r = Reply::read(rb.send().await.unwrap()).await.expect(302);
        // The cookie's presence and attributes are asserted by the tests of the binding.
        if let Some(set) = set_cookie_pair(&r, "dirsync_signin") {
            *self.browser_cookie.lock().unwrap() = Some(set);
        }
        r.headers["location"].to_str().unwrap().to_string()
    }

    /// The sign-in cookie this env's browser holds (`name=value`), if any.
    pub fn browser_cookie(&self) -> Option<String> {
        self.browser_cookie.lock().unwrap().clone()
    }

    /// Opens an authorization URL at the emulator: expects a 302 and returns the callback URL.
    pub async fn authorize(&self, authorization_url: &str) -> String {
        let r = Reply::read(
            self.env
                .app
                .client
                .get(authorization_url)
                .send()
                .await
                .unwrap(),
        )
        .await
        .expect(302);
        r.headers["location"].to_str().unwrap().to_string()
    }

    /// Opens the callback URL at dirsync, as an API client (JSON) or a browser, with this env's
    /// sign-in cookie.
    pub async fn callback(&self, url: &str, json: bool) -> Reply {
        let mut rb = self.env.app.client.get(url);
        if let Some(c) = self.browser_cookie() {
            rb = rb.header("cookie", c);
        }
        rb = rb.header(
            "accept",
            if json {
                "application/json"
            } else {
                "text/html,application/xhtml+xml"
            },
        );
        Reply::read(rb.send().await.unwrap()).await
    }

    /// The whole flow for `email` (as `login_hint`), answered as JSON.
    pub async fn sign_in(&self, email: &str) -> Reply {
        let auth = self
            .start(&format!("login_hint={}", urlencode(email)))
            .await;
        let back = self.authorize(&auth).await;
        self.callback(&back, true).await
    }

    /// The stored user named `user_name`.
    pub async fn user(&self, user_name: &str) -> users::Model {
        users::Entity::find()
            .filter(users::Column::UserNameKey.eq(user_name.to_lowercase()))
            .one(&self.env.app.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {user_name}"))
    }

    /// Grants a privilege.
    pub async fn grant(&self, user_name: &str, privilege: &str) {
        let u = self.user(user_name).await;
        user_privileges::ActiveModel {
            user_id: Set(u.id),
            privilege: Set(privilege.into()),
        }
        .insert(&self.env.app.db)
        .await
        .unwrap();
    }

    /// Removes a privilege.
    pub async fn revoke(&self, user_name: &str, privilege: &str) {
        let u = self.user(user_name).await;
        user_privileges::Entity::delete_by_id((u.id, privilege.to_string()))
            .exec(&self.env.app.db)
            .await
            .unwrap();
    }

    /// Disables or enables a user in dirsync (not in Google).
    pub async fn set_disabled(&self, user_name: &str, disabled: bool) {
        let u = self.user(user_name).await;
        let mut am: users::ActiveModel = u.into();
        am.disabled = Set(disabled);
        am.update(&self.env.app.db).await.unwrap();
    }

    /// Sessions stored.
    pub async fn session_count(&self) -> u64 {
        sessions::Entity::find()
            .count(&self.env.app.db)
            .await
            .unwrap()
    }
}

/// The `name=value` of the `Set-Cookie` whose name ends with `name` (so that the `__Host-`
/// form counts), if the reply sets it to a value.
pub fn set_cookie_pair(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| {
            pair.split_once('=')
                .is_some_and(|(n, v)| n.ends_with(name) && !v.is_empty())
        })
        .map(str::to_string)
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
