//! Sessions: local password sign-in and logout.

use actix_web::{http::header, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use dirsync_core::auth::{revoke_session, Principal};
use dirsync_core::oidc::{SessionUser, SignedIn};
use dirsync_core::Error;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::auth::{Anyone, Auth};
use crate::error::ApiError;
use crate::state::AppState;

// ---- sessions ----

/// A new session: send `token` as `Authorization: Bearer <token>`.
// Kept in the API rather than serializing core's `SignedIn`: the token is a secret there, and
// this is the one place that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// The session token (`dss_…`), shown once.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who signed in.
    pub user: SessionUser,
}

pub(super) fn session_json(s: SignedIn) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Session {
            token: s.token.expose_secret().to_string(),
            expires_at: s.expires_at,
            user: s.user,
        })
}

/// A local user's credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_name": "jdoe", "password": "correct horse battery"}))]
pub struct PasswordLogin {
    /// User name (case-insensitive).
    pub user_name: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Sign in with a password.
///
/// Signs a `local` user in with a password and answers a session token. A wrong password, an
/// unknown user and a directory user (who signs in with Google at `/oidc/login`) get the same
/// 401 `invalid_credentials` after the same work, so that the answer does not tell who is in the
/// directory; disabled users and users without the `login` privilege get a 403 once the
/// password is right.
///
/// No token needed.
#[utoipa::path(tag = "sign-in", operation_id = "password_login", security(()), request_body = PasswordLogin,
    responses((status = 200, description = "Signed in: the session", body = Session),
        (status = 401, description = "Wrong user name or password", body = crate::error::ErrorBody),
        (status = 403, description = "Disabled, or no login privilege", body = crate::error::ErrorBody)))]
#[post("/auth/login")]
pub(super) async fn password_login(
    state: web::Data<AppState>,
    body: web::Json<PasswordLogin>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let signed_in =
        dirsync_core::password::password_login(&state.db, &b.user_name, b.password).await;
    state.metrics.signin(
        "password",
        signed_in.as_ref().map_or_else(|e| e.code(), |_| "success"),
    );
    Ok(session_json(signed_in?))
}

/// Sign out.
///
/// Ends the caller's session (the bearer token or the session cookie) and clears the cookie.
/// API keys are not sessions: delete them with `DELETE /api/v1/api-keys/{id}`.
///
/// Role: any authenticated caller.
#[utoipa::path(tag = "sign-in", operation_id = "logout",
    responses((status = 204, description = "Signed out"),
        (status = 400, description = "The caller is an API key, not a session (`not_a_session`)", body = crate::error::ErrorBody)))]
#[post("/auth/logout")]
pub(super) async fn logout(
    caller: Auth<Anyone>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Principal::Session { session_id, .. } = caller.principal else {
        return Err(Error::bad_request(
            "not_a_session",
            "only a session can sign out; API keys are deleted with DELETE /api/v1/api-keys/{id}",
        )
        .into());
    };
    revoke_session(&state.db, session_id).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            set_cookie(session_cookie_name(&req), "", 0),
        ))
        .finish())
}
