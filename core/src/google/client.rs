//! The Directory API client: requests with retries, and page-by-page listings.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use url::Url;

use super::activity::{Activity, AUDIT_SCOPE};
use super::model::{Listed, WirePage};
use super::token::{transport_error, TokenCache, TokenSource};
use super::{GoogleError, Group, Member, ServiceAccountKey, User, SCOPES};
use crate::retry::{backoff, retry_after};
pub use crate::retry::{Hook, RetryPolicy};

/// Which account to list: a customer (`my_customer` = the admin's own) or a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Account {
    /// `customer=` (`my_customer` or an id such as `C03az79cb`).
    Customer(String),
    /// `domain=`.
    Domain(String),
}

impl Default for Account {
    fn default() -> Self {
        Account::Customer("my_customer".to_string())
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Customer(c) => write!(f, "customer {c}"),
            Account::Domain(d) => write!(f, "domain {d}"),
        }
    }
}

/// Everything a [`DirectoryClient`] needs.
#[derive(Clone)]
pub struct ClientConfig {
    /// The uploaded service-account key.
    pub key: ServiceAccountKey,
    /// Directory API base, e.g. `https://admin.googleapis.com`; `/admin/directory/v1/` is appended.
    pub directory_base_url: String,
    /// The Workspace super admin impersonated through domain-wide delegation (JWT `sub`).
    pub admin_email: String,
    /// Customer or domain to list.
    pub account: Account,
    /// TCP/TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Total time for one request, body included (default 60 s).
    pub request_timeout: Duration,
    /// Retry timing.
    pub retry: RetryPolicy,
    /// Most pages one listing may take (default 10,000: 5 million users).
    pub max_pages: usize,
    /// Metrics hook.
    pub on_request: Option<Hook>,
    /// `DIRSYNC_GOOGLE_TOKEN_URL`: a `token_uri` accepted besides Google's own (default:
    /// Google's). Any other `token_uri` is refused before a request is made.
    pub token_url: String,
    /// Where access tokens are cached; share one per process so that every client built for
    /// the same key and admin reuses the token (default: a cache of this client's own).
    pub tokens: TokenCache,
    /// Trusted CAs and proxies (default: built-in and system roots, no proxy).
    pub outbound: crate::outbound::Outbound,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("key", &self.key)
            .field("directory_base_url", &self.directory_base_url)
            .field("admin_email", &self.admin_email)
            .field("account", &self.account)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_pages", &self.max_pages)
            .field("on_request", &self.on_request.as_ref().map(|_| "<hook>"))
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with default timeouts, retries and page bound.
    pub fn new(
        key: ServiceAccountKey,
        directory_base_url: impl Into<String>,
        admin_email: impl Into<String>,
        account: Account,
    ) -> ClientConfig {
        ClientConfig {
            key,
            directory_base_url: directory_base_url.into(),
            admin_email: admin_email.into(),
            account,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_pages: 10_000,
            on_request: None,
            token_url: super::GOOGLE_TOKEN_URL.to_string(),
            tokens: TokenCache::new(),
            outbound: crate::outbound::Outbound::default(),
        }
    }
}

/// The fields of a user that dirsync reads: one list for `users.list` (inside the page) and
/// `users.get`, so that a listed user and a re-read one cannot differ.
macro_rules! user_fields {
    () => {
        "id,primaryEmail,name(givenName,familyName,fullName),suspended,archived,aliases,nonEditableAliases,emails(address)"
    };
}
const USER_FIELDS: &str = concat!("nextPageToken,users(", user_fields!(), ")");
const USER_GET_FIELDS: &str = user_fields!();
const GROUP_FIELDS: &str = "nextPageToken,groups(id,email,name,directMembersCount)";
const MEMBER_FIELDS: &str = "nextPageToken,members(id,email,type,role,status)";

/// Which of Google's two Admin SDK APIs a request goes to: each has its own token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Directory,
    Reports,
}

/// A Google Workspace Directory API client (read-only). Cheap to share behind an `Arc`; tokens
/// are cached inside.
pub struct DirectoryClient {
    http: reqwest::Client,
    tokens: TokenSource,
    /// For the admin activity log (Reports API), with the audit scope alone.
    audit_tokens: TokenSource,
    api_base: Url,
    /// `{base}/admin/reports/v1/`.
    reports_base: Url,
    admin_email: String,
    account: Account,
    retry: RetryPolicy,
    request_timeout: Duration,
    max_pages: usize,
    hook: Option<Hook>,
}

impl fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryClient")
            .field("api_base", &self.api_base.as_str())
            .field("admin_email", &self.admin_email)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl DirectoryClient {
    /// Builds the client (no request is made).
    pub fn new(config: ClientConfig) -> Result<DirectoryClient, GoogleError> {
        let base = config.directory_base_url.trim_end_matches('/');
        let api_base = Url::parse(&format!("{base}/admin/directory/v1/"))
            .map_err(|e| GoogleError::Config(format!("directory base URL {base:?}: {e}")))?;
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(GoogleError::Config(format!(
                "directory base URL {base:?} is not http(s)"
            )));
        }
        if config.admin_email.trim().is_empty() {
            return Err(GoogleError::Config("admin_email is empty".into()));
        }
        let http = config
            .outbound
            .client_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Google compresses only for clients that say "gzip" in the User-Agent too.
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION"), " (gzip)"))
            .gzip(true)
            .build()
            .map_err(|e| GoogleError::Config(format!("HTTP client: {e}")))?;
        // The token request carries a signed assertion: a redirect must not carry it (a 307
        // re-POSTs the body) to wherever the token endpoint points.
        let token_http = config
            .outbound
            .client_builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GoogleError::Config(format!("HTTP client: {e}")))?;
        let token_source = |scopes: &[&str]| {
            TokenSource::new(
                config.key.clone(),
                config.admin_email.trim().to_string(),
                config.token_url.clone(),
                &config.tokens,
                token_http.clone(),
                config.retry.clone(),
                config.request_timeout,
                config.on_request.clone(),
                scopes,
            )
        };
        let tokens = token_source(&SCOPES);
        // A token of its own for the admin log: full syncs never ask for the audit scope, so
        // they keep working where an administrator has not granted it.
        let audit_tokens = token_source(&[AUDIT_SCOPE]);
        let reports_base = Url::parse(&format!("{base}/admin/reports/v1/"))
            .map_err(|e| GoogleError::Config(format!("directory base URL {base:?}: {e}")))?;
        Ok(DirectoryClient {
            http,
            tokens,
            audit_tokens,
            api_base,
            reports_base,
            admin_email: config.admin_email.trim().to_string(),
            account: config.account,
            retry: config.retry,
            request_timeout: config.request_timeout,
            max_pages: config.max_pages.max(1),
            hook: config.on_request,
        })
    }

    /// The service-account key in use.
    pub fn key(&self) -> &ServiceAccountKey {
        self.tokens.key()
    }

    /// The impersonated admin.
    pub fn admin_email(&self) -> &str {
        &self.admin_email
    }

    /// Fetches an access token now (or returns the cached one): the "token obtained" check.
    pub async fn check_token(&self) -> Result<(), GoogleError> {
        self.tokens.get().await.map(|_| ())
    }

    /// A Directory API URL.
    fn url(&self, segments: &[&str]) -> Url {
        with_path(&self.api_base, segments)
    }

    fn account_params(&self, url: &mut Url) {
        let mut q = url.query_pairs_mut();
        match &self.account {
            Account::Customer(c) => q.append_pair("customer", c),
            Account::Domain(d) => q.append_pair("domain", d),
        };
    }

    /// All users of the account, page by page (500 per page).
    pub fn users(&self) -> Pages<'_, User> {
        let mut url = self.url(&["users"]);
        self.account_params(&mut url);
        url.query_pairs_mut()
            .append_pair("maxResults", "500")
            .append_pair("fields", USER_FIELDS)
            .append_pair("prettyPrint", "false");
        Pages::new(self, "users.list", url, "users".into())
    }

    /// All groups of the account, page by page (200 per page).
    pub fn groups(&self) -> Pages<'_, Group> {
        let mut url = self.url(&["groups"]);
        self.account_params(&mut url);
        url.query_pairs_mut()
            .append_pair("maxResults", "200")
            .append_pair("fields", GROUP_FIELDS)
            .append_pair("prettyPrint", "false");
        Pages::new(self, "groups.list", url, "groups".into())
    }

    /// Direct members of a group (key: address, alias or id), page by page (200 per page).
    /// A group that does not exist fails with [`GoogleError::NotFound`].
    pub fn members(&self, group_key: &str) -> Pages<'_, Member> {
        let mut url = self.url(&["groups", group_key, "members"]);
        url.query_pairs_mut()
            .append_pair("maxResults", "200")
            .append_pair("fields", MEMBER_FIELDS)
            .append_pair("prettyPrint", "false");
        Pages::new(self, "members.list", url, format!("group {group_key}"))
    }

    /// Every user (all pages).
    pub async fn list_users(&self) -> Result<Vec<User>, GoogleError> {
        self.users().collect_all().await
    }

    /// Every group (all pages).
    pub async fn list_groups(&self) -> Result<Vec<Group>, GoogleError> {
        self.groups().collect_all().await
    }

    /// Every direct member of a group (all pages).
    pub async fn list_members(&self, group_key: &str) -> Result<Vec<Member>, GoogleError> {
        self.members(group_key).collect_all().await
    }

    /// One group by address, alias or id; `None` when it does not exist.
    pub async fn get_group(&self, group_key: &str) -> Result<Option<Group>, GoogleError> {
        let mut url = self.url(&["groups", group_key]);
        url.query_pairs_mut()
            .append_pair("fields", "id,email,name,directMembersCount")
            .append_pair("prettyPrint", "false");
        match self
            .get_json::<super::model::WireGroup>("groups.get", url, &format!("group {group_key}"))
            .await
        {
            Ok(g) => Ok(Some(g.into())),
            Err(GoogleError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The admin activity log from `start` to `end` (both inclusive), newest first, 1,000 per
    /// page. The window is fixed for the whole listing: a cursor saved mid-listing must hold
    /// the token and the window, not the time of the last item seen
    /// (google-reports-api.md §2). No `eventName` or `filters`: those count against a far
    /// smaller quota. Needs the audit scope ([`AUDIT_SCOPE`]): without it the first page fails
    /// with [`GoogleError::InsufficientScopes`] naming that scope.
    pub fn activities(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Pages<'_, Activity> {
        let mut url = with_path(
            &self.reports_base,
            &["activity", "users", "all", "applications", "admin"],
        );
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        url.query_pairs_mut()
            .append_pair("startTime", &time(start))
            .append_pair("endTime", &time(end))
            .append_pair("maxResults", "1000")
            .append_pair("prettyPrint", "false");
        let mut pages = Pages::new(self, "activities.list", url, "the admin log".into());
        pages.api = Api::Reports;
        pages
    }

    /// One user by primary address, alias or id; `None` when Google answers 404 — the
    /// confirmation an incremental sync needs before it treats a user as gone.
    pub async fn get_user(&self, user_key: &str) -> Result<Option<User>, GoogleError> {
        let mut url = self.url(&["users", user_key]);
        url.query_pairs_mut()
            .append_pair("fields", USER_GET_FIELDS)
            .append_pair("prettyPrint", "false");
        match self
            .get_json::<super::model::WireUser>("users.get", url, &format!("user {user_key}"))
            .await
        {
            Ok(u) => Ok(Some(u.into())),
            Err(GoogleError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET with the retry rules of product §2; returns the parsed body.
    #[tracing::instrument(name = "google_request", skip(self, url, what), fields(%endpoint))]
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: Url,
        what: &str,
    ) -> Result<T, GoogleError> {
        self.get_json_from(Api::Directory, endpoint, url, what)
            .await
    }

    /// GET from one of the two APIs, with its own token; see [`DirectoryClient::get_json`].
    async fn get_json_from<T: serde::de::DeserializeOwned>(
        &self,
        api: Api,
        endpoint: &'static str,
        url: Url,
        what: &str,
    ) -> Result<T, GoogleError> {
        let tokens = match api {
            Api::Directory => &self.tokens,
            Api::Reports => &self.audit_tokens,
        };
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = tokens.get().await?;
            let started = std::time::Instant::now();
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose_secret())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.report(endpoint, 0, started.elapsed());
                    if attempt >= max {
                        return Err(transport_error(endpoint, attempt, self.request_timeout, &e));
                    }
                    tracing::warn!(attempt, error = %e, "request failed; retrying");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            self.report(endpoint, status, started.elapsed());
            let retry_after = retry_after(resp.headers());
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    // The body broke off in transit (not a complete but malformed body).
                    if attempt >= max {
                        return Err(transport_error(endpoint, attempt, self.request_timeout, &e));
                    }
                    tracing::warn!(attempt, error = %e, "reading the response failed; retrying");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body).map_err(|e| GoogleError::MalformedResponse {
                    endpoint,
                    detail: e.to_string(),
                });
            }
            let (reason, message) = error_reason(&body);
            if status == 401 && !refreshed {
                // An expired or revoked token: refresh once and try again at once.
                tracing::info!("401 from Google; refreshing the access token once");
                refreshed = true;
                tokens.invalidate(&token).await;
                attempt -= 1;
                continue;
            }
            let rate_limited = status == 429
                || (status == 403
                    && matches!(
                        reason.as_str(),
                        "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
                    ));
            let retryable = rate_limited || status >= 500;
            if retryable && attempt < max {
                let delay = match retry_after {
                    Some(ra) => ra.min(self.retry.max_retry_after),
                    None => backoff(&self.retry, attempt),
                };
                tracing::warn!(attempt, status, %reason, delay_ms = delay.as_millis() as u64, "Google asked to retry");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(if rate_limited {
                GoogleError::RateLimited {
                    endpoint,
                    attempts: attempt,
                    reason,
                }
            } else if status >= 500 {
                GoogleError::Unavailable {
                    endpoint,
                    status,
                    attempts: attempt,
                }
            } else {
                self.classify(api, endpoint, status, reason, message, what)
            });
        }
    }

    fn classify(
        &self,
        api: Api,
        endpoint: &'static str,
        status: u16,
        reason: String,
        message: String,
        what: &str,
    ) -> GoogleError {
        match (status, reason.as_str()) {
            (401, _) => GoogleError::Unauthenticated { message },
            (403, "forbidden") => GoogleError::NotAdmin {
                admin_email: self.admin_email.clone(),
            },
            (403, "insufficientPermissions") => GoogleError::InsufficientScopes {
                scopes: match api {
                    Api::Directory => SCOPES.join(","),
                    Api::Reports => AUDIT_SCOPE.to_string(),
                },
                message,
            },
            (404, _) if message.contains("Domain not found") => GoogleError::DomainNotFound {
                account: self.account.to_string(),
            },
            (404, _) => GoogleError::NotFound {
                what: what.to_string(),
                message,
            },
            _ => GoogleError::Api {
                endpoint,
                status,
                reason,
                message,
            },
        }
    }

    fn report(&self, endpoint: &str, status: u16, elapsed: Duration) {
        if let Some(h) = &self.hook {
            h(endpoint, status, elapsed);
        }
    }
}

/// `base` with `segments` appended, each percent-encoded (a group key may hold any character).
fn with_path(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().expect("http URL has a path");
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// `error.errors[0].reason` and `error.message` of a Google error body.
fn error_reason(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        reason: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => (
            b.error
                .errors
                .into_iter()
                .next()
                .map(|i| i.reason)
                .unwrap_or_default(),
            b.error.message,
        ),
        // Not Google's error shape: say so rather than repeat a body from who knows where.
        Err(_) => (
            String::new(),
            "the answer was not a Google API error".to_string(),
        ),
    }
}

/// A listing, fetched one page at a time so that callers can report progress and keep memory
/// flat. [`Pages::next_page`] returns `Ok(None)` after the last page; only then is
/// [`Pages::is_complete`] true (the last page had no `nextPageToken`), which is what a
/// deletion decision must check.
pub struct Pages<'c, T> {
    client: &'c DirectoryClient,
    api: Api,
    endpoint: &'static str,
    url: Url,
    what: String,
    next_token: Option<String>,
    seen_tokens: HashSet<String>,
    pages: usize,
    complete: bool,
    failed: bool,
    _item: PhantomData<T>,
}

impl<'c, T: Listed> Pages<'c, T> {
    fn new(client: &'c DirectoryClient, endpoint: &'static str, url: Url, what: String) -> Self {
        Pages {
            client,
            api: Api::Directory,
            endpoint,
            url,
            what,
            next_token: None,
            seen_tokens: HashSet::new(),
            pages: 0,
            complete: false,
            failed: false,
            _item: PhantomData,
        }
    }

    /// The next page's items, or `None` once the listing is complete. After an error the
    /// listing is over and incomplete.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, GoogleError> {
        if self.complete || self.failed {
            return Ok(None);
        }
        match self.fetch().await {
            Ok(items) => Ok(Some(items)),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    async fn fetch(&mut self) -> Result<Vec<T>, GoogleError> {
        if self.pages >= self.client.max_pages {
            return Err(GoogleError::TooManyPages {
                endpoint: self.endpoint,
                max_pages: self.client.max_pages,
            });
        }
        let mut url = self.url.clone();
        if let Some(t) = &self.next_token {
            url.query_pairs_mut().append_pair("pageToken", t);
        }
        let page: T::Wire = self
            .client
            .get_json_from(self.api, self.endpoint, url, &self.what)
            .await?;
        self.pages += 1;
        let (items, next) = page.split();
        match next.filter(|t| !t.is_empty()) {
            None => {
                self.complete = true;
                self.next_token = None;
            }
            Some(t) => {
                if !self.seen_tokens.insert(t.clone()) {
                    return Err(GoogleError::PageTokenLoop {
                        endpoint: self.endpoint,
                    });
                }
                self.next_token = Some(t);
            }
        }
        Ok(items)
    }

    /// Whether the last page (without `nextPageToken`) has been received.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Pages received so far.
    pub fn pages_fetched(&self) -> usize {
        self.pages
    }

    /// Fetches every remaining page.
    pub async fn collect_all(mut self) -> Result<Vec<T>, GoogleError> {
        let mut all = Vec::new();
        while let Some(mut page) = self.next_page().await? {
            all.append(&mut page);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_growing_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 1..=30 {
            let cap = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(p.max_delay);
            for _ in 0..50 {
                assert!(backoff(&p, attempt) <= cap, "attempt {attempt}");
            }
        }
        // Full jitter spreads over the whole range rather than clustering at the cap.
        let samples: Vec<Duration> = (0..200).map(|_| backoff(&p, 10)).collect();
        assert!(samples.iter().any(|d| *d < Duration::from_millis(300)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(700)));
    }

    #[test]
    fn google_error_bodies_yield_reason_and_message() {
        let body = br#"{"error":{"code":403,"message":"Quota exceeded","errors":[{"message":"Quota exceeded","domain":"usageLimits","reason":"userRateLimitExceeded"}]}}"#;
        assert_eq!(
            error_reason(body),
            (
                "userRateLimitExceeded".to_string(),
                "Quota exceeded".to_string()
            )
        );
        assert_eq!(error_reason(b"<html>502</html>").0, "");
    }
}
