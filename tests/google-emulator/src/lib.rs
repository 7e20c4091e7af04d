//! A local Google emulator for dirsync's tests, benchmarks and demo.
//!
//! A real HTTP server (actix-web) that speaks Google's wire formats
//! (`shared/reference/google-apis.md` §1–§5) closely enough that Google's own Python libraries
//! (google-auth, google-api-python-client) work against it:
//!
//! - `POST /token`: the JWT bearer grant of service accounts with domain-wide delegation. The
//!   RS256 assertion is verified against the key of the service account it names (`iss`, `kid`);
//!   `aud` may be the emulator's token URL or either Google token URL; `exp - iat` at most 3600 s;
//!   the delegation grant of the account's `client_id` must cover every requested scope
//!   (else 401 `unauthorized_client`); `sub` must be a user of the directory (else 400
//!   `invalid_grant` "Invalid email or User ID").
//! - `GET /admin/directory/v1/users`, `users/{userKey}`, `groups`, `groups/{groupKey}`,
//!   `groups/{groupKey}/members`, `groups/{groupKey}/members/{memberKey}`,
//!   `groups/{groupKey}/hasMember/{memberKey}`: Bearer token required (401 `authError`), the
//!   token's `sub` must be a super admin (403 `forbidden`), scopes per method (403
//!   `insufficientPermissions`); `customer` (`my_customer` or the customer id) or `domain`;
//!   `maxResults` defaults and maxima (users 100/500, groups and members 200/200); opaque page
//!   tokens; `fields=` partial responses; `query`, `orderBy`/`sortOrder`, `showDeleted`, `roles`,
//!   `userKey` (groups of a user); gzip with `Accept-Encoding: gzip`; pretty-printed JSON unless
//!   `prettyPrint=false`, as Google does.
//! - OpenID Connect (module `oidc`): discovery at `/.well-known/openid-configuration`, the
//!   authorization endpoint `/o/oauth2/v2/auth` (signs in the user named by `login_hint`, or
//!   shows a small account chooser), the code exchange on `POST /token`
//!   (`grant_type=authorization_code`: client secret, redirect URI, PKCE `S256`/`plain`, single-use
//!   codes, Google's `invalid_client` / `invalid_grant` errors), the JWKS at `/oauth2/v3/certs`
//!   with `Cache-Control: max-age` and key rotation, and userinfo at `/v1/userinfo`. ID tokens
//!   are signed as `https://accounts.google.com`; [`IdTokenTamper`] and
//!   [`Control::next_id_token_override`] make bad ones for negative tests.
//! - Fault injection (latency, a request-rate cap answered with 403 `userRateLimitExceeded` or
//!   429 + `Retry-After`, failing, truncated or token-repeating pages), request counts, and
//!   directory changes, through [`Control`] in-process or the HTTP control API under
//!   `/_emulator` (documented in the crate README.md and the `control_api` module).
//!
//! The directory is generated ([`Directory::generate`]) or loaded from a JSON fixture (format
//! documented on [`Directory`]).
//!
//! Not emulated: `includeDerivedMembership` (ignored), write methods, batch requests, page-token
//! expiry, the `projection`/`viewType`/`customFieldMask` parameters (always the basic
//! admin view). Unknown `fields=` names are not rejected.
//!
//! Module layout: `directory` (data), `accounts` (service-account keys, JWT checks), `oauth`
//! (`/token`), `directory_api`, `fields`, `errors` (Google error bodies), `control_api`,
//! `state` (shared state, [`Control`]), `server` (routes), `oidc` (OpenID Connect, with the code
//! exchange as the second grant type of `oauth::token`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, Endpoint};
//! let emu = Emulator::start(EmulatorOptions::with_directory(Directory::generate(3000, 450, 1))).await?;
//! let key_json = emu.service_account_key_json(); // token_uri points at the emulator
//! emu.control().fail_requests(Endpoint::UsersList, 503, 1);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod accounts;
mod activity;
mod control_api;
mod directory;
mod directory_api;
mod errors;
mod fields;
mod oauth;
mod oidc;
mod reports_api;
mod server;
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpServer};
use anyhow::Context;

pub use accounts::ServiceAccount;
pub use activity::{Activity, REPORTS_SCOPE};
pub use directory::{Directory, Group, Member, MemberType, Owner, Role, User};
pub use fields::Fields;
pub use oidc::{random_client_id, ClientAuthMethod, IdTokenTamper, OAuthClient, ISSUER};
pub use state::{Control, Endpoint, FailSpec, RateLimitStyle, READONLY_SCOPES};

/// How to start an [`Emulator`].
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The account served.
    pub directory: Directory,
    /// Delay added to every Google endpoint request.
    pub latency: Duration,
    /// actix worker threads (default 1).
    pub workers: usize,
    /// Address to bind (default `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// URL advertised in the key file's `token_uri` and by [`Emulator::base_url`] (default
    /// `http://<listen address>`, with `127.0.0.1` for an unspecified IP). Set it when clients
    /// reach the emulator under another name (e.g. `http://google-emulator:8463` in Docker).
    pub public_url: Option<String>,
    /// Scopes the emulator's own service account is granted through domain-wide delegation
    /// (default: the three read-only Directory scopes and the admin audit log's). Empty: no
    /// delegation.
    pub default_delegation: Vec<String>,
    /// Further grants: `(client_id, scopes)`.
    pub delegation: Vec<(String, Vec<String>)>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            directory: Directory::empty("example.com"),
            latency: Duration::ZERO,
            workers: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            default_delegation: READONLY_SCOPES
                .iter()
                .chain([&REPORTS_SCOPE])
                .map(|s| s.to_string())
                .collect(),
            delegation: Vec::new(),
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
    account: ServiceAccount,
}

impl Emulator {
    /// Binds, generates the service account (RSA 2048) and starts serving on the current tokio
    /// runtime (works inside `#[tokio::test]`).
    pub async fn start(opts: EmulatorOptions) -> anyhow::Result<Emulator> {
        let listener = std::net::TcpListener::bind(opts.listen)
            .with_context(|| format!("while binding {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let base_url = match &opts.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        // The directory handed over is the starting state: the admin log begins empty.
        let mut directory = opts.directory;
        directory.clear_log();
        let state = web::Data::new(state::State::new(directory, base_url, opts.latency));
        let token_uri = state.token_uri.clone();
        let account = tokio::task::spawn_blocking(move || {
            ServiceAccount::generate("dirsync-reader", "emulator-project", &token_uri)
        })
        .await
        .context("while generating the service-account key")??;
        state
            .accounts
            .write()
            .expect("accounts lock")
            .push(account.clone());
        {
            let mut d = state.delegation.write().expect("delegation lock");
            if !opts.default_delegation.is_empty() {
                d.insert(
                    account.client_id.clone(),
                    opts.default_delegation.iter().cloned().collect(),
                );
            }
            for (client, scopes) in opts.delegation {
                d.insert(client, scopes.into_iter().collect());
            }
        }
        let control = Control {
            state: state.clone().into_inner(),
        };
        let server = HttpServer::new(move || server::app(state.clone()))
            .workers(opts.workers.max(1))
            // Without it the gzip bodies wait for the client's delayed ACK of
            // the headers (up to 40 ms a response): Google answers promptly.
            .tcp_nodelay(true)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .context("while starting the HTTP server")?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Emulator {
            control,
            handle,
            addr,
            account,
        })
    }

    /// `http://127.0.0.1:PORT`; the Directory API is under `{base_url}/admin/directory/v1/`.
    pub fn base_url(&self) -> String {
        self.control.base_url()
    }

    /// `{base_url}/token`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// `{base_url}/.well-known/openid-configuration`: where an OpenID Connect client starts.
    pub fn discovery_url(&self) -> String {
        self.control.discovery_url()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key file of the emulator's own service account (google-apis.md §1 format).
    pub fn service_account_key_json(&self) -> String {
        self.account.key_json.clone()
    }

    /// The emulator's own service account (client id, e-mail, key id).
    pub fn service_account(&self) -> &ServiceAccount {
        &self.account
    }

    /// Registers a further service account with a fresh key and no delegation grant.
    pub async fn new_service_account(&self, name: &str) -> anyhow::Result<ServiceAccount> {
        let c = self.control.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || c.new_service_account(&name)).await?
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
