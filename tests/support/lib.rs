//! Test support: start the real server on port 0 with a fresh database (a SQLite file, or a
//! fresh PostgreSQL database when `DIRSYNC_TEST_PG_URL` names a server), and talk HTTP to it.

use std::sync::{Arc, Mutex, OnceLock};

use dirsync_api::Application;
use dirsync_core::settings::{LogFormat, Settings};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::Value;

/// Every log line the servers of this test process wrote (debug level for dirsync's crates).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(Default::default)
}

#[derive(Clone)]
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("RUST_LOG").is_none() {
            std::env::set_var(
                "RUST_LOG",
                "info,dirsync_api=debug,dirsync_core=debug,sea_orm=debug,actix_server=warn",
            );
        }
        dirsync_api::telemetry::init(LogFormat::Text, false, || CaptureWriter);
    });
}

/// Where the test databases live.
pub enum TestDb {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server at this URL.
    Postgres(String),
}

impl TestDb {
    /// PostgreSQL when `DIRSYNC_TEST_PG_URL` is set, else SQLite.
    pub fn from_env() -> TestDb {
        match std::env::var("DIRSYNC_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => TestDb::Postgres(url),
            _ => TestDb::Sqlite,
        }
    }
}

/// Creates a fresh, empty database and returns its URL (None: SQLite in the data directory).
pub async fn fresh_database_url() -> Option<String> {
    match TestDb::from_env() {
        TestDb::Sqlite => None,
        TestDb::Postgres(server) => {
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&server)
                .await
                .expect("connect to PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
            Some(format!("{base}/{name}"))
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The bootstrap admin key.
    pub admin_key: String,
    /// The server's database, for checks the API cannot make.
    pub db: DatabaseConnection,
    /// Settings the server was built with.
    pub settings: Settings,
    /// HTTP client (no redirects followed).
    pub client: reqwest::Client,
    /// Keeps the data directory alive.
    pub dir: Arc<tempfile::TempDir>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops the worker and scheduler (they run in this task) and the HTTP threads.
        self.server.abort();
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// A random string usable as a key or secret.
pub fn random_secret(len: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    while s.len() < len {
        let _ = write!(s, "{}", uuid::Uuid::new_v4().simple());
    }
    s.truncate(len);
    s
}

/// Settings for a test server: port 0, a fresh data directory and database, a bootstrap key.
pub async fn test_settings(dir: &tempfile::TempDir) -> Settings {
    settings_on(dir, fresh_database_url().await)
}

/// Test settings on a given database (`None`: SQLite in `dir`).
pub fn settings_on(dir: &tempfile::TempDir, database_url: Option<String>) -> Settings {
    Settings {
        database_url,
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        bootstrap_admin_key: Some(SecretString::from(random_secret(40))),
        workers: Some(2),
        ..Settings::default()
    }
}

/// Starts a server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after letting the test adjust its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(&dir).await;
    adjust(&mut settings);
    spawn_app_in(settings, Arc::new(dir)).await
}

/// Starts a server on given settings and data directory (e.g. to restart on the same database).
pub async fn spawn_app_in(settings: Settings, dir: Arc<tempfile::TempDir>) -> TestApp {
    init_logs();
    use secrecy::ExposeSecret;
    let app = Application::build(settings.clone())
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.state().db.clone();
    let handle = app.server_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        admin_key: settings
            .bootstrap_admin_key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_default(),
        db,
        settings,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
        server,
        handle,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
    /// Body as text.
    pub text: String,
}

impl Reply {
    /// Reads a reqwest response whole.
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text,
        }
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// The body read as the server's own type (`dirsync_core`'s response types): a field
    /// renamed on one side fails to compile or fails here, never reads as a missing JSON key.
    #[track_caller]
    pub fn body<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "not a {}: {e}; body: {}",
                std::any::type_name::<T>(),
                self.text
            )
        })
    }

    /// Asserts the one JSON error shape, and returns its code.
    #[track_caller]
    pub fn error_code(&self) -> &str {
        let err = &self.json["error"];
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "not the JSON error shape: {} {}",
            self.status,
            self.text
        );
        err["code"].as_str().unwrap()
    }
}

impl TestApp {
    /// A request with the bootstrap admin key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(method, path, Some(&self.admin_key))
    }

    /// A request with the given bearer token (or none).
    pub fn request_as(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let rb = self
            .client
            .request(method, format!("{}{}", self.address, path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// GET as admin.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(
            self.request(reqwest::Method::GET, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET as admin, expecting 200, read as the server's own type (see [`Reply::body`]).
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.expect(200).body()
    }

    /// A user, as `GET /api/v1/users/{id}` shows it.
    pub async fn user(&self, id: uuid::Uuid) -> dirsync_core::users::User {
        self.get_as(&format!("/api/v1/users/{id}")).await
    }

    /// A user's privileges, as `GET /api/v1/users/{id}/privileges` shows them.
    pub async fn privileges(&self, user_id: uuid::Uuid) -> dirsync_core::privileges::Privileges {
        self.get_as(&format!("/api/v1/users/{user_id}/privileges"))
            .await
    }

    /// A sync job, as `GET /api/v1/sync-jobs/{id}` shows it.
    pub async fn job(&self, id: uuid::Uuid) -> dirsync_core::jobs::Job {
        self.get_as(&format!("/api/v1/sync-jobs/{id}")).await
    }

    /// DELETE as admin.
    pub async fn delete(&self, path: &str) -> Reply {
        Reply::read(
            self.request(reqwest::Method::DELETE, path)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST JSON as admin.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::POST, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// PUT JSON as admin.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::PUT, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// PATCH JSON as admin.
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        Reply::read(
            self.request(reqwest::Method::PATCH, path)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Any request with an optional token and optional JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut rb = self.request_as(method, path, token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        Reply::read(rb.send().await.unwrap()).await
    }

    /// Creates an API key with a role and returns the key.
    pub async fn api_key(&self, role: &str) -> String {
        let r = self
            .post(
                "/api/v1/api-keys",
                &serde_json::json!({"name": format!("{role}-key"), "role": role}),
            )
            .await
            .expect(201);
        r.json["key"].as_str().unwrap().to_string()
    }
}

pub mod entra;
pub mod google;
mod jobs;
pub mod oidc;
