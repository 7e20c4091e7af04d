//! State shared by the HTTP server and [`Control`] handles: the directory, issued tokens,
//! delegation grants, faults and request counters.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::accounts::ServiceAccount;
use crate::directory::{Directory, MemberType, Role};

/// The three read-only scopes dirsync asks for (the emulator's own service account is also
/// granted [`crate::REPORTS_SCOPE`] by default, for incremental sync).
pub const READONLY_SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// An endpoint, for request counts and fault targeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /token`.
    Token,
    /// users.list.
    UsersList,
    /// users.get.
    UsersGet,
    /// groups.list.
    GroupsList,
    /// groups.get.
    GroupsGet,
    /// members.list.
    MembersList,
    /// members.get.
    MembersGet,
    /// members.hasMember.
    HasMember,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// `GET /o/oauth2/v2/auth` (the OpenID Connect authorization endpoint).
    Authorize,
    /// `GET /oauth2/v3/certs` (the JWKS).
    Jwks,
    /// `GET /v1/userinfo`.
    Userinfo,
    /// Reports API `activities.list` (the admin activity log).
    Activities,
    /// Any other path (unknown routes).
    Other,
    /// Matches every endpoint (faults), or the total (counts).
    Any,
}

impl Endpoint {
    /// Every concrete endpoint (not `Any`).
    pub const ALL: [Endpoint; 14] = [
        Endpoint::Token,
        Endpoint::UsersList,
        Endpoint::UsersGet,
        Endpoint::GroupsList,
        Endpoint::GroupsGet,
        Endpoint::MembersList,
        Endpoint::MembersGet,
        Endpoint::HasMember,
        Endpoint::Discovery,
        Endpoint::Authorize,
        Endpoint::Jwks,
        Endpoint::Userinfo,
        Endpoint::Activities,
        Endpoint::Other,
    ];

    fn index(self) -> usize {
        Endpoint::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }

    /// The snake_case name used by the control API.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::UsersList => "users_list",
            Endpoint::UsersGet => "users_get",
            Endpoint::GroupsList => "groups_list",
            Endpoint::GroupsGet => "groups_get",
            Endpoint::MembersList => "members_list",
            Endpoint::MembersGet => "members_get",
            Endpoint::HasMember => "has_member",
            Endpoint::Discovery => "discovery",
            Endpoint::Authorize => "authorize",
            Endpoint::Jwks => "jwks",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Activities => "activities",
            Endpoint::Other => "other",
            Endpoint::Any => "any",
        }
    }

    fn matches(self, actual: Endpoint) -> bool {
        self == Endpoint::Any || self == actual
    }

    /// Whether this is an Admin SDK endpoint — the Directory API or the Reports API — to which
    /// the request-rate cap and the per-minute quota apply.
    pub fn is_directory(self) -> bool {
        matches!(
            self,
            Endpoint::Activities
                | Endpoint::UsersList
                | Endpoint::UsersGet
                | Endpoint::GroupsList
                | Endpoint::GroupsGet
                | Endpoint::MembersList
                | Endpoint::MembersGet
                | Endpoint::HasMember
        )
    }
}

/// How the request-rate cap answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum RateLimitStyle {
    /// 403 `userRateLimitExceeded` (per-user quota).
    Forbidden403,
    /// 429 `rateLimitExceeded` with a `Retry-After` header.
    TooMany429 {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
}

/// A one-shot failure to inject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailSpec {
    /// Which requests fail.
    pub endpoint: Endpoint,
    /// HTTP status.
    pub status: u16,
    /// Google `reason` (Directory) or OAuth `error` (token); default chosen from the status.
    #[serde(default)]
    pub reason: Option<String>,
    /// Message / `error_description`; default chosen from the status.
    #[serde(default)]
    pub message: Option<String>,
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
    pub truncations: Vec<(Endpoint, usize)>,
    pub repeat_token: Vec<Endpoint>,
    pub rate_limit: Option<RateLimit>,
    pub quota: Option<Quota>,
    /// Latency per endpoint, instead of the global one.
    pub endpoint_latency: HashMap<Endpoint, Duration>,
}

/// Google's per-minute project quota: a fixed one-minute window.
pub(crate) struct Quota {
    pub per_minute: u32,
    pub window_start: Instant,
    pub count: u32,
}

/// Google's budget of filtered `activities.list` queries (250 a minute).
pub(crate) struct FilterBudget {
    pub window_start: Instant,
    pub count: u32,
}

pub(crate) struct RateLimit {
    pub max_per_second: u32,
    pub style: RateLimitStyle,
    pub window_start: Instant,
    pub count: u32,
}

/// What an access token stands for.
#[derive(Clone, Debug)]
pub(crate) struct TokenInfo {
    /// The impersonated user (`sub`), lower-cased; `None` for the service account itself.
    pub subject: Option<String>,
    pub scopes: HashSet<String>,
    pub expires_at: Instant,
}

pub(crate) struct State {
    pub directory: RwLock<Directory>,
    pub accounts: RwLock<Vec<ServiceAccount>>,
    pub delegation: RwLock<HashMap<String, HashSet<String>>>,
    pub tokens: Mutex<HashMap<String, TokenInfo>>,
    pub faults: Mutex<Faults>,
    pub latency_nanos: AtomicU64,
    pub counts: [AtomicUsize; 14],
    /// How long an admin activity stays invisible to `activities.list` after it happened.
    pub event_lag_nanos: AtomicU64,
    pub filter_budget: Mutex<FilterBudget>,
    pub gzip_requests: AtomicUsize,
    pub base_url: String,
    pub token_uri: String,
    /// Secret mixed into page tokens so that they cannot be forged.
    pub page_secret: [u8; 16],
    pub token_lifetime: RwLock<Duration>,
    /// The OpenID Connect half: signing keys, OAuth clients, codes, ID-token tampering.
    pub oidc: Mutex<crate::oidc::OidcState>,
}

impl State {
    pub fn new(directory: Directory, base_url: String, latency: Duration) -> State {
        State {
            directory: RwLock::new(directory),
            accounts: RwLock::new(Vec::new()),
            delegation: RwLock::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(Faults::default()),
            latency_nanos: AtomicU64::new(latency.as_nanos() as u64),
            counts: Default::default(),
            event_lag_nanos: AtomicU64::new(0),
            filter_budget: Mutex::new(FilterBudget {
                window_start: Instant::now(),
                count: 0,
            }),
            gzip_requests: AtomicUsize::new(0),
            token_uri: format!("{base_url}/token"),
            base_url,
            page_secret: rand::random(),
            token_lifetime: RwLock::new(Duration::from_secs(3600)),
            oidc: Mutex::new(crate::oidc::OidcState::default()),
        }
    }

    pub fn count(&self, e: Endpoint) {
        self.counts[e.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The delay for a request to `e`: its own if set, else the global one.
    pub fn latency(&self, e: Endpoint) -> Duration {
        let own = self
            .faults
            .lock()
            .expect("faults lock")
            .endpoint_latency
            .get(&e)
            .copied();
        own.unwrap_or_else(|| Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed)))
    }

    pub fn event_lag(&self) -> Duration {
        Duration::from_nanos(self.event_lag_nanos.load(Ordering::Relaxed))
    }

    /// Takes one filtered query from the 250-a-minute budget; `false` when it is spent.
    pub fn take_filter_query(&self) -> bool {
        let mut b = self.filter_budget.lock().expect("filter budget lock");
        let now = Instant::now();
        if now.duration_since(b.window_start) >= Duration::from_secs(60) {
            b.window_start = now;
            b.count = 0;
        }
        b.count += 1;
        b.count <= 250
    }

    /// Counts a request against the per-minute quota; `Some(seconds until the window ends)`
    /// when over it.
    pub fn over_quota(&self) -> Option<u64> {
        let mut f = self.faults.lock().expect("faults lock");
        let q = f.quota.as_mut()?;
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        if now.duration_since(q.window_start) >= minute {
            q.window_start = now;
            q.count = 0;
        }
        q.count += 1;
        let left = minute.saturating_sub(now.duration_since(q.window_start));
        (q.count > q.per_minute).then(|| left.as_secs_f64().ceil().max(1.0) as u64)
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

    /// Counts a Directory request against the rate cap; `Some(style)` when over it.
    pub fn over_rate_limit(&self) -> Option<RateLimitStyle> {
        let mut f = self.faults.lock().expect("faults lock");
        let rl = f.rate_limit.as_mut()?;
        let now = Instant::now();
        if now.duration_since(rl.window_start) >= Duration::from_secs(1) {
            rl.window_start = now;
            rl.count = 0;
        }
        rl.count += 1;
        (rl.count > rl.max_per_second).then_some(rl.style)
    }

    pub fn take_truncation(&self, e: Endpoint, page_index: usize) -> bool {
        let mut f = self.faults.lock().expect("faults lock");
        if let Some(pos) = f
            .truncations
            .iter()
            .position(|(ep, p)| ep.matches(e) && *p == page_index)
        {
            f.truncations.remove(pos);
            true
        } else {
            false
        }
    }

    pub fn take_repeat_token(&self, e: Endpoint) -> bool {
        let mut f = self.faults.lock().expect("faults lock");
        if let Some(pos) = f.repeat_token.iter().position(|ep| ep.matches(e)) {
            f.repeat_token.remove(pos);
            true
        } else {
            false
        }
    }

    pub fn account_by(&self, kid: Option<&str>, iss: Option<&str>) -> Option<ServiceAccount> {
        let accounts = self.accounts.read().expect("accounts lock");
        if let Some(iss) = iss {
            return accounts.iter().find(|a| a.client_email == iss).cloned();
        }
        let kid = kid?;
        accounts.iter().find(|a| a.private_key_id == kid).cloned()
    }
}

/// A cheap, cloneable handle on a running emulator's state.
///
/// Directory changes made here are visible to the next request. They answer as the
/// [`Directory`] method they call does: an unknown address or one already held is an error, for
/// the caller to expect or to handle (the control API answers it as 400).
#[derive(Clone)]
pub struct Control {
    pub(crate) state: Arc<State>,
}

impl Control {
    // ---- directory ----

    /// Renames a user's primary address.
    pub fn rename_user(&self, old_primary: &str, new_primary: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.rename_user(old_primary, new_primary))
    }

    /// Suspends or unsuspends a user.
    pub fn suspend_user(&self, email: &str, suspended: bool) -> anyhow::Result<()> {
        self.with_directory(|d| d.set_suspended(email, suspended))
    }

    /// Archives or unarchives a user.
    pub fn archive_user(&self, email: &str, archived: bool) -> anyhow::Result<()> {
        self.with_directory(|d| d.set_archived(email, archived))
    }

    /// Deletes a user (it leaves every group).
    pub fn delete_user(&self, email: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.delete_user(email))
    }

    /// Adds a user; returns its id.
    pub fn add_user(
        &self,
        primary_email: &str,
        given: &str,
        family: &str,
    ) -> anyhow::Result<String> {
        self.with_directory(|d| d.add_user(primary_email, given, family))
    }

    /// Adds an editable alias to a user.
    pub fn add_alias(&self, user: &str, alias: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.add_alias(user, alias))
    }

    /// Adds a group; returns its id.
    pub fn add_group(&self, email: &str, name: &str) -> anyhow::Result<String> {
        self.with_directory(|d| d.add_group(email, name))
    }

    /// Adds a member with role `MEMBER`.
    pub fn add_member(&self, group: &str, member: &str, kind: MemberType) -> anyhow::Result<()> {
        self.with_directory(|d| d.add_member_with_role(group, member, kind, Role::Member))
    }

    /// Removes a member.
    pub fn remove_member(&self, group: &str, member: &str) -> anyhow::Result<()> {
        self.with_directory(|d| d.remove_member(group, member))
    }

    /// Makes a user a super admin or not.
    pub fn set_admin(&self, email: &str, admin: bool) -> anyhow::Result<()> {
        self.with_directory(|d| d.set_admin(email, admin))
    }

    /// Replaces the whole directory. Google has no such change, so nothing is logged: the
    /// activity log so far is kept, and the changes that built `d` are not added to it. Make
    /// changes that clients should see in the log through the other methods or
    /// [`Control::with_directory`].
    pub fn set_directory(&self, mut d: Directory) {
        let mut current = self.state.directory.write().expect("directory lock");
        d.take_log_of(&mut current);
        *current = d;
    }

    /// The admin activity log, oldest first (whether visible yet or not).
    pub fn activities(&self) -> Vec<crate::Activity> {
        self.state
            .directory
            .read()
            .expect("directory lock")
            .activities()
            .to_vec()
    }

    /// How long an admin activity stays invisible to `activities.list` after it happened
    /// (Google's admin log lags by minutes; default zero).
    pub fn set_event_lag(&self, d: Duration) {
        self.state
            .event_lag_nanos
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Runs `f` with the directory locked for writing.
    pub fn with_directory<R>(&self, f: impl FnOnce(&mut Directory) -> R) -> R {
        f(&mut self.state.directory.write().expect("directory lock"))
    }

    /// A copy of the directory.
    pub fn directory(&self) -> Directory {
        self.state.directory.read().expect("directory lock").clone()
    }

    // ---- delegation / auth ----

    /// Grants domain-wide delegation of `scopes` to `client_id` (replacing earlier grants).
    pub fn set_delegation(&self, client_id: &str, scopes: &[&str]) {
        self.state
            .delegation
            .write()
            .expect("delegation lock")
            .insert(
                client_id.to_string(),
                scopes.iter().map(|s| s.to_string()).collect(),
            );
    }

    /// Removes every delegation grant of `client_id`.
    pub fn revoke_delegation(&self, client_id: &str) {
        self.state
            .delegation
            .write()
            .expect("delegation lock")
            .remove(client_id);
    }

    /// Invalidates every access token issued so far (the next API call answers 401).
    pub fn expire_tokens(&self) {
        self.state.tokens.lock().expect("tokens lock").clear();
    }

    /// Number of access tokens issued and still valid.
    pub fn live_tokens(&self) -> usize {
        let now = Instant::now();
        self.state
            .tokens
            .lock()
            .expect("tokens lock")
            .values()
            .filter(|t| t.expires_at > now)
            .count()
    }

    /// Lifetime of tokens issued from now on (default 3600 s; `expires_in` is one second less).
    pub fn set_token_lifetime(&self, d: Duration) {
        *self.state.token_lifetime.write().expect("lifetime lock") = d;
    }

    /// Registers a new service account (fresh RSA key) without any delegation grant.
    pub fn new_service_account(&self, name: &str) -> anyhow::Result<ServiceAccount> {
        let sa = ServiceAccount::generate(name, "emulator-project", &self.state.token_uri)?;
        self.state
            .accounts
            .write()
            .expect("accounts lock")
            .push(sa.clone());
        Ok(sa)
    }

    /// Forgets a service account (as if its key were deleted): its assertions fail with
    /// `invalid_grant`.
    pub fn delete_service_account(&self, client_email: &str) {
        self.state
            .accounts
            .write()
            .expect("accounts lock")
            .retain(|a| a.client_email != client_email);
    }

    // ---- faults ----

    /// Delay added to every Google endpoint request.
    pub fn set_latency(&self, d: Duration) {
        self.state
            .latency_nanos
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Caps Directory API requests per second (a fixed one-second window); `None` lifts it.
    pub fn set_rate_limit(&self, max_requests_per_second: Option<u32>, style: RateLimitStyle) {
        self.state.faults.lock().expect("faults lock").rate_limit =
            max_requests_per_second.map(|max| RateLimit {
                max_per_second: max,
                style,
                window_start: Instant::now(),
                count: 0,
            });
    }

    /// Google's per-minute quota on Admin SDK requests (Directory and Reports together): beyond
    /// `per_minute` requests in a minute, 429 `rateLimitExceeded` with `Retry-After` = the
    /// seconds left in the minute. `None` lifts it (the default).
    pub fn set_quota_per_minute(&self, per_minute: Option<u32>) {
        self.state.faults.lock().expect("faults lock").quota = per_minute.map(|n| Quota {
            per_minute: n,
            window_start: Instant::now(),
            count: 0,
        });
    }

    /// A delay for requests to one endpoint, instead of the global latency; `None` returns it
    /// to the global one.
    pub fn set_endpoint_latency(&self, endpoint: Endpoint, d: Option<Duration>) {
        let mut f = self.state.faults.lock().expect("faults lock");
        match d {
            Some(d) => f.endpoint_latency.insert(endpoint, d),
            None => f.endpoint_latency.remove(&endpoint),
        };
    }

    /// The next `times` requests to `endpoint` fail with Google's error body for `status`.
    pub fn fail_requests(&self, endpoint: Endpoint, status: u16, times: usize) {
        self.inject_failure(FailSpec {
            endpoint,
            status,
            reason: None,
            message: None,
            retry_after_secs: None,
            times,
        });
    }

    /// Queues a fully described failure (custom reason, message, `Retry-After`).
    pub fn inject_failure(&self, spec: FailSpec) {
        if spec.times > 0 {
            self.state
                .faults
                .lock()
                .expect("faults lock")
                .fails
                .push_back(spec);
        }
    }

    /// Page `page_index` (0 = first) of the next listing of `endpoint` is cut off mid-JSON.
    pub fn truncate_page(&self, endpoint: Endpoint, page_index: usize) {
        self.state
            .faults
            .lock()
            .expect("faults lock")
            .truncations
            .push((endpoint, page_index));
    }

    /// The next follow-up page of `endpoint` answers with the page token it was asked for as
    /// its `nextPageToken` (a client that does not detect it loops forever).
    pub fn repeat_page_token(&self, endpoint: Endpoint) {
        self.state
            .faults
            .lock()
            .expect("faults lock")
            .repeat_token
            .push(endpoint);
    }

    /// Removes every fault, the rate cap and the latency.
    pub fn clear_faults(&self) {
        *self.state.faults.lock().expect("faults lock") = Faults::default();
        self.set_latency(Duration::ZERO);
    }

    // ---- observation ----

    /// Requests received by `endpoint` (`Any`: all of them), including failed ones.
    pub fn request_count(&self, endpoint: Endpoint) -> usize {
        if endpoint == Endpoint::Any {
            return self
                .state
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
        }
        self.state.counts[endpoint.index()].load(Ordering::Relaxed)
    }

    /// All counts by snake_case endpoint name, plus `total`.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m: std::collections::BTreeMap<String, usize> = Endpoint::ALL
            .iter()
            .map(|e| (e.name().to_string(), self.request_count(*e)))
            .collect();
        m.insert("total".to_string(), self.request_count(Endpoint::Any));
        m.insert("gzip_requests".to_string(), self.gzip_requests());
        m
    }

    /// Directory API requests that asked for gzip the way Google requires (`Accept-Encoding:
    /// gzip` and a User-Agent containing "gzip").
    pub fn gzip_requests(&self) -> usize {
        self.state.gzip_requests.load(Ordering::Relaxed)
    }

    /// Sets every count to zero.
    pub fn reset_counts(&self) {
        for c in &self.state.counts {
            c.store(0, Ordering::Relaxed);
        }
        self.state.gzip_requests.store(0, Ordering::Relaxed);
    }

    /// `http://127.0.0.1:PORT` (or the public URL given in the options).
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }
}
