//! Rate limits, security headers, CORS, body limits and TLS.

use dirsync_tests::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn api_requests_are_limited_per_key_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit_api_per_minute = 5).await;
    for _ in 0..5 {
        app.get("/api/v1/api-keys").await.expect(200);
    }
    let r = app.get("/api/v1/api-keys").await.expect(429);
    assert_eq!(r.error_code(), "rate_limited");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Another key has its own allowance; probes are never limited.
    app.call(Method::GET, "/api/v1/api-keys", Some("dsk_other_key"), None)
        .await
        .expect(401);
    app.call(Method::GET, "/health", None, None)
        .await
        .expect(200);
}

#[tokio::test]
async fn sign_in_starts_are_limited_per_client_address() {
    let app = spawn_app_with(|s| s.rate_limit_signin_per_minute = 2).await;
    let body = json!({"user_name": "nobody", "password": "wrong-password"});
    for _ in 0..2 {
        let r = app
            .call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await;
        assert_ne!(r.status, 429, "{}", r.text);
    }
    let r = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(&body))
        .await
        .expect(429);
    assert_eq!(r.error_code(), "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/api-keys").await.expect(200);
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(
        !r.headers.contains_key("strict-transport-security"),
        "no HSTS over plain HTTP"
    );
    assert!(
        !r.headers.contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );
    let ui = app
        .call(Method::GET, "/swagger-ui/", None, None)
        .await
        .expect(200);
    let csp = ui.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"));
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let app = spawn_app_with(|s| s.cors_origins = vec!["https://admin.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.request_as(Method::OPTIONS, "/api/v1/api-keys", None)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://admin.example.com").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let other = preflight("https://evil.example.net").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    let r = app
        .request(Method::GET, "/api/v1/api-keys")
        .header("origin", "https://admin.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
}

#[tokio::test]
async fn the_key_file_upload_has_room_but_other_bodies_are_small() {
    let app = spawn_app().await;
    // 60 KB is refused by ordinary endpoints...
    let big = json!({"name": "x".repeat(70_000), "role": "reader"});
    assert_eq!(app.post("/api/v1/api-keys", &big).await.status, 413);
    // ...and the key upload reads it (and says what is wrong with it instead).
    let r = app
        .request(Method::PUT, "/api/v1/directory/service-account")
        .header("content-type", "application/json")
        .body(json!({"type": "service_account", "pad": "x".repeat(40_000)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .request(Method::PUT, "/api/v1/directory/service-account")
        .body(vec![b'x'; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn with_a_certificate_the_server_speaks_https_and_sends_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    let app = spawn_app_with(|s| {
        s.tls_cert = Some(cert.clone());
        s.tls_key = Some(key.clone());
    })
    .await;
    let https = app.address.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = client.get(format!("{https}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // Plain HTTP on the TLS port does not get an answer.
    assert!(app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::process::dirsync();
    cmd.env("DIRSYNC_DATA_DIR", dir.path());
    if let Some(url) = dirsync_tests::fresh_database_url().await {
        cmd.env("DIRSYNC_DATABASE_URL", url);
    }
    let (mut child, port) = crate::process::serve(cmd).await;
    let r = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the server is up");
    crate::process::terminate(&child);
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), child.wait())
        .await
        .expect("stopped within the shutdown timeout")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_browser_session_cookie_is_rate_limited_like_a_key() {
    use dirsync_entity::users;
    use sea_orm::{ActiveModelTrait, Set};
    use secrecy::ExposeSecret;
    let app = spawn_app_with(|s| s.rate_limit_api_per_minute = 3).await;
    let id = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    users::ActiveModel {
        id: Set(id),
        user_name: Set("ada".into()),
        user_name_key: Set("ada".into()),
        full_name: Set("Ada".into()),
        auth_method: Set(dirsync_entity::AuthMethod::Local),
        directory_id: Set(None),
        disabled: Set(false),
        password_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(None),
    }
    .insert(&app.db)
    .await
    .unwrap();
    // A session is only good while its user holds `login`.
    dirsync_entity::user_privileges::ActiveModel {
        user_id: Set(id),
        privilege: Set("login".into()),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let (token, _) = dirsync_core::auth::create_session(&app.db, id, chrono::Duration::hours(1))
        .await
        .unwrap();
    let cookie = format!("dirsync_session={}", token.expose_secret());
    let call = || {
        app.client
            .get(format!("{}/api/v1/api-keys", app.address))
            .header("cookie", &cookie)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            call().await.unwrap().status(),
            403,
            "a session without admin"
        );
    }
    assert_eq!(call().await.unwrap().status(), 429);
}

#[tokio::test]
async fn the_root_sends_browsers_to_swagger_ui() {
    let app = spawn_app().await;
    let r = app.call(Method::GET, "/", None, None).await.expect(303);
    assert_eq!(r.headers["location"], "/swagger-ui/");
}
