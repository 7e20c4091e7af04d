//! `/metrics` (issue 14 §1, issue 13 item 5): each server counts only its own requests, and the
//! installation's gauges are read from the database, so that they are right on every instance.

use dirsync_google_emulator::Directory;
use dirsync_tests::google::spawn_with_google;
use dirsync_tests::{spawn_app, spawn_app_in, TestApp};
use reqwest::Method;
use serde_json::json;

/// `/metrics` as text (checked to be Prometheus's text format).
pub(crate) async fn scrape(app: &TestApp) -> String {
    let r = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    r.text
}

/// The value of the series written exactly as `series` (name and labels), or None.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == series).then(|| v.parse().unwrap())
    })
}

#[track_caller]
fn assert_value(text: &str, series: &str, expected: f64) {
    assert_eq!(value(text, series), Some(expected), "{series} in:\n{text}");
}

#[tokio::test]
async fn each_server_counts_only_its_own_requests() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    for _ in 0..3 {
        a.call(Method::GET, "/api/v1/api-keys", None, None)
            .await
            .expect(401);
    }
    b.call(Method::GET, "/api/v1/api-keys", None, None)
        .await
        .expect(401);
    let series =
        r#"dirsync_http_requests_total{method="GET",route="/api/v1/api-keys",status="401"}"#;
    // One registry for the process would show 4 on both (and whatever other tests sent).
    assert_value(&scrape(&a).await, series, 3.0);
    assert_value(&scrape(&b).await, series, 1.0);
}

#[tokio::test]
async fn sign_ins_are_counted_by_method_and_outcome() {
    let app = spawn_app().await;
    let body = json!({"user_name": "nobody", "password": "not the password"});
    for _ in 0..2 {
        let r = app
            .call(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await
            .expect(401);
        assert_eq!(r.error_code(), "invalid_credentials");
    }
    let m = scrape(&app).await;
    assert_value(
        &m,
        r#"dirsync_signins_total{method="password",outcome="invalid_credentials"}"#,
        2.0,
    );
    assert!(value(
        &m,
        r#"dirsync_signins_total{method="password",outcome="success"}"#
    )
    .is_none());
}

#[tokio::test]
async fn gauges_come_from_the_database_and_agree_on_every_instance() {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_user("bob@example.com", "Bob", "Builder").unwrap();
    let env = spawn_with_google(d).await;
    let app = &env.app;
    app.post(
        "/api/v1/users",
        &json!({"user_name": "clerk", "full_name": "A Clerk", "emails": ["clerk@archive.example"]}),
    )
    .await
    .expect(201);

    let before = scrape(app).await;
    assert!(
        value(&before, "dirsync_last_successful_sync_timestamp_seconds").is_none(),
        "no sync has succeeded yet:\n{before}"
    );
    assert_value(
        &before,
        r#"dirsync_users{auth_method="directory",disabled="false"}"#,
        0.0,
    );
    assert_value(
        &before,
        r#"dirsync_users{auth_method="local",disabled="false"}"#,
        1.0,
    );
    assert_value(&before, "dirsync_sync_schedule_seconds", 0.0);

    assert_eq!(env.sync(false).await["status"], "succeeded");
    env.google
        .control()
        .suspend_user("bob@example.com", true)
        .unwrap();
    let ok = env.sync(false).await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    // A dry run is not a sync: it moves neither gauge.
    assert_eq!(env.sync(true).await["status"], "succeeded");
    env.configure(json!({"sync_groups": ["nope@example.com"], "schedule_minutes": 60}))
        .await
        .expect(200);
    assert_eq!(env.sync(false).await["status"], "failed");

    let finished: chrono::DateTime<chrono::Utc> =
        ok["finished_at"].as_str().unwrap().parse().unwrap();
    let check = |m: &str| {
        // admin@, ada@ and bob@ (suspended in Google, so disabled here), and the local clerk.
        assert_value(
            m,
            r#"dirsync_users{auth_method="directory",disabled="false"}"#,
            2.0,
        );
        assert_value(
            m,
            r#"dirsync_users{auth_method="directory",disabled="true"}"#,
            1.0,
        );
        assert_value(
            m,
            r#"dirsync_users{auth_method="local",disabled="false"}"#,
            1.0,
        );
        assert_value(
            m,
            r#"dirsync_users{auth_method="local",disabled="true"}"#,
            0.0,
        );
        let last = value(m, "dirsync_last_successful_sync_timestamp_seconds").unwrap();
        assert!(
            (last - finished.timestamp_millis() as f64 / 1000.0).abs() < 0.002,
            "{last} is not the last successful real run's end, {finished}"
        );
        assert_value(m, r#"dirsync_last_sync_job_status{status="failed"}"#, 1.0);
        assert_value(
            m,
            r#"dirsync_last_sync_job_status{status="succeeded"}"#,
            0.0,
        );
        assert_value(m, "dirsync_sync_schedule_seconds", 3600.0);
        assert_value(m, "dirsync_database_up", 1.0);
    };
    let first = scrape(app).await;
    check(&first);
    assert!(
        value(
            &first,
            r#"dirsync_google_request_duration_seconds_count{endpoint="users.list"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "{first}"
    );
    assert_value(
        &first,
        r#"dirsync_sync_jobs_finished_total{status="succeeded"}"#,
        3.0,
    );
    assert_value(
        &first,
        &format!(
            r#"dirsync_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        1.0,
    );
    if cfg!(target_os = "linux") {
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
        ] {
            assert!(value(&first, name).is_some(), "no {name}");
        }
    }

    // Another instance on the same database, which ran none of those jobs, reports the same
    // installation — and none of the first one's own counters.
    let other = spawn_app_in(app.settings.clone(), app.dir.clone()).await;
    let second = scrape(&other).await;
    check(&second);
    assert!(
        !second.contains("dirsync_sync_jobs_finished_total"),
        "{second}"
    );
}
