//! Test authentications: an administrator has a directory user sign in once, to check the setup.

use actix_web::{get, http::header, post, web, HttpResponse};
use dirsync_core::oidc::{self, auth_test::AuthTestView};
use uuid::Uuid;

use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

// ---- test authentication ----

/// Start a test authentication.
///
/// Starts a test of a directory user's sign-in with the directory's provider: answers an
/// `authorization_url` at Google or Microsoft (with the user's address as `login_hint`). Completing it records on
/// `GET /api/v1/auth-tests/{id}` whether the user could sign in and why not; no session is
/// created. 404 for an unknown user, 422 for a local or not yet synchronized one.
///
/// Role: admin.
#[utoipa::path(tag = "sign-in", operation_id = "start_auth_test",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 201, description = "The test, with the URL to open at the provider", body = AuthTestView),
        (status = 409, description = "Sign-in is not configured (`not_configured`)", body = crate::error::ErrorBody),
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
        .json(view))
}

/// Read a test authentication.
///
/// A test authentication: `pending` until the user signs in at the provider, then `succeeded` or
/// `failed` with the reason. A test not completed within 10 minutes fails with `expired`.
///
/// Role: admin.
#[utoipa::path(tag = "sign-in", operation_id = "get_auth_test",
    params(("id" = Uuid, Path, description = "Test id")),
    responses((status = 200, description = "The test and, once it ended, its result", body = AuthTestView)))]
#[get("/auth-tests/{id}")]
pub(super) async fn get_auth_test(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<AuthTestView>, ApiError> {
    let view = oidc::auth_test::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(view))
}
