//! A local Microsoft Entra ID for dirsync's tests and demo.
//!
//! A real HTTP(S) server (actix-web over rustls) that speaks the wire formats of
//! `shared/reference/microsoft-entra.md` closely enough that Microsoft's own Python libraries
//! (msal, azure-identity, msgraph-sdk) work against it (see `fidelity/`):
//!
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` and `POST /{tenant}/oauth2/v2.0/token`
//!   (module `token`): the client-credentials grant with a client secret (form or HTTP Basic)
//!   or a client assertion signed by a registered certificate (RS256 + `x5t`, PS256 +
//!   `x5t#S256`), scope `https://graph.microsoft.com/.default`, and the STS error body with its
//!   AADSTS codes.
//! - Graph v1.0 reads (module `graph`): users, groups, members, transitive members, `$select`,
//!   `$top`, `$filter` (module `filter`), `$count`, absolute `@odata.nextLink`s, application
//!   permissions (403 `Authorization_RequestDenied` without consent), Graph's error JSON.
//! - Sign in with Microsoft (module `oidc`): the authorization endpoint, the authorization-code
//!   grant with PKCE and nonce, v2.0 ID tokens (pairwise `sub`, `oid`, `tid`) signed RS256, and
//!   the JWKS with key rotation.
//! - Delta queries (module `delta`) with `@removed`, `members@delta` and expiring tokens.
//! - Faults (latency, a rate cap answered with 429 + `Retry-After`, injected failures), request
//!   counts, directory changes and app registrations, through [`Control`] in-process or the
//!   HTTP control API under `/_emulator` (module `control_api`).
//!
//! The directory is generated ([`Directory::generate`]) or loaded from a JSON fixture.
//! HTTPS uses a CA generated at start (module `tls`), whose PEM clients are given.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use dirsync_entra_emulator::{Directory, Emulator, EmulatorOptions, Endpoint};
//! let emu = Emulator::start(EmulatorOptions::with_directory(Directory::generate(300, 40, 1))).await?;
//! let app = emu.control().default_app(); // tenant id, client id, secret, certificate
//! emu.control().fail_requests(Endpoint::UsersList, 503, 1);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod apps;
mod control_api;
mod delta;
mod directory;
mod filter;
mod graph;
mod oidc;
mod server;
mod state;
mod tls;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpServer};
use anyhow::Context;

pub use apps::{generate_certificate, AppCertificate, AppCredentials, SYNC_ROLES};
pub use directory::{Directory, Group, ObjectKind, Tenant, User, UserType};
pub use state::{Control, Endpoint, FailSpec};
pub use tls::Tls;

/// How to start an [`Emulator`].
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The tenant served.
    pub directory: Directory,
    /// Delay before every answer.
    pub latency: Duration,
    /// actix worker threads (default 1).
    pub workers: usize,
    /// Address to bind (default `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated CA (what MSAL requires). Default `false`: plain HTTP, for
    /// Rust tests on loopback.
    pub https: bool,
    /// Where to write the CA's PEM when serving HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Further DNS names for the server certificate (besides `localhost`, `127.0.0.1`, `::1`).
    pub tls_names: Vec<String>,
    /// URL advertised in discovery and next links (default `http(s)://<listen address>`).
    pub public_url: Option<String>,
    /// Application permissions the emulator's own app has consent for (default: the two sync
    /// roles).
    pub default_roles: Vec<String>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            directory: Directory::generate(10, 3, 1),
            latency: Duration::ZERO,
            workers: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: false,
            ca_file: None,
            tls_names: Vec::new(),
            public_url: None,
            default_roles: SYNC_ROLES.iter().map(|r| r.to_string()).collect(),
        }
    }
}

impl EmulatorOptions {
    /// Defaults with this directory.
    pub fn with_directory(directory: Directory) -> EmulatorOptions {
        EmulatorOptions {
            directory,
            ..Default::default()
        }
    }
}

/// A running emulator. Stops when dropped or through [`Emulator::stop`].
pub struct Emulator {
    control: Control,
    handle: ServerHandle,
    addr: SocketAddr,
}

impl Emulator {
    /// Binds, generates the TLS certificates and the emulator's app (RSA 2048) and starts
    /// serving on the current tokio runtime (works inside `#[tokio::test]`).
    pub async fn start(opts: EmulatorOptions) -> anyhow::Result<Emulator> {
        let listener = std::net::TcpListener::bind(opts.listen)
            .with_context(|| format!("while binding {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if opts.https { "https" } else { "http" };
        let base_url = match &opts.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if addr.ip().is_unspecified() => format!("{scheme}://127.0.0.1:{}", addr.port()),
            None => format!("{scheme}://{addr}"),
        };
        let tls = if opts.https {
            let tls = Tls::generate(&opts.tls_names)?;
            if let Some(path) = &opts.ca_file {
                std::fs::write(path, &tls.ca_pem)
                    .with_context(|| format!("while writing the CA to {}", path.display()))?;
            }
            Some(tls)
        } else {
            None
        };
        let mut state = state::State::new(opts.directory, base_url, opts.latency);
        state.ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let state = web::Data::new(state);
        let s = state.clone().into_inner();
        let roles = opts.default_roles.clone();
        let creds = tokio::task::spawn_blocking(move || s.register_app("dirsync", &roles))
            .await
            .context("while generating the emulator's app")??;
        *state.default_app.lock().expect("default app lock") = Some(creds);
        let s = state.clone().into_inner();
        tokio::task::spawn_blocking(move || oidc::rotate(&s, true))
            .await
            .context("while generating the signing key")??;
        let control = Control {
            state: state.clone().into_inner(),
        };
        let server = HttpServer::new(move || server::app(state.clone()))
            .workers(opts.workers.max(1))
            // actix's default of 5 s closes connections that clients such as httpx keep in
            // their pools while they parse a big page, and their next request on one fails.
            .keep_alive(Duration::from_secs(120))
            // actix's defaults (3 s for a TLS handshake, 5 s for a request's head) drop
            // connections on a loaded two-core machine while Microsoft's SDKs open eight at
            // once, and httpx reports a bare ReadError (seen once in `.ci/run`).
            .tls_handshake_timeout(Duration::from_secs(30))
            .client_request_timeout(Duration::from_secs(30))
            .disable_signals()
            .shutdown_timeout(1);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.config),
            None => server.listen(listener),
        }
        .context("while starting the HTTP server")?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Emulator {
            control,
            handle,
            addr,
        })
    }

    /// `http(s)://127.0.0.1:PORT`: Graph is under `{base_url}/v1.0`, the sign-in service under
    /// `{base_url}/{tenant}`.
    pub fn base_url(&self) -> String {
        self.control.base_url()
    }

    /// `{base_url}/{tenant id}`: an MSAL authority.
    pub fn authority(&self) -> String {
        let tenant = self.control.directory().tenant.id;
        format!("{}/{tenant}", self.base_url())
    }

    /// `{base_url}/{tenant id}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.authority())
    }

    /// The CA's PEM when serving HTTPS.
    pub fn ca_pem(&self) -> Option<String> {
        self.control.state.ca_pem.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle on the emulator's state.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stops serving and waits until the server is down.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}
