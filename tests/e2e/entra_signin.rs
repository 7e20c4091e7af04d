//! Sign in with Microsoft (issue 16, item 6): the same `/oidc/login`, `/oidc/signin` and
//! `PUT /api/v1/auth/oidc` against the Entra emulator when the directory is Microsoft Entra ID.
//!
//! Each test sends what an attacker (or Microsoft) would send, and fails when the defence it
//! names is taken out. The directory is configured through the API and its users come from a
//! real sync from the emulator (`directory_id` = the object id, `user_name` = the UPN); users a
//! sync would never make (another object id under a known address) are written straight into
//! the database.

use dirsync_entity::{
    directory_config, user_emails, user_privileges, users, AuthMethod, EmailKind,
};
use dirsync_entra_emulator::{AppCredentials, Directory, Emulator, EmulatorOptions, Endpoint};
use dirsync_tests::entra::{spawn_with_entra_and, EntraEnv};
use dirsync_tests::oidc::{param, set_cookie_pair, urlencode};
use dirsync_tests::{Reply, TestApp};
use reqwest::Method;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// A server whose directory is the emulator's tenant, with Sign in with Microsoft configured
/// for the emulator's app, and `ada`, `bob` and `carol` at contoso.com as directory users.
struct Entra {
    app: TestApp,
    emu: Emulator,
    tenant: String,
    oidc_app: AppCredentials,
    redirect_uri: String,
    cookie: std::sync::Mutex<Option<String>>,
}

fn ms_issuer(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

async fn env() -> Entra {
    let tenant = Uuid::new_v4().to_string();
    let mut d = Directory::empty(&tenant, &["contoso.com", "contoso.onmicrosoft.com"]);
    for (upn, given, family) in [
        ("ada@contoso.com", "Ada", "Lovelace"),
        ("bob@contoso.com", "Bob", "Builder"),
        ("carol@contoso.com", "Carol", "Shaw"),
    ] {
        d.create_user(upn, given, family).unwrap();
    }
    let emu = Emulator::start(EmulatorOptions::with_directory(d))
        .await
        .expect("the emulator starts");
    // The directory through the API (the app's secret uploaded) and a real sync from the
    // emulator, as an administrator sets it up.
    let EntraEnv {
        app,
        entra: emu,
        credentials: oidc_app,
    } = spawn_with_entra_and(emu, |s| {
        // Tests start many sign-ins from one address.
        s.rate_limit_signin_per_minute = 0;
    })
    .await;
    let job = app.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"]["created"], 3, "{job}");
    let redirect_uri = format!("{}/oidc/signin", app.address);
    emu.control()
        .add_redirect_uri(&oidc_app.client_id, &redirect_uri)
        .unwrap();
    let e = Entra {
        app,
        emu,
        tenant,
        oidc_app,
        redirect_uri,
        cookie: Default::default(),
    };
    e.configure(json!({})).await.expect(200);
    e
}

impl Entra {
    /// The emulator's object id of `upn`.
    fn oid(&self, upn: &str) -> String {
        self.emu
            .control()
            .directory()
            .user(upn)
            .unwrap_or_else(|| panic!("no emulator user {upn}"))
            .id
            .clone()
    }

    /// A directory user in dirsync named `user_name` with `directory_id`, holding `login`.
    async fn directory_user(&self, user_name: &str, directory_id: &str) -> Uuid {
        let id = Uuid::new_v4();
        let now = chrono::Utc::now();
        users::ActiveModel {
            id: Set(id),
            user_name: Set(user_name.into()),
            user_name_key: Set(user_name.to_lowercase()),
            full_name: Set(user_name.into()),
            auth_method: Set(AuthMethod::Directory),
            directory_id: Set(Some(directory_id.into())),
            disabled: Set(false),
            password_hash: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_synced_at: Set(Some(now)),
        }
        .insert(&self.app.db)
        .await
        .unwrap();
        user_emails::ActiveModel {
            address_key: Set(user_name.to_lowercase()),
            address: Set(user_name.into()),
            user_id: Set(id),
            kind: Set(EmailKind::Primary),
        }
        .insert(&self.app.db)
        .await
        .unwrap();
        user_privileges::ActiveModel {
            user_id: Set(id),
            privilege: Set("login".into()),
        }
        .insert(&self.app.db)
        .await
        .unwrap();
        id
    }

    /// The stored user named `user_name`.
    async fn user(&self, user_name: &str) -> users::Model {
        users::Entity::find()
            .filter(users::Column::UserNameKey.eq(user_name.to_lowercase()))
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no user {user_name}"))
    }

    async fn change_user(&self, user_name: &str, f: impl FnOnce(&mut users::ActiveModel)) {
        let mut am = self.user(user_name).await.into_active_model();
        f(&mut am);
        am.update(&self.app.db).await.unwrap();
    }

    async fn set_tenant(&self, tenant: &str) {
        let row = directory_config::Entity::find_by_id(1)
            .one(&self.app.db)
            .await
            .unwrap()
            .unwrap();
        let mut am = row.into_active_model();
        am.tenant_id = Set(Some(tenant.into()));
        am.update(&self.app.db).await.unwrap();
    }

    /// `PUT /api/v1/auth/oidc` with the emulator app's client and `changes` merged in.
    async fn configure(&self, changes: Value) -> Reply {
        let mut body = json!({
            "client_id": self.oidc_app.client_id,
            "client_secret": self.oidc_app.client_secret,
            "redirect_uri": self.redirect_uri,
            "allowed_domains": ["contoso.com"],
            "session_ttl_minutes": 480
        });
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app.put("/api/v1/auth/oidc", &body).await
    }

    /// `GET /oidc/login?{query}`: keeps the sign-in cookie, returns the authorization URL.
    async fn start(&self, query: &str) -> String {
        let mut rb = self
            .app
            .request_as(Method::GET, &format!("/oidc/login?{query}"), None);
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            rb = rb.header("cookie", c);
        }
        let r = Reply::read(rb.send().await.unwrap()).await.expect(302);
        if let Some(set) = set_cookie_pair(&r, "dirsync_signin") {
            *self.cookie.lock().unwrap() = Some(set);
        }
        r.headers["location"].to_str().unwrap().to_string()
    }

    /// Opens an authorization URL at the emulator; returns the callback URL it redirects to.
    async fn authorize(&self, url: &str) -> String {
        let r = Reply::read(self.app.client.get(url).send().await.unwrap())
            .await
            .expect(302);
        r.headers["location"].to_str().unwrap().to_string()
    }

    /// Opens the callback at dirsync with this browser's cookie, as JSON or as a browser.
    async fn callback(&self, url: &str, json: bool) -> Reply {
        let mut rb = self.app.client.get(url);
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            rb = rb.header("cookie", c);
        }
        let accept = if json {
            "application/json"
        } else {
            "text/html"
        };
        Reply::read(rb.header("accept", accept).send().await.unwrap()).await
    }

    /// The whole flow as `upn`, answered as JSON.
    async fn sign_in(&self, upn: &str) -> Reply {
        let auth = self.start(&format!("login_hint={}", urlencode(upn))).await;
        let back = self.authorize(&auth).await;
        self.callback(&back, true).await
    }

    async fn session_count(&self) -> u64 {
        dirsync_entity::sessions::Entity::find()
            .count(&self.app.db)
            .await
            .unwrap()
    }

    /// Signs `upn` in with the next ID token changed; expects `status` with `code`, no session.
    async fn refused(&self, upn: &str, header: Value, claims: Value, status: u16, code: &str) {
        let before = self.session_count().await;
        self.emu
            .control()
            .tamper_next_id_token(header, claims.clone());
        let r = self.sign_in(upn).await;
        assert_eq!(r.status, status, "{claims}: {}", r.text);
        assert_eq!(r.error_code(), code, "{claims}: {}", r.text);
        assert!(!r.text.contains("eyJ"), "no token in the answer");
        assert_eq!(self.session_count().await, before, "{claims}: no session");
    }
}

fn claims_of(id_token: &str) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_microsoft_user_signs_in_and_gets_a_session_that_authenticates() {
    let e = env().await;
    let auth = e.start("login_hint=ada%40contoso.com").await;
    // The authorization request goes to the tenant's own endpoint, found by discovery.
    assert!(
        auth.starts_with(&format!(
            "{}/{}/oauth2/v2.0/authorize?",
            e.emu.base_url(),
            e.tenant
        )),
        "{auth}"
    );
    assert_eq!(param(&auth, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&auth, "client_id"),
        Some(e.oidc_app.client_id.clone())
    );
    assert_eq!(param(&auth, "redirect_uri"), Some(e.redirect_uri.clone()));
    let scope = param(&auth, "scope").unwrap();
    for s in ["openid", "profile", "email"] {
        assert!(scope.split(' ').any(|x| x == s), "{scope}");
    }
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&auth, "nonce").unwrap().len() >= 43);
    assert!(param(&auth, "state").unwrap().len() >= 43);
    assert_eq!(param(&auth, "hd"), None, "Google's parameter only");
    let back = e.authorize(&auth).await;
    assert!(back.starts_with(&e.redirect_uri), "{back}");
    let r = e.callback(&back, true).await.expect(200);
    let ada = e.user("ada@contoso.com").await;
    assert_eq!(r.json["user"]["id"], ada.id.to_string());
    assert_eq!(r.json["user"]["auth_method"], "directory");
    let token = r.json["token"].as_str().unwrap();
    assert!(token.starts_with("dss_"));
    let me = e
        .app
        .call(Method::GET, "/api/v1/me", Some(token), None)
        .await
        .expect(200);
    assert_eq!(me.json["kind"], "user", "{}", me.text);
    assert_eq!(me.json["user"]["id"], ada.id.to_string(), "{}", me.text);
    // The code went to the tenant's token endpoint (once), the keys were read once.
    let c = e.emu.control();
    assert_eq!(c.request_count(Endpoint::Jwks), 1);
    assert_eq!(e.session_count().await, 1);
}

#[tokio::test]
async fn a_token_for_another_tenant_is_refused() {
    let e = env().await;
    let other = Uuid::new_v4().to_string();
    // The tenant alone (the issuer still the configured tenant's): `tid` is checked itself.
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"tid": other}),
        401,
        "wrong_tenant",
    )
    .await;
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"tid": null}),
        401,
        "wrong_tenant",
    )
    .await;
    // As Microsoft signs for a user of another tenant (a multi-tenant app): both say so.
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"tid": other, "iss": ms_issuer(&other)}),
        401,
        "wrong_issuer",
    )
    .await;
    e.sign_in("ada@contoso.com").await.expect(200);
}

#[tokio::test]
async fn an_issuer_other_than_the_tenants_exact_one_is_refused() {
    let e = env().await;
    let tid = e.tenant.clone();
    for iss in [
        // The host sign-in went to (DIRSYNC_MICROSOFT_LOGIN_URL) is not the issuer.
        format!("{}/{tid}/v2.0", e.emu.base_url()),
        // The multi-tenant template, unresolved.
        "https://login.microsoftonline.com/{tenantid}/v2.0".to_string(),
        // A v1.0 issuer.
        format!("https://sts.windows.net/{tid}/"),
        format!("https://login.microsoftonline.com/{tid}/v2.0/"),
        format!("https://login.microsoftonline.com/{tid}"),
    ] {
        e.refused(
            "ada@contoso.com",
            json!({}),
            json!({ "iss": iss }),
            401,
            "wrong_issuer",
        )
        .await;
    }
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({ "iss": null }),
        401,
        "wrong_issuer",
    )
    .await;
    e.sign_in("ada@contoso.com").await.expect(200);
}

#[tokio::test]
async fn a_tenant_configured_by_domain_is_checked_by_the_guid_its_discovery_names() {
    let e = env().await;
    e.set_tenant("contoso.com").await;
    let auth = e.start("login_hint=ada%40contoso.com").await;
    assert!(
        auth.starts_with(&format!("{}/{}/", e.emu.base_url(), e.tenant)),
        "the discovered endpoint: {auth}"
    );
    let r = e.callback(&e.authorize(&auth).await, true).await;
    r.expect(200);
    let other = Uuid::new_v4().to_string();
    e.refused(
        "bob@contoso.com",
        json!({}),
        json!({"tid": other}),
        401,
        "wrong_tenant",
    )
    .await;
    e.refused(
        "bob@contoso.com",
        json!({}),
        json!({"tid": other, "iss": ms_issuer(&other)}),
        401,
        "wrong_issuer",
    )
    .await;
    // A multi-tenant document cannot say which tenant is meant: refused before the browser is
    // sent to Microsoft, not skipped.
    e.set_tenant("organizations").await;
    let r = Reply::read(
        e.app
            .request_as(
                Method::GET,
                "/oidc/login?login_hint=bob%40contoso.com",
                None,
            )
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.error_code(), "tenant_unresolved", "{}", r.text);
    assert_eq!(e.session_count().await, 1);
}

#[tokio::test]
async fn the_user_is_found_by_oid_never_by_address() {
    let e = env().await;
    // dave exists at Microsoft and, by name and address, here, but with another object id
    // (say, a former dave): nobody here is the Microsoft dave.
    e.emu
        .control()
        .create_user("dave@contoso.com", "Dave", "Other")
        .unwrap();
    e.directory_user("dave@contoso.com", &Uuid::new_v4().to_string())
        .await;
    let r = e.sign_in("dave@contoso.com").await.expect(403);
    assert_eq!(r.error_code(), "user_not_found", "{}", r.text);
    // A local user of ada's name would not be ada either; and a renamed ada is still found.
    e.change_user("ada@contoso.com", |u| {
        u.user_name = Set("lovelace@contoso.com".into());
        u.user_name_key = Set("lovelace@contoso.com".into());
    })
    .await;
    let ada = e.user("lovelace@contoso.com").await;
    let r = e.sign_in("ada@contoso.com").await.expect(200);
    assert_eq!(r.json["user"]["id"], ada.id.to_string());
    // A local user holding the object id is not a directory user: refused.
    e.change_user("carol@contoso.com", |u| {
        u.auth_method = Set(AuthMethod::Local);
    })
    .await;
    let r = e.sign_in("carol@contoso.com").await.expect(403);
    assert_eq!(r.error_code(), "user_not_found", "{}", r.text);
    assert_eq!(e.session_count().await, 1);
}

/// Runs the code flow at the emulator as `client` for `upn`, by hand; returns the ID token's
/// claims.
async fn id_token_claims(e: &Entra, client: &AppCredentials, upn: &str) -> Value {
    let redirect = "http://127.0.0.1:9/callback";
    e.emu
        .control()
        .add_redirect_uri(&client.client_id, redirect)
        .unwrap();
    let base = format!("{}/{}/oauth2/v2.0", e.emu.base_url(), e.tenant);
    let auth = format!(
        "{base}/authorize?client_id={}&response_type=code&redirect_uri={}&scope=openid%20profile&nonce=n&login_hint={}",
        client.client_id,
        urlencode(redirect),
        urlencode(upn)
    );
    let back = e.authorize(&auth).await;
    let code = param(&back, "code").unwrap();
    let r = e
        .app
        .client
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    claims_of(body["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn sub_is_pairwise_per_app_and_sign_in_matches_by_oid_with_either_app() {
    let e = env().await;
    let second = tokio::task::spawn_blocking({
        let c = e.emu.control();
        move || c.register_app("second sign-in app", &[])
    })
    .await
    .unwrap()
    .unwrap();
    let first = e.oidc_app.clone();
    let a = id_token_claims(&e, &first, "ada@contoso.com").await;
    let b = id_token_claims(&e, &second, "ada@contoso.com").await;
    let oid = e.oid("ada@contoso.com");
    assert_eq!(a["oid"], oid);
    assert_eq!(b["oid"], oid);
    assert_ne!(a["sub"], b["sub"], "pairwise");
    assert_ne!(a["sub"], oid);
    let ada = e.user("ada@contoso.com").await;
    let r = e.sign_in("ada@contoso.com").await.expect(200);
    assert_eq!(r.json["user"]["id"], ada.id.to_string());
    // The same user through the second app registration.
    e.emu
        .control()
        .add_redirect_uri(&second.client_id, &e.redirect_uri)
        .unwrap();
    e.configure(json!({"client_id": second.client_id, "client_secret": second.client_secret}))
        .await
        .expect(200);
    let r = e.sign_in("ada@contoso.com").await.expect(200);
    assert_eq!(r.json["user"]["id"], ada.id.to_string());
    // A token whose `sub` is ada's object id but whose `oid` is bob's is bob's (and a token
    // without `oid` is nobody's).
    e.emu.control().tamper_next_id_token(
        json!({}),
        json!({"sub": oid, "oid": e.oid("bob@contoso.com")}),
    );
    let r = e.sign_in("ada@contoso.com").await.expect(200);
    assert_eq!(
        r.json["user"]["id"],
        e.user("bob@contoso.com").await.id.to_string()
    );
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"sub": oid, "oid": null}),
        401,
        "missing_claim",
    )
    .await;
}

#[tokio::test]
async fn disabled_users_and_users_without_login_are_refused() {
    let e = env().await;
    e.change_user("ada@contoso.com", |u| u.disabled = Set(true))
        .await;
    let r = e.sign_in("ada@contoso.com").await.expect(403);
    assert_eq!(r.error_code(), "user_disabled");
    let bob = e.user("bob@contoso.com").await;
    user_privileges::Entity::delete_by_id((bob.id, "login".to_string()))
        .exec(&e.app.db)
        .await
        .unwrap();
    let r = e.sign_in("bob@contoso.com").await.expect(403);
    assert_eq!(r.error_code(), "login_not_allowed");
    e.sign_in("carol@contoso.com").await.expect(200);
    assert_eq!(e.session_count().await, 1);
}

#[tokio::test]
async fn allowed_domains_apply_to_the_domain_of_the_users_upn() {
    let e = env().await;
    // erin signs in as erin@contoso.onmicrosoft.com; her mailbox (the `email` claim) is at
    // contoso.com.
    let c = e.emu.control();
    let erin = c
        .create_user("erin@contoso.onmicrosoft.com", "Erin", "Doe")
        .unwrap();
    c.with_directory(|d| d.set_mail(&erin, Some("erin@contoso.com")))
        .unwrap();
    e.directory_user("erin@contoso.onmicrosoft.com", &erin)
        .await;
    let r = e.sign_in("erin@contoso.onmicrosoft.com").await.expect(403);
    assert_eq!(r.error_code(), "domain_not_allowed", "{}", r.text);
    e.sign_in("ada@contoso.com").await.expect(200);
    e.configure(json!({"allowed_domains": ["contoso.onmicrosoft.com"]}))
        .await
        .expect(200);
    e.sign_in("erin@contoso.onmicrosoft.com").await.expect(200);
    let r = e.sign_in("ada@contoso.com").await.expect(403);
    assert_eq!(r.error_code(), "domain_not_allowed");
    e.configure(json!({"allowed_domains": []}))
        .await
        .expect(200);
    e.sign_in("ada@contoso.com").await.expect(200);
    e.sign_in("erin@contoso.onmicrosoft.com").await.expect(200);
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_and_unknown_kids_do_not_refetch_at_will() {
    let e = env().await;
    let c = e.emu.control();
    e.sign_in("ada@contoso.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 1);
    e.sign_in("bob@contoso.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 1, "cached");
    let kid = tokio::task::spawn_blocking({
        let c = c.clone();
        move || c.rotate_signing_key(false)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(c.signing_kids(), vec![kid]);
    // The new key is looked up once, and the sign-in works.
    e.sign_in("carol@contoso.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 2);
    // A burst of made-up key ids right after: refused, without asking Microsoft again.
    for i in 0..5 {
        e.refused(
            "ada@contoso.com",
            json!({"kid": format!("forged-{i}")}),
            json!({}),
            401,
            "unknown_kid",
        )
        .await;
    }
    assert_eq!(c.request_count(Endpoint::Jwks), 2);
    e.sign_in("ada@contoso.com").await.expect(200);
}

#[tokio::test]
async fn a_replayed_state_or_an_old_nonce_is_refused() {
    let e = env().await;
    let auth = e.start("login_hint=ada%40contoso.com").await;
    let old_nonce = param(&auth, "nonce").unwrap();
    let back = e.authorize(&auth).await;
    e.callback(&back, true).await.expect(200);
    // The same callback again (state and code replayed).
    let r = e.callback(&back, true).await.expect(400);
    assert_eq!(r.error_code(), "invalid_state");
    // A token carrying the nonce of the finished sign-in, for a new one.
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"nonce": old_nonce}),
        401,
        "nonce_mismatch",
    )
    .await;
    e.refused(
        "ada@contoso.com",
        json!({}),
        json!({"nonce": null}),
        401,
        "nonce_mismatch",
    )
    .await;
    // The code of one attempt brought with the state of another: the PKCE verifier is the
    // other attempt's, and Microsoft refuses the code.
    let first = e.start("login_hint=ada%40contoso.com").await;
    let second = e.start("login_hint=ada%40contoso.com").await;
    let code = param(&e.authorize(&first).await, "code").unwrap();
    let state = param(&second, "state").unwrap();
    let r = e
        .callback(
            &format!(
                "{}?code={}&state={}",
                e.redirect_uri,
                urlencode(&code),
                urlencode(&state)
            ),
            true,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "code_rejected");
    assert_eq!(e.session_count().await, 1);
}

#[tokio::test]
async fn an_auth_test_works_for_a_microsoft_user_and_names_the_wrong_account() {
    let e = env().await;
    let ada_id = e.user("ada@contoso.com").await.id;
    let run = |as_upn: &'static str| {
        let e = &e;
        async move {
            let r = e
                .app
                .post(&format!("/api/v1/users/{ada_id}/auth-test"), &json!({}))
                .await
                .expect(201);
            let url = r.json["authorization_url"].as_str().unwrap().to_string();
            assert!(
                url.starts_with(&format!("{}/{}/", e.emu.base_url(), e.tenant)),
                "{url}"
            );
            assert_eq!(
                param(&url, "login_hint").as_deref(),
                Some("ada@contoso.com")
            );
            let url = url.replace(
                "login_hint=ada%40contoso.com",
                &format!("login_hint={}", urlencode(as_upn)),
            );
            // The tested user's browser, which holds no sign-in cookie.
            let back = e.authorize(&url).await;
            let r = Reply::read(
                e.app
                    .client
                    .get(&back)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .expect(200);
            assert!(r.json.get("token").is_none());
            r.json
        }
    };
    let t = run("ada@contoso.com").await;
    assert_eq!(t["status"], "succeeded", "{t}");
    let t = run("bob@contoso.com").await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["reason_code"], "wrong_account", "{t}");
    e.emu
        .control()
        .tamper_next_id_token(json!({}), json!({"tid": Uuid::new_v4().to_string()}));
    let t = run("ada@contoso.com").await;
    assert_eq!(t["reason_code"], "wrong_tenant", "{t}");
    assert_eq!(e.session_count().await, 0);
}
