//! A server wired to a running Microsoft Entra ID emulator, with the app's client secret
//! uploaded and the directory configured: the Entra counterpart of `google.rs`, so that one
//! scenario body runs against either provider.

use dirsync_entra_emulator::{AppCredentials, Directory, Emulator, EmulatorOptions};
use serde_json::{json, Value};

use crate::{spawn_app_with, Reply, TestApp};

/// The server and its Entra tenant.
pub struct EntraEnv {
    /// The server.
    pub app: TestApp,
    /// The emulator it talks to.
    pub entra: Emulator,
    /// The app registration the server signs in as (all sync permissions granted).
    pub credentials: AppCredentials,
}

/// The directory settings every Entra test starts from, for the tenant and app of `app`.
pub fn base_entra_settings(app: &AppCredentials) -> Value {
    json!({
        "provider": "microsoft_entra",
        "tenant_id": app.tenant_id,
        "client_id": app.client_id,
        "sync_groups": [],
        "auto_delete_users": false,
        "deletion_limit": null,
        "schedule_minutes": null
    })
}

/// Starts an emulator serving `directory` and a server configured to sync from it.
pub async fn spawn_with_entra(directory: Directory) -> EntraEnv {
    let entra = Emulator::start(EmulatorOptions::with_directory(directory))
        .await
        .expect("the emulator starts");
    spawn_with_entra_and(entra, |_| {}).await
}

/// Like [`spawn_with_entra`] with a started emulator, after letting the test adjust the
/// server's settings.
pub async fn spawn_with_entra_and(
    entra: Emulator,
    adjust: impl FnOnce(&mut dirsync_core::settings::Settings),
) -> EntraEnv {
    let app = spawn_app_for(&entra, adjust).await;
    let credentials = entra.control().default_app();
    EntraEnv {
        app,
        entra,
        credentials,
    }
}

/// A server of its own (its own database) configured to sync from `entra` with the base
/// settings and the emulator's app's client secret: a second installation reading the same
/// tenant.
pub async fn spawn_app_for(
    entra: &Emulator,
    adjust: impl FnOnce(&mut dirsync_core::settings::Settings),
) -> TestApp {
    let base = entra.base_url();
    let app = spawn_app_with(|s| {
        s.microsoft_login_url = base.clone();
        s.microsoft_graph_url = base.clone();
        s.job_lease_seconds = 3;
        adjust(s);
    })
    .await;
    let credentials = entra.control().default_app();
    app.put("/api/v1/directory", &base_entra_settings(&credentials))
        .await
        .expect(200);
    app.put(
        "/api/v1/directory/entra-credential",
        &json!({ "client_secret": credentials.client_secret }),
    )
    .await
    .expect(200);
    app
}

impl EntraEnv {
    /// Sets the directory settings: the base settings with `changes` merged over them.
    pub async fn configure(&self, changes: Value) -> Reply {
        let mut body = base_entra_settings(&self.credentials);
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.app.put("/api/v1/directory", &body).await
    }
}
