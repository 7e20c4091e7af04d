//! API keys for other services and scripts.

use actix_web::{delete, get, post, web, HttpResponse};
use dirsync_core::{auth, paging::PageRequest};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{PageQuery, Paged};
use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create).service(list).service(remove);
}

/// A new API key's name and role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "archive-server", "role": "reader"}))]
pub struct CreateApiKey {
    /// What the key is for, e.g. `archive-server`: 1 to 100 characters, not only blanks.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// The role it grants.
    pub role: auth::Role,
}

/// A created key: `key` is shown this once and cannot be read again.
// Kept in the API: core hands the key over as a secret, and this is the one place it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key, as `Authorization: Bearer <key>`.
    pub key: String,
    /// The key's record.
    #[serde(flatten)]
    pub api_key: auth::ApiKeyInfo,
}

/// Create an API key.
///
/// Creates an API key. The answer holds the key once; only its hash is stored.
///
/// Role: admin.
#[utoipa::path(tag = "api-keys", operation_id = "create_api_key", request_body = CreateApiKey, responses((status = 201, description = "The new key, shown this once", body = CreatedApiKey)))]
#[post("/api-keys")]
async fn create(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let (info, key) =
        auth::create_api_key(&state.db, &body.name, body.role, &caller.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedApiKey {
            key: key.expose_secret().to_string(),
            api_key: info,
        }))
}

/// List API keys.
///
/// Lists API keys, newest first.
///
/// Role: admin.
#[utoipa::path(tag = "api-keys", operation_id = "list_api_keys", params(PageQuery), responses((status = 200, description = "A page of keys, newest first", body = Paged<auth::ApiKeyInfo>)))]
#[get("/api-keys")]
async fn list(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<auth::ApiKeyInfo>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let keys = auth::list_api_keys(&state.db, page).await?;
    Ok(web::Json(keys.into()))
}

/// Delete an API key.
///
/// Deletes an API key; it stops working at once.
///
/// Role: admin.
#[utoipa::path(tag = "api-keys", operation_id = "delete_api_key", params(("id" = Uuid, Path, description = "Key id")),
    responses((status = 204, description = "Deleted")))]
#[delete("/api-keys/{id}")]
async fn remove(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    auth::delete_api_key(&state.db, id.into_inner(), &caller.actor()).await?;
    Ok(HttpResponse::NoContent().finish())
}
