//! State shared by the HTTP server and [`Control`] handles: the directory, app registrations,
//! issued tokens, faults and request counters.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde::{Deserialize, Serialize};

use crate::apps::{App, AppCertificate, AppCredentials, ClientSecret};
use crate::directory::Directory;

/// An endpoint, for request counts and fault targeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /{tenant}/oauth2/v2.0/token`.
    Token,
    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
    Discovery,
    /// `GET /{tenant}/oauth2/v2.0/authorize`.
    Authorize,
    /// `GET /{tenant}/discovery/v2.0/keys`.
    Jwks,
    /// `GET /v1.0/users`.
    UsersList,
    /// `GET /v1.0/users/{id}`.
    UsersGet,
    /// `GET /v1.0/groups`.
    GroupsList,
    /// `GET /v1.0/groups/{id}`.
    GroupsGet,
    /// `GET /v1.0/groups/{id}/members`.
    Members,
    /// `GET /v1.0/groups/{id}/transitiveMembers`.
    TransitiveMembers,
    /// `GET /v1.0/users/{id}/memberOf`.
    MemberOf,
    /// `GET /v1.0/users/delta`.
    UsersDelta,
    /// `GET /v1.0/groups/delta`.
    GroupsDelta,
    /// Any other path.
    Other,
    /// Every endpoint (faults), or the total (counts).
    Any,
}

impl Endpoint {
    /// Every concrete endpoint (not `Any`).
    pub const ALL: [Endpoint; 14] = [
        Endpoint::Token,
        Endpoint::Discovery,
        Endpoint::Authorize,
        Endpoint::Jwks,
        Endpoint::UsersList,
        Endpoint::UsersGet,
        Endpoint::GroupsList,
        Endpoint::GroupsGet,
        Endpoint::Members,
        Endpoint::TransitiveMembers,
        Endpoint::MemberOf,
        Endpoint::UsersDelta,
        Endpoint::GroupsDelta,
        Endpoint::Other,
    ];

    fn index(self) -> usize {
        Endpoint::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }

    /// The snake_case name used by the control API.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Discovery => "discovery",
            Endpoint::Authorize => "authorize",
            Endpoint::Jwks => "jwks",
            Endpoint::UsersList => "users_list",
            Endpoint::UsersGet => "users_get",
            Endpoint::GroupsList => "groups_list",
            Endpoint::GroupsGet => "groups_get",
            Endpoint::Members => "members",
            Endpoint::TransitiveMembers => "transitive_members",
            Endpoint::MemberOf => "member_of",
            Endpoint::UsersDelta => "users_delta",
            Endpoint::GroupsDelta => "groups_delta",
            Endpoint::Other => "other",
            Endpoint::Any => "any",
        }
    }

    fn matches(self, actual: Endpoint) -> bool {
        self == Endpoint::Any || self == actual
    }

    /// Whether this is a Graph endpoint (rate-limited, Graph error bodies).
    pub fn is_graph(self) -> bool {
        !matches!(
            self,
            Endpoint::Token | Endpoint::Discovery | Endpoint::Authorize | Endpoint::Jwks
        )
    }
}

/// A one-shot failure to inject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailSpec {
    /// Which requests fail.
    pub endpoint: Endpoint,
    /// HTTP status.
    pub status: u16,
    /// Graph `error.code` or the token endpoint's `error`; default chosen from the status.
    #[serde(default)]
    pub code: Option<String>,
    /// A `Retry-After` header value in seconds.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// How many matching requests fail.
    #[serde(default = "one")]
    pub times: usize,
}

fn one() -> usize {
    1
}

#[derive(Default)]
pub(crate) struct Faults {
    pub fails: VecDeque<FailSpec>,
    pub rate_limit: Option<RateLimit>,
}

/// Graph's throttling, simplified to a request budget per one-second window.
pub(crate) struct RateLimit {
    pub max_per_second: u32,
    pub retry_after_secs: u64,
    pub window_start: Instant,
    pub count: u32,
}

/// What an access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct TokenInfo {
    pub roles: BTreeSet<String>,
    pub expires_at: Instant,
}

pub(crate) struct State {
    pub directory: RwLock<Directory>,
    pub apps: RwLock<Vec<App>>,
    pub tokens: Mutex<HashMap<String, TokenInfo>>,
    pub faults: Mutex<Faults>,
    pub latency_nanos: AtomicU64,
    pub counts: [AtomicUsize; 14],
    /// `https://127.0.0.1:PORT` (or the public URL): every link and endpoint the emulator
    /// advertises starts with it.
    pub base_url: String,
    pub token_lifetime_secs: AtomicU64,
    /// The client id of the app made at start, with the private key of its certificate.
    pub default_app: Mutex<Option<AppCredentials>>,
    /// The CA's PEM when serving HTTPS.
    pub ca_pem: Option<String>,
    /// Signing keys, redirect URIs, authorization codes.
    pub oidc: Mutex<crate::oidc::OidcState>,
    /// Delta tokens of an older generation have expired.
    pub delta_epoch: AtomicU64,
    /// How an expired delta token is answered: 400 or 410.
    pub delta_expiry_status: AtomicU64,
    /// Delta listings (`users`, `groups`) whose next page ends with neither a next link nor a
    /// delta link (a round cut short); one-shot.
    pub delta_truncations: Mutex<BTreeSet<&'static str>>,
}

impl State {
    pub fn new(directory: Directory, base_url: String, latency: Duration) -> State {
        State {
            directory: RwLock::new(directory),
            apps: RwLock::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            latency_nanos: AtomicU64::new(latency.as_nanos() as u64),
            counts: Default::default(),
            base_url,
            token_lifetime_secs: AtomicU64::new(3599),
            default_app: Mutex::new(None),
            ca_pem: None,
            oidc: Mutex::new(crate::oidc::OidcState::default()),
            delta_epoch: AtomicU64::new(0),
            delta_expiry_status: AtomicU64::new(400),
            delta_truncations: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn delta_epoch(&self) -> u64 {
        self.delta_epoch.load(Ordering::Relaxed)
    }

    pub fn delta_expiry_status(&self) -> u16 {
        self.delta_expiry_status.load(Ordering::Relaxed) as u16
    }

    pub fn count(&self, e: Endpoint) {
        self.counts[e.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    /// Takes one matching injected failure, if any.
    pub fn take_fail(&self, e: Endpoint) -> Option<FailSpec> {
        let mut f = self.faults.lock().expect("faults lock");
        let pos = f.fails.iter().position(|s| s.endpoint.matches(e))?;
        let spec = f.fails[pos].clone();
        f.fails[pos].times -= 1;
        if f.fails[pos].times == 0 {
            f.fails.remove(pos);
        }
        Some(spec)
    }

    /// Counts a Graph request against the rate cap; `Some(Retry-After seconds)` when over it.
    pub fn over_rate_limit(&self) -> Option<u64> {
        let mut f = self.faults.lock().expect("faults lock");
        let rl = f.rate_limit.as_mut()?;
        let now = Instant::now();
        if now.duration_since(rl.window_start) >= Duration::from_secs(1) {
            rl.window_start = now;
            rl.count = 0;
        }
        rl.count += 1;
        (rl.count > rl.max_per_second).then_some(rl.retry_after_secs)
    }

    pub fn app(&self, client_id: &str) -> Option<App> {
        self.apps
            .read()
            .expect("apps lock")
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .cloned()
    }

    fn with_app<T>(&self, client_id: &str, f: impl FnOnce(&mut App) -> T) -> anyhow::Result<T> {
        let mut apps = self.apps.write().expect("apps lock");
        let app = apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| anyhow!("no app {client_id}"))?;
        Ok(f(app))
    }

    /// Registers an app with a secret valid for a year, a new certificate (RSA 2048, slow in
    /// debug builds: call off the async runtime) and these roles.
    pub fn register_app(&self, name: &str, roles: &[String]) -> anyhow::Result<AppCredentials> {
        let (cert, key_pem) = crate::apps::generate_certificate(name)?;
        let secret = crate::apps::new_secret_value();
        let app = App {
            client_id: uuid::Uuid::new_v4().to_string(),
            object_id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            secrets: vec![ClientSecret {
                value: secret.clone(),
                expires_at: chrono::Utc::now() + chrono::Duration::days(365),
            }],
            certificates: vec![cert.clone()],
            roles: roles.iter().cloned().collect(),
            enabled: true,
        };
        let creds = AppCredentials {
            tenant_id: self
                .directory
                .read()
                .expect("directory lock")
                .tenant
                .id
                .clone(),
            client_id: app.client_id.clone(),
            client_secret: secret,
            certificate_pem: Some(cert.pem()),
            private_key_pem: Some(key_pem),
            thumbprint: Some(cert.sha1_hex.clone()),
            roles: roles.to_vec(),
        };
        self.apps.write().expect("apps lock").push(app);
        Ok(creds)
    }
}

/// A cheap, cloneable handle on a running emulator's state.
///
/// Directory changes made here are visible to the next request; they answer as the
/// [`Directory`] method they call does (an unknown user is an error for the caller to handle;
/// the control API answers it as 400).
#[derive(Clone)]
pub struct Control {
    pub(crate) state: Arc<State>,
}

impl Control {
    /// Runs `f` on the directory under its write lock.
    pub fn with_directory<T>(&self, f: impl FnOnce(&mut Directory) -> T) -> T {
        f(&mut self.state.directory.write().expect("directory lock"))
    }

    /// A copy of the directory.
    pub fn directory(&self) -> Directory {
        self.state.directory.read().expect("directory lock").clone()
    }

    /// Replaces the directory (the tenant id stays what clients were given only if the new
    /// directory has the same one).
    pub fn set_directory(&self, d: Directory) {
        *self.state.directory.write().expect("directory lock") = d;
    }

    /// Creates a user; returns its id.
    pub fn create_user(&self, upn: &str, given: &str, surname: &str) -> anyhow::Result<String> {
        self.with_directory(|d| d.create_user(upn, given, surname))
    }

    /// Changes a user's UPN.
    pub fn rename_upn(&self, user: &str, new_upn: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.rename_upn(user, new_upn))
    }

    /// Soft-deletes a user.
    pub fn delete_user(&self, user: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.delete_user(user))
    }

    /// Adds a member to a group.
    pub fn add_member(&self, group: &str, member: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.add_member(group, member))
    }

    /// Requests to `e` so far (`Endpoint::Any`: all of them).
    pub fn request_count(&self, e: Endpoint) -> usize {
        if e == Endpoint::Any {
            return self
                .state
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
        }
        self.state.counts[e.index()].load(Ordering::Relaxed)
    }

    /// Zeroes the request counts.
    pub fn reset_counts(&self) {
        for c in &self.state.counts {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The next `times` requests to `endpoint` answer `status` (Graph's or the STS's error body
    /// for it).
    pub fn fail_requests(&self, endpoint: Endpoint, status: u16, times: usize) {
        self.inject(FailSpec {
            endpoint,
            status,
            code: None,
            retry_after_secs: None,
            times,
        });
    }

    /// Queues a failure.
    pub fn inject(&self, spec: FailSpec) {
        self.state
            .faults
            .lock()
            .expect("faults lock")
            .fails
            .push_back(spec);
    }

    /// At most `max_per_second` Graph requests a second; beyond that 429 `TooManyRequests`
    /// with `Retry-After: retry_after_secs`. `None` lifts the cap.
    pub fn set_rate_limit(&self, max_per_second: Option<u32>, retry_after_secs: u64) {
        self.state.faults.lock().expect("faults lock").rate_limit =
            max_per_second.map(|max_per_second| RateLimit {
                max_per_second,
                retry_after_secs,
                window_start: Instant::now(),
                count: 0,
            });
    }

    /// Delay before every request's answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_nanos
            .store(latency.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Clears injected failures, the rate cap and latency.
    pub fn clear_faults(&self) {
        *self.state.faults.lock().expect("faults lock") = Faults::default();
        self.set_latency(Duration::ZERO);
    }

    /// Every issued access token stops working (Graph answers 401).
    pub fn expire_tokens(&self) {
        self.state.tokens.lock().expect("tokens lock").clear();
    }

    /// Registers a redirect URI on an app, for sign-in (exact match, as Microsoft compares).
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> anyhow::Result<()> {
        let app = self
            .state
            .app(client_id)
            .ok_or_else(|| anyhow!("no app {client_id}"))?;
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .redirect_uris
            .entry(app.client_id)
            .or_default()
            .push(uri.to_string());
        Ok(())
    }

    /// Signs ID tokens with a new key from now on; the previous ones stay in the JWKS (the
    /// newest three) unless `keep_old` is false. Returns the new `kid` (blocking: RSA key
    /// generation).
    pub fn rotate_signing_key(&self, keep_old: bool) -> anyhow::Result<String> {
        crate::oidc::rotate(&self.state, keep_old)
    }

    /// Fault injection: the next ID token issued has `header` and `claims` changed (each member
    /// set, or removed when `null`) and is then signed with the current key. Microsoft never
    /// issues such tokens; tests use them to show that the relying party checks each claim
    /// (`iss`, `tid`, `nonce`, …) and does not trust a token for its signature alone. A
    /// changed `kid` names a key the JWKS may not hold.
    pub fn tamper_next_id_token(&self, header: serde_json::Value, claims: serde_json::Value) {
        self.state.oidc.lock().expect("oidc lock").tamper = Some((header, claims));
    }

    /// The `kid`s in the JWKS, the signing one first.
    pub fn signing_kids(&self) -> Vec<String> {
        let oidc = self.state.oidc.lock().expect("oidc lock");
        oidc.keys.iter().rev().map(|k| k.kid.clone()).collect()
    }

    /// Every delta token and delta page token issued so far expires: the next use answers
    /// `syncStateNotFound` with `status` (400, as announced, or 410 Gone with a `Location` to
    /// start over).
    pub fn expire_delta_tokens(&self, status: u16) {
        self.state
            .delta_expiry_status
            .store(if status == 410 { 410 } else { 400 }, Ordering::Relaxed);
        self.state.delta_epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The next page of `/users/delta` (`Endpoint::UsersDelta`) or `/groups/delta`
    /// (`Endpoint::GroupsDelta`) ends with neither `@odata.nextLink` nor `@odata.deltaLink`: a
    /// round cut short, which a client must not take for complete. Other endpoints: no effect.
    pub fn truncate_next_delta_page(&self, of: Endpoint) {
        let name = match of {
            Endpoint::UsersDelta => "users",
            Endpoint::GroupsDelta => "groups",
            _ => return,
        };
        self.state
            .delta_truncations
            .lock()
            .expect("delta truncations lock")
            .insert(name);
    }

    /// `expires_in` of the tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.state
            .token_lifetime_secs
            .store(secs, Ordering::Relaxed);
    }

    /// Registers a new app with a secret, a certificate and these roles (blocking: RSA key
    /// generation).
    pub fn register_app(&self, name: &str, roles: &[&str]) -> anyhow::Result<AppCredentials> {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.state.register_app(name, &roles)
    }

    /// Replaces the application permissions an app has admin consent for. Tokens issued before
    /// keep their roles, as at Microsoft, until they expire.
    pub fn set_roles(&self, client_id: &str, roles: &[&str]) -> anyhow::Result<()> {
        self.state.with_app(client_id, |a| {
            a.roles = roles.iter().map(|r| r.to_string()).collect();
        })
    }

    /// Adds a client secret (expired when `expires_at` is past); returns its value.
    pub fn add_secret(
        &self,
        client_id: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let value = crate::apps::new_secret_value();
        let v = value.clone();
        self.state.with_app(client_id, move |a| {
            a.secrets.push(ClientSecret {
                value: v,
                expires_at,
            })
        })?;
        Ok(value)
    }

    /// Registers a further certificate (PEM) on an app.
    pub fn add_certificate(&self, client_id: &str, pem: &str) -> anyhow::Result<()> {
        let cert = AppCertificate::from_pem(pem)?;
        self.state
            .with_app(client_id, move |a| a.certificates.push(cert))
    }

    /// Enables or disables an app's service principal.
    pub fn set_app_enabled(&self, client_id: &str, enabled: bool) -> anyhow::Result<()> {
        self.state.with_app(client_id, |a| a.enabled = enabled)
    }

    /// The app made at start (secret, certificate and key, both sync roles).
    pub fn default_app(&self) -> AppCredentials {
        self.state
            .default_app
            .lock()
            .expect("default app lock")
            .clone()
            .expect("the emulator registers its app at start")
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }
}
