//! Sync jobs: start (dry run or apply), follow, read their changes, cancel.

use std::time::Duration;

use actix_web::{get, http::header, post, web, HttpResponse};
use dirsync_core::{jobs, paging::PageRequest, sync::ChangeKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{PageQuery, Paged};
use crate::auth::{Auth, Operator};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(start)
        .service(list)
        .service(get_job)
        .service(list_changes)
        .service(cancel)
        .service(run_dry_run);
}

/// Longest `?wait=` accepted, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// A job request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"dry_run": true}))]
pub struct StartJob {
    /// Plan only: store the changes a real run would make, write nothing else.
    #[serde(default)]
    pub dry_run: bool,
    /// Lets a run blocked by the deletion limit go through: must equal the planned deletions.
    #[serde(default, deserialize_with = "crate::integer::json_opt")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub confirm_deletions: Option<u32>,
    /// `full` (the default: every user and the sync groups' members) or `incremental` (only
    /// what Google's admin log says changed since the last sync, re-read from the Directory
    /// API; it runs as a full sync, with `fallback_reason` set, when the log cannot be
    /// trusted).
    #[serde(default)]
    pub kind: Option<jobs::Kind>,
    /// Who starts it: `api` (default) or `cli` (`dirsync sync` sends this). Scheduled jobs are
    /// started by the server alone.
    #[serde(default)]
    pub trigger: Option<RequestTrigger>,
}

/// How a job request says it was made.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestTrigger {
    /// Through the API.
    Api,
    /// By `dirsync sync`.
    Cli,
}

async fn start_job(state: &AppState, new: jobs::NewJob) -> Result<jobs::Job, ApiError> {
    let job = jobs::start(&state.db, new).await?;
    state.worker.count_created(&job);
    state.worker.wake();
    Ok(job)
}

/// Start a sync job.
///
/// Starts a sync job (a dry run or a real one). Answers 202 with the job and its `Location`;
/// 409 `sync_in_progress` with the active job's id when one is queued or running.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "start_sync_job", request_body = StartJob, responses(
    (status = 202, description = "Queued: the job", body = jobs::Job, headers(("Location" = String, description = "The job's URL"))),
    (status = 409, description = "A job is queued or running", body = crate::error::ErrorBody)))]
#[post("/sync-jobs")]
async fn start(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    body: web::Json<StartJob>,
) -> Result<HttpResponse, ApiError> {
    if body.confirm_deletions.is_some_and(|n| n > 1_000_000) {
        return Err(dirsync_core::Error::invalid(
            "invalid_confirm_deletions",
            "confirm_deletions is at most 1000000",
        )
        .into());
    }
    let trigger = match body.trigger {
        Some(RequestTrigger::Cli) => jobs::Trigger::Cli,
        _ => jobs::Trigger::Api,
    };
    let new = jobs::NewJob {
        dry_run: body.dry_run,
        kind: body.kind.unwrap_or(jobs::Kind::Full),
        trigger,
        confirm_deletions: body.confirm_deletions,
        requested_by: caller.actor(),
    };
    let job = start_job(&state, new).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/sync-jobs/{}", job.id)))
        .json(job))
}

/// List sync jobs.
///
/// Sync jobs, newest first.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "list_sync_jobs", params(PageQuery), responses((status = 200, description = "A page of jobs, newest first", body = Paged<jobs::Job>)))]
#[get("/sync-jobs")]
async fn list(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<jobs::Job>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    Ok(web::Json(jobs::list(&state.db, page).await?.into()))
}

/// Long-poll parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many seconds (at most 60) for the job to end before answering.
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// Read a sync job.
///
/// One sync job; with `?wait=SECONDS`, answers when the job ends or the time is up.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "get_sync_job",
    params(("id" = Uuid, Path, description = "Job id"), WaitQuery),
    responses((status = 200, description = "The job", body = jobs::Job)))]
#[get("/sync-jobs/{id}")]
async fn get_job(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<WaitQuery>,
) -> Result<web::Json<jobs::Job>, ApiError> {
    let id = id.into_inner();
    let job = match query.wait {
        Some(secs) if secs > 0 => {
            if secs > MAX_WAIT_SECS {
                return Err(dirsync_core::Error::invalid(
                    "invalid_wait",
                    format!("wait is at most {MAX_WAIT_SECS} seconds"),
                )
                .into());
            }
            jobs::wait(&state.db, id, Duration::from_secs(secs)).await?
        }
        _ => jobs::get(&state.db, id).await?,
    };
    Ok(web::Json(job))
}

/// Filters of the changes list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes of this kind.
    #[param(inline)]
    pub kind: Option<ChangeKind>,
    /// Items per page, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// List a sync job's changes.
///
/// A job's changes (planned for dry runs and blocked jobs, applied otherwise), in plan order.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "list_sync_job_changes",
    params(("id" = Uuid, Path, description = "Job id"), ChangesQuery),
    responses((status = 200, description = "A page of changes, in plan order", body = Paged<jobs::StoredChange>)))]
#[get("/sync-jobs/{id}/changes")]
async fn list_changes(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ChangesQuery>,
) -> Result<web::Json<Paged<jobs::StoredChange>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let kind = query.kind;
    let changes = jobs::changes(&state.db, id.into_inner(), kind, page).await?;
    Ok(web::Json(changes.into()))
}

/// Cancel a sync job.
///
/// Cancels a job: a queued one at once, a running one at its next step. Nothing it planned is
/// written. 409 `job_finished` when it already ended.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "cancel_sync_job",
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "The job, cancelled or cancelling", body = jobs::Job),
        (status = 409, description = "The job already ended (`job_finished`)", body = crate::error::ErrorBody)))]
#[post("/sync-jobs/{id}/cancel")]
async fn cancel(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<jobs::Job>, ApiError> {
    // Through the worker: a job running on this instance is stopped at once.
    let job = state
        .worker
        .cancel(id.into_inner(), &caller.actor())
        .await?;
    Ok(web::Json(job))
}

/// How many changes to include.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Changes to include, 1 to 500 (default 50).
    #[serde(default, deserialize_with = "crate::integer::query_opt")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// A finished dry run and the first page of its changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    /// The job.
    pub job: jobs::Job,
    /// Its first changes (page through the rest with `/sync-jobs/{id}/changes`).
    pub changes: Vec<jobs::StoredChange>,
    /// Cursor for `/sync-jobs/{id}/changes`, when there are more.
    pub next_cursor: Option<String>,
}

/// Run a dry run and wait for it.
///
/// Runs a dry run and answers when it has finished (up to 5 minutes; 202 with the running job
/// after that), with the job and the first page of its changes.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sync", operation_id = "run_dry_run", params(LimitQuery), responses(
    (status = 200, description = "Finished: the job and its first changes", body = DryRunResult),
    (status = 202, description = "Still running after 5 minutes: follow the job", body = DryRunResult),
    (status = 409, description = "A job is queued or running", body = crate::error::ErrorBody)))]
#[post("/sync/dry-run")]
async fn run_dry_run(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, None)?;
    let new = jobs::NewJob {
        dry_run: true,
        kind: jobs::Kind::Full,
        trigger: jobs::Trigger::Api,
        confirm_deletions: None,
        requested_by: caller.actor(),
    };
    let job = start_job(&state, new).await?;
    let job = jobs::wait(&state.db, job.id, Duration::from_secs(300)).await?;
    let finished = job.status.is_final();
    let changes = jobs::changes(&state.db, job.id, None, page).await?;
    let body = DryRunResult {
        job,
        changes: changes.items,
        next_cursor: changes.next_cursor,
    };
    Ok(if finished {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Accepted().json(body)
    })
}
