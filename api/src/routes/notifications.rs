//! Notifications: the webhook endpoints, and the log of what was sent to them.

use actix_web::{get, put, web};
use dirsync_core::notifications::{self, EndpointView, EventType};
use dirsync_core::paging::PageRequest;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{PageQuery, Paged};
use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_notifications)
        .service(put_notifications)
        .service(list_deliveries);
}

/// An endpoint as saved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// An existing endpoint's id, to keep it (and, without `secret`, its secret); leave out to
    /// add an endpoint.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Where deliveries are POSTed: `https`, or `http` to a loopback host only. Redirects are
    /// not followed.
    #[schema(max_length = 2048)]
    pub url: String,
    /// The events to send (at least one).
    #[schema(min_items = 1)]
    pub events: Vec<EventType>,
    /// The HMAC-SHA256 signing secret, 16 to 512 characters; required for a new endpoint,
    /// optional (kept) for an existing one. Stored encrypted, never shown again.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 16, max_length = 512)]
    pub secret: Option<SecretString>,
    /// Send `sync.succeeded` only for a real (not dry) run that created, updated, deleted,
    /// disabled or enabled a user (default false: every successful job).
    #[serde(default)]
    pub only_when_changed: bool,
}

/// The notification settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"endpoints": [{"url": "https://hooks.example.com/dirsync", "events": ["sync.failed", "sync.blocked"], "secret": "a-long-random-signing-secret", "only_when_changed": false}]}))]
pub struct NotificationSettings {
    /// Every endpoint (at most 20); endpoints left out are removed.
    pub endpoints: Vec<EndpointSettings>,
}

/// The notification configuration.
// A wrapper, not a copy: core answers the list, the API names it `endpoints`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notifications {
    /// The endpoints, oldest first.
    pub endpoints: Vec<EndpointView>,
}

/// Read the webhook endpoints.
///
/// The webhook endpoints (their secrets are never shown: `secret_set` says one is stored).
///
/// Role: admin.
#[utoipa::path(tag = "notifications", operation_id = "get_notifications",
    responses((status = 200, description = "The endpoints", body = Notifications)))]
#[get("/notifications")]
async fn get_notifications(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
) -> Result<web::Json<Notifications>, ApiError> {
    Ok(web::Json(Notifications {
        endpoints: notifications::endpoints(&state.db).await?,
    }))
}

/// Replace the webhook endpoints.
///
/// Replaces the webhook endpoints. Each delivery is a JSON `POST` of `{"id", "type",
/// "created_at", "data"}` signed with `X-Dirsync-Signature: t=<unix seconds>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<raw body>")>` and named by `X-Dirsync-Event`; any 2xx answer is
/// success, anything else is retried with backoff (three attempts within a minute, the last
/// after more than six hours). A URL that is not `https` (except to a loopback host) is a 422
/// `invalid_notification_endpoint`.
///
/// Role: admin.
#[utoipa::path(tag = "notifications", operation_id = "put_notifications",
    request_body = NotificationSettings,
    responses((status = 200, description = "The saved endpoints", body = Notifications),
        (status = 422, description = "An endpoint is not valid (`invalid_notification_endpoint`, `details.index` and `details.field` name it)", body = crate::error::ErrorBody)))]
#[put("/notifications")]
async fn put_notifications(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<NotificationSettings>,
) -> Result<web::Json<Notifications>, ApiError> {
    let wanted = body
        .into_inner()
        .endpoints
        .into_iter()
        .map(|e| notifications::EndpointSettings {
            id: e.id,
            url: e.url,
            events: e.events,
            secret: e.secret,
            only_when_changed: e.only_when_changed,
        })
        .collect();
    let saved = notifications::update(&state.db, &state.cipher, &caller.actor(), wanted).await?;
    Ok(web::Json(Notifications { endpoints: saved }))
}

/// List webhook deliveries.
///
/// The deliveries, newest first: status, attempts and the last error of each.
///
/// Role: admin.
#[utoipa::path(tag = "notifications", operation_id = "list_notification_deliveries",
    params(PageQuery), responses((status = 200, description = "A page of deliveries, newest first", body = Paged<notifications::Delivery>)))]
#[get("/notifications/deliveries")]
async fn list_deliveries(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<notifications::Delivery>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let list = notifications::deliveries(&state.db, page).await?;
    Ok(web::Json(list.into()))
}
