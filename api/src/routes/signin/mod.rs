//! Signing in: the Sign in with Google configuration, the OpenID Connect flow (`/oidc/login`,
//! `/oidc/signin`, outside `/api/v1`), local password sign-in, logout, and test authentication.
//!
//! Browsers get a session cookie (`dirsync_session`: HttpOnly, Secure, SameSite=Lax, Path=/) and
//! small HTML pages for failures; API clients that send `Accept: application/json` get the
//! session token and the one JSON error shape. `/oidc/login` also sets a short-lived cookie
//! (`dirsync_signin`) that binds the sign-in to the browser; `/oidc/signin` requires and clears
//! it. Over HTTPS both cookies are named with the `__Host-` prefix (`__Host-dirsync_session`,
//! `__Host-dirsync_signin`), which a browser accepts only from this very host, so that a
//! sibling subdomain cannot plant its own.
//!
//! One file per concern: [`config`] (the sign-in settings), [`sessions`] (password sign-in,
//! logout), [`browser`] (the OpenID Connect flow and its HTML pages), [`auth_test`] (test
//! authentications); the cookies they share are here.

mod auth_test;
mod browser;
mod config;
mod sessions;

use actix_web::{http::header, HttpRequest};
use utoipa_actix_web::service_config::ServiceConfig;

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "dirsync_session";
/// The session cookie's name over HTTPS.
pub const SESSION_COOKIE_HTTPS: &str = "__Host-dirsync_session";
/// The sign-in binding cookie's name over plain HTTP.
pub const SIGNIN_COOKIE: &str = "dirsync_signin";
/// The sign-in binding cookie's name over HTTPS.
pub const SIGNIN_COOKIE_HTTPS: &str = "__Host-dirsync_signin";

/// Routes under `/api/v1`.
pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(config::get_oidc)
        .service(config::put_oidc)
        .service(sessions::password_login)
        .service(sessions::logout)
        .service(auth_test::start_auth_test)
        .service(auth_test::get_auth_test);
}

/// Routes at the root: the browser flow.
pub(crate) fn configure_root(cfg: &mut ServiceConfig) {
    cfg.service(browser::oidc_login)
        .service(browser::oidc_signin);
}

/// Whether the browser reached this server over HTTPS: this server's own TLS, or a proxy that
/// says so (`X-Forwarded-Proto`, `Forwarded`). Only the caller's own cookie names depend on it:
/// a page cannot add those headers to another browser's requests.
fn over_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// The value of the cookie `name`, if the request carries it.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_string())
}

fn session_cookie_name(req: &HttpRequest) -> &'static str {
    if over_https(req) {
        SESSION_COOKIE_HTTPS
    } else {
        SESSION_COOKIE
    }
}

fn signin_cookie_name(req: &HttpRequest) -> &'static str {
    if over_https(req) {
        SIGNIN_COOKIE_HTTPS
    } else {
        SIGNIN_COOKIE
    }
}

/// The session token of the session cookie, if the request carries one. Over HTTPS only the
/// `__Host-` name counts: an unprefixed one may have been planted by a sibling subdomain.
pub(crate) fn session_cookie(req: &HttpRequest) -> Option<String> {
    cookie(req, session_cookie_name(req))
        // The cookie only ever holds a session token, never an API key.
        .filter(|v| v.starts_with("dss_"))
}

/// A `Set-Cookie` value. `Path=/` and `Secure` are what the `__Host-` prefix requires; Lax is
/// what lets the top-level redirect from Google to `/oidc/signin` carry the sign-in cookie.
fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={}",
        max_age_secs.max(0)
    )
}
