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

use actix_web::{
    get,
    http::{header, StatusCode},
    post, put, web, HttpRequest, HttpResponse, ResponseError,
};
use chrono::{DateTime, Utc};
use dirsync_core::auth::{revoke_session, Principal};
use dirsync_core::oidc::auth_test::AuthTestStatus;
use dirsync_core::oidc::{
    self, auth_test::AuthTestView, config, BrowserBinding, Callback, CallbackOutcome, LoginRequest,
    SessionUser, SignedIn, SigninError, SigninErrorKind,
};
use dirsync_core::{audit, password, Error};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::users::User;
use crate::auth::{Admin, Anyone, Auth, Operator};
use crate::error::ApiError;
use crate::state::AppState;

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
    cfg.service(get_oidc)
        .service(put_oidc)
        .service(password_login)
        .service(logout)
        .service(start_auth_test)
        .service(get_auth_test);
}

/// Routes at the root: the browser flow.
pub(crate) fn configure_root(cfg: &mut ServiceConfig) {
    cfg.service(oidc_login).service(oidc_signin);
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

fn status_of(kind: SigninErrorKind) -> StatusCode {
    match kind {
        SigninErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        SigninErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        SigninErrorKind::Forbidden => StatusCode::FORBIDDEN,
        // Like the directory's `not_configured`: the installation's state, not a server fault.
        SigninErrorKind::NotConfigured => StatusCode::CONFLICT,
        SigninErrorKind::Upstream => StatusCode::BAD_GATEWAY,
    }
}

impl From<SigninError> for ApiError {
    fn from(e: SigninError) -> Self {
        match e {
            SigninError::Refused {
                kind,
                code,
                message,
            } => ApiError::new(status_of(kind), code, message),
            SigninError::Other(e) => e.into(),
        }
    }
}

// ---- configuration ----

/// Sign in with Google settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The OAuth client id from Google Cloud (`…apps.googleusercontent.com`).
    pub client_id: String,
    /// The client secret. Required the first time; leave it out to keep the stored one. Never
    /// returned.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered for the client: `https://<host>[:port]/oidc/signin` (http
    /// only for localhost and loopback), checked as Google checks it.
    pub redirect_uri: String,
    /// Accepted `hd` claims (Workspace domains); empty = any domain (the user must still exist
    /// here). With exactly one, Google's account chooser is limited to it.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Lifetime of the sessions issued, 5 to 43200 minutes (default 480).
    #[serde(default)]
    #[schema(minimum = 5, maximum = 43200)]
    pub session_ttl_minutes: Option<u32>,
}

/// The Sign in with Google configuration (the client secret is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcConfig {
    /// The OAuth client id; null until configured.
    pub client_id: Option<String>,
    /// Whether a client secret is stored.
    pub client_secret_set: bool,
    /// The redirect URI; null until configured.
    pub redirect_uri: Option<String>,
    /// Accepted `hd` claims; empty = any.
    pub allowed_domains: Vec<String>,
    /// Session lifetime in minutes.
    pub session_ttl_minutes: u32,
    /// Last change; null until configured.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<config::OidcView> for OidcConfig {
    fn from(v: config::OidcView) -> Self {
        OidcConfig {
            client_id: v.client_id,
            client_secret_set: v.client_secret_set,
            redirect_uri: v.redirect_uri,
            allowed_domains: v.allowed_domains,
            session_ttl_minutes: v.session_ttl_minutes,
            updated_at: v.updated_at,
        }
    }
}

/// The Sign in with Google configuration. `client_secret` is never returned; `client_secret_set`
/// says whether one is stored.
#[utoipa::path(tag = "sign-in", operation_id = "get_oidc_config", responses((status = 200, body = OidcConfig)))]
#[get("/auth/oidc")]
async fn get_oidc(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<OidcConfig>, ApiError> {
    Ok(web::Json(config::get(&state.db).await?.into()))
}

/// Saves the Sign in with Google configuration. The client secret is stored encrypted; leave it
/// out to keep the stored one. `redirect_uri` is checked as Google checks it: a 422 names the
/// rule broken in `details.rule`.
#[utoipa::path(tag = "sign-in", operation_id = "put_oidc_config", request_body = OidcSettings,
    responses((status = 200, body = OidcConfig)))]
#[put("/auth/oidc")]
async fn put_oidc(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<OidcSettings>,
) -> Result<web::Json<OidcConfig>, ApiError> {
    let b = body.into_inner();
    let settings = config::OidcSettings {
        client_id: b.client_id,
        client_secret: b.client_secret,
        redirect_uri: b.redirect_uri,
        allowed_domains: b.allowed_domains,
        session_ttl_minutes: b.session_ttl_minutes,
    };
    let (before, after, secret_changed) =
        config::update(&state.db, &state.cipher, settings).await?;
    audit::record(
        &state.db,
        &caller.actor(),
        "oidc.update",
        "oidc_config",
        None,
        serde_json::json!({
            "before": before,
            "after": after,
            "client_secret": if secret_changed { Some("[changed]") } else { None },
        }),
    )
    .await?;
    Ok(web::Json(after.into()))
}

// ---- sessions ----

/// A signed-in user: the user as `GET /api/v1/users/{id}` shows it, plus its privileges.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInUser {
    /// The user (never disabled here: disabled users cannot sign in).
    #[serde(flatten)]
    pub user: User,
    /// Privileges held (`admin` makes the session act as an admin).
    pub privileges: Vec<String>,
}

impl From<SessionUser> for SignedInUser {
    fn from(u: SessionUser) -> Self {
        SignedInUser {
            user: u.user.into(),
            privileges: u.privileges,
        }
    }
}

/// A new session: send `token` as `Authorization: Bearer <token>`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// The session token (`dss_…`), shown once.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who signed in.
    pub user: SignedInUser,
}

fn session_json(s: SignedIn) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Session {
            token: s.token.expose_secret().to_string(),
            expires_at: s.expires_at,
            user: s.user.into(),
        })
}

/// A local user's credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLogin {
    /// User name (case-insensitive).
    pub user_name: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Signs a `local` user in with a password and answers a session token. A wrong password, an
/// unknown user and a directory user (who signs in with Google at `/oidc/login`) get the same
/// 401 `invalid_credentials` after the same work, so that the answer does not tell who is in the
/// directory; disabled users and users without the `login` privilege get a 403 once the
/// password is right.
#[utoipa::path(tag = "sign-in", operation_id = "password_login", security(()), request_body = PasswordLogin,
    responses((status = 200, body = Session),
        (status = 401, description = "Wrong user name or password", body = crate::error::ErrorBody),
        (status = 403, description = "Disabled, or no login privilege", body = crate::error::ErrorBody)))]
#[post("/auth/login")]
async fn password_login(
    state: web::Data<AppState>,
    body: web::Json<PasswordLogin>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let signed_in = password::password_login(&state.db, &b.user_name, b.password).await;
    state.metrics.signin(
        "password",
        signed_in.as_ref().map_or_else(|e| e.code(), |_| "success"),
    );
    Ok(session_json(signed_in?))
}

/// Ends the caller's session (the bearer token or the session cookie) and clears the cookie.
/// API keys are not sessions: delete them with `DELETE /api/v1/api-keys/{id}`.
#[utoipa::path(tag = "sign-in", operation_id = "logout",
    responses((status = 204, description = "Signed out")))]
#[post("/auth/logout")]
async fn logout(
    caller: Auth<Anyone>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Principal::Session { session_id, .. } = caller.principal else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_session",
            "only a session can sign out; API keys are deleted with DELETE /api/v1/api-keys/{id}",
        ));
    };
    revoke_session(&state.db, session_id).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            set_cookie(session_cookie_name(&req), "", 0),
        ))
        .finish())
}

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

/// A refused sign-in, as the client prefers it: the JSON error shape or a small HTML page.
fn failure(err: SigninError, json: bool) -> HttpResponse {
    let api = ApiError::from(err);
    if json {
        return api.error_response();
    }
    // Display is "code: message"; the message says what to do, the code helps support.
    let text = api.to_string();
    let message = text.split_once(": ").map_or(text.as_str(), |(_, m)| m);
    html_page(api.status_code(), "Sign-in failed", message)
}

/// `/oidc/login` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path on this server to land on after signing in (anything else is ignored).
    pub return_to: Option<String>,
    /// The address to sign in as; passed on to Google.
    pub login_hint: Option<String>,
}

/// Starts Sign in with Google: redirects (302) the browser to Google's authorization endpoint
/// with a fresh single-use `state`, `nonce` and PKCE challenge (valid 10 minutes). No token
/// needed. The sign-in cookie it sets (`dirsync_signin`, `__Host-dirsync_signin` over HTTPS)
/// binds the sign-in to this browser: `/oidc/signin` refuses a callback that comes without it.
#[utoipa::path(tag = "sign-in", operation_id = "oidc_login", security(()), params(LoginQuery),
    responses((status = 302, description = "To Google's authorization endpoint",
        headers(("Location" = String, description = "Google's authorization URL"),
            ("Set-Cookie" = String, description = "dirsync_signin=…; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=600 (`__Host-dirsync_signin` over HTTPS)"))),
        (status = 409, description = "Sign in with Google is not configured", body = crate::error::ErrorBody)))]
#[get("/oidc/login")]
async fn oidc_login(
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

/// A test of one user's Sign in with Google.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthTest {
    /// Test id.
    pub id: Uuid,
    /// The tested user.
    pub user_id: Uuid,
    /// `pending`, `succeeded` or `failed`.
    pub status: AuthTestStatus,
    /// Why it failed: `<code>: <explanation>`; codes: `wrong_account`, `user_disabled`,
    /// `login_not_allowed`, `domain_not_allowed`, `email_not_verified`, `user_not_found`,
    /// `expired`, `google_error`, `code_rejected`, and the ID-token checks (`wrong_issuer`, …).
    pub reason: Option<String>,
    /// The code part of `reason`.
    pub reason_code: Option<String>,
    /// Open this at Google, signed in as the tested user (its address is the `login_hint`).
    pub authorization_url: String,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<AuthTestView> for AuthTest {
    fn from(v: AuthTestView) -> Self {
        AuthTest {
            reason_code: v.reason_code().map(str::to_string),
            id: v.id,
            user_id: v.user_id,
            status: v.status,
            reason: v.reason,
            authorization_url: v.authorization_url,
            created_by: v.created_by,
            created_at: v.created_at,
            finished_at: v.finished_at,
        }
    }
}

/// Google's redirect after signing in. Consumes the sign-in attempt (once, within 10 minutes),
/// requires the sign-in cookie of the browser that started it (400 `browser_mismatch`; not for
/// a test authentication) and, when the callback names an issuer (`iss`), that it is the
/// provider's (400 `issuer_mismatch`), exchanges the code, validates the ID token and finds the
/// user by its Google id: it must exist here, not be disabled, and hold the `login` privilege. With `Accept: application/json` the
/// answer is the session; otherwise the session cookie is set and the browser is sent (303) to
/// `return_to`. A test authentication records its result instead (no session). Failures are
/// the JSON error shape or a small HTML page.
#[utoipa::path(tag = "sign-in", operation_id = "oidc_signin", security(()), params(CallbackQuery),
    responses(
        (status = 200, description = "Signed in (Accept: application/json), or a test authentication's result",
            content((Session = "application/json"), (AuthTest = "application/json"), (String = "text/html"))),
        (status = 303, description = "Signed in: session cookie set (the sign-in cookie cleared), redirect to return_to",
            headers(("Location" = String), ("Set-Cookie" = String, description = "dirsync_session=…; HttpOnly; Secure; SameSite=Lax; Path=/ (`__Host-dirsync_session` over HTTPS)"))),
        (status = 400, description = "Unknown, reused or expired state; started in another browser (`browser_mismatch`); another issuer (`issuer_mismatch`); rejected code", body = crate::error::ErrorBody),
        (status = 401, description = "The ID token failed validation", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed to sign in (unknown, disabled, no login, domain, unverified)", body = crate::error::ErrorBody)))]
#[get("/oidc/signin")]
async fn oidc_signin(
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
                return HttpResponse::Ok().json(AuthTest::from(view));
            }
            let message = match &view.reason {
                None => "The user can sign in with Google. No session was created.".to_string(),
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

// ---- test authentication ----

/// Starts a test of a directory user's Sign in with Google: answers an `authorization_url` at
/// Google (with the user's address as `login_hint`). Completing it records on
/// `GET /api/v1/auth-tests/{id}` whether the user could sign in and why not; no session is
/// created. 404 for an unknown user, 422 for a local or not yet synchronized one.
#[utoipa::path(tag = "sign-in", operation_id = "start_auth_test",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 201, body = AuthTest)))]
#[post("/users/{id}/auth-test")]
async fn start_auth_test(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor();
    let view = oidc::auth_test::start(
        &state.db,
        &state.cipher,
        &state.oidc,
        id.into_inner(),
        &actor,
    )
    .await?;
    audit::record(
        &state.db,
        &actor,
        "user.auth_test",
        "user",
        Some(view.user_id.to_string()),
        serde_json::json!({ "auth_test_id": view.id }),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AuthTest::from(view)))
}

/// A test authentication: `pending` until the user signs in at Google, then `succeeded` or
/// `failed` with the reason. A test not completed within 10 minutes fails with `expired`.
#[utoipa::path(tag = "sign-in", operation_id = "get_auth_test",
    params(("id" = Uuid, Path, description = "Test id")),
    responses((status = 200, body = AuthTest)))]
#[get("/auth-tests/{id}")]
async fn get_auth_test(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<AuthTest>, ApiError> {
    let view = oidc::auth_test::get(&state.db, id.into_inner())
        .await
        .map_err(|e: Error| ApiError::from(e))?;
    Ok(web::Json(view.into()))
}
