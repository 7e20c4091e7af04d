//! The `dirsync` command as cron and CI run it: a separate process (the `dirsync` code, built in
//! this package as `dirsync-test-server`) against a running server, one exit code per outcome;
//! `api-key`, `users export`, `healthcheck`, completions and the manual page; and its outbound
//! trust: a server with a CA of its own, reached directly or through a proxy.
//!
//! `testdata/test-ca.pem` is a CA made for these tests, `testdata/test-server.pem` (key
//! `test-server.key`) a certificate it signed for 127.0.0.1, localhost and google.test, valid
//! until 2126 (`openssl req -x509 … -addext basicConstraints=critical,CA:TRUE`, then
//! `openssl x509 -req -CA test-ca.pem …` with those names as subjectAltName).

use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dirsync_google_emulator::Directory;
use dirsync_tests::google::{spawn_with_google, GoogleEnv};
use dirsync_tests::{spawn_app_with, TestApp};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn directory(n: usize) -> Directory {
    let mut d = Directory::empty("example.com");
    for i in 0..n {
        d.add_user(&format!("u{i}@example.com"), "User", &i.to_string())
            .unwrap();
    }
    d
}

fn testdata(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("e2e/testdata")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// The `dirsync` command with an environment of its own: nothing of this process's
/// `DIRSYNC_*`, proxy or CA variables leaks into it.
fn dirsync() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    c
}

/// Runs `dirsync ARGS` with `DIRSYNC_TOKEN` set.
async fn run(token: &str, args: &[&str]) -> Output {
    dirsync()
        .args(args)
        .env("DIRSYNC_TOKEN", token)
        .output()
        .await
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

/// The newest job, once it is running.
async fn running_job(env: &GoogleEnv) -> String {
    for _ in 0..200 {
        let r = env.app.get("/api/v1/sync-jobs").await.expect(200);
        if r.json["items"][0]["status"] == "running" {
            return r.json["items"][0]["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no job started running in 10 s");
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn sync_exits_0_when_the_job_succeeds_and_prints_the_job_with_json() {
    let env = spawn_with_google(directory(3)).await;
    let key = env.app.api_key("operator").await;
    let out = run(&key, &["sync", "--server", &env.app.address, "--wait"]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("succeeded") && stdout.contains("created 4"),
        "{stdout}"
    );

    // --json with --wait: stdout is the final job, exactly as the API returns it.
    let out = run(
        &key,
        &["sync", "--server", &env.app.address, "--wait", "--json"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let job = stdout_json(&out);
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["summary"]["unchanged"], 4);
    let id = job["id"].as_str().unwrap();
    let api = env
        .app
        .get(&format!("/api/v1/sync-jobs/{id}"))
        .await
        .expect(200);
    assert_eq!(job, api.json);

    // --json without --wait: the created job.
    let out = run(&key, &["sync", "--server", &env.app.address, "--json"]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let created = stdout_json(&out);
    assert!(
        matches!(created["status"].as_str(), Some("queued" | "running")),
        "{created}"
    );
    env.wait(created["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn sync_exits_1_when_the_job_fails() {
    let env = spawn_with_google(directory(3)).await;
    env.configure(json!({"sync_groups": ["missing@example.com"]}))
        .await
        .expect(200);
    let out = run(
        &env.app.admin_key,
        &["sync", "--server", &env.app.address, "--wait", "--json"],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_eq!(stdout_json(&out)["status"], "failed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        show(&out)
    );
}

#[tokio::test]
async fn sync_exits_3_when_the_deletion_limit_blocks_and_0_once_confirmed() {
    let env = spawn_with_google(directory(8)).await;
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    env.sync(false).await;
    for i in 0..6 {
        env.google
            .control()
            .delete_user(&format!("u{i}@example.com"))
            .unwrap();
    }
    let out = run(
        &env.app.admin_key,
        &["sync", "--server", &env.app.address, "--wait"],
    )
    .await;
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("planned deletions: 6"));
    let out = run(
        &env.app.admin_key,
        &[
            "sync",
            "--server",
            &env.app.address,
            "--wait",
            "--confirm-deletions",
            "6",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", show(&out));
}

#[tokio::test]
async fn sync_exits_4_when_the_job_is_cancelled_and_1_when_the_timeout_passes() {
    let env = spawn_with_google(directory(3)).await;
    // A second per Google request: the job runs for seconds.
    env.google.control().set_latency(Duration::from_secs(1));
    let child = dirsync()
        .args(["sync", "--server", &env.app.address, "--wait"])
        .env("DIRSYNC_TOKEN", &env.app.admin_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = running_job(&env).await;
    env.app
        .post(&format!("/api/v1/sync-jobs/{id}/cancel"), &json!({}))
        .await
        .expect(200);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(code(&out), 4, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancelled"));

    // --timeout bounds the wait; the job goes on.
    let out = run(
        &env.app.admin_key,
        &[
            "sync",
            "--server",
            &env.app.address,
            "--wait",
            "--timeout",
            "1",
            "--json",
        ],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", show(&out));
    let job = stdout_json(&out);
    assert!(
        matches!(job["status"].as_str(), Some("queued" | "running")),
        "{job}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
    let done = env.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[tokio::test]
async fn sync_exits_5_when_the_server_is_unreachable_or_refuses_the_token() {
    let app = spawn_app_with(|_| {}).await;
    let down = format!("http://127.0.0.1:{}", closed_port());
    let out = run(&app.admin_key, &["sync", "--server", &down, "--wait"]).await;
    assert_eq!(code(&out), 5, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));

    let out = run("not-a-key", &["sync", "--server", &app.address, "--wait"]).await;
    assert_eq!(code(&out), 5, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token was refused"));
    // A proxy in front with no server behind it.
    let gateway = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}", gateway.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = gateway.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let out = run(&app.admin_key, &["sync", "--server", &gateway_url]).await;
    assert_eq!(code(&out), 5, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unavailable"));

    // A reader key is authenticated but may not run jobs: refused as well.
    let reader = app.api_key("reader").await;
    let out = run(&reader, &["sync", "--server", &app.address]).await;
    assert_eq!(code(&out), 5, "{}", show(&out));
}

#[tokio::test]
async fn sync_exits_2_on_usage_errors() {
    let app = spawn_app_with(|_| {}).await;
    for args in [
        vec!["sync", "--server", "not a url", "--wait"],
        vec!["sync", "--server", &app.address, "--timeout", "5"],
        vec![
            "sync",
            "--server",
            &app.address,
            "--wait",
            "--timeout",
            "soon",
        ],
        vec!["sync", "--wait"],
        vec![
            "sync",
            "--server",
            &app.address,
            "--confirm-deletions",
            "-1",
        ],
    ] {
        let out = run(&app.admin_key, &args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
    }
    // No token at all.
    let out = dirsync()
        .args(["sync", "--server", &app.address])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 2, "{}", show(&out));
    let jobs = app.get("/api/v1/sync-jobs").await.expect(200);
    assert_eq!(jobs.json["items"], json!([]), "no job was started");
}

#[tokio::test]
async fn healthcheck_exits_0_when_ready_and_1_otherwise() {
    let app = spawn_app_with(|_| {}).await;
    let out = run("", &["healthcheck", "--server", &app.address]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let down = format!("http://127.0.0.1:{}", closed_port());
    let out = run("", &["healthcheck", "--server", &down]).await;
    assert_eq!(code(&out), 1, "{}", show(&out));
    // Without --server: the address the configuration listens on.
    let port = app.address.rsplit(':').next().unwrap();
    let out = dirsync()
        .args(["healthcheck"])
        .env("DIRSYNC_LISTEN", format!("0.0.0.0:{port}"))
        .env("DIRSYNC_DATA_DIR", app.dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// `dirsync api-key …` on the test server's database.
async fn api_key_command(app: &TestApp, args: &[&str]) -> Output {
    let mut c = dirsync();
    c.args(["api-key"])
        .args(args)
        .env("DIRSYNC_DATA_DIR", app.dir.path());
    if let Some(url) = &app.settings.database_url {
        c.env("DIRSYNC_DATABASE_URL", url);
    }
    c.output().await.unwrap()
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked_from_the_command_line() {
    let app = spawn_app_with(|_| {}).await;
    let out = api_key_command(&app, &["create", "--name", "cron", "--role", "operator"]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    app.call(reqwest::Method::GET, "/api/v1/sync-jobs", Some(&key), None)
        .await
        .expect(200);

    let out = api_key_command(&app, &["list", "--json"]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "cron");
    assert_eq!(listed[0]["role"], "operator");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&key),
        "the key is never listed"
    );
    let table = api_key_command(&app, &["list"]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("cron"));

    let id = listed[0]["id"].as_str().unwrap();
    let out = api_key_command(&app, &["revoke", id]).await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    app.call(reqwest::Method::GET, "/api/v1/sync-jobs", Some(&key), None)
        .await
        .expect(401);
    let audit = app.get("/api/v1/audit-events").await.expect(200);
    let items = audit.json["items"].as_array().unwrap();
    for action in ["api_key.create", "api_key.delete"] {
        let recorded: Vec<&Value> = items.iter().filter(|e| e["action"] == action).collect();
        assert_eq!(recorded.len(), 1, "{action} once: {}", audit.text);
        assert_eq!(recorded[0]["actor"], "cli");
        assert_eq!(recorded[0]["target_id"], id);
    }
    let out = api_key_command(&app, &["revoke", id]).await;
    assert_ne!(code(&out), 0, "an unknown key: {}", show(&out));

    // Roles are a closed list, shown in --help.
    let out = api_key_command(&app, &["create", "--name", "x", "--role", "root"]).await;
    assert_eq!(code(&out), 2, "{}", show(&out));
    let help = dirsync()
        .args(["api-key", "create", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for role in ["admin", "operator", "reader"] {
        assert!(help.contains(role), "{help}");
    }
    assert!(help.contains("Read users, privileges, lookup"), "{help}");
}

#[tokio::test]
async fn users_export_writes_every_user_with_addresses_and_privileges() {
    let env = spawn_with_google(directory(3)).await;
    env.google
        .control()
        .add_alias("u1@example.com", "first@example.com")
        .unwrap();
    env.sync(false).await;
    let users = env.app.get("/api/v1/users").await.expect(200);
    let count = users.json["items"].as_array().unwrap().len();
    let reader = env.app.api_key("reader").await;

    let out = run(
        &reader,
        &[
            "users",
            "export",
            "--server",
            &env.app.address,
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let exported = stdout_json(&out);
    let exported = exported.as_array().unwrap();
    assert_eq!(exported.len(), count);
    let u1 = exported
        .iter()
        .find(|u| u["user_name"] == "u1@example.com")
        .unwrap();
    let id = u1["id"].as_str().unwrap();
    let privileges = env
        .app
        .get(&format!("/api/v1/users/{id}/privileges"))
        .await
        .expect(200);
    assert_eq!(u1["privileges"], privileges.json["privileges"]);
    assert_eq!(u1["folder_access"], privileges.json["folder_access"]);
    assert_eq!(u1["emails"].as_array().unwrap().len(), 2, "{u1}");

    let out = run(
        &reader,
        &[
            "users",
            "export",
            "--server",
            &env.app.address,
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", show(&out));
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), count + 1, "{csv}");
    assert!(lines[0].starts_with("id,user_name,full_name,auth_method"));
    assert!(csv.contains(id));

    let out = run("wrong", &["users", "export", "--server", &env.app.address]).await;
    assert_eq!(code(&out), 5, "{}", show(&out));
}

#[tokio::test]
async fn completions_and_the_manual_page_come_from_the_command_definitions() {
    let out = dirsync()
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("healthcheck") && script.contains("--confirm-deletions"));
    let out = dirsync().args(["man"]).output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH dirsync"),
        "{page}"
    );
    assert!(page.contains("healthcheck"));
}

/// A server speaking HTTPS with a certificate of the test CA.
async fn spawn_tls_app() -> (TestApp, String) {
    let app = spawn_app_with(|s| {
        s.tls_cert = Some(testdata("test-server.pem").into());
        s.tls_key = Some(testdata("test-server.key").into());
    })
    .await;
    let https = app.address.replace("http://", "https://");
    (app, https)
}

/// A proxy that tunnels `CONNECT` requests and records their targets.
async fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(stream);
                let mut request_line = String::new();
                client.read_line(&mut request_line).await.ok()?;
                loop {
                    let mut header = String::new();
                    client.read_line(&mut header).await.ok()?;
                    if header == "\r\n" || header.is_empty() {
                        break;
                    }
                }
                let target = request_line
                    .strip_prefix("CONNECT ")?
                    .split(' ')
                    .next()?
                    .to_string();
                log.lock().unwrap().push(target.clone());
                let mut upstream = tokio::net::TcpStream::connect(&target).await.ok()?;
                let mut client = client.into_inner();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .ok()
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn the_command_trusts_a_private_ca_from_dirsync_ca_file_or_the_system_store() {
    let (_app, https) = spawn_tls_app().await;
    let out = run("", &["healthcheck", "--server", &https]).await;
    assert_eq!(code(&out), 1, "an unknown CA is refused: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        show(&out)
    );
    let out = dirsync()
        .args(["healthcheck", "--server", &https])
        .env("DIRSYNC_CA_FILE", testdata("test-ca.pem"))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    // The operating system's store, here as OpenSSL's SSL_CERT_FILE names it.
    let out = dirsync()
        .args(["healthcheck", "--server", &https])
        .env("SSL_CERT_FILE", testdata("test-ca.pem"))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
}

#[tokio::test]
async fn outbound_requests_go_through_https_proxy_unless_no_proxy_names_the_host() {
    let (_app, https) = spawn_tls_app().await;
    let (proxy, seen) = connect_proxy().await;
    let host = https.trim_start_matches("https://").to_string();
    let via_proxy = || {
        let mut c = dirsync();
        c.args(["healthcheck", "--server", &https])
            .env("DIRSYNC_CA_FILE", testdata("test-ca.pem"))
            .env("HTTPS_PROXY", &proxy);
        c
    };
    let out = via_proxy().output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(*seen.lock().unwrap(), vec![host.clone()]);

    let out = via_proxy()
        .env("NO_PROXY", "example.com,127.0.0.1")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(seen.lock().unwrap().len(), 1, "NO_PROXY: no tunnel");

    // A proxy that is down is an unreachable server.
    let out = dirsync()
        .args(["sync", "--server", &https, "--token", "x"])
        .env("DIRSYNC_CA_FILE", testdata("test-ca.pem"))
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", closed_port()))
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), 5, "{}", show(&out));
}
