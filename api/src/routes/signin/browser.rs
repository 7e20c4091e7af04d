//! The browser flow: `/oidc/login` sends the browser to Google, `/oidc/signin` takes it back,
//! with small HTML pages for failures.

use actix_web::{
    get,
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse, ResponseError,
};
use chrono::Utc;
use dirsync_core::oidc::{self, BrowserBinding, Callback, CallbackOutcome, LoginRequest};
use dirsync_core::Error;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::IntoParams;

use super::sessions::{session_json, Session};
use super::*;
use crate::error::ApiError;
use crate::state::AppState;
use dirsync_core::oidc::auth_test::AuthTestView;

// ---- the browser flow ----

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} - dirsync</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}</style>\
         </head><body><h1>{t}</h1><p id=\"message\">{m}</p>\
         <p><a href=\"/oidc/login\">Sign in again</a></p></body></html>\n",
        t = html_escape(title),
        m = html_escape(message)
    );
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// A refused sign-in, as the client prefers it: the JSON error shape or a small HTML page, both
/// with the status of the one mapping (`crate::error`).
fn failure(err: Error, json: bool) -> HttpResponse {
    let api = ApiError::from(err);
    if json {
        return api.error_response();
    }
    // The message says what to do; the code is for support and scripts, which ask for JSON.
    html_page(api.status_code(), "Sign-in failed", api.message())
}

/// `/oidc/login` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path on this server to land on after signing in (anything else is ignored).
    pub return_to: Option<String>,
    /// The address to sign in as; passed on to the provider.
    pub login_hint: Option<String>,
}

/// Start signing in with the directory's provider.
///
/// Starts Sign in with Google (or with Microsoft when the directory is Entra ID): redirects
/// (302) the browser to the provider's authorization endpoint
/// with a fresh single-use `state`, `nonce` and PKCE challenge (valid 10 minutes). No token
/// needed. The sign-in cookie it sets (`dirsync_signin`, `__Host-dirsync_signin` over HTTPS)
/// binds the sign-in to this browser: `/oidc/signin` refuses a callback that comes without it.
///
/// No token needed.
#[utoipa::path(tag = "sign-in", operation_id = "oidc_login", security(()), params(LoginQuery),
    responses((status = 302, description = "To the provider's authorization endpoint",
        headers(("Location" = String, description = "The provider's authorization URL"),
            ("Set-Cookie" = String, description = "dirsync_signin=…; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=600 (`__Host-dirsync_signin` over HTTPS)"))),
        (status = 409, description = "Sign-in is not configured", body = crate::error::ErrorBody)))]
#[get("/oidc/login")]
pub(super) async fn oidc_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let q = query.into_inner();
    let request = LoginRequest {
        return_to: q.return_to,
        login_hint: q.login_hint,
        client: Some(oidc::AttemptClient {
            addr: crate::limits::client_addr(&req, &state.settings.trusted_proxies),
            max_open: state.settings.signin_open_attempts_per_client,
        }),
    };
    let name = signin_cookie_name(&req);
    // A browser that already holds a binding keeps it, so that sign-ins started in two tabs
    // both finish.
    let browser = cookie(&req, name)
        .and_then(|v| BrowserBinding::from_cookie(&v))
        .unwrap_or_else(BrowserBinding::generate);
    match oidc::start_login(&state.db, &state.cipher, &state.oidc, request, &browser).await {
        Ok(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((
                header::SET_COOKIE,
                set_cookie(name, browser.expose(), oidc::ATTEMPT_TTL_MINUTES * 60),
            ))
            .finish(),
        Err(e) => failure(e, wants_json(&req)),
    }
}

/// `/oidc/signin` parameters (Google's redirect).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The state given to Google.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// Google's error instead of a code (e.g. `access_denied`).
    pub error: Option<String>,
    /// The provider's explanation of `error`: logged, and shown cleaned and shortened.
    pub error_description: Option<String>,
    /// The issuer that answered (RFC 9207); when present it must be the provider's issuer.
    pub iss: Option<String>,
}

/// Finish signing in (the provider's redirect).
///
/// The provider's redirect after signing in. Consumes the sign-in attempt (once, within 10 minutes),
/// requires the sign-in cookie of the browser that started it (400 `browser_mismatch`; not for
/// a test authentication) and, when the callback names an issuer (`iss`), that it is the
/// provider's (400 `issuer_mismatch`), exchanges the code, validates the ID token and finds the
/// user by its directory id (Google's `sub`; Microsoft's `oid` in the configured tenant): it must exist here, not be disabled, and hold the `login` privilege. With `Accept: application/json` the
/// answer is the session; otherwise the session cookie is set and the browser is sent (303) to
/// `return_to`. A test authentication records its result instead (no session). Failures are
/// the JSON error shape or a small HTML page.
///
/// No token needed.
#[utoipa::path(tag = "sign-in", operation_id = "oidc_signin", security(()), params(CallbackQuery),
    responses(
        (status = 200, description = "Signed in (Accept: application/json), or a test authentication's result",
            content((Session = "application/json"), (AuthTestView = "application/json"), (String = "text/html"))),
        (status = 303, description = "Signed in: session cookie set (the sign-in cookie cleared), redirect to return_to",
            headers(("Location" = String), ("Set-Cookie" = String, description = "dirsync_session=…; HttpOnly; Secure; SameSite=Lax; Path=/ (`__Host-dirsync_session` over HTTPS)"))),
        (status = 400, description = "Unknown, reused or expired state; started in another browser (`browser_mismatch`); another issuer (`issuer_mismatch`); rejected code", body = crate::error::ErrorBody),
        (status = 401, description = "The ID token failed validation", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed to sign in (unknown, disabled, no login, domain, unverified)", body = crate::error::ErrorBody)))]
#[get("/oidc/signin")]
pub(super) async fn oidc_signin(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let q = query.into_inner();
    let binding_cookie = signin_cookie_name(&req);
    let callback = Callback {
        state: q.state.map(SecretString::from),
        code: q.code.map(SecretString::from),
        error: q.error,
        error_description: q.error_description,
        iss: q.iss,
        browser: cookie(&req, binding_cookie).and_then(|v| BrowserBinding::from_cookie(&v)),
    };
    let json = wants_json(&req);
    // The sign-in cookie has served once the browser's sign-in ends, however it ends.
    let cleared = set_cookie(binding_cookie, "", 0);
    let outcome = oidc::finish_login(&state.db, &state.cipher, &state.oidc, callback).await;
    // A test authentication is an administrator's check, not a sign-in: not counted.
    match &outcome {
        Err(e) => state.metrics.signin("google", e.code()),
        Ok(CallbackOutcome::SignedIn(_)) => state.metrics.signin("google", "success"),
        Ok(CallbackOutcome::TestFinished(_)) => {}
    }
    match outcome {
        Err(e) => {
            let mut resp = failure(e, json);
            if let Ok(v) = header::HeaderValue::from_str(&cleared) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(CallbackOutcome::TestFinished(view)) => {
            if json {
                return HttpResponse::Ok().json(view);
            }
            let message = match &view.reason {
                None => "The user can sign in. No session was created.".to_string(),
                Some(r) => format!("The user cannot sign in: {r}. No session was created."),
            };
            html_page(
                StatusCode::OK,
                &format!("Test authentication {}", view.status),
                &message,
            )
        }
        Ok(CallbackOutcome::SignedIn(s)) => {
            if json {
                let mut resp = session_json(s);
                if let Ok(v) = header::HeaderValue::from_str(&cleared) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
                return resp;
            }
            let max_age = (s.expires_at - Utc::now()).num_seconds();
            let location = s.return_to.clone().unwrap_or_else(|| "/".into());
            HttpResponse::SeeOther()
                .insert_header((
                    header::SET_COOKIE,
                    set_cookie(session_cookie_name(&req), s.token.expose_secret(), max_age),
                ))
                .append_header((header::SET_COOKIE, cleared))
                .insert_header((header::LOCATION, location))
                .finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The browser's HTML page and the JSON answer of a refused sign-in get their status from
    /// the one mapping, and the page shows the message alone.
    #[test]
    fn a_refused_sign_in_has_one_status_as_html_or_json() {
        let refusals = || {
            vec![
                (Error::bad_request("invalid_state", "start again"), 400),
                (
                    Error::unauthenticated("invalid_credentials", "wrong password"),
                    401,
                ),
                (
                    Error::forbidden("user_disabled", "ask an administrator"),
                    403,
                ),
                (
                    Error::conflict("not_configured", "see PUT /api/v1/auth/oidc"),
                    409,
                ),
                (Error::upstream("google_unavailable", "try again"), 502),
            ]
        };
        for (e, expected) in refusals() {
            assert_eq!(failure(e, true).status().as_u16(), expected);
        }
        for (e, expected) in refusals() {
            let (code, message) = (e.code(), e.to_string());
            let page = failure(e, false);
            assert_eq!(page.status().as_u16(), expected, "{code}");
            use actix_web::body::MessageBody;
            let Ok(body) = page.into_body().try_into_bytes() else {
                panic!("a sized body");
            };
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(body.contains(&html_escape(&message)), "{body}");
            assert!(!body.contains(code), "{body}");
        }
    }
}
