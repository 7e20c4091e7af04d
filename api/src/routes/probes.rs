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

/// The process is up.
#[utoipa::path(tag = "probes", security(()), responses((status = 200, body = Status)))]
#[get("/health")]
async fn health() -> web::Json<Status> {
    web::Json(Status { status: "ok" })
}

/// The process is up and its database answers.
#[utoipa::path(tag = "probes", security(()), responses(
    (status = 200, body = Status),
    (status = 503, description = "The database does not answer", body = crate::error::ErrorBody)))]
#[get("/ready")]
async fn ready(state: web::Data<AppState>) -> Result<web::Json<Status>, ApiError> {
    if dirsync_core::db::is_reachable(&state.db).await {
        Ok(web::Json(Status { status: "ok" }))
    } else {
        Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "database_unreachable",
            "the database does not answer",
        ))
    }
}

/// Prometheus metrics: requests by route and status, their latencies, sync jobs, Google calls.
#[utoipa::path(tag = "probes", security(()), responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
#[get("/metrics")]
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(dirsync_core::metrics::render())
}
