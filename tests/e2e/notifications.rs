//! Notifications end to end (issue 14 §1): a webhook receiver spawned by the test checks each
//! delivery's signature with the secret, answers as told (500 first, then 200; or a redirect),
//! and the delivery log shows the attempts. The retry waits are shortened through the test-only
//! setting `notification_retry_delays`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use dirsync_entity::notification_endpoints;
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions};
use dirsync_tests::captured_logs;
use dirsync_tests::google::{spawn_with_google_and, GoogleEnv};
use hmac::{Hmac, Mac};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use sha2::Sha256;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    event: Option<String>,
    signature: Option<String>,
    body: String,
}

/// A webhook receiver on a free loopback port. `/hook` answers the statuses of `script` in turn
/// (200 once they are used up); a 3xx answer points at `/landing`, which only records that it
/// was followed.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

impl Receiver {
    fn start(script: Vec<u16>) -> Receiver {
        Receiver::start_slow(script, Duration::ZERO)
    }

    /// Like [`Receiver::start`], taking `delay` to answer each request.
    fn start_slow(script: Vec<u16>, delay: Duration) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Default::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (g, s) = (got.clone(), script.clone());
        let server = HttpServer::new(move || {
            let (g, s) = (g.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    g.lock().unwrap().push(Received {
                        path: req.path().to_string(),
                        event: header("x-dirsync-event"),
                        signature: header("x-dirsync-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    if req.path() != "/hook" {
                        return HttpResponse::Ok().finish();
                    }
                    tokio::time::sleep(delay).await;
                    let status = s.lock().unwrap().next().unwrap_or(200);
                    let status = actix_web::http::StatusCode::from_u16(status).unwrap();
                    let mut resp = HttpResponse::build(status);
                    if status.is_redirection() {
                        resp.insert_header(("location", "/landing"));
                    }
                    resp.finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            handle,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} requests: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks the signature header as a receiver would: `t=<unix>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`, computed here with the `hmac` crate, independently of the server's code.
fn assert_signed(r: &Received, secret: &str) {
    let header = r.signature.as_deref().expect("X-Dirsync-Signature is sent");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("not t=…,v1=…: {header}"));
    let t: i64 = t.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - t).abs() < 120,
        "the timestamp is now: {t}"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "the signature verifies with the secret"
    );
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"another secret, 32 characters!!").unwrap();
    wrong.update(format!("{t}.{}", r.body).as_bytes());
    assert_ne!(v1, hex::encode(wrong.finalize().into_bytes()));
}

fn small_directory() -> Directory {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_user("bob@example.com", "Bob", "Builder").unwrap();
    d
}

/// A server synced from an emulator serving `directory`, with retry waits of `delay`, three
/// retries at most.
async fn spawn(directory: Directory, delay: Duration) -> GoogleEnv {
    let google = Emulator::start(EmulatorOptions::with_directory(directory))
        .await
        .unwrap();
    spawn_with_google_and(google, |s| {
        s.notification_retry_delays = vec![delay; 3];
    })
    .await
}

async fn deliveries(env: &GoogleEnv) -> Vec<Value> {
    env.app
        .get("/api/v1/notifications/deliveries")
        .await
        .expect(200)
        .json["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (at most 30 s) until every delivery has left `pending`, and returns the log.
async fn settled(env: &GoogleEnv, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = deliveries(env).await;
        if log.len() >= n && log.iter().all(|d| d["status"] != "pending") {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries still pending: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const SECRET: &str = "whsec-0123456789abcdef0123456789";

#[tokio::test]
async fn a_failed_sync_is_posted_signed_and_retried_until_the_receiver_answers_2xx() {
    let env = spawn(small_directory(), Duration::from_millis(300)).await;
    let receiver = Receiver::start(vec![500]);
    let saved = env
        .app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": receiver.url, "events": ["sync.failed"], "secret": SECRET}]}),
        )
        .await
        .expect(200);
    let endpoint_id = saved.json["endpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    env.configure(json!({"sync_groups": ["nope@example.com"]}))
        .await
        .expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");

    let got = receiver.wait_for(2).await;
    let log = settled(&env, 1).await;
    assert_eq!(
        got.len(),
        2,
        "one failed attempt and one delivered: {got:?}"
    );
    for r in &got {
        assert_eq!(r.event.as_deref(), Some("sync.failed"));
        assert_signed(r, SECRET);
    }
    assert_eq!(
        got[0].body, got[1].body,
        "every attempt sends the same body"
    );
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "sync.failed");
    assert!(body["created_at"].is_string());
    // The job exactly as the API shows it.
    let shown = env
        .app
        .get(&format!(
            "/api/v1/sync-jobs/{}",
            job["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(body["data"]["job"], shown.json);

    assert_eq!(log.len(), 1, "{log:?}");
    let d = &log[0];
    assert_eq!(d["id"], body["id"], "the delivery's id is the body's");
    assert_eq!(d["endpoint_id"], endpoint_id.as_str());
    assert_eq!(d["type"], "sync.failed");
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_error"], "answered 500");
    assert!(d["delivered_at"].is_string());
}

#[tokio::test]
async fn a_blocked_sync_sends_sync_blocked_and_succeeded_is_sent_only_when_something_changed() {
    let mut d = Directory::empty("example.com");
    for i in 0..8 {
        d.add_user(&format!("u{i}@example.com"), "U", &i.to_string())
            .unwrap();
    }
    let env = spawn(d, Duration::from_millis(300)).await;
    let receiver = Receiver::start(vec![]);
    env.app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{
                "url": receiver.url,
                "events": ["sync.blocked", "sync.succeeded"],
                "secret": SECRET,
                "only_when_changed": true
            }]}),
        )
        .await
        .expect(200);
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    assert_eq!(env.sync(false).await["status"], "succeeded");
    // Nothing changed this time: no sync.succeeded.
    assert_eq!(env.sync(false).await["status"], "succeeded");
    for i in 0..6 {
        env.google
            .control()
            .delete_user(&format!("u{i}@example.com"))
            .unwrap();
    }
    let blocked = env.sync(false).await;
    assert_eq!(blocked["status"], "blocked", "{blocked}");

    let got = receiver.wait_for(2).await;
    let log = settled(&env, 2).await;
    let mut events: Vec<&str> = got.iter().map(|r| r.event.as_deref().unwrap()).collect();
    events.sort();
    assert_eq!(events, ["sync.blocked", "sync.succeeded"], "{got:?}");
    let types: Vec<&str> = log.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["sync.blocked", "sync.succeeded"], "newest first");
    let blocked_body: Value = got
        .iter()
        .find(|r| r.event.as_deref() == Some("sync.blocked"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .unwrap();
    assert_eq!(blocked_body["data"]["job"]["id"], blocked["id"]);
    assert_eq!(
        blocked_body["data"]["job"]["error"]["code"],
        "deletion_limit_exceeded"
    );
    assert_eq!(blocked_body["data"]["job"]["planned_deletions"], 6);
    for r in &got {
        assert_signed(r, SECRET);
    }
}

#[tokio::test]
async fn a_redirecting_receiver_is_not_followed_and_the_delivery_fails_after_its_retries() {
    let env = spawn(small_directory(), Duration::from_millis(100)).await;
    let receiver = Receiver::start(vec![302; 10]);
    env.app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": receiver.url, "events": ["directory.test_failed"], "secret": SECRET}]}),
        )
        .await
        .expect(200);
    // A connection test that fails: the admin to impersonate does not exist.
    env.configure(json!({"admin_email": "nobody@example.com"}))
        .await
        .expect(200);
    let test = env
        .app
        .post("/api/v1/directory/test", &json!({}))
        .await
        .expect(200);
    assert_eq!(test.json["ok"], false, "{}", test.text);

    let log = settled(&env, 1).await;
    let d = &log[0];
    assert_eq!(d["type"], "directory.test_failed");
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 4, "the first attempt and three retries");
    assert!(
        d["last_error"].as_str().unwrap().contains("answered 302"),
        "{d}"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.iter().all(|r| r.path == "/hook"),
        "a redirect was followed: {got:?}"
    );
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "directory.test_failed");
    assert_eq!(body["data"]["test"], test.json);
}

#[tokio::test]
async fn the_secret_is_stored_encrypted_never_returned_and_urls_must_be_https_except_loopback() {
    let env = spawn(small_directory(), Duration::from_millis(300)).await;
    let app = &env.app;
    let refused = app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": "http://hooks.example.com/dirsync", "events": ["sync.failed"], "secret": SECRET}]}),
        )
        .await
        .expect(422);
    assert_eq!(refused.error_code(), "invalid_notification_endpoint");
    assert_eq!(refused.json["error"]["details"]["field"], "url");
    let no_secret = app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": "https://hooks.example.com/dirsync", "events": ["sync.failed"]}]}),
        )
        .await
        .expect(422);
    assert_eq!(no_secret.json["error"]["details"]["field"], "secret");
    let unknown_event = app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": "https://hooks.example.com/dirsync", "events": ["sync.exploded"], "secret": SECRET}]}),
        )
        .await;
    assert!(
        matches!(unknown_event.status, 400 | 422),
        "{}",
        unknown_event.text
    );
    unknown_event.error_code();

    let saved = app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": "https://hooks.example.com/dirsync", "events": ["sync.failed", "sync.blocked"], "secret": SECRET}]}),
        )
        .await
        .expect(200);
    let id = saved.json["endpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = app.get("/api/v1/notifications").await.expect(200);
    for r in [&saved, &shown] {
        assert!(
            !r.text.contains(SECRET),
            "the secret was returned: {}",
            r.text
        );
        assert!(r.json["endpoints"][0].get("secret").is_none());
        assert_eq!(r.json["endpoints"][0]["secret_set"], true);
    }
    assert_eq!(
        shown.json["endpoints"][0]["events"],
        json!(["sync.failed", "sync.blocked"])
    );

    // Kept by id without a secret: the stored secret stays; a new one replaces it.
    let kept = app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"id": id, "url": "https://hooks.example.com/v2", "events": ["sync.failed"]}]}),
        )
        .await
        .expect(200);
    assert_eq!(kept.json["endpoints"][0]["id"], id.as_str());
    assert_eq!(kept.json["endpoints"][0]["secret_set"], true);

    let rows = notification_endpoints::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].secret.starts_with("v1:") && !rows[0].secret.contains(SECRET));

    // An administrator's change, audited without the secret.
    let audit = app.get("/api/v1/audit-events").await.expect(200);
    assert!(
        audit.text.contains("notifications.update"),
        "{}",
        audit.text
    );
    assert!(!audit.text.contains(SECRET));
    assert!(
        !captured_logs().contains(SECRET),
        "the secret reached the log"
    );

    // Only admins see or change notifications.
    let operator = app.api_key("operator").await;
    app.call(
        reqwest::Method::GET,
        "/api/v1/notifications",
        Some(&operator),
        None,
    )
    .await
    .expect(403);
    app.call(
        reqwest::Method::GET,
        "/api/v1/notifications/deliveries",
        Some(&operator),
        None,
    )
    .await
    .expect(403);

    // Removing every endpoint.
    let none = app
        .put("/api/v1/notifications", &json!({"endpoints": []}))
        .await
        .expect(200);
    assert_eq!(none.json["endpoints"], json!([]));
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_delivery_once() {
    let env = spawn(small_directory(), Duration::from_millis(300)).await;
    // A second instance with its own sender, on the same database.
    let other = dirsync_tests::spawn_app_in(env.app.settings.clone(), env.app.dir.clone()).await;
    // Slower than a sender's idle poll: while one instance sends, the other looks for due
    // deliveries and must find them claimed.
    let receiver = Receiver::start_slow(vec![], Duration::from_millis(1500));
    let endpoints: Vec<Value> = (0..8)
        .map(|i| json!({"url": format!("{}?n={i}", receiver.url), "events": ["sync.failed"], "secret": SECRET}))
        .collect();
    env.app
        .put("/api/v1/notifications", &json!({ "endpoints": endpoints }))
        .await
        .expect(200);
    env.configure(json!({"sync_groups": ["nope@example.com"]}))
        .await
        .expect(200);
    assert_eq!(env.sync(false).await["status"], "failed");

    let log = settled(&env, 8).await;
    assert!(
        log.iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{log:?}"
    );
    // Both senders polled the same rows; the claim let one of them send each.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let got = receiver.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["id"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (8, 8), "{got:?}");
    drop(other);
}

#[tokio::test]
async fn a_restarted_server_carries_on_with_pending_deliveries() {
    let env = spawn(small_directory(), Duration::from_secs(3)).await;
    let receiver = Receiver::start(vec![503]);
    env.app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [{"url": receiver.url, "events": ["sync.failed"], "secret": SECRET}]}),
        )
        .await
        .expect(200);
    env.configure(json!({"sync_groups": ["nope@example.com"]}))
        .await
        .expect(200);
    assert_eq!(env.sync(false).await["status"], "failed");
    receiver.wait_for(1).await;
    // The first attempt is recorded, the next one due in 3 s: stop the server before it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while deliveries(&env).await[0]["attempts"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the first attempt was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (settings, dir) = (env.app.settings.clone(), env.app.dir.clone());
    drop(env);
    let restarted = dirsync_tests::spawn_app_in(settings, dir).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let d = loop {
        let r = restarted
            .get("/api/v1/notifications/deliveries")
            .await
            .expect(200);
        let d = r.json["items"][0].clone();
        if d["status"] != "pending" {
            break d;
        }
        assert!(Instant::now() < deadline, "still pending: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["last_error"], "answered 503");
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test]
async fn an_endpoint_whose_events_do_not_decode_is_refused_skipped_and_repaired_by_saving() {
    use sea_orm::{sea_query::Expr, ColumnTrait, QueryFilter};
    let env = spawn(small_directory(), Duration::from_millis(100)).await;
    let (damaged, sound) = (Receiver::start(vec![]), Receiver::start(vec![]));
    let saved = env
        .app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [
                {"url": damaged.url, "events": ["sync.failed"], "secret": SECRET},
                {"url": sound.url, "events": ["sync.failed"], "secret": SECRET},
            ]}),
        )
        .await
        .expect(200);
    // Listed by creation, then id: both were created at once, so found by URL.
    let id_of = |url: &str| {
        saved.json["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == url)
            .map(|e| e["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let ids = [id_of(&damaged.url), id_of(&sound.url)];
    notification_endpoints::Entity::update_many()
        .col_expr(
            notification_endpoints::Column::Events,
            Expr::value("sync.failed"),
        )
        .filter(notification_endpoints::Column::Id.eq(ids[0].parse::<uuid::Uuid>().unwrap()))
        .exec(&env.app.db)
        .await
        .unwrap();

    // Shown, it is refused, never shown as listening to nothing.
    let r = env.app.get("/api/v1/notifications").await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(
        r.text.contains("notification_endpoints.events"),
        "{}",
        r.text
    );

    // An event still reaches the other endpoint; the damaged one is passed over.
    env.configure(json!({"sync_groups": ["nope@example.com"]}))
        .await
        .expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    let log = settled(&env, 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["endpoint_id"], ids[1].as_str());
    assert_eq!(log[0]["status"], "delivered", "{log:?}");
    sound.wait_for(1).await;
    assert!(damaged.received().is_empty());

    // Saving the configuration again, the damaged endpoint kept by its id, repairs it.
    env.app
        .put(
            "/api/v1/notifications",
            &json!({"endpoints": [
                {"id": ids[0], "url": damaged.url, "events": ["sync.failed", "sync.blocked"]},
                {"id": ids[1], "url": sound.url, "events": ["sync.failed"]},
            ]}),
        )
        .await
        .expect(200);
    let shown = env.app.get("/api/v1/notifications").await.expect(200);
    let repaired = shown.json["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == ids[0].as_str())
        .unwrap_or_else(|| panic!("{}", shown.text));
    assert_eq!(repaired["events"], json!(["sync.failed", "sync.blocked"]));
    assert_eq!(repaired["secret_set"], true);
}

/// Replacing the endpoints reads the stored ones (for the audit trail) and then writes. On
/// SQLite such a transaction must take the write lock before it reads: otherwise, when another
/// replacement commits in between, SQLite refuses the late upgrade ("database is locked",
/// SQLITE_BUSY_SNAPSHOT) and the caller gets a 500; Schemathesis found it. On PostgreSQL two
/// concurrent replacements each deleted only the rows their statement saw, so both lists
/// survived: the end state must be one caller's list. Sixteen replacements race, three times.
#[tokio::test]
async fn concurrent_replacements_of_the_endpoints_all_succeed() {
    let env = spawn(small_directory(), Duration::from_millis(300)).await;
    for round in 0..3 {
        let puts = (0..16).map(|i| {
            let body = json!({"endpoints": [{
                "url": format!("https://hooks.example.com/{round}/{i}"),
                "events": ["sync.failed"],
                "secret": SECRET,
            }]});
            let app = &env.app;
            async move { app.put("/api/v1/notifications", &body).await }
        });
        for answer in futures_util::future::join_all(puts).await {
            answer.expect(200);
        }
    }
    let shown = env.app.get("/api/v1/notifications").await.expect(200);
    assert_eq!(shown.json["endpoints"].as_array().map(Vec::len), Some(1));
}
