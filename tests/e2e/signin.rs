//! Sign in with Google end to end against the emulator (configuration, the flow, sessions and the
//! cookie, state and PKCE, the user checks, key rotation), local password sign-in, and test
//! authentication. The ID-token forgeries are in `oidc_tokens.rs`.

use std::time::{Duration, Instant};

use dirsync_core::secrets::Cipher;
use dirsync_entity::{audit_events, login_attempts, oidc_config, sessions, users};
use dirsync_google_emulator::{Endpoint, IdTokenTamper};
use dirsync_tests::oidc::{directory, param, spawn_with_oidc, urlencode, OidcEnv, CLIENT_ID};
use dirsync_tests::{captured_logs, spawn_app, Reply};
use reqwest::Method;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

async fn env() -> OidcEnv {
    spawn_with_oidc(directory()).await
}

// ---- configuration ----

#[tokio::test]
async fn oidc_settings_keep_the_client_secret_write_only_and_encrypted() {
    let o = env().await;
    let app = &o.env.app;
    let r = app.get("/api/v1/auth/oidc").await.expect(200);
    assert_eq!(r.json["client_id"], CLIENT_ID);
    assert_eq!(r.json["client_secret_set"], true);
    assert_eq!(r.json["redirect_uri"], o.redirect_uri.as_str());
    assert_eq!(r.json["allowed_domains"], json!(["example.com"]));
    assert_eq!(r.json["session_ttl_minutes"], 480);
    assert!(r.json.get("client_secret").is_none(), "{}", r.text);
    assert!(!r.text.contains(&o.client_secret));

    // Without client_secret the stored one is kept; the rest changes.
    let r = o
        .configure(json!({"client_secret": null, "allowed_domains": ["Example.com", "example.org", "example.com"], "session_ttl_minutes": 60}))
        .await
        .expect(200);
    assert_eq!(r.json["client_secret_set"], true);
    assert_eq!(
        r.json["allowed_domains"],
        json!(["example.com", "example.org"])
    );
    assert_eq!(r.json["session_ttl_minutes"], 60);
    let row = oidc_config::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let sealed = row.client_secret.clone().unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains(&o.client_secret));
    assert!(!format!("{row:?}").contains(&o.client_secret));
    let cipher = Cipher::from_settings(&app.settings).unwrap();
    assert_eq!(
        cipher
            .decrypt(&sealed, "oidc_config.client_secret:1")
            .unwrap()
            .expose_secret(),
        o.client_secret
    );
    // The kept secret still works: a sign-in succeeds.
    o.sign_in("ada@example.com").await.expect(200);

    // Roles: operators read, only admins write; readers do neither.
    let operator = app.api_key("operator").await;
    let reader = app.api_key("reader").await;
    app.call(Method::GET, "/api/v1/auth/oidc", Some(&operator), None)
        .await
        .expect(200);
    app.call(Method::GET, "/api/v1/auth/oidc", Some(&reader), None)
        .await
        .expect(403);
    let body = json!({"client_id": "x", "redirect_uri": o.redirect_uri});
    app.call(
        Method::PUT,
        "/api/v1/auth/oidc",
        Some(&operator),
        Some(&body),
    )
    .await
    .expect(403);

    // Field errors name the field.
    for (patch, field) in [
        (json!({"client_id": ""}), "client_id"),
        (json!({"client_secret": " "}), "client_secret"),
        (
            json!({"allowed_domains": ["not a domain"]}),
            "allowed_domains",
        ),
        (json!({"session_ttl_minutes": 1}), "session_ttl_minutes"),
    ] {
        let r = o.configure(patch.clone()).await;
        assert_eq!(r.status, 422, "{patch}: {}", r.text);
        assert_eq!(r.json["error"]["details"]["field"], field, "{}", r.text);
    }

    // Never in the audit trail, never in the logs.
    let audit = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    assert!(audit.text.contains("oidc.update"), "{}", audit.text);
    assert!(!audit.text.contains(&o.client_secret));
    // The stored text itself, not what it decodes to.
    let stored: Vec<String> = audit_events::Entity::find()
        .select_only()
        .column(audit_events::Column::Details)
        .into_tuple()
        .all(&app.db)
        .await
        .unwrap();
    assert!(!stored.concat().contains(&o.client_secret));
    assert!(
        !captured_logs().contains(&o.client_secret),
        "the client secret reached the log"
    );
}

#[tokio::test]
async fn the_client_secret_is_required_the_first_time() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/auth/oidc").await.expect(200);
    assert_eq!(r.json["client_secret_set"], false);
    assert!(r.json["client_id"].is_null());
    let r = app
        .put(
            "/api/v1/auth/oidc",
            &json!({"client_id": CLIENT_ID, "redirect_uri": "https://dirsync.example.com/oidc/signin"}),
        )
        .await
        .expect(422);
    assert_eq!(r.json["error"]["details"]["field"], "client_secret");
    // And sign-in says it is not configured.
    let r = app
        .call(Method::GET, "/oidc/login", None, None)
        .await
        .expect(409);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text.contains("not configured"), "{}", r.text);
    let r = Reply::read(
        app.request_as(Method::GET, "/oidc/login", None)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(409);
    assert_eq!(r.error_code(), "not_configured");
}

#[tokio::test]
async fn redirect_uris_are_checked_as_google_checks_them() {
    let app = spawn_app().await;
    let app = &app;
    let put = |uri: &str| {
        let body = json!({"client_id": CLIENT_ID, "client_secret": "s3cret-value",
                          "redirect_uri": uri, "allowed_domains": []});
        async move { app.put("/api/v1/auth/oidc", &body).await }
    };
    for good in [
        "https://dirsync.example.com/oidc/signin",
        "https://dirsync.example.co.uk:8462/oidc/signin",
        "http://localhost:8462/oidc/signin",
        "http://127.0.0.1:8462/oidc/signin",
        "http://[::1]:8462/oidc/signin",
    ] {
        let r = put(good).await;
        assert_eq!(r.status, 200, "{good}: {}", r.text);
        assert_eq!(r.json["redirect_uri"], good);
    }
    for (bad, rule) in [
        ("http://dirsync.example.com/oidc/signin", "https_required"),
        ("https://10.0.0.5/oidc/signin", "ip_host"),
        ("https://dirsync.internal/oidc/signin", "public_suffix"),
        ("https://dirsync/oidc/signin", "public_suffix"),
        (
            "https://admin:pw@dirsync.example.com/oidc/signin",
            "userinfo",
        ),
        ("https://dirsync.example.com/oidc/signin?next=/", "query"),
        ("https://dirsync.example.com/oidc/signin#x", "fragment"),
        ("https://*.example.com/oidc/signin", "wildcard"),
        (
            "https://dirsync.example.com/a/../oidc/signin",
            "path_traversal",
        ),
        (
            "https://dirsync.example.com/a/%2E%2E/oidc/signin",
            "path_traversal",
        ),
        (
            "https://dirsync.example.com/oidc/signin\u{7}",
            "non_printable",
        ),
        (
            "https://dirsync.example.com/oidc/signin%00",
            "non_printable",
        ),
        (
            "https://dirsync.example.com:443/oidc/signin",
            "default_port",
        ),
        ("https://dirsync.example.com/callback", "path"),
        ("mailto:admin@example.com", "not_a_url"),
    ] {
        let r = put(bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.error_code(), "invalid_redirect_uri");
        assert_eq!(
            r.json["error"]["details"]["rule"], rule,
            "{bad}: {}",
            r.text
        );
        assert_eq!(r.json["error"]["details"]["field"], "redirect_uri");
    }
}

// ---- the flow ----

#[tokio::test]
async fn signing_in_with_google_answers_a_session_that_authenticates() {
    let o = env().await;
    let app = &o.env.app;
    let auth = o.start("login_hint=ada%40example.com").await;
    // The authorization request (google-apis.md §5).
    assert!(auth.starts_with(&format!("{}/o/oauth2/v2/auth?", o.env.google.base_url())));
    assert_eq!(param(&auth, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&auth, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&auth, "redirect_uri"), Some(o.redirect_uri.clone()));
    assert_eq!(
        param(&auth, "scope").as_deref(),
        Some("openid email profile")
    );
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&auth, "hd").as_deref(), Some("example.com"));
    assert_eq!(
        param(&auth, "login_hint").as_deref(),
        Some("ada@example.com")
    );
    let state = param(&auth, "state").unwrap();
    assert!(state.len() >= 43 && param(&auth, "nonce").unwrap().len() >= 43);
    assert_eq!(param(&auth, "code_challenge").unwrap().len(), 43);
    // The attempt is stored with its state hashed and its secrets encrypted.
    let attempt = login_attempts::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(attempt.state_hash, state);
    assert_eq!(attempt.state_hash, dirsync_core::auth::token_hash(&state));
    assert!(attempt.nonce.starts_with("v1:") && attempt.pkce_verifier.starts_with("v1:"));
    assert!(!attempt.nonce.contains(&param(&auth, "nonce").unwrap()));
    let ttl = attempt.expires_at - attempt.created_at;
    assert_eq!(ttl.num_minutes(), 10);

    let back = o.authorize(&auth).await;
    assert!(back.starts_with(&o.redirect_uri), "{back}");
    let r = o.callback(&back, true).await.expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = r.json["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("dss_"));
    let ada = o.user("ada@example.com").await;
    assert_eq!(r.json["user"]["id"], ada.id.to_string());
    assert_eq!(r.json["user"]["user_name"], "ada@example.com");
    assert_eq!(r.json["user"]["auth_method"], "directory");
    assert_eq!(r.json["user"]["emails"], json!(["ada@example.com"]));
    assert_eq!(r.json["user"]["privileges"], json!(["login"]));
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(r.json["expires_at"].clone()).unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(479) && left <= chrono::Duration::minutes(480));

    // Stored hashed; the attempt is consumed.
    let s = sessions::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.token_hash, dirsync_core::auth::token_hash(&token));
    assert_eq!(s.user_id, ada.id);
    let attempt = login_attempts::Entity::find_by_id(attempt.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(attempt.consumed_at.is_some());

    // The session authenticates: a user with only `login` is not an admin...
    let r = app
        .call(Method::GET, "/api/v1/api-keys", Some(&token), None)
        .await
        .expect(403);
    assert_eq!(r.error_code(), "forbidden");
    // ... and one holding `admin` is.
    o.grant("bob@example.com", "admin").await;
    let bob = o.sign_in("bob@example.com").await.expect(200);
    assert_eq!(bob.json["user"]["privileges"], json!(["admin", "login"]));
    let bob_token = bob.json["token"].as_str().unwrap();
    app.call(Method::GET, "/api/v1/api-keys", Some(bob_token), None)
        .await
        .expect(200);

    // Logout revokes it.
    let r = app
        .call(Method::POST, "/api/v1/auth/logout", Some(bob_token), None)
        .await
        .expect(204);
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = app
        .call(Method::GET, "/api/v1/api-keys", Some(bob_token), None)
        .await
        .expect(401);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ended"));
    // API keys are not sessions.
    app.call(
        Method::POST,
        "/api/v1/auth/logout",
        Some(&app.admin_key),
        None,
    )
    .await
    .expect(400);

    // Nothing secret in the logs.
    let logs = captured_logs();
    for secret in [
        &token,
        &state,
        &o.client_secret,
        &param(&back, "code").unwrap(),
    ] {
        assert!(!logs.contains(secret.as_str()), "a secret reached the log");
    }
}

fn cookie_of(r: &Reply) -> String {
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_browser_gets_a_session_cookie_and_lands_on_return_to() {
    let o = env().await;
    let app = &o.env.app;
    o.grant("ada@example.com", "admin").await;
    let auth = o
        .start("return_to=%2Fswagger-ui%2F%3Fx%3D1&login_hint=ada%40example.com")
        .await;
    let back = o.authorize(&auth).await;
    let r = o.callback(&back, false).await.expect(303);
    assert_eq!(r.headers["location"], "/swagger-ui/?x=1");
    let cookie = cookie_of(&r);
    assert!(cookie.starts_with("dirsync_session=dss_"), "{cookie}");

    // The cookie is a credential when no Authorization header is sent.
    let keys = |cookie: &str| {
        app.request_as(Method::GET, "/api/v1/api-keys", None)
            .header("cookie", format!("theme=dark; {cookie}"))
            .send()
    };
    assert_eq!(keys(&cookie).await.unwrap().status(), 200);
    // An API key in the cookie is not accepted.
    let r = keys(&format!("dirsync_session={}", app.admin_key))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logout with the cookie revokes the session and clears the cookie.
    let r = app
        .request_as(Method::POST, "/api/v1/auth/logout", None)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("dirsync_session=;") && cleared.contains("Max-Age=0"));
    assert_eq!(keys(&cookie).await.unwrap().status(), 401);
}

#[tokio::test]
async fn return_to_off_site_is_ignored() {
    let o = env().await;
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%2F%2Fevil.example",
    ] {
        let auth = o
            .start(&format!(
                "return_to={}&login_hint=ada%40example.com",
                urlencode(target)
            ))
            .await;
        let back = o.authorize(&auth).await;
        let r = o.callback(&back, false).await.expect(303);
        assert_eq!(r.headers["location"], "/", "{target}");
    }
}

#[tokio::test]
async fn without_a_hint_the_user_picks_an_account_at_google() {
    let o = env().await;
    let auth = o.start("").await;
    assert_eq!(param(&auth, "prompt").as_deref(), Some("select_account"));
    assert!(param(&auth, "login_hint").is_none());
    let page = Reply::read(o.env.app.client.get(&auth).send().await.unwrap())
        .await
        .expect(200);
    let marker = "data-email=\"carol@example.com\" href=\"";
    let start = page.text.find(marker).unwrap() + marker.len();
    let href =
        page.text[start..start + page.text[start..].find('"').unwrap()].replace("&amp;", "&");
    let back = o
        .authorize(&format!("{}{href}", o.env.google.base_url()))
        .await;
    let r = o.callback(&back, true).await.expect(200);
    assert_eq!(r.json["user"]["user_name"], "carol@example.com");
}

// ---- state and PKCE ----

#[tokio::test]
async fn an_unknown_state_is_refused_without_asking_google() {
    let o = env().await;
    let c = o.env.google.control();
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    let forged = back.replace(
        &format!("state={}", param(&back, "state").unwrap()),
        "state=forged-state-value",
    );
    let tokens_before = c.request_count(Endpoint::Token);
    let r = o.callback(&forged, true).await.expect(400);
    assert_eq!(r.error_code(), "invalid_state");
    // No state at all.
    let r = o
        .callback(&format!("{}?code=abc", o.redirect_uri), true)
        .await
        .expect(400);
    assert_eq!(r.error_code(), "invalid_state");
    assert_eq!(
        c.request_count(Endpoint::Token),
        tokens_before,
        "no code exchange"
    );
    assert_eq!(o.session_count().await, 0);
    // A browser gets a small page without internals.
    let r = o.callback(&forged, false).await.expect(400);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text.contains("start the sign-in again"), "{}", r.text);
    assert!(!r.text.contains("forged-state-value") && !r.text.contains("sql"));
}

#[tokio::test]
async fn a_reused_state_is_refused() {
    let o = env().await;
    let c = o.env.google.control();
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    o.callback(&back, true).await.expect(200);
    let tokens = c.request_count(Endpoint::Token);
    let r = o.callback(&back, true).await.expect(400);
    assert_eq!(r.error_code(), "invalid_state");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already"));
    assert_eq!(c.request_count(Endpoint::Token), tokens);
    assert_eq!(o.session_count().await, 1);
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let o = env().await;
    let c = o.env.google.control();
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    let attempt = login_attempts::Entity::find()
        .one(&o.env.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: login_attempts::ActiveModel = attempt.into();
    am.expires_at = Set(chrono::Utc::now() - chrono::Duration::seconds(1));
    am.update(&o.env.app.db).await.unwrap();
    let tokens = c.request_count(Endpoint::Token);
    let r = o.callback(&back, true).await.expect(400);
    assert_eq!(r.error_code(), "invalid_state");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert_eq!(c.request_count(Endpoint::Token), tokens);
    assert_eq!(o.session_count().await, 0);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_by_google() {
    let o = env().await;
    let auth = o.start("login_hint=ada%40example.com").await;
    let back = o.authorize(&auth).await;
    // Replace the stored verifier with another (validly encrypted) one.
    let attempt = login_attempts::Entity::find()
        .one(&o.env.app.db)
        .await
        .unwrap()
        .unwrap();
    let cipher = Cipher::from_settings(&o.env.app.settings).unwrap();
    let id = attempt.id;
    let mut am: login_attempts::ActiveModel = attempt.into();
    am.pkce_verifier = Set(cipher.encrypt(
        "a-different-verifier-of-enough-length-0123456789",
        &format!("login_attempts.pkce_verifier:{id}"),
    ));
    am.update(&o.env.app.db).await.unwrap();
    let r = o.callback(&back, true).await.expect(400);
    assert_eq!(r.error_code(), "code_rejected");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid code verifier"),
        "{}",
        r.text
    );
    assert_eq!(o.session_count().await, 0);
}

#[tokio::test]
async fn a_sign_in_cancelled_at_google_is_an_error_page() {
    let o = env().await;
    let auth = o.start("").await;
    let cancel = format!("{auth}&deny=1");
    let back = o.authorize(&cancel).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    let r = o.callback(&back, false).await.expect(401);
    assert!(r.text.contains("access_denied"), "{}", r.text);
}

// ---- who may sign in ----

async fn refused(o: &OidcEnv, email: &str, status: u16, code: &str) {
    let before = o.session_count().await;
    let r = o.sign_in(email).await;
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.error_code(), code, "{}", r.text);
    assert!(!r.text.contains("dss_"));
    assert_eq!(o.session_count().await, before, "no session");
}

#[tokio::test]
async fn a_google_user_unknown_here_is_refused() {
    let o = env().await;
    // In Google, but not synchronized to dirsync.
    o.env
        .google
        .control()
        .add_user("dave@example.com", "Dave", "New")
        .unwrap();
    refused(&o, "dave@example.com", 403, "user_not_found").await;
}

#[tokio::test]
async fn the_user_is_found_by_google_id_not_by_address() {
    let o = env().await;
    // Google renames ada; dirsync still knows her by her id and signs her in.
    o.env
        .google
        .control()
        .rename_user("ada@example.com", "ada.lovelace@example.com")
        .unwrap();
    let r = o.sign_in("ada.lovelace@example.com").await.expect(200);
    assert_eq!(r.json["user"]["user_name"], "ada@example.com");
    // A local user named like a Google account gets nothing from it.
    o.env
        .google
        .control()
        .add_user("eve@example.com", "Eve", "Local")
        .unwrap();
    local_user(&o, "eve@example.com", None, &["login"]).await;
    refused(&o, "eve@example.com", 403, "user_not_found").await;
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let o = env().await;
    o.set_disabled("ada@example.com", true).await;
    refused(&o, "ada@example.com", 403, "user_disabled").await;
}

#[tokio::test]
async fn a_user_without_the_login_privilege_is_refused() {
    let o = env().await;
    o.revoke("ada@example.com", "login").await;
    refused(&o, "ada@example.com", 403, "login_not_allowed").await;
}

#[tokio::test]
async fn a_missing_hd_is_refused_when_domains_are_restricted() {
    let o = env().await;
    o.env
        .google
        .control()
        .tamper_next_id_token(IdTokenTamper::HdMissing);
    refused(&o, "ada@example.com", 403, "domain_not_allowed").await;
}

#[tokio::test]
async fn an_hd_not_allowed_is_refused_and_no_restriction_accepts_any() {
    let o = env().await;
    let c = o.env.google.control();
    c.tamper_next_id_token(IdTokenTamper::HdOther);
    refused(&o, "ada@example.com", 403, "domain_not_allowed").await;
    o.configure(json!({"allowed_domains": ["example.org"]}))
        .await
        .expect(200);
    let auth = o.start("login_hint=ada%40example.com").await;
    assert_eq!(param(&auth, "hd").as_deref(), Some("example.org"));
    refused(&o, "ada@example.com", 403, "domain_not_allowed").await;
    // Two domains: no `hd` hint, either accepted.
    o.configure(json!({"allowed_domains": ["example.org", "example.com"]}))
        .await
        .expect(200);
    assert!(param(&o.start("").await, "hd").is_none());
    o.sign_in("ada@example.com").await.expect(200);
    // No restriction: a token without hd is fine.
    o.configure(json!({"allowed_domains": []}))
        .await
        .expect(200);
    c.tamper_next_id_token(IdTokenTamper::HdMissing);
    o.sign_in("ada@example.com").await.expect(200);
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let o = env().await;
    o.env
        .google
        .control()
        .tamper_next_id_token(IdTokenTamper::EmailNotVerified);
    refused(&o, "ada@example.com", 403, "email_not_verified").await;
}

// ---- keys ----

#[tokio::test]
async fn after_google_rotates_its_key_the_next_sign_in_refetches_the_keys_once() {
    let o = env().await;
    let c = o.env.google.control();
    o.sign_in("ada@example.com").await.expect(200);
    o.sign_in("bob@example.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 1, "cached by max-age");
    c.set_keep_old_signing_keys(false);
    c.rotate_signing_key();
    o.sign_in("ada@example.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 2, "one refetch");
    o.sign_in("carol@example.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 2);
}

#[tokio::test]
async fn a_burst_of_unknown_key_ids_refetches_the_keys_at_most_once() {
    let o = env().await;
    let c = o.env.google.control();
    o.sign_in("ada@example.com").await.expect(200);
    assert_eq!(c.request_count(Endpoint::Jwks), 1);
    let mut callbacks = Vec::new();
    for _ in 0..6 {
        c.tamper_next_id_token(IdTokenTamper::UnknownKid);
        let auth = o.start("login_hint=bob%40example.com").await;
        callbacks.push(o.authorize(&auth).await);
    }
    // Concurrently, as a burst of forged tokens would come.
    let cookie = o.browser_cookie().unwrap();
    let handles: Vec<_> = callbacks
        .into_iter()
        .map(|url| {
            let client = o.env.app.client.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                Reply::read(
                    client
                        .get(url)
                        .header("accept", "application/json")
                        .header("cookie", cookie)
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            })
        })
        .collect();
    for h in handles {
        let r = h.await.unwrap();
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.error_code(), "unknown_kid");
    }
    assert_eq!(
        c.request_count(Endpoint::Jwks),
        2,
        "one refetch per cooldown"
    );
    assert_eq!(o.session_count().await, 1);
}

// ---- local sign-in ----

async fn local_user(o: &OidcEnv, name: &str, password: Option<&str>, privileges: &[&str]) -> Uuid {
    let id = Uuid::new_v4();
    let hash = match password {
        Some(p) => {
            let p = p.to_string();
            Some(
                tokio::task::spawn_blocking(move || dirsync_core::password::hash_password(&p))
                    .await
                    .unwrap()
                    .unwrap(),
            )
        }
        None => None,
    };
    let now = chrono::Utc::now();
    users::ActiveModel {
        id: Set(id),
        user_name: Set(name.into()),
        user_name_key: Set(name.to_lowercase()),
        full_name: Set(format!("Local {name}")),
        auth_method: Set(dirsync_entity::AuthMethod::Local),
        directory_id: Set(None),
        disabled: Set(false),
        password_hash: Set(hash),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(None),
    }
    .insert(&o.env.app.db)
    .await
    .unwrap();
    for p in privileges {
        o.grant(name, p).await;
    }
    id
}

async fn password_login(o: &OidcEnv, user: &str, password: &str) -> Reply {
    o.env
        .app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"user_name": user, "password": password})),
        )
        .await
}

#[tokio::test]
async fn a_local_user_signs_in_with_a_password() {
    let o = env().await;
    let id = local_user(
        &o,
        "Archivist",
        Some("correct horse battery"),
        &["login", "admin", "change_password"],
    )
    .await;
    let r = password_login(&o, "archivist", "correct horse battery")
        .await
        .expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.json["user"]["id"], id.to_string());
    assert_eq!(r.json["user"]["auth_method"], "local");
    // Sorted by name, not in the documented order of GET /api/v1/users/{id}/privileges.
    assert_eq!(
        r.json["user"]["privileges"],
        json!(["admin", "change_password", "login"])
    );
    let token = r.json["token"].as_str().unwrap();
    assert!(token.starts_with("dss_") && r.json["expires_at"].is_string());
    o.env
        .app
        .call(Method::GET, "/api/v1/api-keys", Some(token), None)
        .await
        .expect(200);
    assert!(!captured_logs().contains("correct horse battery"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer_in_similar_time() {
    let o = env().await;
    local_user(&o, "archivist", Some("correct horse battery"), &["login"]).await;
    local_user(&o, "nopass", None, &["login"]).await;
    let wrong = password_login(&o, "archivist", "wrong").await.expect(401);
    let unknown = password_login(&o, "nobody", "wrong").await.expect(401);
    let nopass = password_login(&o, "nopass", "").await.expect(401);
    assert_eq!(wrong.json, unknown.json);
    assert_eq!(wrong.json, nopass.json);
    assert_eq!(wrong.error_code(), "invalid_credentials");
    // Similar time: both verify one argon2 hash. Measured interleaved (so both see the same
    // load from the tests running beside this one), medians, loose bounds: without the dummy
    // hash an unknown user answers tens of times faster.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (user, times) in [("archivist", &mut known), ("nobody", &mut unknown)] {
            let start = Instant::now();
            password_login(&o, user, "wrong").await.expect(401);
            times.push(start.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[3], unknown[3]);
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!((0.2..5.0).contains(&ratio), "{known:?} vs {unknown:?}");
    assert!(unknown > Duration::from_millis(1));
}

#[tokio::test]
async fn disabled_local_users_and_users_without_login_are_refused() {
    let o = env().await;
    local_user(&o, "nologin", Some("pw-pw-pw-pw"), &[]).await;
    let r = password_login(&o, "nologin", "pw-pw-pw-pw")
        .await
        .expect(403);
    assert_eq!(r.error_code(), "login_not_allowed");
    local_user(&o, "gone", Some("pw-pw-pw-pw"), &["login"]).await;
    o.set_disabled("gone", true).await;
    let r = password_login(&o, "gone", "pw-pw-pw-pw").await.expect(403);
    assert_eq!(r.error_code(), "user_disabled");
    // The wrong password says nothing about the account's state.
    let r = password_login(&o, "gone", "wrong").await.expect(401);
    assert_eq!(r.error_code(), "invalid_credentials");
    assert_eq!(o.session_count().await, 0);
}

// ---- test authentication ----

/// Starts a test of `email`; returns the test and Google's callback for `sign_in_as`.
async fn run_auth_test(o: &OidcEnv, email: &str, sign_in_as: &str) -> (Value, String) {
    let user = o.user(email).await;
    let r = o
        .env
        .app
        .post(&format!("/api/v1/users/{}/auth-test", user.id), &json!({}))
        .await
        .expect(201);
    assert_eq!(r.json["status"], "pending");
    assert!(r.json["reason"].is_null());
    assert_eq!(r.json["user_id"], user.id.to_string());
    let url = r.json["authorization_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&o.env.google.base_url()), "{url}");
    assert_eq!(param(&url, "login_hint").as_deref(), Some(email));
    let url = url.replace(
        &format!("login_hint={}", urlencode(email)),
        &format!("login_hint={}", urlencode(sign_in_as)),
    );
    let back = o.authorize(&url).await;
    (r.json, back)
}

async fn finish_auth_test(o: &OidcEnv, email: &str, sign_in_as: &str) -> Value {
    let before = o.session_count().await;
    let (test, back) = run_auth_test(o, email, sign_in_as).await;
    let page = o.callback(&back, false).await.expect(200);
    assert!(
        page.text.contains("No session was created"),
        "{}",
        page.text
    );
    assert!(page.headers.get("set-cookie").is_none());
    assert_eq!(o.session_count().await, before, "no session");
    let id = test["id"].as_str().unwrap();
    o.env
        .app
        .get(&format!("/api/v1/auth-tests/{id}"))
        .await
        .expect(200)
        .json
}

#[tokio::test]
async fn an_auth_test_succeeds_for_a_user_who_can_sign_in_without_creating_a_session() {
    let o = env().await;
    let t = finish_auth_test(&o, "ada@example.com", "ada@example.com").await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert!(t["reason"].is_null());
    assert!(t["finished_at"].is_string());
    // JSON callers get the test too.
    let (test, back) = run_auth_test(&o, "bob@example.com", "bob@example.com").await;
    let r = o.callback(&back, true).await.expect(200);
    assert_eq!(r.json["id"], test["id"]);
    assert_eq!(r.json["status"], "succeeded");
    assert!(r.json.get("token").is_none());
    assert_eq!(o.session_count().await, 0);
    // Only admins; unknown users are 404; local users 422.
    let operator = o.env.app.api_key("operator").await;
    let ada = o.user("ada@example.com").await;
    o.env
        .app
        .call(
            Method::POST,
            &format!("/api/v1/users/{}/auth-test", ada.id),
            Some(&operator),
            None,
        )
        .await
        .expect(403);
    let r = o
        .env
        .app
        .post(
            &format!("/api/v1/users/{}/auth-test", Uuid::new_v4()),
            &json!({}),
        )
        .await
        .expect(404);
    assert_eq!(r.error_code(), "not_found");
    let local = local_user(&o, "localuser", None, &["login"]).await;
    let r = o
        .env
        .app
        .post(&format!("/api/v1/users/{local}/auth-test"), &json!({}))
        .await
        .expect(422);
    assert_eq!(r.error_code(), "not_a_directory_user");
    o.env
        .app
        .get(&format!("/api/v1/auth-tests/{}", Uuid::new_v4()))
        .await
        .expect(404);
}

#[tokio::test]
async fn an_auth_test_records_each_reason_for_failing() {
    let o = env().await;
    let c = o.env.google.control();
    let reason = |t: &Value| {
        assert_eq!(t["status"], "failed", "{t}");
        assert!(t["reason"]
            .as_str()
            .unwrap()
            .starts_with(t["reason_code"].as_str().unwrap()));
        t["reason_code"].as_str().unwrap().to_string()
    };
    // The wrong account chosen at Google.
    let t = finish_auth_test(&o, "ada@example.com", "bob@example.com").await;
    assert_eq!(reason(&t), "wrong_account");
    assert!(
        t["reason"].as_str().unwrap().contains("bob@example.com"),
        "{t}"
    );
    // Disabled here.
    o.set_disabled("ada@example.com", true).await;
    let t = finish_auth_test(&o, "ada@example.com", "ada@example.com").await;
    assert_eq!(reason(&t), "user_disabled");
    o.set_disabled("ada@example.com", false).await;
    // Without login.
    o.revoke("bob@example.com", "login").await;
    let t = finish_auth_test(&o, "bob@example.com", "bob@example.com").await;
    assert_eq!(reason(&t), "login_not_allowed");
    // Domain not allowed.
    c.tamper_next_id_token(IdTokenTamper::HdOther);
    let t = finish_auth_test(&o, "ada@example.com", "ada@example.com").await;
    assert_eq!(reason(&t), "domain_not_allowed");
    // E-mail not verified.
    c.tamper_next_id_token(IdTokenTamper::EmailNotVerified);
    let t = finish_auth_test(&o, "ada@example.com", "ada@example.com").await;
    assert_eq!(reason(&t), "email_not_verified");
    // A forged token.
    c.tamper_next_id_token(IdTokenTamper::WrongIssuer);
    let t = finish_auth_test(&o, "ada@example.com", "ada@example.com").await;
    assert_eq!(reason(&t), "wrong_issuer");
    // A test never completed expires.
    let (test, _) = run_auth_test(&o, "carol@example.com", "carol@example.com").await;
    let id: Uuid = test["id"].as_str().unwrap().parse().unwrap();
    let row = dirsync_entity::auth_tests::Entity::find_by_id(id)
        .one(&o.env.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: dirsync_entity::auth_tests::ActiveModel = row.into();
    am.created_at = Set(chrono::Utc::now() - chrono::Duration::minutes(11));
    am.update(&o.env.app.db).await.unwrap();
    let t = o
        .env
        .app
        .get(&format!("/api/v1/auth-tests/{id}"))
        .await
        .expect(200)
        .json;
    assert_eq!(reason(&t), "expired");
    assert_eq!(o.session_count().await, 0);
    // The audit trail names who started tests.
    let n = audit_events::Entity::find()
        .filter(audit_events::Column::Action.eq("user.auth_test"))
        .order_by_asc(audit_events::Column::Id)
        .count(&o.env.app.db)
        .await
        .unwrap();
    assert_eq!(n, 7);
}
