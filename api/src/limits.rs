//! Rate limits and browser-facing rules applied before routing: API requests per key or
//! session, sign-in starts per client address, and CORS (off unless origins are configured).
//!
//! Limits are kept per instance, in memory: with several instances behind a load balancer the
//! effective limit is the configured one times the instance count, which is documented.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, HttpResponse, ResponseError,
};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Paths where a sign-in starts, limited per client address.
const SIGNIN_PATHS: &[&str] = &["/oidc/login", "/api/v1/auth/login"];

/// A token bucket per key: up to a minute's allowance at once, refilled continuously.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per key (0: unlimited).
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s allowance, or says how many seconds until one is free.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 50_000 {
            // Forget keys idle long enough to be full again.
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() * per_sec < capacity);
        }
        // The key is copied only for a caller not seen before: this runs on every request.
        if !buckets.contains_key(key) {
            buckets.insert(key.to_string(), (capacity, now));
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
}

/// The limiters and CORS settings of one server.
pub struct Guards {
    /// Per key or session.
    pub api: RateLimiter,
    /// Per client address, for sign-in starts.
    pub signin: RateLimiter,
    /// Allowed browser origins.
    pub cors_origins: Vec<String>,
}

fn rate_limited(retry_after_secs: u64) -> HttpResponse {
    ApiError::from(dirsync_core::Error::RateLimited { retry_after_secs }).error_response()
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

    let path = req.path().to_string();
    if SIGNIN_PATHS.contains(&path.as_str()) {
        let ip = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        if let Err(secs) = guards.signin.check(&format!("ip:{ip}")) {
            return Ok(req.into_response(rate_limited(secs)));
        }
    }
    if path.starts_with("/api/") {
        // The caller's credential: a bearer token, or the session cookie of a browser.
        let credential = crate::auth::bearer_token(req.request())
            .map(str::to_owned)
            .or_else(|| crate::routes::signin::session_cookie(req.request()));
        if let Some(token) = credential {
            let key = hex::encode(&Sha256::digest(token.as_bytes())[..12]);
            if let Err(secs) = guards.api.check(&key) {
                return Ok(req.into_response(rate_limited(secs)));
            }
        }
    }

    let mut res = next.call(req).await?.map_into_boxed_body();
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
        assert!(l.check("a").is_ok() && l.check("a").is_ok() && l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.check("b").is_ok(), "keys are independent");
        assert!(RateLimiter::new(0).check("a").is_ok());
    }
}
