//! Several instances on one PostgreSQL, and the faults they meet (issue 17): instances that start
//! together on an empty database, and a database that goes away under load and comes back.
//! PostgreSQL only: SQLite is one process's file.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dirsync_tests::{fresh_database_url, random_secret, settings_on, spawn_app_in};
use tokio::io::{AsyncBufReadExt, BufReader};

fn server_command() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"))
}

/// Starts `dirsync serve` on a free port and returns the process and its port, once it listens.
async fn serve(
    database_url: &str,
    data_dir: &std::path::Path,
    secret: &str,
) -> (tokio::process::Child, u16) {
    let mut child = server_command()
        .arg("serve")
        .env("DIRSYNC_LISTEN", "127.0.0.1:0")
        .env("DIRSYNC_DATABASE_URL", database_url)
        .env("DIRSYNC_DATA_DIR", data_dir)
        .env("DIRSYNC_SECRET_KEY", secret)
        .env("DIRSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.unwrap() else {
                    let mut err = String::new();
                    use tokio::io::AsyncReadExt;
                    child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
                    panic!("an instance exited before listening: {err}");
                };
                if line.contains("dirsync listening") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let port = v["fields"]["port"].as_u64().or_else(|| v["port"].as_u64()).unwrap();
                    // Keep draining the log so that the process never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return (child, port as u16);
                }
            }
            _ = &mut deadline => panic!("an instance did not start listening in two minutes"),
        }
    }
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
