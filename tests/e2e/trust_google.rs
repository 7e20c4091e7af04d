//! Trust round (issue 12), Google and the sync: the token endpoint guard, the access-token cache,
//! prompt cancellation, and stored settings that do not decode.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use dirsync_entity::users;
use dirsync_google_emulator::{
    Directory, Emulator, EmulatorOptions, Endpoint, MemberType, READONLY_SCOPES,
};
use dirsync_tests::google::{spawn_with_google, spawn_with_google_and, GoogleEnv};
use dirsync_tests::oidc::{directory as oidc_directory, spawn_with_oidc};
use dirsync_tests::spawn_app_in;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

fn directory(n: usize) -> Directory {
    let mut d = Directory::empty("example.com");
    for i in 0..n {
        d.add_user(&format!("u{i}@example.com"), "User", &i.to_string())
            .unwrap();
    }
    d
}

/// An HTTP server standing for something inside the network (a metadata service, an admin
/// page): answers every request with `status` and `body`, and counts the requests.
struct Internal {
    url: String,
    hits: Arc<AtomicUsize>,
    _handle: actix_web::dev::ServerHandle,
}

fn internal_server(status: u16, body: &'static str, location: Option<String>) -> Internal {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let counted = counted.clone();
        let location = location.clone();
        App::new().default_service(web::to(move |_req: HttpRequest| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut resp =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if let Some(l) = &location {
                resp.insert_header(("location", l.clone()));
            }
            let r = resp.content_type("text/html").body(body);
            async move { r }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Internal {
        url,
        hits,
        _handle: handle,
    }
}

const SECRET: &str = "INTERNAL-SECRET-7f3a9c";

fn key_with_token_uri(env: &GoogleEnv, token_uri: &str) -> String {
    let mut key: Value = serde_json::from_str(&env.google.service_account_key_json()).unwrap();
    key["token_uri"] = json!(token_uri);
    key.to_string()
}

async fn connection_test(env: &GoogleEnv, token: &str) -> Value {
    env.app
        .call(
            reqwest::Method::POST,
            "/api/v1/directory/test",
            Some(token),
            None,
        )
        .await
        .expect(200)
        .json
}

// ---- item 10: the token endpoint guard ----

#[tokio::test]
async fn a_key_file_whose_token_uri_is_not_googles_is_refused_at_upload() {
    let env = spawn_with_google(directory(2)).await;
    let internal = internal_server(200, SECRET, None);
    for token_uri in [
        format!("{}/token", internal.url),
        "http://169.254.169.254/computeMetadata/v1/".to_string(),
        "https://oauth2.googleapis.com.evil.example/token".to_string(),
        "http://oauth2.googleapis.com/token".to_string(),
        "https://oauth2.googleapis.com:8443/token".to_string(),
    ] {
        let r = env.upload_key(&key_with_token_uri(&env, &token_uri)).await;
        assert_eq!(r.status, 422, "{token_uri}: {}", r.text);
        assert_eq!(r.error_code(), "token_uri_not_allowed", "{token_uri}");
        assert_eq!(r.json["error"]["details"]["field"], "token_uri");
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DIRSYNC_GOOGLE_TOKEN_URL"),
            "the message names the setting: {}",
            r.text
        );
    }
    // Google's two endpoints and the configured one are accepted.
    for token_uri in [
        "https://oauth2.googleapis.com/token".to_string(),
        "https://accounts.google.com/o/oauth2/token".to_string(),
        env.google.token_uri(),
    ] {
        env.upload_key(&key_with_token_uri(&env, &token_uri))
            .await
            .expect(200);
    }
    assert_eq!(internal.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stored_token_uri_that_is_not_allowed_is_never_requested() {
    let env = spawn_with_google(directory(2)).await;
    // An internal page that answers an error with a secret in its body.
    let internal = internal_server(403, SECRET, None);
    // A key stored before the guard existed (or under another DIRSYNC_GOOGLE_TOKEN_URL).
    env.app
        .db
        .execute_unprepared(&format!(
            "UPDATE directory_config SET sa_token_uri = '{}/token' WHERE id = 1",
            internal.url
        ))
        .await
        .unwrap();
    let operator = env.app.api_key("operator").await;
    let report = connection_test(&env, &operator).await;
    let step = &report["steps"][1];
    assert_eq!(
        (step["name"].as_str(), step["ok"].as_bool()),
        (Some("token_obtained"), Some(false)),
        "{report}"
    );
    assert_eq!(step["code"], "token_uri_not_allowed", "{report}");
    assert!(!report.to_string().contains(SECRET), "{report}");
    assert_eq!(internal.hits.load(Ordering::SeqCst), 0);
    // A sync fails the same way, before any request.
    let job = env.sync(true).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "token_uri_not_allowed", "{job}");
    assert_eq!(internal.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn token_requests_follow_no_redirects_and_never_echo_a_foreign_body() {
    let secret_page = internal_server(403, SECRET, None);
    // The configured token endpoint misbehaves: a 307 (which re-POSTs the signed assertion)
    // towards the internal page, with a body of its own.
    let redirector = internal_server(
        307,
        "REDIRECT-BODY-SECRET",
        Some(format!("{}/token", secret_page.url)),
    );
    let env = with_token_endpoint(&format!("{}/token", redirector.url)).await;
    let operator = env.app.api_key("operator").await;
    let report = connection_test(&env, &operator).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["steps"][1]["name"], "token_obtained", "{report}");
    let text = report.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("REDIRECT-BODY-SECRET"), "{text}");
    assert!(redirector.hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        secret_page.hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );

    // An allowed endpoint answering a non-Google error body: not repeated either.
    let html = internal_server(400, SECRET, None);
    let env = with_token_endpoint(&format!("{}/token", html.url)).await;
    let report = connection_test(&env, &env.app.api_key("operator").await).await;
    assert_eq!(report["steps"][1]["ok"], false, "{report}");
    assert!(!report.to_string().contains(SECRET), "{report}");
    assert_eq!(html.hits.load(Ordering::SeqCst), 1, "400 is not retried");
}

/// A server whose `DIRSYNC_GOOGLE_TOKEN_URL` (and uploaded key's `token_uri`) is `token_url`.
async fn with_token_endpoint(token_url: &str) -> GoogleEnv {
    let google = Emulator::start(EmulatorOptions::with_directory(directory(2)))
        .await
        .unwrap();
    let base = google.base_url();
    let app = dirsync_tests::spawn_app_with(|s| {
        s.google_directory_url = base;
        s.google_token_url = token_url.to_string();
    })
    .await;
    let env = GoogleEnv { app, google };
    env.upload_key(&key_with_token_uri(&env, token_url))
        .await
        .expect(200);
    env.configure(json!({})).await.expect(200);
    env
}

// ---- item 11: one access token per key, admin and scopes, shared by the process ----

fn token_requests(env: &GoogleEnv) -> usize {
    env.google.control().request_count(Endpoint::Token)
}

#[tokio::test]
async fn access_tokens_are_cached_across_jobs_the_connection_test_and_group_listing() {
    let mut d = directory(3);
    d.add_user("root@example.com", "Root", "Admin").unwrap();
    d.set_admin("root@example.com", true).unwrap();
    let env = spawn_with_google(d).await;
    assert_eq!(token_requests(&env), 0);

    assert_eq!(env.sync(true).await["status"], "succeeded");
    assert_eq!(env.sync(false).await["status"], "succeeded");
    let report = connection_test(&env, &env.app.admin_key).await;
    assert_eq!(report["ok"], true, "{report}");
    env.app.get("/api/v1/directory/groups").await.expect(200);
    // One token for two jobs, the test and a listing; the test's `events_readable` step asks
    // for the admin log's own (audit scope only: full syncs never carry it).
    assert_eq!(
        token_requests(&env),
        2,
        "one token for two jobs, a test and a listing, and one for the admin log"
    );

    // A token Google no longer accepts: the job's first 401 refreshes it once, and goes on.
    env.google.control().expire_tokens();
    assert_eq!(env.sync(true).await["status"], "succeeded");
    assert_eq!(token_requests(&env), 3);
    assert_eq!(env.sync(true).await["status"], "succeeded");
    assert_eq!(token_requests(&env), 3, "the refreshed token is cached too");

    // Another admin: another token.
    env.configure(json!({"admin_email": "root@example.com"}))
        .await
        .expect(200);
    assert_eq!(connection_test(&env, &env.app.admin_key).await["ok"], true);
    assert_eq!(
        token_requests(&env),
        5,
        "a directory token and an admin-log token"
    );

    // Another key: another token.
    let other = env.google.new_service_account("other").await.unwrap();
    env.google
        .control()
        .set_delegation(&other.client_id, &READONLY_SCOPES);
    env.upload_key(&other.key_json).await.expect(200);
    assert_eq!(connection_test(&env, &env.app.admin_key).await["ok"], true);
    // The directory token, and the admin-log token refused (no audit scope granted).
    assert_eq!(token_requests(&env), 7);
    assert_eq!(env.sync(true).await["status"], "succeeded");
    assert_eq!(token_requests(&env), 7);
}

// ---- item 12: a cancel is seen at once ----

async fn wait_until(env: &GoogleEnv, id: &str, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = env
            .app
            .get(&format!("/api/v1/sync-jobs/{id}"))
            .await
            .expect(200)
            .json;
        if ok(&job) {
            return;
        }
        assert!(Instant::now() < deadline, "job never {what}: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Cancels through `via` and returns the finished job and how long it took to end.
async fn cancel_and_wait(
    env: &GoogleEnv,
    via: &dirsync_tests::TestApp,
    id: &str,
) -> (Value, Duration) {
    let t0 = Instant::now();
    via.post(&format!("/api/v1/sync-jobs/{id}/cancel"), &json!({}))
        .await
        .expect(200);
    let job = env
        .app
        .get(&format!("/api/v1/sync-jobs/{id}?wait=30"))
        .await
        .expect(200)
        .json;
    (job, t0.elapsed())
}

async fn user_count(env: &GoogleEnv) -> u64 {
    users::Entity::find().count(&env.app.db).await.unwrap()
}

#[tokio::test]
async fn a_cancel_stops_a_running_job_within_a_second_and_writes_nothing() {
    let google = Emulator::start(EmulatorOptions::with_directory(directory(1200)))
        .await
        .unwrap();
    // The production lease: its heartbeat (every 10 s) is not what stops the job.
    let env = spawn_with_google_and(google, |s| s.job_lease_seconds = 30).await;
    // Google answering in a second per request: the job takes 4 s (token and 3 pages).
    env.google.control().set_latency(Duration::from_secs(1));
    let started = env
        .app
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await
        .expect(202);
    let id = started.json["id"].as_str().unwrap().to_string();
    wait_until(&env, &id, "running", |j| j["status"] == "running").await;
    let (job, took) = cancel_and_wait(&env, &env.app, &id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    assert!(job["summary"].is_null(), "{job}");
    assert_eq!(user_count(&env).await, 0, "nothing written");
    assert!(env.changes(&id, None).await.is_empty());
}

#[tokio::test]
async fn a_cancel_received_by_another_instance_stops_the_job_within_a_heartbeat() {
    let google = Emulator::start(EmulatorOptions::with_directory(directory(1500)))
        .await
        .unwrap();
    // Lease 3 s: a heartbeat every second.
    let env = spawn_with_google_and(google, |_| {}).await;
    let other = spawn_app_in(env.app.settings.clone(), env.app.dir.clone()).await;
    env.google.control().set_latency(Duration::from_secs(3));
    let started = env
        .app
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await
        .expect(202);
    let id = started.json["id"].as_str().unwrap().to_string();
    // Just after the first page: the next one takes 3 s.
    wait_until(&env, &id, "past its first page", |j| {
        j["progress"]["pages"].as_u64() >= Some(1)
    })
    .await;
    let (job, took) = cancel_and_wait(&env, &other, &id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        took < Duration::from_millis(2000),
        "took {took:?}: more than a heartbeat"
    );
    assert_eq!(user_count(&env).await, 0, "nothing written");
}

// ---- item 13: stored settings that do not decode fail closed ----

#[tokio::test]
async fn undecodable_sync_groups_fail_the_job_and_ready_instead_of_syncing_everyone() {
    let mut d = directory(4);
    d.add_group("staff@example.com", "Staff").unwrap();
    d.add_member("staff@example.com", "u0@example.com", MemberType::User)
        .unwrap();
    let env = spawn_with_google(d).await;
    env.configure(json!({"sync_groups": ["staff@example.com"]}))
        .await
        .expect(200);
    env.app.get("/ready").await.expect(200);
    env.app
        .db
        .execute_unprepared(
            "UPDATE directory_config SET sync_groups = '[\"staff@example.com\"' WHERE id = 1",
        )
        .await
        .unwrap();

    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "stored_data_invalid", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("directory_config.sync_groups"),
        "{job}"
    );
    assert_eq!(
        user_count(&env).await,
        0,
        "nobody synced, let alone everyone"
    );

    let ready = env.app.get("/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.error_code(), "stored_data_invalid");
    assert_eq!(
        ready.json["error"]["details"]["columns"],
        json!(["directory_config.sync_groups"])
    );
    let shown = env.app.get("/api/v1/directory").await;
    assert_eq!(
        (shown.status, shown.error_code()),
        (503, "stored_data_invalid")
    );

    // Saving the settings repairs them.
    env.configure(json!({"sync_groups": ["staff@example.com"]}))
        .await
        .expect(200);
    env.app.get("/ready").await.expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"]["created"], 1, "{job}");
}

#[tokio::test]
async fn undecodable_default_privileges_fail_the_job() {
    let env = spawn_with_google(directory(2)).await;
    env.app
        .db
        .execute_unprepared("UPDATE directory_config SET default_privileges = 'login' WHERE id = 1")
        .await
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "stored_data_invalid", "{job}");
    assert_eq!(user_count(&env).await, 0);
    let ready = env.app.get("/ready").await;
    assert_eq!(
        ready.json["error"]["details"]["columns"],
        json!(["directory_config.default_privileges"]),
        "{}",
        ready.text
    );
}

#[tokio::test]
async fn undecodable_allowed_domains_refuse_sign_in_instead_of_admitting_every_domain() {
    let o = spawn_with_oidc(oidc_directory()).await;
    // Only example.org may sign in: nobody of the emulator's example.com.
    o.configure(json!({"allowed_domains": ["example.org"]}))
        .await
        .expect(200);
    o.env
        .app
        .db
        .execute_unprepared("UPDATE oidc_config SET allowed_domains = 'example.org' WHERE id = 1")
        .await
        .unwrap();
    let r = o
        .env
        .app
        .client
        .get(format!(
            "{}/oidc/login?login_hint=ada%40example.com",
            o.env.app.address
        ))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let r = dirsync_tests::Reply::read(r).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.error_code(), "stored_data_invalid");
    assert!(r.text.contains("oidc_config.allowed_domains"), "{}", r.text);

    let ready = o.env.app.get("/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        ready.json["error"]["details"]["columns"],
        json!(["oidc_config.allowed_domains"])
    );
}

#[tokio::test]
async fn a_user_whose_auth_method_does_not_decode_fails_the_job_instead_of_escaping_it() {
    let env = spawn_with_google(directory(2)).await;
    assert_eq!(env.sync(false).await["status"], "succeeded");
    env.google
        .control()
        .suspend_user("u0@example.com", true)
        .unwrap();
    env.app
        .db
        .execute_unprepared(
            "UPDATE users SET auth_method = 'Directory' WHERE user_name_key = 'u0@example.com'",
        )
        .await
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "stored_data_invalid", "{job}");
    assert!(job["error"]["message"]
        .as_str()
        .unwrap()
        .contains("users.auth_method"));
    let ready = env.app.get("/ready").await;
    assert_eq!(
        ready.json["error"]["details"]["columns"],
        json!(["users.auth_method"]),
        "{}",
        ready.text
    );
}

// ---- issue 13: enum columns are typed; a name none of the enum's is an error ----

#[tokio::test]
async fn a_job_whose_status_does_not_decode_is_stored_data_invalid_not_failed() {
    let env = spawn_with_google(directory(1)).await;
    let job = env.sync(true).await;
    let id = job["id"].as_str().unwrap();
    env.app
        .db
        .execute_unprepared("UPDATE sync_jobs SET status = 'Succeeded'")
        .await
        .unwrap();
    // Read as a default, a damaged status would show the job as failed (it did once).
    let r = env.app.get(&format!("/api/v1/sync-jobs/{id}")).await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("sync_jobs.status"), "{}", r.text);
}

#[tokio::test]
async fn a_job_summary_or_change_that_does_not_decode_is_stored_data_invalid_not_empty() {
    let env = spawn_with_google(directory(1)).await;
    let job = env.sync(true).await;
    let id = job["id"].as_str().unwrap();
    env.app
        .db
        .execute_unprepared("UPDATE sync_changes SET fields = 'full_name'")
        .await
        .unwrap();
    let r = env
        .app
        .get(&format!("/api/v1/sync-jobs/{id}/changes"))
        .await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("sync_changes.fields"), "{}", r.text);
    env.app
        .db
        .execute_unprepared("UPDATE sync_jobs SET summary = '{\"created\":'")
        .await
        .unwrap();
    let r = env.app.get(&format!("/api/v1/sync-jobs/{id}")).await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("sync_jobs.summary"), "{}", r.text);
}

#[tokio::test]
async fn a_job_error_without_its_message_or_audit_details_that_do_not_parse_are_refused() {
    let env = spawn_with_google(directory(1)).await;
    let job = env.sync(true).await;
    let id = job["id"].as_str().unwrap();
    // Read as defaults, these showed an empty message and a `null` trail entry.
    env.app
        .db
        .execute_unprepared(
            "UPDATE sync_jobs SET error_code = 'unknown_group', error_message = NULL",
        )
        .await
        .unwrap();
    let r = env.app.get(&format!("/api/v1/sync-jobs/{id}")).await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("sync_jobs.error_message"), "{}", r.text);
    env.app
        .db
        .execute_unprepared("UPDATE audit_events SET details = '{\"dry_run\":'")
        .await
        .unwrap();
    let r = env.app.get("/api/v1/audit-events").await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("audit_events.details"), "{}", r.text);
}

#[tokio::test]
async fn an_api_key_whose_role_does_not_decode_is_refused_not_read_as_reader() {
    let env = spawn_with_google(directory(0)).await;
    let key = env.app.api_key("operator").await;
    env.app
        .db
        .execute_unprepared("UPDATE api_keys SET role = 'superuser'")
        .await
        .unwrap();
    let r = env
        .app
        .call(reqwest::Method::GET, "/api/v1/sync-jobs", Some(&key), None)
        .await;
    assert_eq!((r.status, r.error_code()), (503, "stored_data_invalid"));
    assert!(r.text.contains("api_keys.role"), "{}", r.text);
    let listed = env.app.get("/api/v1/api-keys").await;
    assert_eq!(
        (listed.status, listed.error_code()),
        (503, "stored_data_invalid")
    );
}

#[tokio::test]
async fn an_undecodable_provider_fails_ready_and_saving_the_settings_repairs_it() {
    let env = spawn_with_google(directory(1)).await;
    env.app
        .db
        .execute_unprepared("UPDATE directory_config SET provider = 'google' WHERE id = 1")
        .await
        .unwrap();
    let ready = env.app.get("/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(
        ready.json["error"]["details"]["columns"],
        json!(["directory_config.provider"])
    );
    let job = env.sync(false).await;
    assert_eq!(job["error"]["code"], "stored_data_invalid", "{job}");
    assert_eq!(user_count(&env).await, 0);

    env.configure(json!({})).await.expect(200);
    env.app.get("/ready").await.expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

// ---- item 14: dependencies ----

/// The `[[package]]` entries of the workspace's Cargo.lock named `name`, as text.
fn locked(name: &str) -> Vec<String> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock");
    lock.split("[[package]]")
        .filter(|p| p.contains(&format!("\nname = \"{name}\"\n")))
        .map(str::to_string)
        .collect()
}

fn version_of(package: &str) -> (u64, u64, u64) {
    let v = package
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a version");
    let mut n = v.split(['.', '-']).map(|p| p.parse::<u64>().unwrap_or(0));
    (n.next().unwrap(), n.next().unwrap(), n.next().unwrap())
}

#[test]
fn no_dependency_carries_the_known_advisories_and_jwts_are_signed_in_constant_time() {
    let jwt = locked("jsonwebtoken");
    assert!(!jwt.is_empty(), "jsonwebtoken is locked");
    for p in &jwt {
        // RUSTSEC advisory of the 9.x line, fixed in 10.3.
        assert!(
            version_of(p) >= (10, 3, 0),
            "jsonwebtoken {:?}",
            version_of(p)
        );
        // The AWS-LC backend (constant-time RSA), not the `rsa` crate's.
        assert!(p.contains("\"aws-lc-rs\""), "{p}");
        assert!(!p.contains("\"rsa\""), "{p}");
    }
    assert!(
        locked("rustls-pemfile").is_empty(),
        "rustls-pemfile is unmaintained"
    );
}
