//! What every handler can reach.

use std::sync::Arc;

use dirsync_core::{jobs::Worker, secrets::Cipher, settings::Settings};
use sea_orm::DatabaseConnection;

/// Shared application state, cloned cheaply into each worker.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
    /// Settings in force.
    pub settings: Arc<Settings>,
    /// Encrypts secrets at rest.
    pub cipher: Cipher,
    /// This instance's sync worker (woken when a job is queued here).
    pub worker: Worker,
    /// Google's and Microsoft's URLs, and the access tokens cached for every client.
    pub directory: dirsync_core::directory::DirectoryAccess,
    /// Google's OpenID Connect discovery and signing keys, cached for every sign-in.
    pub oidc: Arc<dirsync_core::oidc::GoogleOidc>,
    /// This server's metrics registry (one per server, not per process).
    pub metrics: dirsync_core::metrics::Metrics,
    /// This instance's webhook sender (woken when a request queued a notification).
    pub notifier: dirsync_core::notifications::Sender,
}
