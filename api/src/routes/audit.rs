//! The audit trail.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use dirsync_core::{audit, paging::PageRequest};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{PageQuery, Paged};
use crate::auth::{Admin, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

/// One recorded change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Increasing id.
    pub id: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who (`api_key:<name>`, `user:<name>`, `bootstrap`, `cli`, `system`).
    pub actor: String,
    /// What, e.g. `user.create`, `directory.update`.
    pub action: String,
    /// Kind of thing changed.
    pub target_type: String,
    /// Which one.
    pub target_id: Option<String>,
    /// Before/after and other details; secrets are redacted.
    pub details: serde_json::Value,
}

/// List audit events.
///
/// Who changed which setting, privilege, user or key, and when; newest first.
///
/// Role: admin.
#[utoipa::path(tag = "audit", operation_id = "list_audit_events", params(PageQuery), responses((status = 200, description = "A page of events, newest first", body = Paged<AuditEvent>)))]
#[get("/audit-events")]
async fn list(
    _caller: Auth<Admin>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<AuditEvent>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let events = audit::list(&state.db, page).await?;
    Ok(web::Json(
        events
            .map(|e| AuditEvent {
                id: e.id,
                occurred_at: e.occurred_at,
                actor: e.actor,
                action: e.action,
                target_type: e.target_type,
                target_id: e.target_id,
                details: e.details,
            })
            .into(),
    ))
}
