//! Trust round (issue 12), sessions and sign-in: a session that outlives its right, sign-in CSRF,
//! cookie-authenticated writes from other origins, who is a directory user, and OIDC interop.
//!
//! Each test sends what an attacker (or a standards-following provider) would send, and fails
//! when the defence it names is taken out.

use std::time::Instant;

use dirsync_entity::sessions;
use dirsync_google_emulator::{ClientAuthMethod, Endpoint, IdTokenTamper};
use dirsync_tests::oidc::{directory, param, set_cookie_pair, spawn_with_oidc, urlencode, OidcEnv};
use dirsync_tests::{captured_logs, spawn_app_with, Reply, TestApp};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// Creates a local user with a password and privileges through the API; returns its id.
async fn local_user(app: &TestApp, name: &str, privileges: &[&str]) -> String {
    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": name, "full_name": name, "emails": [],
                    "password": PASSWORD, "privileges": privileges}),
        )
        .await
        .expect(201);
    r.json["id"].as_str().unwrap().to_string()
}

/// Signs `name` in with its password; returns the session token.
async fn password_session(app: &TestApp, name: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"user_name": name, "password": PASSWORD})),
        )
        .await
        .expect(200);
    r.json["token"].as_str().unwrap().to_string()
}

async fn sessions_of(app: &TestApp, user_id: &str) -> u64 {
    sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(Uuid::parse_str(user_id).unwrap()))
        .count(&app.db)
        .await
        .unwrap()
}

/// The newest audit event with `action` about `user_id`.
async fn last_event(app: &TestApp, action: &str, user_id: &str) -> Value {
    let events = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == action && e["target_id"] == user_id)
        .unwrap_or_else(|| panic!("no {action} event for {user_id}: {}", events.text))
        .clone()
}

/// Creating an admin API key with a session token: what a stolen or stale session would try.
async fn create_key_with(app: &TestApp, token: &str) -> Reply {
    app.call(
        Method::POST,
        "/api/v1/api-keys",
        Some(token),
        Some(&json!({"name": "from-a-session", "role": "admin"})),
    )
    .await
}

// ---- item 1: a session does not outlive the right that created it ----

#[tokio::test]
async fn removing_login_ends_the_users_sessions_and_the_old_session_creates_no_admin_key() {
    let app = spawn_app_with(|_| {}).await;
    let id = local_user(&app, "keeper", &["login", "admin"]).await;
    let token = password_session(&app, "keeper").await;
    let cookie_token = password_session(&app, "keeper").await;
    create_key_with(&app, &token).await.expect(201);

    // An admin takes `login` away, keeping `admin`.
    let path = format!("/api/v1/users/{id}/privileges");
    let mut body = app.get(&path).await.expect(200).json;
    body["privileges"] = json!(["admin"]);
    app.put(&path, &body).await.expect(200);

    let r = create_key_with(&app, &token).await.expect(401);
    assert_eq!(r.error_code(), "unauthorized");
    // The browser's cookie is the same session kind: refused too.
    let r = app
        .request_as(Method::GET, "/api/v1/me", None)
        .header("cookie", format!("dirsync_session={cookie_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(sessions_of(&app, &id).await, 0, "the rows are deleted");
    let event = last_event(&app, "privileges.update", &id).await;
    assert_eq!(event["details"]["sessions_ended"], 2, "{event}");
    // Signing in again is refused as well: the session check is the sign-in's.
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&json!({"user_name": "keeper", "password": PASSWORD})),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn disabling_deleting_or_a_new_password_ends_the_users_sessions_and_says_so() {
    let app = spawn_app_with(|_| {}).await;
    let bystander = local_user(&app, "bystander", &["login"]).await;
    let bystander_token = password_session(&app, "bystander").await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.call(Method::GET, "/api/v1/me", Some(&token), None)
                .await
                .status
        }
    };

    let id = local_user(&app, "to-disable", &["login"]).await;
    let token = password_session(&app, "to-disable").await;
    assert_eq!(me(token.clone()).await, 200);
    app.patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await
        .expect(200);
    assert_eq!(me(token).await, 401);
    assert_eq!(sessions_of(&app, &id).await, 0);
    let e = last_event(&app, "user.update", &id).await;
    assert_eq!(e["details"]["sessions_ended"], 1, "{e}");

    let id = local_user(&app, "new-password", &["login", "admin"]).await;
    let token = password_session(&app, "new-password").await;
    app.patch(
        &format!("/api/v1/users/{id}"),
        &json!({"password": "another horse battery"}),
    )
    .await
    .expect(200);
    assert_eq!(create_key_with(&app, &token).await.status, 401);
    assert_eq!(sessions_of(&app, &id).await, 0);
    let e = last_event(&app, "user.update", &id).await;
    assert_eq!(e["details"]["sessions_ended"], 1, "{e}");
    // A change that takes no right away leaves the sessions alone.
    let token = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"user_name": "new-password", "password": "another horse battery"})),
        )
        .await
        .expect(200)
        .json["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("/api/v1/users/{id}"),
        &json!({"full_name": "Renamed"}),
    )
    .await
    .expect(200);
    assert_eq!(me(token).await, 200);

    let id = local_user(&app, "to-delete", &["login"]).await;
    let token = password_session(&app, "to-delete").await;
    app.delete(&format!("/api/v1/users/{id}")).await.expect(204);
    assert_eq!(me(token).await, 401);
    let e = last_event(&app, "user.delete", &id).await;
    assert_eq!(e["details"]["sessions_ended"], 1, "{e}");

    assert_eq!(me(bystander_token).await, 200, "other users keep theirs");
    assert_eq!(sessions_of(&app, &bystander).await, 1);
}

#[tokio::test]
async fn every_session_request_rechecks_login_disabled_and_admin_even_when_changed_behind_the_api()
{
    // Changes a sync makes, or an operator makes in the database, pass by no API handler: the
    // session itself must notice.
    let o = spawn_with_oidc(directory()).await;
    let app = &o.env.app;
    o.grant("ada@example.com", "admin").await;
    let ada = o.sign_in("ada@example.com").await.expect(200).json["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = o.sign_in("bob@example.com").await.expect(200).json["token"]
        .as_str()
        .unwrap()
        .to_string();
    let carol = o.sign_in("carol@example.com").await.expect(200).json["token"]
        .as_str()
        .unwrap()
        .to_string();
    create_key_with(app, &ada).await.expect(201);

    // `admin` taken away: the session is a plain user's at once.
    o.revoke("ada@example.com", "admin").await;
    create_key_with(app, &ada).await.expect(403);
    app.call(Method::GET, "/api/v1/me", Some(&ada), None)
        .await
        .expect(200);

    // `login` taken away: the session ends, and its rows go.
    o.revoke("bob@example.com", "login").await;
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&bob), None)
        .await
        .expect(401);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended"),
        "{}",
        r.text
    );
    let bob_id = o.user("bob@example.com").await.id.to_string();
    assert_eq!(sessions_of(app, &bob_id).await, 0);
    // Given back, the old session stays ended: only a new sign-in gets in.
    o.grant("bob@example.com", "login").await;
    app.call(Method::GET, "/api/v1/me", Some(&bob), None)
        .await
        .expect(401);

    // Disabled (as a sync disables a user suspended in Google).
    o.set_disabled("carol@example.com", true).await;
    app.call(Method::GET, "/api/v1/me", Some(&carol), None)
        .await
        .expect(401);
}

// ---- item 2: sign-in CSRF ----

/// A second browser: its own client and its own sign-in cookie, if it has one.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn get(&self, url: &str) -> Reply {
        let mut rb = self.client.get(url).header("accept", "text/html");
        if let Some(c) = &self.cookie {
            rb = rb.header("cookie", c);
        }
        Reply::read(rb.send().await.unwrap()).await
    }
}

#[tokio::test]
async fn a_callback_url_opened_in_another_browser_signs_nobody_in() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    // The attacker starts a sign-in in its own browser and signs in at Google as itself, but
    // stops before its browser follows the redirect back.
    let auth = o.start("login_hint=bob%40example.com").await;
    let planted = o.authorize(&auth).await;
    let tokens = c.request_count(Endpoint::Token);

    // The victim's browser opens the link: without a sign-in cookie ...
    let victim = Browser::new();
    let r = victim.get(&planted).await.expect(400);
    assert!(r.text.contains("not started in this browser"), "{}", r.text);
    assert!(
        set_cookie_pair(&r, "dirsync_session").is_none(),
        "no session"
    );
    // ... or with its own, from a sign-in it started itself.
    let auth = o.start("login_hint=bob%40example.com").await;
    let planted = o.authorize(&auth).await;
    let mut victim = Browser::new();
    let started = victim
        .get(&format!("{}/oidc/login", o.env.app.address))
        .await
        .expect(302);
    victim.cookie = set_cookie_pair(&started, "dirsync_signin");
    assert!(victim.cookie.is_some() && victim.cookie != o.browser_cookie());
    let r = victim.get(&planted).await.expect(400);
    assert!(set_cookie_pair(&r, "dirsync_session").is_none());
    let r = Reply::read(
        victim
            .client
            .get(&planted)
            .header("accept", "application/json")
            .header("cookie", victim.cookie.clone().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(400);
    // The attempt was used up by the first try.
    assert_eq!(r.error_code(), "invalid_state");
    assert_eq!(o.session_count().await, 0);
    assert_eq!(
        c.request_count(Endpoint::Token),
        tokens,
        "the attacker's code was never exchanged"
    );

    // A forged cookie does not help: the state is tied to the binding it was made for.
    let auth = o.start("login_hint=bob%40example.com").await;
    let planted = o.authorize(&auth).await;
    let forged = Browser {
        cookie: Some(format!("dirsync_signin={}", "A".repeat(43))),
        ..Browser::new()
    };
    let r = Reply::read(
        forged
            .client
            .get(&planted)
            .header("accept", "application/json")
            .header("cookie", forged.cookie.clone().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(400);
    assert_eq!(r.error_code(), "browser_mismatch");

    // The browser that started a sign-in finishes it.
    let auth = o.start("login_hint=bob%40example.com").await;
    let back = o.authorize(&auth).await;
    o.callback(&back, true).await.expect(200);
    assert_eq!(o.session_count().await, 1);
}

#[tokio::test]
async fn the_sign_in_cookie_is_httponly_lax_ten_minutes_and_cleared_by_the_callback() {
    let o = spawn_with_oidc(directory()).await;
    let r = o
        .env
        .app
        .call(
            Method::GET,
            "/oidc/login?login_hint=ada%40example.com",
            None,
            None,
        )
        .await
        .expect(302);
    let set = r.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("dirsync_signin="), "{set}");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");

    // Through the helper (which holds the cookie as a browser does): the callback clears it.
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    let r = o.callback(&back, false).await.expect(303);
    let all: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(all[0].starts_with("dirsync_session=dss_"), "{all:?}");
    assert!(
        all.iter()
            .any(|c| c.starts_with("dirsync_signin=;") && c.contains("Max-Age=0")),
        "{all:?}"
    );
}

#[tokio::test]
async fn over_https_the_cookies_carry_the_host_prefix_and_unprefixed_ones_are_ignored() {
    let o = spawn_with_oidc(directory()).await;
    let app = &o.env.app;
    // As a TLS-terminating proxy forwards the browser's requests.
    let https = |rb: reqwest::RequestBuilder| rb.header("x-forwarded-proto", "https");
    let r = Reply::read(
        https(app.request_as(
            Method::GET,
            "/oidc/login?login_hint=ada%40example.com",
            None,
        ))
        .send()
        .await
        .unwrap(),
    )
    .await
    .expect(302);
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(set.starts_with("__Host-dirsync_signin="), "{set}");
    assert!(set.contains("Secure") && set.contains("Path=/") && !set.contains("Domain"));
    let binding = set.split(';').next().unwrap().to_string();
    let back = o.authorize(r.headers["location"].to_str().unwrap()).await;

    // The unprefixed name (which a sibling subdomain can plant) does not count over HTTPS.
    let unprefixed = binding.trim_start_matches("__Host-").to_string();
    let r = Reply::read(
        https(app.client.get(&back))
            .header("cookie", &unprefixed)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(400);
    assert_eq!(r.error_code(), "browser_mismatch");

    let r = Reply::read(
        https(app.request_as(
            Method::GET,
            "/oidc/login?login_hint=ada%40example.com",
            None,
        ))
        .header("cookie", &binding)
        .send()
        .await
        .unwrap(),
    )
    .await
    .expect(302);
    let back = o.authorize(r.headers["location"].to_str().unwrap()).await;
    let r = Reply::read(
        https(app.client.get(&back))
            .header("cookie", &binding)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(303);
    let session = set_cookie_pair(&r, "dirsync_session").unwrap();
    assert!(
        session.starts_with("__Host-dirsync_session=dss_"),
        "{session}"
    );
    let token = session.split_once('=').unwrap().1.to_string();

    let me = |cookie: String| {
        https(app.request_as(Method::GET, "/api/v1/me", None))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(me(session.clone()).await.unwrap().status(), 200);
    assert_eq!(
        me(format!("dirsync_session={token}"))
            .await
            .unwrap()
            .status(),
        401,
        "unprefixed session cookie over HTTPS"
    );
}

#[tokio::test]
async fn an_auth_test_link_stays_unbound_and_completes_in_a_browser_without_the_cookie() {
    let o = spawn_with_oidc(directory()).await;
    let ada = o.user("ada@example.com").await;
    let r = o
        .env
        .app
        .post(&format!("/api/v1/users/{}/auth-test", ada.id), &json!({}))
        .await
        .expect(201);
    let back = o
        .authorize(r.json["authorization_url"].as_str().unwrap())
        .await;
    // The tested user's browser, which never went through /oidc/login.
    let page = Browser::new().get(&back).await.expect(200);
    assert!(
        page.text.contains("No session was created"),
        "{}",
        page.text
    );
    let id = r.json["id"].as_str().unwrap();
    let t = o
        .env
        .app
        .get(&format!("/api/v1/auth-tests/{id}"))
        .await
        .expect(200);
    assert_eq!(t.json["status"], "succeeded", "{}", t.text);
}

// ---- item 3: cookie-authenticated writes from other origins ----

#[tokio::test]
async fn cookie_authenticated_writes_from_other_origins_are_refused_but_bearer_tokens_are_not() {
    let app = spawn_app_with(|s| s.cors_origins = vec!["https://admin.example.com".into()]).await;
    local_user(&app, "root", &["login", "admin"]).await;
    let token = password_session(&app, "root").await;
    let cookie = format!("dirsync_session={token}");
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let with_cookie = |method: Method, path: &str, headers: &[(&str, &str)]| {
        let mut rb = app.request_as(method, path, None).header("cookie", &cookie);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb
    };

    // A page elsewhere — another site, a sibling name, another port, a look-alike, an opaque
    // origin — makes the browser post with its cookie.
    let evil_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1);
    let lookalike = format!("http://127.0.0.1:{port}.evil.example");
    let attacks: Vec<Vec<(&str, &str)>> = vec![
        vec![("origin", "https://evil.example")],
        vec![("origin", "https://sibling.127.0.0.1.nip.io")],
        vec![("origin", evil_port.as_str())],
        vec![("origin", lookalike.as_str())],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
    ];
    for headers in &attacks {
        for (method, path, body) in [
            (Method::POST, "/api/v1/auth/logout", None),
            (Method::POST, "/api/v1/directory/test", None),
            (
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": "csrf", "role": "admin"})),
            ),
        ] {
            let mut rb = with_cookie(method, path, headers);
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let r = Reply::read(rb.send().await.unwrap()).await;
            assert_eq!(r.status, 403, "{headers:?} {path}: {}", r.text);
            assert_eq!(r.error_code(), "cross_origin_request");
        }
    }
    // Nothing happened: the session lives and no key was made.
    let r = Reply::read(
        with_cookie(
            Method::GET,
            "/api/v1/api-keys",
            &[("origin", "https://evil.example")],
        )
        .send()
        .await
        .unwrap(),
    )
    .await
    .expect(200);
    assert_eq!(r.json["items"], json!([]), "reads are not refused");

    // The server's own pages, and a configured CORS origin, may write with the cookie.
    let own = app.address.clone();
    for headers in [
        vec![("origin", own.as_str())],
        vec![("origin", "https://admin.example.com")],
        vec![("sec-fetch-site", "same-origin")],
        vec![],
    ] {
        let r = Reply::read(
            with_cookie(Method::POST, "/api/v1/api-keys", &headers)
                .json(&json!({"name": "fine", "role": "reader"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 201, "{headers:?}: {}", r.text);
    }
    // A bearer token is not a browser credential: the Origin does not matter.
    let r = app
        .request_as(Method::POST, "/api/v1/api-keys", Some(&token))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "bearer", "role": "reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = with_cookie(
        Method::POST,
        "/api/v1/auth/logout",
        &[("origin", own.as_str())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
}

// ---- item 4: who is a directory user ----

#[tokio::test]
async fn a_directory_users_address_gets_the_unknown_name_answer_after_the_same_work() {
    let o = spawn_with_oidc(directory()).await;
    let login = |user: &'static str| {
        let app = &o.env.app;
        async move {
            app.call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"user_name": user, "password": "guess-guess"})),
            )
            .await
        }
    };
    let directory_user = login("ada@example.com").await;
    let unknown = login("nobody@example.com").await;
    assert_eq!(directory_user.status, 401, "{}", directory_user.text);
    assert_eq!(directory_user.status, unknown.status);
    assert_eq!(directory_user.json, unknown.json);
    assert_eq!(directory_user.error_code(), "invalid_credentials");

    // The same work: both verify one argon2 hash. Interleaved, medians, loose bounds; without
    // the hash a directory user answers tens of times faster.
    let (mut dir, mut none) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (user, times) in [
            ("ada@example.com", &mut dir),
            ("nobody@example.com", &mut none),
        ] {
            let start = Instant::now();
            login(user).await;
            times.push(start.elapsed());
        }
    }
    dir.sort();
    none.sort();
    let ratio = dir[3].as_secs_f64() / none[3].as_secs_f64();
    assert!((0.3..3.0).contains(&ratio), "{:?} vs {:?}", dir[3], none[3]);
}

// ---- item 15: the provider's error_description ----

#[tokio::test]
async fn the_providers_error_description_is_logged_and_shown_cleaned_and_shortened() {
    let o = spawn_with_oidc(directory()).await;
    let auth = o.start("").await;
    let state = param(&auth, "state").unwrap();
    let marker = format!("Consent-{}", Uuid::new_v4().simple());
    // What a provider (or anyone crafting the redirect) may put there: markup, a forged log
    // line, non-ASCII, and far too much of it.
    let description = format!(
        "{marker} was refused <script>alert(1)</script>\nERROR forged log line\u{1b}[31m é {}",
        "x".repeat(1000)
    );
    let url = format!(
        "{}?state={}&error=access_denied&error_description={}",
        o.redirect_uri,
        urlencode(&state),
        urlencode(&description)
    );
    let page = o.callback(&url, false).await.expect(401);
    let message = page
        .text
        .split("<p id=\"message\">")
        .nth(1)
        .and_then(|m| m.split("</p>").next())
        .unwrap();
    assert!(message.contains(&marker), "{message}");
    assert!(message.contains("access_denied"), "{message}");
    assert!(!page.text.contains("<script>alert"), "markup is not echoed");
    assert!(!message.contains('\n') && !message.contains('\u{1b}') && !message.contains('é'));
    assert!(message.len() < 600, "shortened: {} bytes", message.len());

    // JSON callers get it in the one error shape.
    let auth = o.start("").await;
    let url = format!(
        "{}?state={}&error=access_denied&error_description={}",
        o.redirect_uri,
        urlencode(&param(&auth, "state").unwrap()),
        urlencode(&description)
    );
    let r = o.callback(&url, true).await.expect(401);
    assert_eq!(r.error_code(), "google_error");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(&marker) && !m.contains('\n') && m.len() < 600,
        "{m}"
    );

    // The log has it, on one line.
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&marker))
        .expect("the description is logged");
    assert!(line.contains("access_denied"), "{line}");
    assert!(!logs.contains("\nERROR forged log line"));
}

// ---- item 16: the token request's client authentication ----

/// Signs ada in through the whole flow, answered as JSON.
async fn sign_in_ada(o: &OidcEnv) -> Reply {
    o.sign_in("ada@example.com").await
}

#[tokio::test]
async fn the_code_exchange_uses_http_basic_with_form_urlencoded_credentials() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    // Google lists both (post first); Basic is the one RFC 6749 prefers.
    sign_in_ada(&o).await.expect(200);
    assert_eq!(
        c.client_auth_methods_used(),
        vec![ClientAuthMethod::ClientSecretBasic]
    );
    // A secret with the characters that Basic's form-urlencoding exists for.
    let odd = "GOCSPX-a+b%c:d/e&f=g";
    c.add_oauth_client(
        dirsync_tests::oidc::CLIENT_ID,
        odd,
        &[o.redirect_uri.as_str()],
    );
    o.configure(json!({"client_secret": odd})).await.expect(200);
    sign_in_ada(&o).await.expect(200);
    assert_eq!(c.client_auth_methods_used().len(), 2);
}

#[tokio::test]
async fn a_provider_that_lists_only_basic_gets_basic() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    c.set_token_endpoint_auth_methods(&[ClientAuthMethod::ClientSecretBasic]);
    sign_in_ada(&o).await.expect(200);
    assert_eq!(
        c.client_auth_methods_used(),
        vec![ClientAuthMethod::ClientSecretBasic]
    );
}

#[tokio::test]
async fn a_provider_that_lists_only_post_gets_the_credentials_in_the_body() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    c.set_token_endpoint_auth_methods(&[ClientAuthMethod::ClientSecretPost]);
    sign_in_ada(&o).await.expect(200);
    assert_eq!(
        c.client_auth_methods_used(),
        vec![ClientAuthMethod::ClientSecretPost]
    );
}

// ---- item 17: RFC 9207 `iss`, and an unknown kid right after a refetch ----

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused_before_the_code_is_exchanged() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    let tokens = c.request_count(Endpoint::Token);
    let mixed_up = format!("{back}&iss={}", urlencode("https://idp.evil.example"));
    let r = o.callback(&mixed_up, true).await.expect(400);
    assert_eq!(r.error_code(), "issuer_mismatch");
    assert_eq!(c.request_count(Endpoint::Token), tokens, "no code exchange");
    assert_eq!(o.session_count().await, 0);

    // The provider's own issuer, as discovery names it, is accepted.
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    let named = format!("{back}&iss={}", urlencode(dirsync_google_emulator::ISSUER));
    o.callback(&named, true).await.expect(200);
}

#[tokio::test]
async fn an_unknown_kid_right_after_a_refetch_says_the_keys_were_just_fetched_and_to_retry() {
    let o = spawn_with_oidc(directory()).await;
    let c = o.env.google.control();
    sign_in_ada(&o).await.expect(200);
    // A token with a key Google does not publish: dirsync refetches to be sure, and says so.
    c.tamper_next_id_token(IdTokenTamper::UnknownKid);
    let r = sign_in_ada(&o).await.expect(401);
    assert_eq!(r.error_code(), "unknown_kid");
    assert!(r.text.contains("does not publish"), "{}", r.text);
    let fetches = c.request_count(Endpoint::Jwks);

    // Google rotates its key moments later: the next token's kid is new, but the cooldown
    // forbids another fetch yet. That is not "a key Google does not publish".
    c.rotate_signing_key();
    let r = sign_in_ada(&o).await.expect(401);
    assert_eq!(r.error_code(), "unknown_kid");
    let m = r.json["error"]["message"].as_str().unwrap();
    assert!(!m.contains("does not publish"), "{m}");
    assert!(
        m.contains("fetched moments ago") && m.contains("retry"),
        "{m}"
    );
    assert_eq!(
        c.request_count(Endpoint::Jwks),
        fetches,
        "the cooldown holds"
    );
}
