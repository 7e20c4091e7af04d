//! Trust round (issue 12), limits and resources: per-route policies keyed on the matched route,
//! stored sign-in attempts, metrics labels, failed authentication, and trusted proxies.
//!
//! What an attacker sends is sent as written: percent-encoded paths and invented methods go
//! through [`raw`], which writes the request line itself (reqwest would normalise the path and
//! may refuse the method). Limits are configured small, so that nothing depends on timing.

use std::io::{Read, Write};

use dirsync_entity::login_attempts;
use dirsync_google_emulator::{Emulator, EmulatorOptions};
use dirsync_tests::{oidc::CLIENT_ID, spawn_app, spawn_app_with, TestApp};
use reqwest::Method;
use sea_orm::{sea_query::Expr, EntityTrait, QueryOrder};
use serde_json::json;

/// An answer read off the wire.
struct RawReply {
    status: u16,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` with `headers` and `body` exactly as given, on a new connection.
async fn raw(
    app: &TestApp,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawReply {
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    // Blocking I/O on a blocking thread: the suite's tokio has no `net` feature of its own.
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        RawReply {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await
    .unwrap()
}

fn login_body() -> String {
    json!({"user_name": "nobody", "password": "wrong-password"}).to_string()
}

/// A server with Sign in with Google configured against the emulator (only its discovery
/// document is needed to start sign-ins), after `adjust`.
async fn signin_server(
    adjust: impl FnOnce(&mut dirsync_core::settings::Settings),
) -> (Emulator, TestApp) {
    let google = Emulator::start(EmulatorOptions::with_directory(
        dirsync_tests::oidc::directory(),
    ))
    .await
    .expect("the emulator starts");
    let discovery = google.discovery_url();
    let app = spawn_app_with(|s| {
        s.google_discovery_url = discovery;
        adjust(s);
    })
    .await;
    let redirect_uri = format!("{}/oidc/signin", app.address);
    app.put(
        "/api/v1/auth/oidc",
        &json!({
            "client_id": CLIENT_ID,
            "client_secret": "GOCSPX-a-secret-for-these-tests",
            "redirect_uri": redirect_uri,
            "allowed_domains": ["example.com"],
        }),
    )
    .await
    .expect(200);
    (google, app)
}

async fn stored_attempts(app: &TestApp) -> Vec<login_attempts::Model> {
    login_attempts::Entity::find()
        .order_by_asc(login_attempts::Column::CreatedAt)
        .all(&app.db)
        .await
        .unwrap()
}

// ---- 5: per-route policies follow the matched route ----

#[tokio::test]
async fn an_encoded_login_path_is_limited_like_the_plain_one() {
    let app = spawn_app_with(|s| {
        s.rate_limit_signin_per_minute = 3;
        s.rate_limit_auth_failures_per_minute = 0;
    })
    .await;
    let json = [("content-type", "application/json")];
    for _ in 0..3 {
        let r = raw(&app, "POST", "/api/v1/auth/%6Cogin", &json, &login_body()).await;
        assert_eq!(r.status, 401, "routed to password login: {}", r.body);
    }
    let r = raw(&app, "POST", "/api/v1/auth/%6Cogin", &json, &login_body()).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("\"rate_limited\""), "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // One bucket for the route, whatever its spelling.
    let r = raw(&app, "POST", "/api/v1/auth/login", &json, &login_body()).await;
    assert_eq!(r.status, 429);
    let r = raw(&app, "POST", "/%61pi/v1/auth/lo%67in", &json, &login_body()).await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn an_encoded_api_path_is_limited_and_not_cached() {
    let app = spawn_app_with(|s| s.rate_limit_api_per_minute = 3).await;
    let bearer = format!("Bearer {}", app.admin_key);
    let auth = [("authorization", bearer.as_str())];
    for _ in 0..3 {
        let r = raw(&app, "GET", "/%61pi/v1/me", &auth, "").await;
        assert_eq!(r.status, 200, "routed to /api/v1/me: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = raw(&app, "GET", "/%61pi/v1/me", &auth, "").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = raw(&app, "GET", "/api/v1/m%65", &auth, "").await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn a_wrong_method_on_an_encoded_path_is_told_the_allowed_methods() {
    let app = spawn_app().await;
    let r = raw(&app, "POST", "/%61pi/v1/me", &[], "").await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.header("allow"), Some("GET"));
}

// ---- 6: what one client can make the server store ----

#[tokio::test]
async fn open_sign_in_attempts_are_capped_per_client_whatever_the_spelling() {
    let (_google, app) = signin_server(|s| {
        s.rate_limit_signin_per_minute = 0;
        s.signin_open_attempts_per_client = 3;
    })
    .await;
    for target in ["/oidc/%6Cogin", "/oidc/login", "/%6Fidc/login"] {
        let r = raw(&app, "GET", target, &[], "").await;
        assert_eq!(r.status, 302, "{target}: {}", r.body);
    }
    for target in ["/oidc/%6Cogin", "/oidc/login"] {
        let r = raw(&app, "GET", target, &[("accept", "application/json")], "").await;
        assert_eq!(r.status, 429, "{target}: {}", r.body);
        assert!(r.body.contains("\"rate_limited\""), "{}", r.body);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        // Until the oldest open attempt expires (10 minutes).
        assert!((1..=600).contains(&wait), "{wait}");
    }
    let stored = stored_attempts(&app).await;
    assert_eq!(stored.len(), 3);
    assert!(stored
        .iter()
        .all(|a| a.client_key.as_deref() == Some("127.0.0.1")));
}

#[tokio::test]
async fn expired_sign_in_attempts_are_forgotten_at_the_next_start() {
    let (_google, app) = signin_server(|s| {
        s.rate_limit_signin_per_minute = 0;
        s.signin_open_attempts_per_client = 1;
    })
    .await;
    assert_eq!(raw(&app, "GET", "/oidc/login", &[], "").await.status, 302);
    assert_eq!(raw(&app, "GET", "/oidc/login", &[], "").await.status, 429);
    // The open attempt expires (a minute ago): it no longer counts, and it is deleted by the
    // next start rather than a day later.
    login_attempts::Entity::update_many()
        .col_expr(
            login_attempts::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    let first = stored_attempts(&app).await[0].id;
    assert_eq!(raw(&app, "GET", "/oidc/login", &[], "").await.status, 302);
    let stored = stored_attempts(&app).await;
    assert_eq!(stored.len(), 1, "the expired attempt is gone");
    assert_ne!(stored[0].id, first);
}

// ---- 7: metrics labels are bounded ----

#[tokio::test]
async fn invented_methods_and_paths_do_not_become_metric_labels() {
    let app = spawn_app().await;
    let invented: Vec<String> = (0..20)
        .map(|i| format!("X{i}{}", "INVENTED".repeat(100)))
        .collect();
    for method in &invented {
        let r = raw(&app, method, "/health", &[], "").await;
        assert!(r.status >= 400, "{method}: {}", r.status);
    }
    let unmatched = format!("/no-such-route-{}", uuid::Uuid::new_v4().simple());
    raw(&app, "GET", &unmatched, &[], "").await;
    let metrics = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .expect(200)
        .text;
    assert!(
        !metrics.contains("INVENTED"),
        "an invented method became a label"
    );
    assert!(!metrics.contains(&unmatched[1..]), "a path became a label");
    assert!(
        metrics.contains("dirsync_http_requests_total{method=\"other\",route=\"/health\""),
        "invented methods are counted as other"
    );
    assert!(metrics.contains("route=\"unmatched\""));
}

// ---- 8: failed authentication ----

#[tokio::test]
async fn failed_authentication_is_limited_per_client_before_the_token_is_looked_up() {
    let app = spawn_app_with(|s| s.rate_limit_auth_failures_per_minute = 3).await;
    // A reader key in use (proven here), an operator key created but never used.
    let reader = app.api_key("reader").await;
    let operator = app.api_key("operator").await;
    app.call(Method::GET, "/api/v1/users", Some(&reader), None)
        .await
        .expect(200);
    for i in 0..3 {
        let token = format!("dsk_random{i}_{}", dirsync_tests::random_secret(32));
        app.call(Method::GET, "/api/v1/users", Some(&token), None)
            .await
            .expect(401);
    }
    // Now the client waits before anything it sends is looked up: another random token, no
    // token, and even a valid key this server has not seen work.
    for token in [Some("dsk_random9_xxxxxxxx"), None, Some(operator.as_str())] {
        let r = app
            .call(Method::GET, "/api/v1/users", token, None)
            .await
            .expect(429);
        assert_eq!(r.error_code(), "rate_limited");
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // A credential proven here still passes (behind an untrusted proxy, bad tokens from anyone
    // would otherwise shut the archive server out), and is still checked: revoked, it fails
    // once and then waits like the rest.
    app.call(Method::GET, "/api/v1/users", Some(&reader), None)
        .await
        .expect(200);
    let keys = app.get("/api/v1/api-keys").await.expect(200).json;
    let id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "reader-key")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete(&format!("/api/v1/api-keys/{id}"))
        .await
        .expect(204);
    app.call(Method::GET, "/api/v1/users", Some(&reader), None)
        .await
        .expect(401);
    app.call(Method::GET, "/api/v1/users", Some(&reader), None)
        .await
        .expect(429);
    // Probes are not behind it.
    app.call(Method::GET, "/health", None, None)
        .await
        .expect(200);
}

#[tokio::test]
async fn requests_without_a_token_and_wrong_passwords_count_as_failures() {
    let app = spawn_app_with(|s| {
        s.rate_limit_auth_failures_per_minute = 3;
        s.rate_limit_signin_per_minute = 0;
    })
    .await;
    app.call(Method::GET, "/api/v1/users", None, None)
        .await
        .expect(401);
    let login = json!({"user_name": "nobody", "password": "wrong-password"});
    app.call(Method::POST, "/api/v1/auth/login", None, Some(&login))
        .await
        .expect(401);
    let r = raw(&app, "GET", "/%61pi/v1/users", &[], "").await;
    assert_eq!(r.status, 401);
    let r = app
        .call(Method::GET, "/api/v1/users", None, None)
        .await
        .expect(429);
    assert!(r.headers.contains_key("retry-after"));
    app.call(Method::POST, "/api/v1/auth/login", None, Some(&login))
        .await
        .expect(429);
}

// ---- 9: trusted proxies ----

/// `POST /api/v1/auth/login` through a proxy that forwards `header: value`.
async fn login_via(app: &TestApp, header: &str, value: &str) -> u16 {
    app.request_as(Method::POST, "/api/v1/auth/login", None)
        .header(header, value)
        .json(&json!({"user_name": "nobody", "password": "wrong-password"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_bucket() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.rate_limit_signin_per_minute = 2;
        s.rate_limit_auth_failures_per_minute = 0;
    })
    .await;
    let xff = "x-forwarded-for";
    assert_eq!(login_via(&app, xff, "203.0.113.10").await, 401);
    assert_eq!(login_via(&app, xff, "203.0.113.10").await, 401);
    assert_eq!(login_via(&app, xff, "203.0.113.10").await, 429);
    // Another client behind the same proxy has its own allowance...
    assert_eq!(login_via(&app, xff, "203.0.113.11").await, 401);
    // ...and what a client writes left of its own address is not believed.
    assert_eq!(
        login_via(&app, xff, "198.51.100.99, 203.0.113.10").await,
        429
    );
    // `Forwarded`, and IPv6 clients grouped by /64.
    let fwd = "forwarded";
    assert_eq!(
        login_via(&app, fwd, "for=\"[2001:db8:1:2::1]:4711\"").await,
        401
    );
    assert_eq!(login_via(&app, fwd, "for=\"[2001:db8:1:2::2]\"").await, 401);
    assert_eq!(
        login_via(&app, fwd, "for=\"[2001:db8:1:2:ffff::9]\";proto=https").await,
        429
    );
    assert_eq!(login_via(&app, fwd, "for=\"[2001:db8:1:3::1]\"").await, 401);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app_with(|s| {
        s.rate_limit_signin_per_minute = 2;
        s.rate_limit_auth_failures_per_minute = 0;
    })
    .await;
    assert!(app.settings.trusted_proxies.is_empty(), "none by default");
    let xff = "x-forwarded-for";
    assert_eq!(login_via(&app, xff, "203.0.113.10").await, 401);
    assert_eq!(login_via(&app, xff, "203.0.113.11").await, 401);
    assert_eq!(login_via(&app, xff, "203.0.113.12").await, 429);
    assert_eq!(login_via(&app, "forwarded", "for=203.0.113.13").await, 429);
}

#[tokio::test]
async fn the_attempt_cap_and_the_failure_limit_count_the_forwarded_client() {
    let (_google, app) = signin_server(|s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        s.rate_limit_signin_per_minute = 0;
        s.signin_open_attempts_per_client = 1;
        s.rate_limit_auth_failures_per_minute = 1;
    })
    .await;
    let a = [("x-forwarded-for", "203.0.113.20")];
    let b = [("x-forwarded-for", "2001:db8:5:6::1")];
    assert_eq!(raw(&app, "GET", "/oidc/login", &a, "").await.status, 302);
    assert_eq!(raw(&app, "GET", "/oidc/login", &a, "").await.status, 429);
    assert_eq!(raw(&app, "GET", "/oidc/login", &b, "").await.status, 302);
    let mut keys: Vec<Option<String>> = stored_attempts(&app)
        .await
        .into_iter()
        .map(|a| a.client_key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            Some("2001:db8:5:6::/64".to_string()),
            Some("203.0.113.20".to_string())
        ]
    );
    assert_eq!(raw(&app, "GET", "/api/v1/users", &a, "").await.status, 401);
    assert_eq!(raw(&app, "GET", "/api/v1/users", &a, "").await.status, 429);
    assert_eq!(raw(&app, "GET", "/api/v1/users", &b, "").await.status, 401);
}
