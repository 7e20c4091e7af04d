//! Several instances on one PostgreSQL, and the faults they meet (issue 17): instances that start
//! together on an empty database, a database that goes away under load and comes back (these two
//! on PostgreSQL only: SQLite is one process's file), and per-client limits that hold across
//! instances (two servers on one database, SQLite or PostgreSQL). A job handed over on SIGTERM
//! is tested in `jobs.rs`, beside the job killed with SIGKILL.

use std::time::{Duration, Instant};

use dirsync_tests::{
    fresh_database_url, random_secret, settings_on, spawn_app_in, spawn_app_with, TestApp,
};
use reqwest::Method;
use serde_json::json;

use crate::process;

/// Starts `dirsync serve` on `database_url` and returns the process and its port, once it
/// listens.
async fn serve(
    database_url: &str,
    data_dir: &std::path::Path,
    secret: &str,
) -> (tokio::process::Child, u16) {
    serve_with(process::dirsync(), database_url, data_dir, secret, None).await
}

/// Like [`serve`] with the given `dirsync` command, and a bootstrap admin key.
async fn serve_with(
    mut command: tokio::process::Command,
    database_url: &str,
    data_dir: &std::path::Path,
    secret: &str,
    admin_key: Option<&str>,
) -> (tokio::process::Child, u16) {
    if let Some(key) = admin_key {
        command.env("DIRSYNC_BOOTSTRAP_ADMIN_KEY", key);
    }
    command
        .env("DIRSYNC_DATABASE_URL", database_url)
        .env("DIRSYNC_DATA_DIR", data_dir)
        .env("DIRSYNC_SECRET_KEY", secret);
    process::serve(command).await
}

#[tokio::test]
async fn four_instances_started_at_once_on_an_empty_database_all_come_up() {
    let Some(url) = fresh_database_url().await else {
        return; // SQLite: one process's file.
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = base64_key();
    let starts = (0..4).map(|_| serve(&url, dir.path(), &secret));
    let instances = futures_util::future::join_all(starts).await;
    let client = reqwest::Client::new();
    for (_, port) in &instances {
        let r = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&random_secret(32).as_bytes()[..32])
}

fn pg_script(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-temp.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg-temp.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_at_once_and_service_returns_by_itself() {
    if fresh_database_url().await.is_none() {
        return; // SQLite cannot go away.
    }
    // A PostgreSQL server of this test's own, to stop and start.
    let pg = tempfile::tempdir().unwrap();
    let pg_dir = pg.path().join("pg");
    let url = pg_script(&["start", pg_dir.to_str().unwrap()]);
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            pg_script(&["stop", &self.0]);
        }
    }
    let _stop = Stop(pg_dir.to_str().unwrap().to_string());

    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut settings = settings_on(&dir, Some(url));
    settings.database_acquire_timeout_seconds = 2;
    let app = spawn_app_in(settings, dir.clone()).await;
    app.get("/api/v1/users").await.expect(200);

    pg_script(&["pause", pg_dir.to_str().unwrap()]);
    // Several callers at once, as under load: each learns within the acquire timeout.
    let calls = (0..6).map(|_| async {
        let started = Instant::now();
        let r = app.get("/api/v1/users").await;
        (r, started.elapsed())
    });
    for (r, took) in futures_util::future::join_all(calls).await {
        assert_eq!(
            (r.status, r.error_code()),
            (503, "database_unavailable"),
            "{:?}",
            r.json
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert_eq!(
            r.headers.get("retry-after").map(|v| v.to_str().unwrap()),
            Some("2")
        );
    }

    pg_script(&["resume", pg_dir.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get("/api/v1/users").await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {} {:?}",
            r.status,
            r.json
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two servers on one database, with `adjust`ed settings.
async fn two_instances(adjust: impl FnOnce(&mut dirsync_core::settings::Settings)) -> [TestApp; 2] {
    let a = spawn_app_with(adjust).await;
    let b = spawn_app_in(a.settings.clone(), a.dir.clone()).await;
    [a, b]
}

async fn password_login(app: &TestApp) -> dirsync_tests::Reply {
    let body = json!({"user_name": "nobody", "password": "wrong-password"});
    app.call(Method::POST, "/api/v1/auth/login", None, Some(&body))
        .await
}

#[tokio::test]
async fn a_password_guesser_spread_over_two_instances_meets_one_failure_budget() {
    // Six failures a minute per client address, over both instances together; sign-in starts
    // are not limited here, so that only the failure budget answers.
    let apps = two_instances(|s| {
        s.rate_limit_signin_per_minute = 0;
        s.rate_limit_auth_failures_per_minute = 6;
    })
    .await;
    // The archive server's key, proven on both instances before the guessing starts.
    for app in &apps {
        app.get("/api/v1/users").await.expect(200);
    }
    for i in 0..6 {
        password_login(&apps[i % 2]).await.expect(401);
    }
    // Kept per instance, each would still have three failures left.
    for app in &apps {
        let r = password_login(app).await.expect(429);
        assert_eq!(r.error_code(), "rate_limited");
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        // The budget covers every credential of the client, not only passwords.
        app.call(Method::GET, "/api/v1/users", Some("not-a-key"), None)
            .await
            .expect(429);
    }
    // The proven key still works from that address (see `api/src/limits.rs`).
    for app in &apps {
        app.get("/api/v1/users").await.expect(200);
    }
}

#[tokio::test]
async fn sign_in_starts_spread_over_two_instances_meet_one_budget() {
    let apps = two_instances(|s| {
        s.rate_limit_signin_per_minute = 4;
        s.rate_limit_auth_failures_per_minute = 0;
    })
    .await;
    for i in 0..4 {
        let r = password_login(&apps[i % 2]).await;
        assert_ne!(r.status, 429, "{}", r.text);
    }
    for app in &apps {
        password_login(app).await.expect(429);
    }
}

/// The migrations applied to the database at `url`.
async fn applied_migrations(url: &str) -> usize {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(url).await.unwrap();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    db.close().await.ok();
    n as usize
}

/// The upgrade policy (README, "Upgrades"), checked with the real previous server: the
/// `dirsync` built from the commit before the newest migration, which `.ci/run` builds and names
/// in `DIRSYNC_PREVIOUS_SERVER`. It serves reads and writes on PostgreSQL while the current
/// server starts on the same database and migrates it, and must answer every request.
#[tokio::test]
async fn an_old_server_keeps_answering_while_a_new_one_migrates_its_database() {
    let Some(url) = fresh_database_url().await else {
        return; // SQLite: one process's file, no rolling upgrades.
    };
    let Some(previous) = std::env::var_os("DIRSYNC_PREVIOUS_SERVER") else {
        eprintln!("skipped: DIRSYNC_PREVIOUS_SERVER names no previous server (.ci/run builds one)");
        return;
    };
    use dirsync_migration::MigratorTrait;
    let current = dirsync_migration::Migrator::migrations().len();
    let dir = tempfile::tempdir().unwrap();
    let secret = base64_key();
    let admin_key = random_secret(40);
    let (_old, old_port) = serve_with(
        tokio::process::Command::new(previous),
        &url,
        dir.path(),
        &secret,
        Some(&admin_key),
    )
    .await;
    let before = applied_migrations(&url).await;
    assert!(
        before < current,
        "the old server applied {before} migrations, this release has {current}: it is not the \
         previous migration set"
    );

    // Reads and writes against the old server, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let admin_key = admin_key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let base = format!("http://127.0.0.1:{old_port}");
            let (mut ok, mut failures) = (0u32, Vec::new());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let write = client
                    .post(format!("{base}/api/v1/api-keys"))
                    .bearer_auth(&admin_key)
                    .json(&json!({"name": format!("key {i}"), "role": "reader"}))
                    .send();
                let get = |path: &str| {
                    client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&admin_key)
                        .send()
                };
                // Tables the migrations under test change (sync jobs) and others.
                let reads = [
                    get("/api/v1/api-keys?limit=5"),
                    get("/api/v1/sync-jobs"),
                    get("/api/v1/users"),
                ];
                let mut answers = vec![write.await];
                for read in reads {
                    answers.push(read.await);
                }
                for r in answers {
                    match r {
                        Ok(r) if r.status().is_success() => ok += 1,
                        Ok(r) => failures.push(format!(
                            "{}: {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        )),
                        Err(e) => failures.push(e.to_string()),
                    }
                }
            }
            (ok, failures, i)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new release starts beside it and migrates the database.
    let (_new, new_port) = serve_with(
        process::dirsync(),
        &url,
        dir.path(),
        &secret,
        Some(&admin_key),
    )
    .await;
    assert_eq!(applied_migrations(&url).await, current);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failures, keys) = load.await.unwrap();
    assert!(failures.is_empty(), "the old server failed: {failures:?}");
    assert!(ok >= 40, "too few requests to prove anything: {ok}");

    // What the old server wrote last, after the migration, is there for the new one (newest
    // first).
    let r = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{new_port}/api/v1/api-keys?limit=5"
        ))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&format!("key {keys}").as_str()), "{names:?}");
}
