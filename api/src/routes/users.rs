//! Users of the archive server: local users managed here, directory users from Google.

use actix_web::{delete, get, http::header, patch, post, web, HttpResponse};
use dirsync_core::users::{AuthMethod, User};
use dirsync_core::{paging::PageRequest, users, Error};
use secrecy::SecretString;
use serde::Deserialize;
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

/// Filters and paging of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Text found, without case, in the user name, the full name or any address (no control
    /// characters).
    #[param(pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub q: Option<String>,
    /// Only `local` or only `directory` users.
    pub auth_method: Option<AuthMethod>,
    /// Only disabled (`true`) or only enabled (`false`) users.
    pub disabled: Option<bool>,
    /// Items per page, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// A new local user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_name": "jdoe", "full_name": "Jane Doe", "emails": ["jane.doe@example.com", "jd@example.com"], "password": "correct horse battery", "privileges": ["login", "archive_email"]}))]
pub struct CreateUser {
    /// Unique user name (compared without case), 1 to 255 characters without spaces or control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\s\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub user_name: String,
    /// Full name, at most 255 characters without control characters.
    #[serde(default)]
    #[schema(max_length = 255, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub full_name: String,
    /// Addresses, each owned by one user at most (compared without case); the first is the
    /// primary one.
    #[serde(default)]
    #[schema(value_type = Vec<super::EmailAddress>, inline)]
    pub emails: Vec<String>,
    /// Password for signing in with the user name (8 to 1024 characters); stored as an argon2id
    /// hash, never returned.
    #[schema(write_only, format = Password, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Privileges to grant (names as in `PUT /api/v1/users/{id}/privileges`). None when left
    /// out: the configured default privileges are for users created by synchronization. The
    /// user always gets `read` on its own archive folder.
    #[serde(default)]
    #[schema(value_type = Vec<dirsync_core::privileges::Privilege>)]
    pub privileges: Vec<String>,
}

/// Changes to a user; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"full_name": "Jane Q. Doe", "disabled": false}))]
pub struct UpdateUser {
    /// New user name (also renames the user's archive folder).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\s\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub user_name: Option<String>,
    /// New full name.
    #[schema(max_length = 255, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    pub full_name: Option<String>,
    /// New addresses, replacing all; the first is the primary one.
    #[schema(value_type = Option<Vec<super::EmailAddress>>, inline)]
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
    #[param(required = true, format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// List users.
///
/// Lists users by user name, with filters.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "users", operation_id = "list_users", params(UserQuery),
    responses((status = 200, description = "A page of users, by user name", body = Paged<User>)))]
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
    Ok(web::Json(found.into()))
}

/// Create a local user.
///
/// Creates a local user with its archive folder (named after it). The user gets the
/// privileges named in the request, none otherwise, and `read` on its own folder.
///
/// Role: admin.
#[utoipa::path(tag = "users", operation_id = "create_user", request_body = CreateUser,
    responses((status = 201, description = "Created: the user", body = User,
        headers(("location" = String, description = "The new user's URL"))),
        (status = 409, description = "The user name or an address is taken (`user_name_taken`, `email_taken`)", body = crate::error::ErrorBody)))]
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
        .json(user))
}

/// Find the user owning an address.
///
/// The user that owns an address (primary or alias, compared without case): how the archive
/// server routes mail to user archives.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "users", operation_id = "lookup_user", params(LookupQuery),
    responses((status = 200, description = "The user", body = User),
        (status = 404, description = "No user has this address (`not_found`)", body = crate::error::ErrorBody)))]
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
    Ok(web::Json(user))
}

/// Read a user.
///
/// One user.
///
/// Role: reader (or operator, admin).
#[utoipa::path(tag = "users", operation_id = "get_user",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = User)))]
#[get("/users/{id:[0-9a-fA-F-]+}")]
async fn read(
    _caller: Auth<Reader>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<User>, ApiError> {
    let user = users::get(&state.db, id.into_inner()).await?;
    Ok(web::Json(user))
}

/// Change a user.
///
/// Changes a user. For a `directory` user the user name, full name, addresses, `disabled` and
/// password come from Google Workspace and are refused here (409 `managed_by_directory`);
/// its privileges stay editable.
///
/// Role: admin.
#[utoipa::path(tag = "users", operation_id = "update_user", request_body = UpdateUser,
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The changed user", body = User),
        (status = 409, description = "Taken (`user_name_taken`, `email_taken`), or a field Google manages for a directory user (`managed_by_directory`)", body = crate::error::ErrorBody)))]
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
    Ok(web::Json(user))
}

/// Delete a user.
///
/// Deletes a user with its privileges, addresses and sessions. Its archive folder is kept,
/// detached, when it holds messages, and deleted otherwise.
///
/// Role: admin.
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
