//! The Microsoft Graph client: requests with retries (reference §4), and page-by-page listings
//! that follow `@odata.nextLink` only within the configured Graph URL.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::model::{WireGroup, WireUser, GROUP_SELECT, USER_SELECT};
use super::token::TokenSource;
use super::{error::transport_error, EntraAccess, EntraConfig, EntraError};
use crate::retry::{backoff, retry_after};
pub use crate::retry::{Hook, RetryPolicy};

/// The application permission that reads users (reference §2.7).
pub const USER_READ_ALL: &str = "User.Read.All";
/// The application permission that reads groups and their members.
pub const GROUP_MEMBER_READ_ALL: &str = "GroupMember.Read.All";

/// Timeouts, retries and the page bound of a [`GraphClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// TCP/TLS connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Total time for one request, body included (default 60 s: a page of 999 users).
    pub request_timeout: Duration,
    /// Retry timing.
    pub retry: RetryPolicy,
    /// Most pages one listing may take (default 10,000: ten million users at 999 a page).
    pub max_pages: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            // Graph's own SDKs retry three times; a sync job can afford a little more patience.
            retry: RetryPolicy {
                max_attempts: 5,
                ..RetryPolicy::default()
            },
            max_pages: 10_000,
        }
    }
}

/// A group, for choosing `sync_groups` (the Google listing's `Group` has the same three
/// fields and a member count Graph would need one more request per group for).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EntraGroup {
    /// The Graph object id: what `sync_groups` may name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The group's address, as Graph spells it; `None` for groups without a mailbox (security
    /// groups), which `sync_groups` can name by id only.
    pub email: Option<String>,
}

/// A read-only Microsoft Graph client for one tenant and app. Cheap to share behind an `Arc`;
/// tokens are cached in [`EntraAccess::tokens`].
pub struct GraphClient {
    http: reqwest::Client,
    pub(crate) tokens: TokenSource,
    /// `{graph_url}/v1.0/`.
    api_base: Url,
    /// The configured Graph URL, as next links must start with it.
    graph_url: Url,
    pub(crate) config: EntraConfig,
    retry: RetryPolicy,
    request_timeout: Duration,
    max_pages: usize,
    hook: Option<Hook>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("api_base", &self.api_base.as_str())
            .field("tenant_id", &self.config.tenant_id)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// An http(s) URL without a query, its path ending in `/`.
fn base_url(setting: &str, value: &str) -> Result<Url, EntraError> {
    let trimmed = value.trim().trim_end_matches('/');
    let url = Url::parse(&format!("{trimmed}/"))
        .map_err(|e| EntraError::Config(format!("{setting} {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(EntraError::Config(format!(
            "{setting} {value:?} is not an http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EntraError::Config(format!(
            "{setting} {value:?} must not carry a query or fragment"
        )));
    }
    Ok(url)
}

/// A tenant as a path segment: a GUID or a domain (letters, digits, `-` and `.`, as
/// azure-identity requires). `common`, `organizations` and `consumers` name no tenant: the
/// client-credentials grant fails on them (AADSTS9001023).
fn check_tenant(tenant: &str) -> Result<(), EntraError> {
    if !tenant.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(EntraError::Config(format!(
            "tenant_id {tenant:?} is neither a tenant id (GUID) nor a domain"
        )));
    }
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(tenant))
    {
        return Err(EntraError::Config(format!(
            "tenant_id {tenant:?} names no tenant: use the Directory (tenant) ID of the app registration"
        )));
    }
    Ok(())
}

impl GraphClient {
    /// Builds the client with default timeouts and retries (no request is made). A credential
    /// that does not parse does not fail here: the connection test reports it as its first
    /// step, and every request fails with it.
    pub fn new(config: EntraConfig, access: &EntraAccess) -> crate::Result<GraphClient> {
        Ok(GraphClient::with_options(
            config,
            access,
            ClientOptions::default(),
        )?)
    }

    /// [`GraphClient::new`] with these timeouts, retries and page bound.
    pub fn with_options(
        config: EntraConfig,
        access: &EntraAccess,
        options: ClientOptions,
    ) -> Result<GraphClient, EntraError> {
        let config = EntraConfig {
            tenant_id: config.tenant_id.trim().to_string(),
            client_id: config.client_id.trim().to_string(),
            ..config
        };
        check_tenant(&config.tenant_id)?;
        if config.client_id.is_empty() {
            return Err(EntraError::Config("client_id is empty".into()));
        }
        let graph_url = base_url("DIRSYNC_MICROSOFT_GRAPH_URL", &access.graph_url)?;
        let login_url = base_url("DIRSYNC_MICROSOFT_LOGIN_URL", &access.login_url)?;
        let api_base = graph_url
            .join("v1.0/")
            .map_err(|e| EntraError::Config(format!("DIRSYNC_MICROSOFT_GRAPH_URL: {e}")))?;
        let mut token_url = login_url.clone();
        token_url
            .path_segments_mut()
            .map_err(|_| EntraError::Config("DIRSYNC_MICROSOFT_LOGIN_URL has no path".into()))?
            .pop_if_empty()
            .extend([config.tenant_id.as_str(), "oauth2", "v2.0", "token"]);
        let http = access
            .outbound
            .client_builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            // A redirect would carry the bearer token to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| EntraError::Config(format!("HTTP client: {e}")))?;
        // The token request carries the secret or the assertion: a redirect must not carry it
        // (a 307 re-POSTs the body) to wherever it points.
        let token_http = access
            .outbound
            .client_builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| EntraError::Config(format!("HTTP client: {e}")))?;
        let metrics = access.metrics.clone();
        let hook: Hook = Arc::new(move |endpoint: &str, status: u16, elapsed: Duration| {
            metrics.microsoft_request(endpoint, status, elapsed.as_secs_f64());
        });
        let tokens = TokenSource::new(
            token_url.to_string(),
            config.tenant_id.clone(),
            config.client_id.clone(),
            &config.credential,
            &access.tokens,
            token_http,
            options.retry.clone(),
            options.request_timeout,
            Some(hook.clone()),
        );
        Ok(GraphClient {
            http,
            tokens,
            api_base,
            graph_url,
            config,
            retry: options.retry,
            request_timeout: options.request_timeout,
            max_pages: options.max_pages,
            hook: Some(hook),
        })
    }

    /// `{graph_url}/v1.0/<segments>`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Every user of the tenant (guests included: the provider leaves them out unless
    /// configured), 999 a page.
    pub(crate) fn users(&self) -> GraphPages<'_, WireUser> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut()
            .append_pair("$select", USER_SELECT)
            .append_pair("$top", "999");
        GraphPages::new(self, "users.list", USER_READ_ALL, url, "users".into())
    }

    /// Every group of the tenant, 999 a page.
    pub(crate) fn groups(&self) -> GraphPages<'_, WireGroup> {
        let mut url = self.url(&["groups"]);
        url.query_pairs_mut()
            .append_pair("$select", GROUP_SELECT)
            .append_pair("$top", "999");
        GraphPages::new(
            self,
            "groups.list",
            GROUP_MEMBER_READ_ALL,
            url,
            "groups".into(),
        )
    }

    /// A group's direct members, 999 a page. A group that does not exist fails with
    /// [`EntraError::NotFound`].
    pub(crate) fn members(&self, group_id: &str) -> GraphPages<'_, super::model::WireMember> {
        let mut url = self.url(&["groups", group_id, "members"]);
        url.query_pairs_mut()
            .append_pair("$select", super::model::MEMBER_SELECT)
            .append_pair("$top", "999");
        GraphPages::new(
            self,
            "members.list",
            GROUP_MEMBER_READ_ALL,
            url,
            format!("the members of group {group_id}"),
        )
    }

    /// One user by id; `None` when Graph answers 404 (`Request_ResourceNotFound`).
    pub(crate) async fn get_user(&self, id: &str) -> Result<Option<WireUser>, EntraError> {
        let mut url = self.url(&["users", id]);
        url.query_pairs_mut().append_pair("$select", USER_SELECT);
        match self
            .get_json::<WireUser>("users.get", USER_READ_ALL, url, &format!("user {id}"))
            .await
        {
            Ok(u) => Ok(Some(u)),
            Err(EntraError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group (id, display name, address), for choosing `sync_groups`.
    #[tracing::instrument(skip(self), fields(tenant = %self.config.tenant_id))]
    pub async fn list_groups(&self) -> crate::Result<Vec<EntraGroup>> {
        let mut pages = self.groups();
        let mut out = Vec::new();
        while let Some(page) = pages.next_page().await? {
            out.extend(page.into_iter().map(|g| {
                EntraGroup {
                    id: g.id,
                    name: g.display_name.unwrap_or_default(),
                    email: g
                        .mail
                        .map(|m| m.trim().to_string())
                        .filter(|m| !m.is_empty()),
                }
            }));
        }
        Ok(out)
    }

    /// Whether `link` may be followed: same scheme, host and port as the configured Graph URL,
    /// and under its path. Anything else would receive the access token.
    pub(crate) fn link_allowed(&self, link: &Url) -> bool {
        link.scheme() == self.graph_url.scheme()
            && link.host_str() == self.graph_url.host_str()
            && link.port_or_known_default() == self.graph_url.port_or_known_default()
            && link.path().starts_with(self.api_base.path())
            && link.username().is_empty()
            && link.password().is_none()
    }

    /// GET with Graph's retry rules (429/503/504/5xx with `Retry-After`, bounded; one fresh
    /// token after a 401); returns the parsed body. `permission` names what a 403 means.
    #[tracing::instrument(name = "graph_request", skip(self, url, what), fields(%endpoint))]
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        permission: &'static str,
        url: Url,
        what: &str,
    ) -> Result<T, EntraError> {
        let max = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.tokens.get().await?;
            let started = std::time::Instant::now();
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose_secret())
                .header("client-request-id", uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.report(endpoint, 0, started.elapsed());
                    if attempt >= max {
                        return Err(transport_error(endpoint, attempt, self.request_timeout, &e));
                    }
                    tracing::warn!(attempt, error = %e, "Graph request failed; retrying");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            self.report(endpoint, status, started.elapsed());
            let wait = retry_after(resp.headers());
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    // The body broke off in transit (not a complete but malformed body).
                    if attempt >= max {
                        return Err(transport_error(endpoint, attempt, self.request_timeout, &e));
                    }
                    tracing::warn!(attempt, error = %e, "reading Graph's answer failed; retrying");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return serde_json::from_slice(&body).map_err(|e| EntraError::MalformedResponse {
                    endpoint,
                    detail: e.to_string(),
                });
            }
            let (code, message) = graph_error(&body);
            if status == 401 && !refreshed {
                // An expired or revoked token: a fresh one, and try again at once.
                tracing::info!("401 from Graph; fetching a new access token once");
                refreshed = true;
                self.tokens.invalidate(&token).await;
                attempt -= 1;
                continue;
            }
            let retryable = status == 429 || status >= 500;
            if retryable && attempt < max {
                let delay = match wait {
                    Some(d) => d.min(self.retry.max_retry_after),
                    None => backoff(&self.retry, attempt),
                };
                tracing::warn!(attempt, status, %code, delay_ms = delay.as_millis() as u64, "Graph asked to retry");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(match status {
                429 => EntraError::RateLimited {
                    endpoint,
                    attempts: attempt,
                    code,
                },
                500.. => EntraError::Unavailable {
                    endpoint,
                    status,
                    attempts: attempt,
                },
                401 => EntraError::Unauthenticated { message },
                403 => EntraError::MissingPermission {
                    permission,
                    what: what.to_string(),
                    client_id: self.config.client_id.clone(),
                },
                404 => EntraError::NotFound {
                    what: what.to_string(),
                    message,
                },
                _ => EntraError::Api {
                    endpoint,
                    status,
                    code,
                    message,
                },
            });
        }
    }

    fn report(&self, endpoint: &str, status: u16, elapsed: Duration) {
        if let Some(h) = &self.hook {
            h(endpoint, status, elapsed);
        }
    }
}

/// `error.code` and `error.message` of a Graph error body.
fn graph_error(body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => (b.error.code, b.error.message),
        // Not Graph's error shape: say so rather than repeat a body from who knows where.
        Err(_) => (
            String::new(),
            "the answer was not a Microsoft Graph error".to_string(),
        ),
    }
}

/// One page of a Graph collection. `value` is required: a body without it is not a page.
#[derive(Deserialize)]
struct WirePage<T> {
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    /// The last page of a delta round's: where the next round starts (reference §3).
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
    value: Vec<T>,
}

/// A listing, fetched one page at a time. [`GraphPages::next_page`] returns `Ok(None)` after
/// the last page; only then is [`GraphPages::is_complete`] true (the last page had no
/// `@odata.nextLink`), which is what a deletion decision must check. After an error the listing
/// is over and stays incomplete.
pub(crate) struct GraphPages<'c, T> {
    client: &'c GraphClient,
    endpoint: &'static str,
    permission: &'static str,
    what: String,
    next: Option<Url>,
    seen: HashSet<String>,
    pages: usize,
    complete: bool,
    delta_link: Option<String>,
    failed: bool,
    _item: PhantomData<T>,
}

impl<'c, T: DeserializeOwned> GraphPages<'c, T> {
    /// A listing from `url` (a first page, or a stored delta link).
    pub(crate) fn new(
        client: &'c GraphClient,
        endpoint: &'static str,
        permission: &'static str,
        url: Url,
        what: String,
    ) -> Self {
        GraphPages {
            client,
            endpoint,
            permission,
            what,
            next: Some(url),
            seen: HashSet::new(),
            pages: 0,
            complete: false,
            delta_link: None,
            failed: false,
            _item: PhantomData,
        }
    }

    /// The next page's items, or `None` once the listing is over.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<T>>, EntraError> {
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

    async fn fetch(&mut self) -> Result<Vec<T>, EntraError> {
        if self.pages >= self.client.max_pages {
            return Err(EntraError::TooManyPages {
                endpoint: self.endpoint,
                max_pages: self.client.max_pages,
            });
        }
        let url = self.next.take().expect("a listing not over has a next URL");
        let page: WirePage<T> = self
            .client
            .get_json(self.endpoint, self.permission, url, &self.what)
            .await?;
        self.pages += 1;
        match page.next_link.filter(|l| !l.is_empty()) {
            None => {
                self.complete = true;
                self.delta_link = page.delta_link.filter(|l| !l.is_empty());
            }
            Some(link) => {
                let parsed = Url::parse(&link)
                    .ok()
                    .filter(|u| self.client.link_allowed(u));
                let Some(url) = parsed else {
                    tracing::warn!(
                        endpoint = self.endpoint,
                        "a next link outside the Graph URL was not followed"
                    );
                    return Err(EntraError::NextLinkNotAllowed {
                        endpoint: self.endpoint,
                        graph_url: self.client.graph_url.to_string(),
                    });
                };
                if !self.seen.insert(link) {
                    return Err(EntraError::PageLinkLoop {
                        endpoint: self.endpoint,
                    });
                }
                self.next = Some(url);
            }
        }
        Ok(page.value)
    }

    /// Whether the last page (without `@odata.nextLink`) has been received.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Pages received so far.
    pub(crate) fn pages_fetched(&self) -> usize {
        self.pages
    }

    /// The `@odata.deltaLink` of the last page, once the listing is complete: a delta round
    /// that ends without one ended early.
    pub(crate) fn delta_link(&self) -> Option<&str> {
        self.delta_link.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_growing_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 1..=30 {
            let cap = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(p.max_delay);
            for _ in 0..20 {
                assert!(backoff(&p, attempt) <= cap, "attempt {attempt}");
            }
        }
    }

    #[test]
    fn graph_error_bodies_yield_code_and_message() {
        let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2024-01-01T10:00:00"}}}"#;
        assert_eq!(
            graph_error(body),
            (
                "Authorization_RequestDenied".to_string(),
                "Insufficient privileges to complete the operation.".to_string()
            )
        );
        assert_eq!(graph_error(b"<html>502</html>").0, "");
    }

    #[test]
    fn tenants_are_guids_or_domains() {
        for ok in [
            "8eaef023-2b34-4da1-9baa-8bc8c9d6a490",
            "contoso.onmicrosoft.com",
        ] {
            assert!(check_tenant(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".x",
            "common",
            "Organizations",
            "a/b",
            "x?y",
            "../evil",
            "a b",
        ] {
            assert_eq!(
                check_tenant(bad).unwrap_err().code(),
                "invalid_entra_config",
                "{bad}"
            );
        }
    }
}
