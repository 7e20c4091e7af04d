//! API keys for other services and scripts.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
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

/// A role.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Everything.
    Admin,
    /// Read configuration, run and read sync jobs, read users.
    Operator,
    /// Read users, privileges, lookup.
    Reader,
}

impl From<RoleName> for auth::Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => auth::Role::Admin,
            RoleName::Operator => auth::Role::Operator,
            RoleName::Reader => auth::Role::Reader,
        }
    }
}

impl From<auth::Role> for RoleName {
    fn from(r: auth::Role) -> Self {
        match r {
            auth::Role::Admin => RoleName::Admin,
            auth::Role::Operator => RoleName::Operator,
            auth::Role::Reader => RoleName::Reader,
        }
    }
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
    pub role: RoleName,
}

/// An API key, without the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    /// Key id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role granted.
    pub role: RoleName,
    /// How the key starts, to recognise it.
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last use, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<auth::ApiKeyInfo> for ApiKey {
    fn from(k: auth::ApiKeyInfo) -> Self {
        ApiKey {
            id: k.id,
            name: k.name,
            role: k.role.into(),
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A created key: `key` is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key, as `Authorization: Bearer <key>`.
    pub key: String,
    /// The key's record.
    #[serde(flatten)]
    pub api_key: ApiKey,
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
        auth::create_api_key(&state.db, &body.name, body.role.into(), &caller.actor()).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(CreatedApiKey {
            key: key.expose_secret().to_string(),
            api_key: info.into(),
        }))
}

/// List API keys.
///
/// Lists API keys, newest first.
///
/// Role: admin.
#[utoipa::path(tag = "api-keys", operation_id = "list_api_keys", params(PageQuery), responses((status = 200, description = "A page of keys, newest first", body = Paged<ApiKey>)))]
#[get("/api-keys")]
async fn list(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<ApiKey>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let keys = auth::list_api_keys(&state.db, page).await?;
    Ok(web::Json(keys.map(ApiKey::from).into()))
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
