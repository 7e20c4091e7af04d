//! Notifications: webhooks that tell an administrator when a sync fails, is blocked by the
//! deletion limit or succeeds, and when a connection test fails (product.md §8).
//!
//! - The endpoints (URL, events, signing secret) are one configuration, replaced whole by an
//!   administrator; the secret is stored encrypted, bound to its row, and never shown again.
//! - An event is queued as one delivery row per interested endpoint, with its body fixed once:
//!   every attempt sends the same `id` and bytes, so a receiver can drop repeats.
//! - [`delivery::Sender`] sends them from a background loop of every instance, claiming each
//!   row with a lease, retrying with backoff for hours. Nothing here can fail or hold up the
//!   job or request that raised the event: queueing errors are logged, sending is elsewhere.

pub mod delivery;

use chrono::{DateTime, Utc};
use dirsync_entity::{notification_deliveries, notification_endpoints, JsonText};
use sea_orm::{
    sea_query::OnConflict, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Unchanged,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::jobs::{self, Status};
use crate::paging::{Page, PageRequest};
use crate::secrets::Cipher;
use crate::{Error, Result};

pub use delivery::Sender;

/// Most endpoints one installation may configure.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;
/// Shortest and longest signing secret accepted: short secrets can be guessed offline from
/// one signed delivery.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=512;

/// What an endpoint is told about, and where a delivery is: their names are declared once in
/// `dirsync-entity`, with the other enums stored by name.
pub use dirsync_entity::{DeliveryStatus, EventType};

/// An endpoint as shown (never its secret).
// The API's `Endpoint`; its doc comments are the OpenAPI descriptions. Keep `id` in a `PUT` to
// keep the endpoint and its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Endpoint))]
pub struct EndpointView {
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

/// An endpoint as an administrator saves it.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// An existing endpoint's id; `None` for a new one.
    pub id: Option<Uuid>,
    /// `https` (any port), or `http` only to a loopback host.
    pub url: String,
    /// At least one event.
    pub events: Vec<EventType>,
    /// Required for a new endpoint; `None` keeps an existing endpoint's secret.
    pub secret: Option<SecretString>,
    /// `sync.succeeded` only when the run created, updated, deleted, disabled or enabled a user.
    pub only_when_changed: bool,
}

fn secret_context(id: Uuid) -> String {
    format!("notification_endpoints.secret:{id}")
}

fn bad(index: usize, field: &'static str, message: impl Into<String>) -> Error {
    Error::invalid(
        "invalid_notification_endpoint",
        format!("endpoints[{index}].{field}: {}", message.into()),
    )
    .with_details(serde_json::json!({ "index": index, "field": field }))
}

/// Checks a delivery URL: absolute `https`, or `http` to a loopback host (a receiver on the
/// same machine); no userinfo (it would be sent as credentials and shown back) and no fragment.
/// A URL is checked again before every attempt, as it may predate a stricter rule.
pub fn check_url(raw: &str) -> std::result::Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("must name a host".into()),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => {
            Err("must use https (http is allowed only for localhost and loopback addresses)".into())
        }
        other => Err(format!("must be an https URL, not {other}")),
    }
}

fn view(m: notification_endpoints::Model) -> EndpointView {
    EndpointView {
        id: m.id,
        url: m.url,
        events: m.events.into_inner(),
        secret_set: !m.secret.is_empty(),
        only_when_changed: m.only_when_changed,
    }
}

/// The configured endpoints, oldest first. Events that do not decode fail the read
/// (`stored_data_invalid` naming the column); saving the configuration repairs them.
pub async fn endpoints<C: ConnectionTrait>(db: &C) -> Result<Vec<EndpointView>> {
    Ok(notification_endpoints::Entity::find()
        .order_by_asc(notification_endpoints::Column::CreatedAt)
        .order_by_asc(notification_endpoints::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// An endpoint as the two readers that pass over a damaged one see it (the audit trail of a
/// replacement, the queueing of an event): its events decoded row by row, so that one endpoint
/// whose events do not decode does not fail the others as a read of the typed column would.
struct EachEndpoint {
    id: Uuid,
    url: String,
    secret_set: bool,
    only_when_changed: bool,
    events: Result<Vec<EventType>>,
}

impl EachEndpoint {
    fn view(self) -> Result<EndpointView> {
        Ok(EndpointView {
            id: self.id,
            url: self.url,
            events: self.events?,
            secret_set: self.secret_set,
            only_when_changed: self.only_when_changed,
        })
    }
}

async fn each_endpoint<C: ConnectionTrait>(db: &C) -> Result<Vec<EachEndpoint>> {
    use notification_endpoints::Column as E;
    let rows: Vec<(Uuid, String, String, String, bool)> = notification_endpoints::Entity::find()
        .select_only()
        .columns([E::Id, E::Url, E::Events, E::Secret, E::OnlyWhenChanged])
        .order_by_asc(E::CreatedAt)
        .order_by_asc(E::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, url, events, secret, only_when_changed)| EachEndpoint {
                id,
                url,
                secret_set: !secret.is_empty(),
                only_when_changed,
                events: JsonText::<Vec<EventType>>::decode(events)
                    .map(JsonText::into_inner)
                    .map_err(|u| crate::stored::undecodable(&u)),
            },
        )
        .collect())
}

/// Replaces the endpoints: those listed with an `id` are updated (their secret kept unless a
/// new one is given), those without are created, the others removed (their delivery log
/// stays; their pending deliveries are given up when next due). Recorded in the audit trail,
/// without secrets, in the same transaction.
#[tracing::instrument(skip_all)]
pub async fn update(
    db: &DatabaseConnection,
    cipher: &Cipher,
    actor: &str,
    wanted: Vec<EndpointSettings>,
) -> Result<Vec<EndpointView>> {
    if wanted.len() > MAX_ENDPOINTS {
        return Err(Error::invalid(
            "too_many_notification_endpoints",
            format!("at most {MAX_ENDPOINTS} endpoints"),
        ));
    }
    for (i, e) in wanted.iter().enumerate() {
        check_url(&e.url).map_err(|m| bad(i, "url", m))?;
        if e.events.is_empty() {
            return Err(bad(i, "events", "name at least one event"));
        }
        if let Some(s) = &e.secret {
            let n = s.expose_secret().chars().count();
            if !SECRET_LEN.contains(&n) {
                return Err(bad(
                    i,
                    "secret",
                    format!(
                        "must be {} to {} characters",
                        SECRET_LEN.start(),
                        SECRET_LEN.end()
                    ),
                ));
            }
        } else if e.id.is_none() {
            return Err(bad(i, "secret", "a new endpoint needs a secret"));
        }
        if let Some(id) = e.id {
            if wanted[..i].iter().any(|o| o.id == Some(id)) {
                return Err(bad(i, "id", "listed twice"));
            }
        }
    }
    let txn = crate::db::begin_replacing(db, crate::db::WholeSet::NotificationEndpoints).await?;
    // For the audit trail only. A stored endpoint whose events no longer decode is left out of
    // it rather than allowed to stop the administrator from replacing it.
    let before: Vec<EndpointView> = each_endpoint(&txn)
        .await?
        .into_iter()
        .filter_map(|e| e.view().ok())
        .collect();
    let now = Utc::now();
    let mut kept = Vec::new();
    for (i, e) in wanted.into_iter().enumerate() {
        let mut events = e.events;
        events.sort();
        events.dedup();
        let events = JsonText(events);
        let url = e.url.trim().to_string();
        match e.id {
            Some(id) => {
                // Written without being read first: an endpoint whose stored events do not
                // decode is repaired this way.
                let mut row = notification_endpoints::ActiveModel {
                    id: Unchanged(id),
                    url: Set(url),
                    events: Set(events),
                    only_when_changed: Set(e.only_when_changed),
                    updated_at: Set(now),
                    ..Default::default()
                };
                if let Some(s) = &e.secret {
                    row.secret = Set(cipher.encrypt(s.expose_secret(), &secret_context(id)));
                }
                match row.update(&txn).await {
                    Ok(_) => {}
                    Err(sea_orm::DbErr::RecordNotUpdated) => {
                        return Err(bad(
                            i,
                            "id",
                            format!("no endpoint {id}; leave id out to add one"),
                        ))
                    }
                    Err(e) => return Err(e.into()),
                }
                kept.push(id);
            }
            None => {
                let id = Uuid::new_v4();
                let secret = e.secret.expect("checked above");
                notification_endpoints::ActiveModel {
                    id: Set(id),
                    url: Set(url),
                    events: Set(events),
                    secret: Set(cipher.encrypt(secret.expose_secret(), &secret_context(id))),
                    only_when_changed: Set(e.only_when_changed),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&txn)
                .await?;
                kept.push(id);
            }
        }
    }
    notification_endpoints::Entity::delete_many()
        .filter(notification_endpoints::Column::Id.is_not_in(kept))
        .exec(&txn)
        .await?;
    let after = endpoints(&txn).await?;
    crate::audit::record(
        &txn,
        actor,
        "notifications.update",
        "notifications",
        None,
        serde_json::json!({ "before": before, "after": after }),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// Whether a succeeded job changed anything: a real run that created, updated, deleted,
/// disabled or enabled a user.
fn changed_something(job: &jobs::Job) -> bool {
    !job.dry_run
        && job
            .summary
            .is_some_and(|s| s.created + s.updated + s.deleted + s.disabled + s.enabled > 0)
}

/// Queues the event of a job that ended (`sync.failed`, `sync.blocked`, `sync.succeeded`) for
/// every endpoint that wants it. Called once the job's end is committed; it reads the job as
/// stored, so the body is the job as `GET /api/v1/sync-jobs/{id}` shows it. A job still active
/// (its lease was lost to another instance, which will end it) or cancelled raises nothing.
/// Several callers for one job queue one delivery per endpoint (a unique index). Errors are
/// logged, never returned: the job is done whatever becomes of its notification.
pub async fn job_ended(db: &DatabaseConnection, job_id: Uuid) {
    if let Err(e) = try_job_ended(db, job_id).await {
        tracing::error!(%job_id, error = %e, "could not queue the job's notifications");
    }
}

async fn try_job_ended(db: &DatabaseConnection, job_id: Uuid) -> Result<()> {
    let job = jobs::get(db, job_id).await?;
    let event = match job.status {
        Status::Failed => EventType::SyncFailed,
        Status::Blocked => EventType::SyncBlocked,
        Status::Succeeded => EventType::SyncSucceeded,
        Status::Queued | Status::Running | Status::Cancelled => return Ok(()),
    };
    let changed = changed_something(&job);
    let data = serde_json::json!({ "job": job });
    enqueue(db, event, Some(job_id), data, |e| {
        event != EventType::SyncSucceeded || !e.only_when_changed || changed
    })
    .await
}

/// Queues `directory.test_failed` with the test's result as `data.test`. Errors are logged.
pub async fn test_failed(db: &DatabaseConnection, test: serde_json::Value) {
    let data = serde_json::json!({ "test": test });
    if let Err(e) = enqueue(db, EventType::DirectoryTestFailed, None, data, |_| true).await {
        tracing::error!(error = %e, "could not queue the connection test's notifications");
    }
}

/// One delivery row per endpoint that wants `event` (and passes `wants`), each with its own
/// id and its body fixed now.
async fn enqueue(
    db: &DatabaseConnection,
    event: EventType,
    job_id: Option<Uuid>,
    data: serde_json::Value,
    wants: impl Fn(&EachEndpoint) -> bool,
) -> Result<()> {
    let rows = each_endpoint(db).await?;
    let now = Utc::now();
    for endpoint in rows {
        // An endpoint whose events do not decode is skipped (and `/ready` is not its place:
        // the GET of the configuration names it), not allowed to stop the others.
        let events = match &endpoint.events {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(endpoint_id = %endpoint.id, error = %e, "skipping a notification endpoint");
                continue;
            }
        };
        if !events.contains(&event) || !wants(&endpoint) {
            continue;
        }
        let id = Uuid::new_v4();
        let body = serde_json::json!({
            "id": id,
            "type": event.as_str(),
            "created_at": now,
            "data": data,
        })
        .to_string();
        let row = notification_deliveries::ActiveModel {
            id: Set(id),
            endpoint_id: Set(endpoint.id),
            job_id: Set(job_id),
            event_type: Set(event.as_str().into()),
            body: Set(body),
            status: Set(DeliveryStatus::Pending.as_str().into()),
            attempts: Set(0),
            last_error: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
            next_attempt_at: Set(Some(now)),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
        };
        use notification_deliveries::Column as D;
        notification_deliveries::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([D::EndpointId, D::EventType, D::JobId])
                    .do_nothing()
                    .to_owned(),
            )
            .do_nothing()
            .exec(db)
            .await?;
    }
    Ok(())
}

/// One delivery of one event to one endpoint.
// As the log shows it; its doc comments are the OpenAPI descriptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The delivery log, newest first.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    page: PageRequest<(DateTime<Utc>, Uuid)>,
) -> Result<Page<Delivery>> {
    use notification_deliveries::Column as D;
    let mut q = notification_deliveries::Entity::find()
        .order_by_desc(D::CreatedAt)
        .order_by_desc(D::Id);
    if let Some(after) = page.after {
        q = q.filter(crate::paging::newest_first_after(
            D::CreatedAt,
            D::Id,
            after,
        ));
    }
    let rows = q.limit(page.limit + 1).all(db).await?;
    let page = Page::from_rows(rows, page.limit, |m| (m.created_at, m.id));
    let mut items = Vec::with_capacity(page.items.len());
    for m in page.items {
        items.push(Delivery {
            id: m.id,
            endpoint_id: m.endpoint_id,
            event_type: EventType::from_name(&m.event_type).ok_or_else(|| {
                Error::StoredDataInvalid {
                    column: EventType::COLUMN,
                    message: format!("a delivery has the unknown event type {:?}", m.event_type),
                }
            })?,
            status: DeliveryStatus::from_name(&m.status).ok_or_else(|| {
                Error::StoredDataInvalid {
                    column: DeliveryStatus::COLUMN,
                    message: format!("a delivery has the unknown status {:?}", m.status),
                }
            })?,
            attempts: m.attempts.max(0) as u32,
            last_error: m.last_error,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
        });
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_to_loopback() {
        for ok in [
            "https://hooks.example.com/dirsync",
            "https://hooks.example.com:8443/x?team=1",
            "http://127.0.0.1:9000/hook",
            "http://[::1]/hook",
            "http://localhost:8080/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/dirsync",
            "http://10.0.0.1/hook",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
            "/relative",
            "http://localhost.example.com/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
