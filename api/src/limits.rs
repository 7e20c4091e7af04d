//! Rate limits and browser-facing rules applied before the handler: API requests per key or
//! session, sign-in starts per client address, failed authentication per client address, and
//! CORS (off unless origins are configured).
//!
//! Each policy is chosen by the path the router matches — percent-decoded, as actix-web routes
//! it — never by the request's text: `/api/v1/auth/%6Cogin` is password login and is limited as
//! such. The client address is [`client_addr`]'s, for every per-client limit.
//!
//! The per-client limits (sign-in starts, failed authentication) are kept in the database and
//! shared by every instance (see [`dirsync_core::rate_limit`]): spreading guesses over instances
//! gains an attacker nothing. The per-key API limit, which every request meets, is kept per
//! instance in memory: with several instances behind a load balancer a key's effective limit is
//! the configured one times the instance count, which is documented.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Instant;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method, StatusCode},
    middleware::Next,
    web, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use dirsync_core::net::{self, Cidr, ClientAddr};
use dirsync_core::rate_limit::SharedLimiter;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Routes where a sign-in starts, limited per client address.
pub(crate) const SIGNIN_ROUTES: &[&str] = &["/oidc/login", "/api/v1/auth/login"];

/// A token bucket per key: up to a minute's allowance at once, refilled continuously.
pub struct RateLimiter<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter allowing `per_minute` requests per key (0: unlimited).
    pub fn new(per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Tokens a full bucket holds, and tokens regained per second.
    fn rates(&self) -> (f64, f64) {
        let capacity = f64::from(self.per_minute);
        (capacity, capacity / 60.0)
    }

    /// Takes one request from `key`'s allowance, or says how many seconds until one is free.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let (capacity, per_sec) = self.rates();
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 50_000 {
            // Forget keys idle long enough to be full again.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() * per_sec < capacity);
        }
        // The key is copied only for a caller not seen before: this runs on every request.
        if !buckets.contains_key(key) {
            buckets.insert(key.clone(), (capacity, now));
        }
        let (tokens, last) = buckets.get_mut(key).expect("inserted above");
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_sec).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }

    /// Whether `key` has a request left, without taking it (and without remembering a key not
    /// seen before).
    pub fn peek(&self, key: &K) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let (capacity, per_sec) = self.rates();
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some((tokens, last)) = buckets.get(key) else {
            return Ok(());
        };
        let tokens = (tokens + last.elapsed().as_secs_f64() * per_sec).min(capacity);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(((1.0 - tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// Marks a request whose credential was proven (set by the `Auth` extractor).
#[derive(Clone, Copy)]
pub struct Authenticated;

/// Digests of credentials that authenticated on this instance. A client address that has spent
/// its failures is refused before any lookup — except with one of these: behind a proxy that
/// is not in `DIRSYNC_TRUSTED_PROXIES` every caller shares the proxy's address, and anyone
/// could otherwise shut the archive server's good key out by sending bad tokens. Such a
/// credential is still looked up as usual; one that then fails is forgotten.
#[derive(Default)]
pub struct KnownCredentials(Mutex<HashSet<[u8; 16]>>);

impl KnownCredentials {
    /// Keys and sessions in use are far fewer; past this, start again rather than grow.
    const MAX: usize = 100_000;

    fn contains(&self, key: &[u8; 16]) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn set(&self, key: [u8; 16], known: bool) {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !known {
            set.remove(&key);
            return;
        }
        if set.len() >= Self::MAX {
            set.clear();
        }
        set.insert(key);
    }
}

/// The limiters and CORS settings of one server.
pub struct Guards {
    /// Per key or session (a digest of the credential).
    pub api: RateLimiter<[u8; 16]>,
    /// Per client address, for sign-in starts; shared by all instances.
    pub signin: SharedLimiter,
    /// Per client address, for answers 401 on `/api/…`: spent by failures, checked before the
    /// credential is looked up; shared by all instances.
    pub auth_failures: SharedLimiter,
    /// Credentials proven here before, let past a spent failure allowance.
    pub known_credentials: KnownCredentials,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Allowed browser origins.
    pub cors_origins: Vec<String>,
}

impl Guards {
    /// The guards configured by `settings`, the shared ones kept in `db`.
    pub fn new(
        settings: &dirsync_core::settings::Settings,
        db: &sea_orm::DatabaseConnection,
    ) -> Guards {
        Guards {
            api: RateLimiter::new(settings.rate_limit_api_per_minute),
            signin: SharedLimiter::new(db.clone(), "signin", settings.rate_limit_signin_per_minute),
            auth_failures: SharedLimiter::new(
                db.clone(),
                "auth_failures",
                settings.rate_limit_auth_failures_per_minute,
            ),
            known_credentials: KnownCredentials::default(),
            trusted_proxies: settings.trusted_proxies.clone(),
            cors_origins: settings.cors_origins.clone(),
        }
    }
}

/// The client address of a request, for every per-client limit: the peer, or the client named
/// by `X-Forwarded-For` / `Forwarded` when the peer is a trusted proxy (see
/// [`dirsync_core::net::client_addr`]). Allocates nothing: it runs on every API request.
pub fn client_addr(req: &HttpRequest, trusted: &[Cidr]) -> ClientAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let values = |name| req.headers().get_all(name).filter_map(|v| v.to_str().ok());
    net::client_addr(
        peer,
        trusted,
        values(header::X_FORWARDED_FOR),
        values(header::FORWARDED),
    )
}

/// The path the router matches: percent-decoded (except `%2F`, `%25` and `%2B`, which the router
/// keeps encoded too). Every per-route rule reads this one, so that no spelling of a route takes
/// it out of its rules.
pub fn routed_path(req: &HttpRequest) -> &str {
    req.match_info().as_str()
}

/// Which limits apply to a route.
#[derive(Clone, Copy)]
struct RoutePolicy {
    /// A sign-in start: limited per client address.
    signin: bool,
    /// Under `/api/`: a credential is checked (per-key limit, failed-authentication limit).
    api: bool,
}

impl RoutePolicy {
    fn of(routed_path: &str) -> RoutePolicy {
        RoutePolicy {
            signin: SIGNIN_ROUTES.contains(&routed_path),
            api: routed_path.starts_with("/api/"),
        }
    }
}

/// The API limiter's key of a credential: a digest, so that tokens are not kept in memory.
fn credential_key(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

fn rate_limited(retry_after_secs: u64) -> HttpResponse {
    ApiError::from(dirsync_core::Error::RateLimited { retry_after_secs }).error_response()
}

/// The answer when a shared limit could not be read: the database's error (503
/// `database_unavailable` when it is away), never a pass — a limit that fails open is no limit.
fn limit_unknown(e: sea_orm::DbErr) -> HttpResponse {
    ApiError::from(dirsync_core::Error::from(e)).error_response()
}

/// Applies the guards; see the module doc.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let guards = req
        .app_data::<web::Data<Guards>>()
        .cloned()
        .expect("Guards are registered");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| guards.cors_origins.iter().any(|a| a == o))
        .map(str::to_owned);

    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        if let Some(origin) = &origin {
            let resp = HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, PUT, PATCH, DELETE",
                ))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .insert_header((header::VARY, "Origin"))
                .finish();
            return Ok(req.into_response(resp));
        }
    }

    let policy = RoutePolicy::of(routed_path(req.request()));
    // Written out (for a shared limit's key) only when a shared limit is consulted: a request
    // with a credential proven here before consults none.
    let client =
        (policy.signin || policy.api).then(|| client_addr(req.request(), &guards.trusted_proxies));
    if let (true, Some(client)) = (policy.signin, &client) {
        match guards.signin.check(&client.to_string()).await {
            Ok(Ok(())) => {}
            Ok(Err(secs)) => return Ok(req.into_response(rate_limited(secs))),
            Err(e) => return Ok(req.into_response(limit_unknown(e))),
        }
    }
    // The caller's credential (a bearer token, or the session cookie of a browser), by digest.
    let mut credential = None;
    if let (true, Some(client)) = (policy.api, &client) {
        let key = match crate::auth::bearer_token(req.request()) {
            Some(token) => Some(credential_key(token)),
            None => crate::routes::signin::session_cookie(req.request())
                .map(|cookie| credential_key(&cookie)),
        };
        let known = key.is_some_and(|k| guards.known_credentials.contains(&k));
        // A client that failed too often waits before any credential of it is looked up: new
        // random tokens would otherwise cost a database lookup each, and no token none at all.
        if !known {
            match guards.auth_failures.peek(&client.to_string()).await {
                Ok(Ok(())) => {}
                Ok(Err(secs)) => return Ok(req.into_response(rate_limited(secs))),
                Err(e) => return Ok(req.into_response(limit_unknown(e))),
            }
        }
        if let Some(key) = key {
            if let Err(secs) = guards.api.check(&key) {
                return Ok(req.into_response(rate_limited(secs)));
            }
            credential = Some((key, known));
        }
    }

    let mut res = next.call(req).await?.map_into_boxed_body();
    if let (true, Some(client)) = (policy.api, &client) {
        let proven = res.request().extensions().contains::<Authenticated>();
        if res.status() == StatusCode::UNAUTHORIZED {
            // A failure spends the client's allowance; once it is spent, the check above
            // answers 429 until it refills. Its answer is this 401 either way.
            if let Err(e) = guards.auth_failures.check(&client.to_string()).await {
                tracing::warn!(error = %e, "could not count a failed authentication");
            }
        }
        match credential {
            // Only the first success and a failure of a known credential take the lock.
            Some((key, false)) if proven => guards.known_credentials.set(key, true),
            Some((key, true)) if !proven && res.status() == StatusCode::UNAUTHORIZED => {
                guards.known_credentials.set(key, false)
            }
            _ => {}
        }
    }
    if let Some(origin) = origin {
        if let Ok(v) = header::HeaderValue::from_str(&origin) {
            res.headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            res.headers_mut()
                .insert(header::VARY, header::HeaderValue::from_static("Origin"));
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let l = RateLimiter::new(3);
        assert!(l.peek(&"a").is_ok(), "an unknown key has its allowance");
        assert!(l.check(&"a").is_ok() && l.check(&"a").is_ok() && l.check(&"a").is_ok());
        let wait = l.check(&"a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.peek(&"a").is_err());
        assert!(l.check(&"b").is_ok(), "keys are independent");
        assert!(RateLimiter::new(0).check(&"a").is_ok());
    }
}
