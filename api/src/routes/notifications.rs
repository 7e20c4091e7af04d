//! Notifications: the webhook endpoints, and the log of what was sent to them.

use actix_web::{get, put, web};
use chrono::{DateTime, Utc};
use dirsync_core::{notifications, paging::PageRequest};
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

/// What an endpoint is told about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// A sync job failed.
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// A sync job was blocked by the deletion limit.
    #[serde(rename = "sync.blocked")]
    SyncBlocked,
    /// A sync job succeeded (with `only_when_changed`: only a real run that changed a user).
    #[serde(rename = "sync.succeeded")]
    SyncSucceeded,
    /// A connection test failed.
    #[serde(rename = "directory.test_failed")]
    DirectoryTestFailed,
}

impl From<EventType> for notifications::EventType {
    fn from(e: EventType) -> Self {
        match e {
            EventType::SyncFailed => notifications::EventType::SyncFailed,
            EventType::SyncBlocked => notifications::EventType::SyncBlocked,
            EventType::SyncSucceeded => notifications::EventType::SyncSucceeded,
            EventType::DirectoryTestFailed => notifications::EventType::DirectoryTestFailed,
        }
    }
}

impl From<notifications::EventType> for EventType {
    fn from(e: notifications::EventType) -> Self {
        match e {
            notifications::EventType::SyncFailed => EventType::SyncFailed,
            notifications::EventType::SyncBlocked => EventType::SyncBlocked,
            notifications::EventType::SyncSucceeded => EventType::SyncSucceeded,
            notifications::EventType::DirectoryTestFailed => EventType::DirectoryTestFailed,
        }
    }
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

/// An endpoint as shown (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The events it is sent.
    pub events: Vec<EventType>,
    /// A signing secret is stored (always true).
    pub secret_set: bool,
    /// `sync.succeeded` only for runs that changed a user.
    pub only_when_changed: bool,
}

/// The notification configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notifications {
    /// The endpoints, oldest first.
    pub endpoints: Vec<Endpoint>,
}

impl From<Vec<notifications::EndpointView>> for Notifications {
    fn from(v: Vec<notifications::EndpointView>) -> Self {
        Notifications {
            endpoints: v
                .into_iter()
                .map(|e| Endpoint {
                    id: e.id,
                    url: e.url,
                    events: e.events.into_iter().map(EventType::from).collect(),
                    secret_set: e.secret_set,
                    only_when_changed: e.only_when_changed,
                })
                .collect(),
        }
    }
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
    Ok(web::Json(notifications::endpoints(&state.db).await?.into()))
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
            events: e.events.into_iter().map(Into::into).collect(),
            secret: e.secret,
            only_when_changed: e.only_when_changed,
        })
        .collect();
    let saved = notifications::update(&state.db, &state.cipher, &caller.actor(), wanted).await?;
    Ok(web::Json(saved.into()))
}

/// Where a delivery is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; another attempt will be made.
    Pending,
    /// An attempt was answered with a 2xx.
    Delivered,
    /// Every attempt failed, or the endpoint was removed.
    Failed,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// The delivery's id: the body's `id`, the same at every attempt.
    pub id: Uuid,
    /// The endpoint (possibly removed since).
    pub endpoint_id: Uuid,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed (`answered 500`, a connection error, …).
    pub last_error: Option<String>,
    /// When the event was raised.
    pub created_at: DateTime<Utc>,
    /// When an attempt succeeded.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// List webhook deliveries.
///
/// The deliveries, newest first: status, attempts and the last error of each.
///
/// Role: admin.
#[utoipa::path(tag = "notifications", operation_id = "list_notification_deliveries",
    params(PageQuery), responses((status = 200, description = "A page of deliveries, newest first", body = Paged<Delivery>)))]
#[get("/notifications/deliveries")]
async fn list_deliveries(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<Delivery>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let list = notifications::deliveries(&state.db, page).await?;
    let mut items = Vec::with_capacity(list.items.len());
    for d in list.items {
        items.push(Delivery {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type.into(),
            status: match d.status {
                notifications::DeliveryStatus::Pending => DeliveryStatus::Pending,
                notifications::DeliveryStatus::Delivered => DeliveryStatus::Delivered,
                notifications::DeliveryStatus::Failed => DeliveryStatus::Failed,
            },
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        });
    }
    Ok(web::Json(Paged {
        items,
        next_cursor: list.next_cursor,
    }))
}
