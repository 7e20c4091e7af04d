//! Probes for load balancers and monitoring: no token needed.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health).service(ready).service(metrics);
}

/// Probe answer.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness probe.
///
/// The process is up.
///
/// No token needed.
#[utoipa::path(tag = "probes", security(()), responses((status = 200, description = "The process is up", body = Status)))]
#[get("/health")]
async fn health() -> web::Json<Status> {
    web::Json(Status { status: "ok" })
}

/// Readiness probe.
///
/// The process is up, its database answers, and the stored settings decode. A stored setting
/// that does not decode (503 `stored_data_invalid`, `details.columns` naming each) stops syncs
/// and sign-in until an administrator saves it again.
///
/// No token needed.
#[utoipa::path(tag = "probes", security(()), responses(
    (status = 200, description = "Ready to serve", body = Status),
    (status = 503, description = "The database does not answer, or a stored setting does not decode", body = crate::error::ErrorBody)))]
#[get("/ready")]
async fn ready(state: web::Data<AppState>) -> Result<web::Json<Status>, ApiError> {
    let unavailable = actix_web::http::StatusCode::SERVICE_UNAVAILABLE;
    if !dirsync_core::db::is_reachable(&state.db).await {
        return Err(ApiError::new(
            unavailable,
            "database_unreachable",
            "the database does not answer",
        ));
    }
    let problems = dirsync_core::stored::problems(&state.db).await?;
    if !problems.is_empty() {
        let columns: Vec<&str> = problems.iter().map(|(c, _)| *c).collect();
        let message = problems
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::new(unavailable, "stored_data_invalid", message)
            .with_details(serde_json::json!({ "columns": columns })));
    }
    Ok(web::Json(Status { status: "ok" }))
}

/// Prometheus metrics.
///
/// Prometheus metrics. This instance's: requests by route and status and their latencies, sync
/// jobs it ran, Google requests and their latency, sign-ins by outcome, `process_*`. The
/// installation's, read from the database at each scrape (the same on every instance): users
/// by auth method and disabled state, the last successful sync's end, the last sync's status,
/// the schedule. And `dirsync_build_info`.
///
/// No token needed.
#[utoipa::path(tag = "probes", security(()), responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.scrape(&state.db).await)
}
