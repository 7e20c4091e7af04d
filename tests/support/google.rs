//! A server wired to a running Google emulator, with the service account uploaded and the
//! directory configured: the starting point of every sync and sign-in test.

use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions};
use serde_json::{json, Value};

use crate::{spawn_app_with, Reply, TestApp};

/// The server and its Google.
pub struct GoogleEnv {
    /// The server.
    pub app: TestApp,
    /// The emulator it talks to.
    pub google: Emulator,
}

/// The directory settings every test starts from.
pub fn base_directory_settings() -> Value {
    json!({
        "provider": "google_workspace",
        "admin_email": "admin@example.com",
        "customer_id": "my_customer",
        "sync_groups": [],
        "auto_delete_users": false,
        "deletion_limit": null,
        "schedule_minutes": null
    })
}

/// Starts an emulator serving `directory` and a server configured to sync from it.
pub async fn spawn_with_google(directory: Directory) -> GoogleEnv {
    let google = Emulator::start(EmulatorOptions::with_directory(directory))
        .await
        .expect("the emulator starts");
    spawn_with_google_and(google, |_| {}).await
}

/// Like [`spawn_with_google`] with a started emulator, after letting the test adjust the
/// server's settings.
pub async fn spawn_with_google_and(
    google: Emulator,
    adjust: impl FnOnce(&mut dirsync_core::settings::Settings),
) -> GoogleEnv {
    let app = spawn_app_for(&google, adjust).await;
    GoogleEnv { app, google }
}

/// A server of its own (its own database) configured to sync from `google`, with the base
/// settings: a second installation reading the same directory.
pub async fn spawn_app_for(
    google: &Emulator,
    adjust: impl FnOnce(&mut dirsync_core::settings::Settings),
) -> TestApp {
    let base = google.base_url();
    let token_url = google.token_uri();
    let app = spawn_app_with(|s| {
        s.google_directory_url = base.clone();
        // The emulator's key file names the emulator's token endpoint.
        s.google_token_url = token_url.clone();
        s.job_lease_seconds = 3;
        adjust(s);
    })
    .await;
    let key = google.service_account_key_json();
    let put = app
        .request(reqwest::Method::PUT, "/api/v1/directory/service-account")
        .header("content-type", "application/json")
        .body(key)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "the key upload");
    app.put("/api/v1/directory", &base_directory_settings())
        .await
        .expect(200);
    app
}

impl GoogleEnv {
    /// Uploads a service-account key file.
    pub async fn upload_key(&self, key_json: &str) -> Reply {
        Reply::read(
            self.app
                .request(reqwest::Method::PUT, "/api/v1/directory/service-account")
                .header("content-type", "application/json")
                .body(key_json.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Sets the directory settings: the base settings with `changes` merged over them.
    pub async fn configure(&self, changes: Value) -> Reply {
        let mut body = base_directory_settings();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app.put("/api/v1/directory", &body).await
    }

    /// Runs the connection test (200 expected); returns its report.
    pub async fn test_connection(&self) -> Value {
        self.app.test_connection().await
    }

    /// Starts a job (202 expected) and waits until it ends; returns the finished job.
    pub async fn sync(&self, dry_run: bool) -> Value {
        self.app.sync(dry_run).await
    }

    /// Runs a job like [`GoogleEnv::sync`] and reads it as the server's own type.
    pub async fn sync_typed(&self, dry_run: bool) -> dirsync_core::jobs::Job {
        self.app.sync_typed(dry_run).await
    }

    /// Starts a job with the given body and waits until it ends.
    pub async fn sync_with(&self, body: Value) -> Value {
        self.app.sync_with(body).await
    }

    /// Waits until a job ends (at most two minutes).
    pub async fn wait(&self, id: &str) -> Value {
        self.app.wait(id).await
    }

    /// Every change of a job (all pages), optionally of one kind.
    pub async fn changes(&self, id: &str, kind: Option<&str>) -> Vec<Value> {
        self.app.changes(id, kind).await
    }
}
