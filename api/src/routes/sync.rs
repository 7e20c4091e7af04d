//! Sync jobs: start (dry run or apply), follow, read their changes, cancel.

use std::time::Duration;

use actix_web::{get, http::header, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use dirsync_core::{audit, jobs, paging::PageRequest, sync::ChangeKind};
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
pub struct StartJob {
    /// Plan only: store the changes a real run would make, write nothing else.
    #[serde(default)]
    pub dry_run: bool,
    /// Lets a run blocked by the deletion limit go through: must equal the planned deletions.
    #[schema(minimum = 0, maximum = 1000000)]
    pub confirm_deletions: Option<u32>,
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

/// Job states: `queued` and `running` are active, the others final.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed; nothing written.
    Failed,
    /// Too many deletions; nothing written; the plan is kept.
    Blocked,
    /// Cancelled; nothing written.
    Cancelled,
}

/// Where a running job is.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobProgress {
    /// `fetching_users`, `fetching_groups`, `fetching_members`, `planning`, `applying`.
    pub phase: Option<String>,
    /// Users fetched.
    pub users: u64,
    /// Groups fetched.
    pub groups: u64,
    /// Members fetched.
    pub members: u64,
    /// Pages fetched from Google.
    pub pages: u64,
}

/// Counts per change kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    /// Users created.
    pub created: u64,
    /// Users updated.
    pub updated: u64,
    /// Users deleted.
    pub deleted: u64,
    /// Users disabled (suspended or archived in Google).
    pub disabled: u64,
    /// Users enabled again.
    pub enabled: u64,
    /// In-scope users already up to date.
    pub unchanged: u64,
    /// Conflicts reported and skipped.
    pub conflicts: u64,
    /// Archive folders kept for deleted users.
    pub folders_kept: u64,
    /// Out-of-scope admins kept.
    pub kept_admin: u64,
    /// Out-of-scope users left alone.
    pub out_of_scope: u64,
}

/// Why a job failed or was blocked.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobErrorBody {
    /// Stable code: `unknown_group`, `empty_directory`, `deletion_limit_exceeded`, Google's …
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// A sync job.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncJob {
    /// Job id.
    pub id: Uuid,
    /// Plan only.
    pub dry_run: bool,
    /// `api`, `schedule` or `cli`.
    pub trigger: String,
    /// State.
    pub status: JobStatus,
    /// Progress.
    pub progress: JobProgress,
    /// Counts, once planned.
    pub summary: Option<JobSummary>,
    /// Deletions in the plan, once planned.
    pub planned_deletions: Option<u64>,
    /// Why it failed or was blocked.
    pub error: Option<JobErrorBody>,
    /// Who asked for it.
    pub requested_by: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When a worker took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<jobs::Job> for SyncJob {
    fn from(j: jobs::Job) -> Self {
        SyncJob {
            id: j.id,
            dry_run: j.dry_run,
            trigger: j.trigger.as_str().to_owned(),
            status: match j.status {
                jobs::Status::Queued => JobStatus::Queued,
                jobs::Status::Running => JobStatus::Running,
                jobs::Status::Succeeded => JobStatus::Succeeded,
                jobs::Status::Failed => JobStatus::Failed,
                jobs::Status::Blocked => JobStatus::Blocked,
                jobs::Status::Cancelled => JobStatus::Cancelled,
            },
            progress: JobProgress {
                phase: j.progress.phase.map(|p| p.as_str().to_owned()),
                users: j.progress.users,
                groups: j.progress.groups,
                members: j.progress.members,
                pages: j.progress.pages,
            },
            summary: j.summary.map(|s| JobSummary {
                created: s.created,
                updated: s.updated,
                deleted: s.deleted,
                disabled: s.disabled,
                enabled: s.enabled,
                unchanged: s.unchanged,
                conflicts: s.conflicts,
                folders_kept: s.folders_kept,
                kept_admin: s.kept_admin,
                out_of_scope: s.out_of_scope,
            }),
            planned_deletions: j.planned_deletions,
            error: j.error.map(|e| JobErrorBody {
                code: e.code,
                message: e.message,
            }),
            requested_by: j.requested_by,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

/// Kinds of change.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKindName {
    /// A new user.
    Create,
    /// Renamed, names or addresses changed, or linked.
    Update,
    /// Deleted.
    Delete,
    /// Suspended or archived in Google.
    Disable,
    /// Active again.
    Enable,
    /// A deleted user's folder kept (it holds messages).
    FolderKept,
    /// Skipped: clashes with another user.
    Conflict,
    /// Out of scope but an admin: kept.
    KeptAdmin,
    /// Out of scope, left alone.
    OutOfScope,
}

/// One change of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncChange {
    /// Kind: `create`, `update`, `delete`, `disable`, `enable`, `folder_kept`, `conflict`,
    /// `kept_admin`, `out_of_scope`.
    pub kind: String,
    /// User name.
    pub user_name: String,
    /// Google user id.
    pub directory_id: Option<String>,
    /// Field → `[old, new]`.
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    /// Why (conflicts, kept and skipped users).
    pub reason: Option<String>,
}

impl From<jobs::StoredChange> for SyncChange {
    fn from(c: jobs::StoredChange) -> Self {
        SyncChange {
            kind: c.kind.as_str().to_owned(),
            user_name: c.user_name,
            directory_id: c.directory_id,
            fields: c.fields,
            reason: c.reason,
        }
    }
}

async fn start_job(
    state: &AppState,
    actor: String,
    dry_run: bool,
    confirm_deletions: Option<u32>,
    trigger: jobs::Trigger,
) -> Result<jobs::Job, ApiError> {
    let job = jobs::enqueue(
        &state.db,
        jobs::NewJob {
            dry_run,
            trigger,
            confirm_deletions,
            requested_by: actor.clone(),
        },
    )
    .await?;
    state.worker.wake();
    audit::record(
        &state.db,
        &actor,
        if dry_run {
            "sync.dry_run"
        } else {
            "sync.start"
        },
        "sync_job",
        Some(job.id.to_string()),
        serde_json::json!({"dry_run": dry_run, "confirm_deletions": confirm_deletions}),
    )
    .await?;
    Ok(job)
}

/// Starts a sync job (a dry run or a real one). Answers 202 with the job and its `Location`;
/// 409 `sync_in_progress` with the active job's id when one is queued or running.
#[utoipa::path(tag = "sync", operation_id = "start_sync_job", request_body = StartJob, responses(
    (status = 202, body = SyncJob, headers(("Location" = String, description = "The job's URL"))),
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
    let job = start_job(
        &state,
        caller.actor(),
        body.dry_run,
        body.confirm_deletions,
        trigger,
    )
    .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/sync-jobs/{}", job.id)))
        .json(SyncJob::from(job)))
}

/// Sync jobs, newest first.
#[utoipa::path(tag = "sync", operation_id = "list_sync_jobs", params(PageQuery), responses((status = 200, body = Paged<SyncJob>)))]
#[get("/sync-jobs")]
async fn list(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Paged<SyncJob>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    Ok(web::Json(
        jobs::list(&state.db, page).await?.map(SyncJob::from).into(),
    ))
}

/// Long-poll parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many seconds (at most 60) for the job to end before answering.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
}

/// One sync job; with `?wait=SECONDS`, answers when the job ends or the time is up.
#[utoipa::path(tag = "sync", operation_id = "get_sync_job",
    params(("id" = Uuid, Path, description = "Job id"), WaitQuery),
    responses((status = 200, body = SyncJob)))]
#[get("/sync-jobs/{id}")]
async fn get_job(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<WaitQuery>,
) -> Result<web::Json<SyncJob>, ApiError> {
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
    Ok(web::Json(job.into()))
}

/// Filters of the changes list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Only changes of this kind.
    #[param(inline)]
    pub kind: Option<ChangeKindName>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

fn core_kind(k: ChangeKindName) -> ChangeKind {
    match k {
        ChangeKindName::Create => ChangeKind::Create,
        ChangeKindName::Update => ChangeKind::Update,
        ChangeKindName::Delete => ChangeKind::Delete,
        ChangeKindName::Disable => ChangeKind::Disable,
        ChangeKindName::Enable => ChangeKind::Enable,
        ChangeKindName::FolderKept => ChangeKind::FolderKept,
        ChangeKindName::Conflict => ChangeKind::Conflict,
        ChangeKindName::KeptAdmin => ChangeKind::KeptAdmin,
        ChangeKindName::OutOfScope => ChangeKind::OutOfScope,
    }
}

/// A job's changes (planned for dry runs and blocked jobs, applied otherwise), in plan order.
#[utoipa::path(tag = "sync", operation_id = "list_sync_job_changes",
    params(("id" = Uuid, Path, description = "Job id"), ChangesQuery),
    responses((status = 200, body = Paged<SyncChange>)))]
#[get("/sync-jobs/{id}/changes")]
async fn list_changes(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<ChangesQuery>,
) -> Result<web::Json<Paged<SyncChange>>, ApiError> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let kind = query.kind.map(core_kind);
    let changes = jobs::changes(&state.db, id.into_inner(), kind, page).await?;
    Ok(web::Json(changes.map(SyncChange::from).into()))
}

/// Cancels a job: a queued one at once, a running one at its next step. Nothing it planned is
/// written. 409 `job_finished` when it already ended.
#[utoipa::path(tag = "sync", operation_id = "cancel_sync_job",
    params(("id" = Uuid, Path, description = "Job id")),
    responses((status = 200, body = SyncJob)))]
#[post("/sync-jobs/{id}/cancel")]
async fn cancel(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<SyncJob>, ApiError> {
    // Through the worker: a job running on this instance is stopped at once.
    let job = state.worker.cancel(id.into_inner()).await?;
    audit::record(
        &state.db,
        &caller.actor(),
        "sync.cancel",
        "sync_job",
        Some(job.id.to_string()),
        serde_json::json!({"status": job.status.as_str()}),
    )
    .await?;
    Ok(web::Json(job.into()))
}

/// How many changes to include.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Changes to include, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// A finished dry run and the first page of its changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    /// The job.
    pub job: SyncJob,
    /// Its first changes (page through the rest with `/sync-jobs/{id}/changes`).
    pub changes: Vec<SyncChange>,
    /// Cursor for `/sync-jobs/{id}/changes`, when there are more.
    pub next_cursor: Option<String>,
}

/// Runs a dry run and answers when it has finished (up to 5 minutes; 202 with the running job
/// after that), with the job and the first page of its changes.
#[utoipa::path(tag = "sync", operation_id = "run_dry_run", params(LimitQuery), responses(
    (status = 200, body = DryRunResult),
    (status = 202, description = "Still running after 5 minutes: follow the job", body = DryRunResult),
    (status = 409, description = "A job is queued or running", body = crate::error::ErrorBody)))]
#[post("/sync/dry-run")]
async fn run_dry_run(
    caller: Auth<Operator>,
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::parse(query.limit, None)?;
    let job = start_job(&state, caller.actor(), true, None, jobs::Trigger::Api).await?;
    let job = jobs::wait(&state.db, job.id, Duration::from_secs(300)).await?;
    let finished = job.status.is_final();
    let changes = jobs::changes(&state.db, job.id, None, page).await?;
    let body = DryRunResult {
        job: job.into(),
        changes: changes.items.into_iter().map(SyncChange::from).collect(),
        next_cursor: changes.next_cursor,
    };
    Ok(if finished {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::Accepted().json(body)
    })
}
