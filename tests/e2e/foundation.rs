//! Probes, the error shape, callers' authentication, API keys, OpenAPI, logs.

use dirsync_tests::{captured_logs, spawn_app, Reply};
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn health_and_ready_answer_without_a_token() {
    let app = spawn_app().await;
    for path in ["/health", "/ready"] {
        let r = app.call(Method::GET, path, None, None).await.expect(200);
        assert_eq!(r.json["status"], "ok");
        assert!(r.headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn api_keys_need_a_token_and_the_bootstrap_key_is_admin() {
    let app = spawn_app().await;
    let r = app
        .call(Method::GET, "/api/v1/api-keys", None, None)
        .await
        .expect(401);
    assert_eq!(r.error_code(), "unauthorized");
    let r = app
        .call(Method::GET, "/api/v1/api-keys", Some("dsk_nope_nope"), None)
        .await
        .expect(401);
    assert_eq!(r.error_code(), "unauthorized");
    let r = app.get("/api/v1/api-keys").await.expect(200);
    assert_eq!(r.json["items"], json!([]));
    assert!(r.json["next_cursor"].is_null());
}

#[tokio::test]
async fn every_error_class_has_the_json_shape() {
    let app = spawn_app().await;
    let url = |p: &str| format!("{}{}", app.address, p);
    let auth = format!("Bearer {}", app.admin_key);

    let r = app.get("/api/v1/no-such-thing").await.expect(404);
    assert_eq!(r.error_code(), "not_found");

    let r = app
        .call(Method::DELETE, "/health", None, None)
        .await
        .expect(405);
    assert_eq!(r.error_code(), "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET");

    let send = |body: Vec<u8>, ctype: &'static str| {
        app.client
            .post(url("/api/v1/api-keys"))
            .header("authorization", &auth)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let r = Reply::read(
        send(b"{\"name\": ".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (400, "malformed_json"));

    let r = Reply::read(
        send(b"{\"name\": 5}".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));

    let big = format!(
        "{{\"name\": \"{}\", \"role\": \"reader\"}}",
        "x".repeat(200_000)
    );
    let r = Reply::read(send(big.into_bytes(), "application/json").await.unwrap()).await;
    assert_eq!((r.status, r.error_code()), (413, "payload_too_large"));

    let r = Reply::read(
        send(
            b"{\"name\":\"a\",\"role\":\"reader\"}".to_vec(),
            "text/plain",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (415, "unsupported_media_type"));

    let r = app
        .post("/api/v1/api-keys", &json!({"name": "x", "role": "root"}))
        .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));

    let r = app.delete("/api/v1/api-keys/not-a-uuid").await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    let r = app.get("/api/v1/api-keys?limit=abc").await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_query"));

    let r = app.get("/api/v1/api-keys?limit=0").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_limit"));

    let r = app.get("/api/v1/api-keys?cursor=garbage").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_cursor"));
}

#[tokio::test]
async fn roles_are_enforced_on_the_key_endpoints() {
    let app = spawn_app().await;
    let reader = app.api_key("reader").await;
    let operator = app.api_key("operator").await;
    let admin = app.api_key("admin").await;
    let body = json!({"name": "k", "role": "reader"});
    for (token, allowed) in [(&reader, false), (&operator, false), (&admin, true)] {
        let r = app
            .call(Method::GET, "/api/v1/api-keys", Some(token), None)
            .await;
        assert_eq!(r.status, if allowed { 200 } else { 403 }, "{}", r.text);
        if !allowed {
            assert_eq!(r.error_code(), "forbidden");
        }
        let r = app
            .call(Method::POST, "/api/v1/api-keys", Some(token), Some(&body))
            .await;
        assert_eq!(r.status, if allowed { 201 } else { 403 }, "{}", r.text);
        let r = app
            .call(
                Method::DELETE,
                &format!("/api/v1/api-keys/{}", uuid::Uuid::new_v4()),
                Some(token),
                None,
            )
            .await;
        assert_eq!(r.status, if allowed { 404 } else { 403 }, "{}", r.text);
    }
}

#[tokio::test]
async fn api_keys_are_stored_hashed_listed_without_the_key_and_revocable() {
    use dirsync_entity::api_keys;
    use sea_orm::EntityTrait;

    let app = spawn_app().await;
    let created = app
        .post(
            "/api/v1/api-keys",
            &json!({"name": "archive", "role": "reader"}),
        )
        .await
        .expect(201);
    let key = created.json["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("dsk_") && key.len() > 40);
    assert_eq!(created.headers["cache-control"], "no-store");

    let rows = api_keys::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let stored = format!("{row:?}");
    assert!(
        !stored.contains(&key),
        "the plain key is in the database: {stored}"
    );
    assert_eq!(row.key_hash, hex::encode(Sha256::digest(key.as_bytes())));

    let list = app.get("/api/v1/api-keys").await.expect(200);
    assert_eq!(list.json["items"][0]["name"], "archive");
    assert!(!list.text.contains(&key));
    assert!(list.json["items"][0].get("key").is_none());

    // A key with one character changed is refused.
    let mut forged = key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'a' { 'b' } else { 'a' });
    app.call(Method::GET, "/api/v1/api-keys", Some(&forged), None)
        .await
        .expect(401);

    let id = created.json["id"].as_str().unwrap();
    app.delete(&format!("/api/v1/api-keys/{id}"))
        .await
        .expect(204);
    app.call(Method::GET, "/api/v1/api-keys", Some(&key), None)
        .await
        .expect(401);
}

#[tokio::test]
async fn paging_walks_every_key_once() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.post(
            "/api/v1/api-keys",
            &json!({"name": format!("k{i}"), "role": "reader"}),
        )
        .await
        .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/api-keys?limit=3&cursor={c}"),
            None => "/api/v1/api-keys?limit=3".into(),
        };
        let r = app.get(&path).await.expect(200);
        for item in r.json["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_string());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, (0..7).map(|i| format!("k{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn openapi_yaml_at_the_root_is_the_served_document() {
    let app = spawn_app().await;
    let served = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .expect(200)
        .json;
    assert_eq!(served["openapi"], "3.1.0");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let file = std::fs::read_to_string(path).expect("openapi.yaml at the repository root");
    let file: serde_json::Value = serde_yaml::from_str(&file).unwrap();
    assert!(
        file == served,
        "openapi.yaml is out of date: run `cargo run -q -- openapi > openapi.yaml`"
    );
}

#[tokio::test]
async fn swagger_ui_loads_and_points_at_the_document() {
    let app = spawn_app().await;
    let page = app
        .call(Method::GET, "/swagger-ui/", None, None)
        .await
        .expect(200);
    assert!(page.text.contains("swagger-ui"), "{}", page.text);
    let init = app
        .call(
            Method::GET,
            "/swagger-ui/swagger-initializer.js",
            None,
            None,
        )
        .await
        .expect(200);
    assert!(init.text.contains("/api-docs/openapi.json"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.call(Method::GET, "/api/v1/api-keys", None, None)
        .await
        .expect(401);
    let m = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    // Exactly this server's one request: each server has its own registry.
    assert!(
        m.text.contains(
            "dirsync_http_requests_total{method=\"GET\",route=\"/api/v1/api-keys\",status=\"401\"} 1\n"
        ),
        "{}",
        m.text
    );
    assert!(m
        .text
        .contains("dirsync_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn request_ids_are_echoed_and_keys_never_reach_the_log() {
    let app = spawn_app().await;
    let r = app
        .request(Method::GET, "/api/v1/api-keys")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let key = app.api_key("reader").await;
    app.call(Method::GET, "/api/v1/api-keys", Some(&key), None)
        .await
        .expect(403);
    // A write is logged with the caller's request id; a successful read is not logged at
    // info (it is counted in /metrics).
    let r = app
        .request(Method::POST, "/api/v1/api-keys")
        .header("x-request-id", "def-456")
        .json(&serde_json::json!({"name": "logged", "role": "reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let logs = captured_logs();
    assert!(logs.contains("def-456"), "request id is logged");
    if std::env::var_os("RUST_LOG").is_none() {
        assert!(
            !logs.contains("abc-123"),
            "a routine read was logged at info"
        );
    }
    assert!(!logs.contains(&key), "an API key reached the log");
    assert!(
        !logs.contains(&app.admin_key),
        "the bootstrap key reached the log"
    );
}

#[tokio::test]
async fn the_cli_creates_a_key_that_the_server_accepts() {
    let app = spawn_app().await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"));
    cmd.args(["api-key", "create", "--name", "ci", "--role", "operator"])
        .env("DIRSYNC_DATA_DIR", app.dir.path());
    if let Some(url) = &app.settings.database_url {
        cmd.env("DIRSYNC_DATABASE_URL", url);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("dsk_"));
    // operator may not manage keys, but is a valid caller
    let r = app
        .call(Method::GET, "/api/v1/api-keys", Some(&key), None)
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn groups_are_not_stored_their_tables_are_dropped() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    for table in ["directory_groups", "group_memberships"] {
        let read = app
            .db
            .execute_unprepared(&format!("SELECT 1 FROM {table}"))
            .await;
        assert!(read.is_err(), "{table} still exists");
    }
}
