//! The directory a benchmark syncs from — Google's emulator or Microsoft's — behind one face, so
//! that the same measurements (`scenario.rs`) run against either provider.

use std::time::Duration;

use dirsync_core::settings::Settings;
use serde_json::json;

use crate::api::Api;
use crate::entra::Entra;
use crate::google::{Google, LowerBound};

/// Which provider `bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// Google Workspace (the Google emulator).
    Google,
    /// Microsoft Entra ID (the Entra emulator).
    Entra,
}

impl Provider {
    /// Whose requests are counted, for the table: "Google" or "Graph".
    pub fn calls_name(self) -> &'static str {
        match self {
            Provider::Google => "Google",
            Provider::Entra => "Graph",
        }
    }
}

/// A started emulator of either provider, owned: what [`Source`] borrows.
pub enum Emulated {
    /// Google Workspace.
    Google(Google),
    /// Microsoft Entra ID.
    Entra(Entra),
}

impl Emulated {
    /// Generates a directory of this size for `provider` and starts its emulator.
    pub async fn start(provider: Provider, users: usize, groups: usize) -> anyhow::Result<Self> {
        Ok(match provider {
            Provider::Google => Emulated::Google(Google::start(users, groups).await?),
            Provider::Entra => Emulated::Entra(Entra::start(users, groups).await?),
        })
    }

    /// The emulator as the measurements use it.
    pub fn source(&self) -> Source<'_> {
        match self {
            Emulated::Google(g) => Source::Google(g),
            Emulated::Entra(e) => Source::Entra(e),
        }
    }

    /// Stops the emulator.
    pub async fn stop(self) {
        match self {
            Emulated::Google(g) => g.emu.stop().await,
            Emulated::Entra(e) => e.emu.stop().await,
        }
    }
}

/// A running emulator with a generated directory, and what the benchmark derived from it.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// Google Workspace.
    Google(&'a Google),
    /// Microsoft Entra ID.
    Entra(&'a Entra),
}

impl Source<'_> {
    /// Whose requests are counted, for the table: "Google" or "Graph".
    pub fn calls_name(self) -> &'static str {
        match self {
            Source::Google(_) => Provider::Google,
            Source::Entra(_) => Provider::Entra,
        }
        .calls_name()
    }

    /// The call bound of the benchmark's scope.
    pub fn bound(self) -> LowerBound {
        match self {
            Source::Google(g) => g.bound,
            Source::Entra(e) => e.bound,
        }
    }

    /// (users, groups) in the directory.
    pub fn size(self) -> (usize, usize) {
        match self {
            Source::Google(g) => (g.users, g.groups),
            Source::Entra(e) => (e.users, e.groups),
        }
    }

    /// Sets the latency of every request.
    pub fn set_latency(self, d: Duration) {
        match self {
            Source::Google(g) => g.set_latency(d),
            Source::Entra(e) => e.emu.control().set_latency(d),
        }
    }

    /// Zeroes the request counts.
    pub fn reset_counts(self) {
        match self {
            Source::Google(g) => g.reset_counts(),
            Source::Entra(e) => e.emu.control().reset_counts(),
        }
    }

    /// (directory requests, token requests) since the last reset.
    pub fn counts(self) -> (usize, usize) {
        match self {
            Source::Google(g) => g.counts(),
            Source::Entra(e) => e.counts(),
        }
    }

    /// The paging floor: (users listed, groups listed, all done) since the start.
    pub async fn floor_phases(self) -> anyhow::Result<(Duration, Duration, Duration)> {
        match self {
            Source::Google(g) => g.floor_phases().await,
            Source::Entra(e) => e.floor_phases().await,
        }
    }

    /// The paging floor's duration.
    pub async fn floor(self) -> anyhow::Result<Duration> {
        Ok(self.floor_phases().await?.2)
    }

    /// Points the server's settings at the emulator.
    pub fn point(self, settings: &mut Settings) {
        match self {
            Source::Google(g) => {
                settings.google_directory_url = g.emu.base_url();
                // The emulator's key file names the emulator's token endpoint.
                settings.google_token_url = g.emu.token_uri();
                // Sign in with Google (item 6) reads its discovery document from the emulator.
                settings.google_discovery_url = g.emu.discovery_url();
            }
            Source::Entra(e) => {
                settings.microsoft_login_url = e.emu.base_url();
                settings.microsoft_graph_url = e.emu.base_url();
            }
        }
    }

    /// Configures the directory over the API: the credential, then the sync groups.
    pub async fn configure(self, api: &Api) -> anyhow::Result<()> {
        match self {
            Source::Google(g) => {
                api.configure_directory(&g.emu.service_account_key_json(), &g.sync_groups)
                    .await
            }
            Source::Entra(e) => {
                api.expect(
                    200,
                    reqwest::Method::PUT,
                    "/api/v1/directory",
                    Some(json!({
                        "provider": "microsoft_entra",
                        "tenant_id": e.app.tenant_id,
                        "client_id": e.app.client_id,
                        "include_guests": false,
                        "sync_groups": e.sync_groups,
                        "auto_delete_users": false,
                        "deletion_limit": null,
                        "schedule_minutes": null
                    })),
                )
                .await?;
                api.expect(
                    200,
                    reqwest::Method::PUT,
                    "/api/v1/directory/entra-credential",
                    Some(json!({ "client_secret": e.app.client_secret })),
                )
                .await
                .map(drop)
            }
        }
    }

    /// Disables these synced users (by user name) in the directory: Google suspends them (one
    /// admin-log event each), Entra sets `accountEnabled: false` (one `/users/delta` entry each).
    pub fn disable(self, names: &[String]) -> anyhow::Result<()> {
        match self {
            Source::Google(g) => g
                .emu
                .control()
                .with_directory(|d| names.iter().try_for_each(|n| d.set_suspended(n, true))),
            Source::Entra(e) => e.disable(names),
        }
    }

    /// The requests since the last reset by endpoint, for the log (Entra only).
    pub fn breakdown(self) -> Option<String> {
        match self {
            Source::Google(_) => None,
            Source::Entra(e) => Some(e.breakdown()),
        }
    }

    /// Pages an incremental job read to learn what changed, since the last reset: Google's
    /// admin-log pages, Entra's delta pages.
    pub fn change_pages(self) -> usize {
        match self {
            Source::Google(g) => g
                .emu
                .control()
                .request_count(dirsync_google_emulator::Endpoint::Activities),
            Source::Entra(e) => e.delta_pages(),
        }
    }
}
