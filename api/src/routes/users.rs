//! Users of the archive server: local users managed here, directory users from Google.

use actix_web::{delete, get, http::header, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use dirsync_core::users::AuthMethod;
use dirsync_core::{paging::PageRequest, users, Error};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::Paged;
use crate::auth::{Admin, Auth, Reader};
use crate::error::ApiError;
use crate::state::AppState;

/// `{id}` is limited to the characters of a UUID so that `/users/lookup` is never taken for a
/// user id: a PATCH or DELETE there answers 405, not 404. Any other non-id answers 404 as before.
pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(lookup)
        .service(list)
        .service(create)
        .service(read)
        .service(update)
        .service(remove);
}

/// A user. Never carries a password or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// User name, unique without case (directory users: the primary address, lower-cased).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// `local` or `directory`.
    pub auth_method: AuthMethod,
    /// The Google user id of a directory user.
    pub directory_id: Option<String>,
    /// A disabled user cannot sign in (directory users: suspended or archived in Google).
    pub disabled: bool,
    /// Addresses: the primary one first, then the others by address.
    pub emails: Vec<String>,
    /// The user's archive folder.
    pub archive_folder_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last written by a sync.
    pub last_synced_at: Option<DateTime<Utc>>,
}

impl From<users::User> for User {
    fn from(u: users::User) -> Self {
        User {
            id: u.id,
            user_name: u.user_name,
            full_name: u.full_name,
            auth_method: u.auth_method,
            directory_id: u.directory_id,
            disabled: u.disabled,
            emails: u.emails,
            archive_folder_id: u.archive_folder_id,
            created_at: u.created_at,
            updated_at: u.updated_at,
            last_synced_at: u.last_synced_at,
        }
    }
}

/// Filters and paging of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Text found, without case, in the user name, the full name or any address.
    pub q: Option<String>,
    /// Only `local` or only `directory` users.
    pub auth_method: Option<AuthMethod>,
    /// Only disabled (`true`) or only enabled (`false`) users.
    pub disabled: Option<bool>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// A new local user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique user name (compared without case), 1 to 255 characters without spaces.
    #[schema(min_length = 1, max_length = 255)]
    pub user_name: String,
    /// Full name.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub full_name: String,
    /// Addresses, each owned by one user at most (compared without case); the first is the
    /// primary one.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Password for signing in with the user name (8 to 1024 characters); stored as an argon2id
    /// hash, never returned.
    #[schema(write_only, format = Password, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Privileges to grant (names as in `PUT /api/v1/users/{id}/privileges`). None when left
    /// out: the configured default privileges are for users created by synchronization. The
    /// user always gets `read` on its own archive folder.
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// Changes to a user; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New user name (also renames the user's archive folder).
    #[schema(min_length = 1, max_length = 255)]
    pub user_name: Option<String>,
    /// New full name.
    #[schema(max_length = 255)]
    pub full_name: Option<String>,
    /// New addresses, replacing all; the first is the primary one.
    pub emails: Option<Vec<String>>,
    /// New password (8 to 1024 characters).
    #[schema(write_only, format = Password, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Disable or enable the user.
    pub disabled: Option<bool>,
}

/// The address to look up.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// An address: primary or alias, any case.
    #[param(required = true)]
    pub email: Option<String>,
}

/// Lists users by user name, with filters.
#[utoipa::path(tag = "users", operation_id = "list_users", params(UserQuery),
    responses((status = 200, body = Paged<User>)))]
#[get("/users")]
async fn list(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    query: web::Query<UserQuery>,
) -> Result<web::Json<Paged<User>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = users::UserFilter {
        q: query.q.clone(),
        auth_method: query.auth_method,
        disabled: query.disabled,
    };
    let found = users::list(&state.db, &filter, page).await?;
    Ok(web::Json(found.map(User::from).into()))
}

/// Creates a local user with its archive folder (named after it). The user gets the
/// privileges named in the request, none otherwise, and `read` on its own folder.
#[utoipa::path(tag = "users", operation_id = "create_user", request_body = CreateUser,
    responses((status = 201, body = User,
        headers(("location" = String, description = "The new user's URL")))))]
#[post("/users")]
async fn create(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = users::NewUser {
        user_name: body.user_name,
        full_name: body.full_name,
        emails: body.emails,
        password: body.password.map(SecretString::from),
        privileges: body.privileges,
    };
    let user = users::create(&state.db, &caller.actor(), new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/users/{}", user.id)))
        .json(User::from(user)))
}

/// The user that owns an address (primary or alias, compared without case): how the archive
/// server routes mail to user archives.
#[utoipa::path(tag = "users", operation_id = "lookup_user", params(LookupQuery),
    responses((status = 200, body = User)))]
#[get("/users/lookup")]
async fn lookup(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    query: web::Query<LookupQuery>,
) -> Result<web::Json<User>, ApiError> {
    let email = query
        .email
        .as_deref()
        .ok_or_else(|| Error::invalid("missing_email", "pass the address to look up as ?email="))?;
    let user = users::find_by_email(&state.db, email).await?;
    Ok(web::Json(user.into()))
}

/// One user.
#[utoipa::path(tag = "users", operation_id = "get_user",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = User)))]
#[get("/users/{id:[0-9a-fA-F-]+}")]
async fn read(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<User>, ApiError> {
    let user = users::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(user.into()))
}

/// Changes a user. For a `directory` user the user name, full name, addresses, `disabled` and
/// password come from Google Workspace and are refused here (409 `managed_by_directory`);
/// its privileges stay editable.
#[utoipa::path(tag = "users", operation_id = "update_user", request_body = UpdateUser,
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, body = User)))]
#[patch("/users/{id:[0-9a-fA-F-]+}")]
async fn update(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<UpdateUser>,
) -> Result<web::Json<User>, ApiError> {
    let body = body.into_inner();
    let changes = users::UserChanges {
        user_name: body.user_name,
        full_name: body.full_name,
        emails: body.emails,
        password: body.password.map(SecretString::from),
        disabled: body.disabled,
    };
    let user = users::update(&state.db, &caller.actor(), id.into_inner(), changes).await?;
    Ok(web::Json(user.into()))
}

/// Deletes a user with its privileges, addresses and sessions. Its archive folder is kept,
/// detached, when it holds messages, and deleted otherwise.
#[utoipa::path(tag = "users", operation_id = "delete_user",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 204, description = "Deleted")))]
#[delete("/users/{id:[0-9a-fA-F-]+}")]
async fn remove(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    users::delete(&state.db, &caller.actor(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
