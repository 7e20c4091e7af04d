//! Users' privileges and folder access, and the default privileges of users created by
//! synchronization.
//!
//! Requests take names as strings and `dirsync-core` checks them, so that an unknown name is
//! answered with 422 `unknown_privilege` (or `unknown_access`) listing the valid names; the
//! documented schema still shows the valid names.

use actix_web::{get, put, web};
use dirsync_core::privileges::{self, Access, DefaultPrivileges, Privilege, Privileges};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Admin, Auth, Operator, Reader};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(read)
        .service(replace)
        .service(read_defaults)
        .service(replace_defaults);
}

/// Access to grant on one archive folder.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFolderAccess {
    /// The folder (see `GET /api/v1/archive-folders`).
    pub folder_id: Uuid,
    /// Any of `read`, `write`, `delete`; an empty list grants nothing.
    #[schema(value_type = Vec<Access>)]
    pub access: Vec<String>,
}

/// The whole new set of a user's privileges and folder access; replaces the current one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"privileges": ["login", "archive_email", "export_email"], "folder_access": []}))]
pub struct SetPrivileges {
    /// Privilege names; an unknown one is refused with the list of valid names.
    #[schema(value_type = Vec<Privilege>)]
    pub privileges: Vec<String>,
    /// Folder access, one entry per folder.
    pub folder_access: Vec<SetFolderAccess>,
}

/// New default privileges.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"privileges": ["login"], "own_folder_access": ["read"]}))]
pub struct SetDefaultPrivileges {
    /// Privilege names, e.g. `["login", "archive_email"]`.
    #[schema(value_type = Vec<Privilege>)]
    pub privileges: Vec<String>,
    /// Access to the user's own archive folder, e.g. `["read"]`.
    #[schema(value_type = Vec<Access>)]
    pub own_folder_access: Vec<String>,
}

/// Read a user's privileges.
///
/// A user's privileges and folder access.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "privileges", operation_id = "get_user_privileges",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user's privileges and folder access", body = Privileges)))]
#[get("/users/{id}/privileges")]
async fn read(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Privileges>, ApiError> {
    let p = privileges::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(p))
}

/// Replace a user's privileges.
///
/// Replaces a user's privileges and folder access, all at once. Directory users' privileges
/// are editable too: Google does not manage them.
///
/// Role: admin.
#[utoipa::path(tag = "privileges", operation_id = "set_user_privileges",
    request_body = SetPrivileges,
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user's new privileges and folder access", body = Privileges)))]
#[put("/users/{id}/privileges")]
async fn replace(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<SetPrivileges>,
) -> Result<web::Json<Privileges>, ApiError> {
    let body = body.into_inner();
    let input = privileges::PrivilegesInput {
        privileges: body.privileges,
        folder_access: body
            .folder_access
            .into_iter()
            .map(|fa| privileges::FolderAccessInput {
                folder_id: fa.folder_id,
                access: fa.access,
            })
            .collect(),
    };
    let p = privileges::replace(&state.db, &caller.actor(), id.into_inner(), &input).await?;
    Ok(web::Json(p))
}

/// Read the default privileges.
///
/// The privileges users created by synchronization receive (by default `login`, and `read` on
/// their own archive folder).
///
/// Role: operator (or admin).
#[utoipa::path(tag = "privileges", operation_id = "get_default_privileges",
    responses((status = 200, description = "The default privileges", body = DefaultPrivileges)))]
#[get("/directory/default-privileges")]
async fn read_defaults(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<DefaultPrivileges>, ApiError> {
    let d = privileges::load_defaults(&state.db).await?;
    Ok(web::Json(d))
}

/// Change the default privileges.
///
/// Changes the default privileges. They apply to users created from then on; existing users
/// keep the privileges they have.
///
/// Role: admin.
#[utoipa::path(tag = "privileges", operation_id = "set_default_privileges",
    request_body = SetDefaultPrivileges,
    responses((status = 200, description = "The new default privileges", body = DefaultPrivileges)))]
#[put("/directory/default-privileges")]
async fn replace_defaults(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<SetDefaultPrivileges>,
) -> Result<web::Json<DefaultPrivileges>, ApiError> {
    let body = body.into_inner();
    let input = privileges::DefaultPrivilegesInput {
        privileges: body.privileges,
        own_folder_access: body.own_folder_access,
    };
    let d = privileges::save_defaults(&state.db, &caller.actor(), &input).await?;
    Ok(web::Json(d))
}
