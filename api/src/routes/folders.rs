//! Archive folders: one per user, named after it; the archive server reports their message
//! counts, which decide whether a folder outlives its user.

use actix_web::{get, patch, web};
use dirsync_core::folders::{self, Folder};
use dirsync_core::paging::PageRequest;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::Paged;
use crate::auth::{Auth, Operator, Reader};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(read).service(update);
}

/// Filter and paging of the folder list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FolderQuery {
    /// Only detached folders (`true`) or only folders with an owner (`false`).
    pub detached: Option<bool>,
    /// Items per page, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// What the archive server reports about a folder.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"message_count": 1250}))]
pub struct UpdateArchiveFolder {
    /// Messages the folder holds now (0 to 2^53 - 1).
    #[serde(deserialize_with = "crate::integer::json_count")]
    #[schema(minimum = 0, maximum = 9007199254740991_i64)]
    pub message_count: i64,
}

/// List archive folders.
///
/// Lists archive folders by name.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "archive-folders", operation_id = "list_archive_folders",
    params(FolderQuery), responses((status = 200, description = "A page of folders, by name", body = Paged<Folder>)))]
#[get("/archive-folders")]
async fn list(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    query: web::Query<FolderQuery>,
) -> Result<web::Json<Paged<Folder>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = folders::FolderFilter {
        detached: query.detached,
    };
    let found = folders::list(&state.db, &filter, page).await?;
    Ok(web::Json(found.into()))
}

/// Read an archive folder.
///
/// One archive folder.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "archive-folders", operation_id = "get_archive_folder",
    params(("id" = Uuid, Path, description = "Folder id")),
    responses((status = 200, description = "The folder", body = Folder)))]
#[get("/archive-folders/{id}")]
async fn read(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Folder>, ApiError> {
    let folder = folders::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(folder))
}

/// Report a folder's message count.
///
/// Records how many messages a folder holds; a folder holding messages is kept (detached)
/// when its user is deleted. Needs the `operator` role, so that the archive server can report
/// counts with an operator key without being able to change users or privileges.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "archive-folders", operation_id = "update_archive_folder",
    request_body = UpdateArchiveFolder,
    params(("id" = Uuid, Path, description = "Folder id")),
    responses((status = 200, description = "The folder with its new count", body = Folder)))]
#[patch("/archive-folders/{id}")]
async fn update(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<UpdateArchiveFolder>,
) -> Result<web::Json<Folder>, ApiError> {
    let folder = folders::set_message_count(
        &state.db,
        &caller.actor(),
        id.into_inner(),
        body.message_count,
    )
    .await?;
    Ok(web::Json(folder))
}
