//! Test authentications: an administrator has a directory user sign in once, to check the setup.

use actix_web::{get, http::header, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use dirsync_core::oidc::auth_test::AuthTestStatus;
use dirsync_core::oidc::{self, auth_test::AuthTestView};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

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

// ---- test authentication ----

/// Start a test authentication.
///
/// Starts a test of a directory user's Sign in with Google: answers an `authorization_url` at
/// Google (with the user's address as `login_hint`). Completing it records on
/// `GET /api/v1/auth-tests/{id}` whether the user could sign in and why not; no session is
/// created. 404 for an unknown user, 422 for a local or not yet synchronized one.
///
/// Role: admin.
#[utoipa::path(tag = "sign-in", operation_id = "start_auth_test",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 201, description = "The test, with the URL to open at Google", body = AuthTest),
        (status = 409, description = "Sign in with Google is not configured (`not_configured`)", body = crate::error::ErrorBody),
        (status = 422, description = "The user is local (`not_a_directory_user`) or not synchronized yet (`not_synced`)", body = crate::error::ErrorBody)))]
#[post("/users/{id}/auth-test")]
pub(super) async fn start_auth_test(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let view = oidc::auth_test::start(
        &state.db,
        &state.cipher,
        &state.oidc,
        id.into_inner(),
        &caller.actor(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AuthTest::from(view)))
}

/// Read a test authentication.
///
/// A test authentication: `pending` until the user signs in at Google, then `succeeded` or
/// `failed` with the reason. A test not completed within 10 minutes fails with `expired`.
///
/// Role: admin.
#[utoipa::path(tag = "sign-in", operation_id = "get_auth_test",
    params(("id" = Uuid, Path, description = "Test id")),
    responses((status = 200, description = "The test and, once it ended, its result", body = AuthTest)))]
#[get("/auth-tests/{id}")]
pub(super) async fn get_auth_test(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<AuthTest>, ApiError> {
    let view = oidc::auth_test::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(view.into()))
}
