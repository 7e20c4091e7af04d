//! Sync jobs: stored in the database, claimed with a lease and kept alive by a heartbeat, so that
//! at most one job is queued or running per installation — across every server instance on one
//! PostgreSQL — and a job whose worker died is taken over once its lease expires.
//!
//! The guarantee "at most one active job" is the unique index on `sync_jobs.active_slot`
//! (1 while queued or running, NULL otherwise): the database refuses a second one, without races.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dirsync_entity::{sync_changes, sync_jobs};
use sea_orm::{
    sea_query::{Condition, Expr},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, NotSet,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::DbResultExt;
use crate::paging::{Page, PageRequest};
use crate::sync::{self, ChangeKind, Summary};
use crate::{Error, Result};

/// A job that fails this many times by losing its worker is given up.
const MAX_ATTEMPTS: i32 = 3;

/// Job states, stored in `sync_jobs.status`: `queued` and `running` are active, the others final.
pub use dirsync_entity::JobStatus as Status;
/// Where a running job is, stored in `sync_jobs.phase`.
pub use dirsync_entity::Phase;
/// How a job was started (`api`, `schedule`, `cli`), stored in `sync_jobs.trigger`.
pub use dirsync_entity::Trigger;

/// Where a running job is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JobProgress))]
pub struct Progress {
    /// `fetching_users`, `fetching_groups`, `fetching_members`, `planning`, `applying`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phase: Option<Phase>,
    /// Users fetched.
    pub users: u64,
    /// Groups fetched.
    pub groups: u64,
    /// Members fetched.
    pub members: u64,
    /// Pages fetched from Google.
    pub pages: u64,
}

// Not an error type of its own: a failure is a `crate::Error`, stored and shown as
// `Error::public` shows it (see the `From` below).
/// Why a job failed or was blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobErrorBody {
    /// Stable code: `unknown_group`, `empty_directory`, `deletion_limit_exceeded`, Google's …
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl JobErrorBody {
    /// A job error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobErrorBody {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for JobErrorBody {
    /// A fault of this server is logged with an error id, and only the id is stored.
    fn from(e: Error) -> Self {
        let shown = e.public();
        JobErrorBody::new(shown.code, shown.message)
    }
}

/// A sync job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SyncJob))]
pub struct Job {
    /// Job id.
    pub id: Uuid,
    /// Plan only.
    pub dry_run: bool,
    /// `api`, `schedule` or `cli`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub trigger: Trigger,
    /// State.
    pub status: Status,
    /// Progress.
    pub progress: Progress,
    /// Counts, once planned.
    pub summary: Option<Summary>,
    /// Deletions in the plan, once planned.
    pub planned_deletions: Option<u64>,
    /// Why it failed or was blocked.
    pub error: Option<JobErrorBody>,
    /// Who asked for it.
    pub requested_by: String,
    /// Times an instance that was stopped (SIGTERM) handed the job over to another, which ran
    /// it again from the start.
    pub handovers: u32,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When a worker took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a damaged job or change row is repaired: jobs are history, nothing reads them back.
const REPAIR_JOB: &str =
    "delete the damaged sync job (its changes go with it) or restore the value";

impl TryFrom<sync_jobs::Model> for Job {
    type Error = Error;

    /// A summary that does not decode is an error, not a job shown without one.
    fn try_from(m: sync_jobs::Model) -> Result<Self> {
        let summary = match m.summary.as_deref() {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|_| {
                crate::stored::invalid("sync_jobs.summary", "a JSON job summary", REPAIR_JOB)
            })?),
        };
        Ok(Job {
            id: m.id,
            dry_run: m.dry_run,
            trigger: m.trigger,
            status: m.status,
            progress: Progress {
                phase: m.phase,
                users: m.users_fetched as u64,
                groups: m.groups_fetched as u64,
                members: m.members_fetched as u64,
                pages: m.pages_fetched as u64,
            },
            summary,
            planned_deletions: m.planned_deletions.map(|n| n as u64),
            error: m.error_code.map(|code| JobErrorBody {
                code,
                message: m.error_message.unwrap_or_default(),
            }),
            requested_by: m.requested_by,
            handovers: m.handovers.max(0) as u32,
            created_at: m.created_at,
            started_at: m.started_at,
            finished_at: m.finished_at,
        })
    }
}

/// One change of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SyncChange))]
pub struct StoredChange {
    /// Increasing id: the paging key, not shown.
    #[serde(skip)]
    pub id: i64,
    /// Kind: `create`, `update`, `delete`, `disable`, `enable`, `folder_kept`, `conflict`,
    /// `kept_admin`, `out_of_scope`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: ChangeKind,
    /// User name.
    pub user_name: String,
    /// Google user id.
    pub directory_id: Option<String>,
    /// Field → `[old, new]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: serde_json::Value,
    /// Why (conflicts, kept and skipped users).
    pub reason: Option<String>,
}

/// A request for a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Plan only.
    pub dry_run: bool,
    /// How it is started.
    pub trigger: Trigger,
    /// Lets a run that deletes more than the limit go through when it equals the planned count.
    pub confirm_deletions: Option<u32>,
    /// Who asks.
    pub requested_by: String,
}

/// Queues a job that `new.requested_by` asked for, and records `sync.start` (or `sync.dry_run`)
/// by them in the same transaction. 409 `sync_in_progress` (with the active job's id) when one
/// is queued or running.
pub async fn start(db: &DatabaseConnection, new: NewJob) -> Result<Job> {
    insert(db, new, true).await
}

/// Queues a job without an audit event: for the schedule, which nobody asked for at the time
/// (setting the schedule was audited). 409 `sync_in_progress` as [`start`].
pub async fn enqueue(db: &DatabaseConnection, new: NewJob) -> Result<Job> {
    insert(db, new, false).await
}

async fn insert(db: &DatabaseConnection, new: NewJob, audited: bool) -> Result<Job> {
    let audit = audited.then(|| {
        (
            new.requested_by.clone(),
            if new.dry_run {
                "sync.dry_run"
            } else {
                "sync.start"
            },
            serde_json::json!({"dry_run": new.dry_run, "confirm_deletions": new.confirm_deletions}),
        )
    });
    let model = sync_jobs::ActiveModel {
        id: Set(Uuid::new_v4()),
        dry_run: Set(new.dry_run),
        trigger: Set(new.trigger),
        status: Set(Status::Queued),
        active_slot: Set(Some(1)),
        phase: Set(None),
        users_fetched: Set(0),
        groups_fetched: Set(0),
        members_fetched: Set(0),
        pages_fetched: Set(0),
        summary: Set(None),
        planned_deletions: Set(None),
        confirm_deletions: Set(new.confirm_deletions.map(|n| n as i32)),
        error_code: Set(None),
        error_message: Set(None),
        requested_by: Set(new.requested_by),
        created_at: Set(Utc::now()),
        started_at: Set(None),
        finished_at: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        cancel_requested: Set(false),
        attempts: Set(0),
        handovers: Set(0),
    };
    let txn = db.begin().await?;
    match model
        .insert(&txn)
        .await
        .on_unique_violation(|| Error::conflict("sync_in_progress", ""))
    {
        Ok(m) => {
            let job: Job = m.try_into()?;
            if let Some((actor, action, details)) = audit {
                let id = Some(job.id.to_string());
                crate::audit::record(&txn, &actor, action, "sync_job", id, details).await?;
            }
            txn.commit().await?;
            Ok(job)
        }
        Err(Error::Conflict { .. }) => {
            // A failed statement ends a PostgreSQL transaction: look outside it.
            drop(txn);
            let active = sync_jobs::Entity::find()
                .filter(sync_jobs::Column::ActiveSlot.eq(1))
                .one(db)
                .await?;
            let id = active.map(|a| a.id);
            Err(Error::conflict(
                "sync_in_progress",
                match id {
                    Some(id) => {
                        format!("sync job {id} is queued or running; wait for it or cancel it")
                    }
                    None => "another sync job was just started; try again".into(),
                },
            )
            .with_details(serde_json::json!({ "job_id": id })))
        }
        Err(e) => Err(e),
    }
}

/// One job.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Job> {
    sync_jobs::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound("sync job"))?
        .try_into()
}

/// Jobs, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    page: PageRequest<(DateTime<Utc>, Uuid)>,
) -> Result<Page<Job>> {
    let mut q = sync_jobs::Entity::find()
        .order_by_desc(sync_jobs::Column::CreatedAt)
        .order_by_desc(sync_jobs::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(crate::paging::newest_first_after(
            sync_jobs::Column::CreatedAt,
            sync_jobs::Column::Id,
            after,
        ));
    }
    let rows = q.limit(page.limit + 1).all(db).await?;
    let rows = Page::from_rows(rows, page.limit, |m| (m.created_at, m.id));
    Ok(Page {
        items: rows
            .items
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<_>>()?,
        next_cursor: rows.next_cursor,
    })
}

/// A job's changes, in plan order, optionally of one kind.
pub async fn changes<C: ConnectionTrait>(
    db: &C,
    job_id: Uuid,
    kind: Option<ChangeKind>,
    page: PageRequest<i64>,
) -> Result<Page<StoredChange>> {
    get(db, job_id).await?;
    let mut q = sync_changes::Entity::find()
        .filter(sync_changes::Column::JobId.eq(job_id))
        .order_by_asc(sync_changes::Column::Id);
    if let Some(k) = kind {
        q = q.filter(sync_changes::Column::Kind.eq(k));
    }
    if let Some(after) = page.after {
        q = q.filter(sync_changes::Column::Id.gt(after));
    }
    let rows = q.limit(page.limit + 1).all(db).await?;
    let rows = Page::from_rows(rows, page.limit, |m| m.id);
    let mut items = Vec::with_capacity(rows.items.len());
    for m in rows.items {
        // Fields that do not decode are an error, not a change shown as changing nothing.
        let fields = serde_json::from_str(&m.fields).map_err(|_| {
            crate::stored::invalid("sync_changes.fields", "a JSON object of fields", REPAIR_JOB)
        })?;
        items.push(StoredChange {
            id: m.id,
            kind: m.kind,
            user_name: m.user_name,
            directory_id: m.directory_id,
            fields,
            reason: m.reason,
        });
    }
    Ok(Page {
        items,
        next_cursor: rows.next_cursor,
    })
}

/// Cancels a job: a queued one at once, a running one at its next check (nothing it planned is
/// written). 409 `job_finished` for a job that already ended. This records the request, which
/// the job's heartbeat sees on any instance; [`Worker::cancel`] also signals a job running on
/// this instance at once.
///
/// Records `sync.cancel` by `actor` in the same transaction.
pub async fn cancel(db: &DatabaseConnection, id: Uuid, actor: &str) -> Result<Job> {
    let txn = crate::users::begin_write(db).await?;
    let job = cancel_in(&txn, id).await?;
    crate::audit::record(
        &txn,
        actor,
        "sync.cancel",
        "sync_job",
        Some(job.id.to_string()),
        serde_json::json!({"status": job.status.as_str()}),
    )
    .await?;
    txn.commit().await?;
    Ok(job)
}

async fn cancel_in<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Job> {
    let job = get(db, id).await?;
    if job.status.is_final() {
        return Err(Error::conflict(
            "job_finished",
            format!("the job already ended ({})", job.status.as_str()),
        ));
    }
    // A queued job is ended here; a running one is flagged for its worker.
    let res = sync_jobs::Entity::update_many()
        .col_expr(sync_jobs::Column::Status, Expr::value(Status::Cancelled))
        .col_expr(
            sync_jobs::Column::ActiveSlot,
            Expr::value(Option::<i32>::None),
        )
        .col_expr(sync_jobs::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(sync_jobs::Column::Id.eq(id))
        .filter(sync_jobs::Column::Status.eq(Status::Queued))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::CancelRequested, Expr::value(true))
            .filter(sync_jobs::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    get(db, id).await
}

/// Waits up to `timeout` for a job to end, and returns it as it is then.
pub async fn wait(db: &DatabaseConnection, id: Uuid, timeout: Duration) -> Result<Job> {
    let deadline = Instant::now() + timeout;
    loop {
        let job = get(db, id).await?;
        if job.status.is_final() || Instant::now() >= deadline {
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(100).min(deadline - Instant::now())).await;
    }
}

/// Runs queued jobs of this instance: claims, heartbeats, runs, records.
#[derive(Clone)]
pub struct Worker {
    db: DatabaseConnection,
    runner: Arc<dyn JobRunner>,
    owner: String,
    lease: Duration,
    wake: Arc<Notify>,
    /// The stop signal of each job running on this instance, so that a cancel received here
    /// reaches the job at once instead of at its next heartbeat.
    running: Arc<std::sync::Mutex<HashMap<Uuid, Arc<StopSignal>>>>,
    /// Set by [`Worker::shutdown`]: claim nothing more.
    stopping: Arc<AtomicBool>,
    /// This server's metrics registry.
    metrics: crate::metrics::Metrics,
}

/// Raised once to stop a running job: by a cancel received on this instance, by the heartbeat
/// seeing a cancel recorded by another instance, by a lost lease, or by this instance stopping
/// (a hand-over). The job checks it between pages and phases, and waits on it beside every Google
/// request, so that a slow request is abandoned rather than awaited.
#[derive(Default)]
pub struct StopSignal {
    raised: AtomicBool,
    /// Raised because this instance stops, not because of the job: give it back to the queue.
    handing_over: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn hand_over(&self) {
        self.handing_over.store(true, Ordering::SeqCst);
        self.raise();
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a raise in between is not missed.
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

/// What a claimed job does. The sync implementation is [`crate::sync::runner::SyncRunner`].
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Runs the job to its end, checking `ctl` between steps.
    async fn run(&self, job: &sync_jobs::Model, ctl: &JobControl) -> Outcome;
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Planned (and for a real run, applied inside `finish`'s transaction): done.
    Done,
    /// Too many deletions: plan stored, nothing applied.
    Blocked,
    /// Stopped by a cancel request; nothing written.
    Cancelled,
    /// Stopped because this instance stops; nothing written, and the job goes back to the queue
    /// for another instance.
    HandedOver,
    /// The lease was lost to another worker: leave the job alone.
    LeaseLost,
    /// Failed; nothing written.
    Failed(JobErrorBody),
}

/// What a running job can see and do about its own record.
pub struct JobControl {
    db: DatabaseConnection,
    id: Uuid,
    owner: String,
    stop: Arc<StopSignal>,
    lease_lost: Arc<AtomicBool>,
    last_progress: std::sync::Mutex<Option<Instant>>,
}

impl JobControl {
    /// True when the job should stop (cancelled, or its lease was lost).
    pub fn should_stop(&self) -> bool {
        self.stop.is_raised()
    }

    /// Returns once the job should stop: race it against slow work (`tokio::select!`) so
    /// that a cancel does not wait for that work to finish.
    pub async fn stopped(&self) {
        self.stop.wait().await
    }

    /// The outcome matching a stop.
    pub fn stop_outcome(&self) -> Outcome {
        if self.lease_lost.load(Ordering::SeqCst) {
            Outcome::LeaseLost
        } else if self.stop.handing_over.load(Ordering::SeqCst) {
            Outcome::HandedOver
        } else {
            Outcome::Cancelled
        }
    }

    /// Records progress; writes at most twice a second unless `force`.
    pub async fn progress(&self, p: &Progress, force: bool) {
        {
            let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
            if !force && last.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let res = sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::Phase, Expr::value(p.phase))
            .col_expr(sync_jobs::Column::UsersFetched, Expr::value(p.users as i64))
            .col_expr(
                sync_jobs::Column::GroupsFetched,
                Expr::value(p.groups as i64),
            )
            .col_expr(
                sync_jobs::Column::MembersFetched,
                Expr::value(p.members as i64),
            )
            .col_expr(sync_jobs::Column::PagesFetched, Expr::value(p.pages as i64))
            .filter(sync_jobs::Column::Id.eq(self.id))
            .exec(&self.db)
            .await;
        if let Err(e) = res {
            tracing::warn!(job_id = %self.id, error = %e, "could not record progress");
        }
    }

    /// The job's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Ends the job inside `txn`, together with whatever the job wrote there: stores its changes,
    /// summary and status, releases the active slot. Fails with `Ok(false)` when this worker no
    /// longer holds the lease, in which case the caller must roll back.
    pub async fn finish<C: ConnectionTrait>(
        &self,
        txn: &C,
        status: Status,
        plan: Option<&sync::Plan>,
        error: Option<&JobErrorBody>,
    ) -> Result<bool> {
        if let Some(plan) = plan {
            store_changes(txn, self.id, &plan.changes).await?;
        }
        let mut q = sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::Status, Expr::value(status))
            .col_expr(
                sync_jobs::Column::ActiveSlot,
                Expr::value(Option::<i32>::None),
            )
            .col_expr(
                sync_jobs::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(sync_jobs::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(
                sync_jobs::Column::ErrorCode,
                Expr::value(error.map(|e| e.code.clone())),
            )
            .col_expr(
                sync_jobs::Column::ErrorMessage,
                Expr::value(error.map(|e| e.message.clone())),
            );
        if let Some(plan) = plan {
            q = q
                .col_expr(
                    sync_jobs::Column::Summary,
                    Expr::value(serde_json::to_string(&plan.summary).ok()),
                )
                .col_expr(
                    sync_jobs::Column::PlannedDeletions,
                    Expr::value(plan.deletes.len() as i32),
                );
        }
        let res = q
            .filter(sync_jobs::Column::Id.eq(self.id))
            .filter(sync_jobs::Column::LeaseOwner.eq(self.owner.clone()))
            .exec(txn)
            .await?;
        Ok(res.rows_affected == 1)
    }
}

async fn store_changes<C: ConnectionTrait>(
    db: &C,
    job_id: Uuid,
    changes: &[sync::Change],
) -> Result<()> {
    let rows = changes.iter().map(move |c| sync_changes::ActiveModel {
        // Assigned by the database: the paging key, in plan order.
        id: NotSet,
        job_id: Set(job_id),
        kind: Set(c.kind),
        user_name: Set(c.user_name.clone()),
        directory_id: Set(c.directory_id.clone()),
        fields: Set(c.fields.as_json().to_owned()),
        reason: Set(c.reason.clone()),
    });
    crate::db::insert_rows(db, Box::new(rows)).await?;
    Ok(())
}

impl Worker {
    /// A worker for this instance.
    pub fn new(
        db: DatabaseConnection,
        runner: Arc<dyn JobRunner>,
        lease: Duration,
        metrics: crate::metrics::Metrics,
    ) -> Worker {
        Worker {
            db,
            runner,
            owner: format!("{}-{}", hostname(), Uuid::new_v4().simple()),
            lease,
            wake: Arc::new(Notify::new()),
            running: Default::default(),
            stopping: Default::default(),
            metrics,
        }
    }

    /// Counts a job queued on this instance in `dirsync_sync_jobs_created_total`.
    pub fn count_created(&self, job: &Job) {
        self.metrics.inc(
            "dirsync_sync_jobs_created_total",
            "Sync jobs queued, by trigger and kind.",
            &[
                ("trigger", job.trigger.as_str()),
                ("dry_run", if job.dry_run { "true" } else { "false" }),
            ],
        );
    }

    /// Stops this instance's worker (on SIGTERM): claims nothing more, stops the jobs it runs at
    /// their next page or phase, having written nothing, and gives them back to the queue, so
    /// that another instance takes them over at once instead of a lease later. Returns when they
    /// are given back, or after `grace` (a job that has not stopped by then is taken over when
    /// its lease runs out, as after a crash).
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let signals: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for signal in &signals {
            signal.hand_over();
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!("a sync job did not stop in time; another instance takes it over when its lease runs out");
    }

    /// Gives a job stopped by [`Worker::shutdown`] back to the queue: no longer leased, its
    /// attempt not counted (the worker did not fail), its hand-over counted. A job cancelled
    /// meanwhile is not given back but ends cancelled.
    async fn hand_back(&self, ctl: &JobControl) -> Result<()> {
        let res = sync_jobs::Entity::update_many()
            .col_expr(
                sync_jobs::Column::Status,
                Expr::value(Status::Queued.as_str()),
            )
            .col_expr(
                sync_jobs::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                sync_jobs::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                sync_jobs::Column::Phase,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                sync_jobs::Column::Attempts,
                Expr::col(sync_jobs::Column::Attempts).sub(1),
            )
            .col_expr(
                sync_jobs::Column::Handovers,
                Expr::col(sync_jobs::Column::Handovers).add(1),
            )
            .filter(sync_jobs::Column::Id.eq(ctl.id))
            .filter(sync_jobs::Column::LeaseOwner.eq(self.owner.clone()))
            .filter(sync_jobs::Column::CancelRequested.eq(false))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 1 {
            tracing::info!(job_id = %ctl.id, "handed a sync job over: this instance stops");
            return Ok(());
        }
        let txn = self.db.begin().await?;
        if ctl.finish(&txn, Status::Cancelled, None, None).await? {
            txn.commit().await?;
        }
        Ok(())
    }

    /// Cancels a job ([`cancel`]) and, when it runs on this instance, stops it at once (within
    /// the request or page in flight); on another instance its heartbeat sees the request.
    pub async fn cancel(&self, id: Uuid, actor: &str) -> Result<Job> {
        let job = cancel(&self.db, id, actor).await?;
        let signal = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        if let Some(signal) = signal {
            signal.raise();
        }
        Ok(job)
    }

    /// Wakes the worker at once (after this instance queued a job).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until [`Worker::shutdown`]: polls for a claimable job every second or when woken.
    pub async fn run(self) -> anyhow::Result<()> {
        while !self.stopping.load(Ordering::SeqCst) {
            match self.claim().await {
                Ok(Some(job)) => self.run_claimed(job).await,
                Ok(None) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for sync jobs; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        Ok(())
    }

    /// Claims the active job when it is queued or its lease expired.
    async fn claim(&self) -> Result<Option<sync_jobs::Model>> {
        let Some(job) = sync_jobs::Entity::find()
            .filter(sync_jobs::Column::ActiveSlot.eq(1))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let claimable =
            job.status == Status::Queued || job.lease_expires_at.is_none_or(|t| t < now);
        if !claimable {
            return Ok(None);
        }
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let res = sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::Status, Expr::value(Status::Running))
            .col_expr(
                sync_jobs::Column::LeaseOwner,
                Expr::value(self.owner.clone()),
            )
            .col_expr(sync_jobs::Column::LeaseExpiresAt, Expr::value(lease_until))
            .col_expr(
                sync_jobs::Column::StartedAt,
                Expr::value(job.started_at.unwrap_or(now)),
            )
            .col_expr(
                sync_jobs::Column::Attempts,
                Expr::col(sync_jobs::Column::Attempts).add(1),
            )
            .filter(sync_jobs::Column::Id.eq(job.id))
            .filter(sync_jobs::Column::ActiveSlot.eq(1))
            .filter(
                Condition::any()
                    .add(sync_jobs::Column::Status.eq(Status::Queued))
                    .add(sync_jobs::Column::LeaseExpiresAt.lt(now)),
            )
            .exec(&self.db)
            .await?;
        if res.rows_affected != 1 {
            return Ok(None); // another instance was quicker
        }
        if job.status == Status::Running {
            tracing::warn!(job_id = %job.id, previous_owner = ?job.lease_owner, "took over a sync job whose worker stopped");
        }
        Ok(sync_jobs::Entity::find_by_id(job.id).one(&self.db).await?)
    }

    async fn run_claimed(&self, job: sync_jobs::Model) {
        let started = Instant::now();
        let stop = Arc::new(StopSignal::default());
        if job.cancel_requested {
            stop.raise();
        }
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job.id, stop.clone());
        // Claimed while a shutdown began: it may have looked for running jobs before this one.
        if self.stopping.load(Ordering::SeqCst) {
            stop.hand_over();
        }
        let ctl = Arc::new(JobControl {
            db: self.db.clone(),
            id: job.id,
            owner: self.owner.clone(),
            stop,
            lease_lost: Arc::new(AtomicBool::new(false)),
            last_progress: Default::default(),
        });
        let heartbeat = tokio::spawn(heartbeat(ctl.clone(), self.lease));
        let outcome = if job.attempts > MAX_ATTEMPTS {
            Outcome::Failed(JobErrorBody::new(
                "worker_lost",
                format!("the job's worker stopped {MAX_ATTEMPTS} times; nothing was written"),
            ))
        } else {
            self.runner.run(&job, &ctl).await
        };
        heartbeat.abort();
        if let Outcome::HandedOver = outcome {
            if let Err(e) = self.hand_back(&ctl).await {
                tracing::error!(job_id = %job.id, error = %e, "could not hand a sync job over; another instance takes it over when its lease runs out");
            }
        }
        let status = match &outcome {
            Outcome::Done => None,
            Outcome::Blocked => None,
            Outcome::LeaseLost => None,
            Outcome::HandedOver => None,
            Outcome::Cancelled => Some((Status::Cancelled, None)),
            Outcome::Failed(e) => Some((Status::Failed, Some(e.clone()))),
        };
        if let Some((status, error)) = status {
            let txn = self.db.begin().await;
            let res = match txn {
                Ok(txn) => match ctl.finish(&txn, status, None, error.as_ref()).await {
                    Ok(true) => txn.commit().await.map_err(Error::from),
                    Ok(false) => txn.rollback().await.map_err(Error::from),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e.into()),
            };
            if let Err(e) = res {
                tracing::error!(job_id = %job.id, error = %e, "could not record the end of a sync job");
            }
        }
        // Only now: a shutdown waits for this to know the job's end is recorded.
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job.id);
        let label = match &outcome {
            Outcome::Done => "succeeded",
            Outcome::Blocked => "blocked",
            Outcome::Cancelled => "cancelled",
            Outcome::LeaseLost => "lease_lost",
            Outcome::HandedOver => "handed_over",
            Outcome::Failed(_) => "failed",
        };
        self.metrics.inc(
            "dirsync_sync_jobs_finished_total",
            "Sync jobs ended, by status.",
            &[("status", label)],
        );
        self.metrics.observe(
            "dirsync_sync_job_duration_seconds",
            "Duration of sync job runs, by status.",
            &[("status", label)],
            started.elapsed().as_secs_f64(),
        );
        tracing::info!(job_id = %job.id, outcome = label, elapsed_ms = started.elapsed().as_millis() as u64, "sync job ended");
        // Told after the end is recorded, and never able to fail or hold up the job: a
        // notification that cannot be queued is logged.
        if matches!(
            outcome,
            Outcome::Done | Outcome::Blocked | Outcome::Failed(_)
        ) {
            crate::notifications::job_ended(&self.db, job.id).await;
        }
    }
}

/// Renews the lease every third of its length and watches for cancel requests recorded by
/// other instances (a cancel received by this one signals the job directly).
async fn heartbeat(ctl: Arc<JobControl>, lease: Duration) {
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
        let res = sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::LeaseExpiresAt, Expr::value(until))
            .filter(sync_jobs::Column::Id.eq(ctl.id))
            .filter(sync_jobs::Column::LeaseOwner.eq(ctl.owner.clone()))
            .exec(&ctl.db)
            .await;
        match res {
            Ok(r) if r.rows_affected == 0 => {
                tracing::warn!(job_id = %ctl.id, "lost the lease of a sync job");
                ctl.lease_lost.store(true, Ordering::SeqCst);
                ctl.stop.raise();
                return;
            }
            Ok(_) => {}
            // A busy database (SQLite while the apply transaction writes) is not a lost lease.
            Err(e) => tracing::debug!(job_id = %ctl.id, error = %e, "heartbeat failed; retrying"),
        }
        if let Ok(Some(j)) = sync_jobs::Entity::find_by_id(ctl.id).one(&ctl.db).await {
            if j.cancel_requested {
                ctl.stop.raise();
            }
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dirsync".into())
}

/// Queues an apply job every `schedule_minutes`, skipped while a job is in progress. The last
/// scheduled job's time is read from the database, so several instances schedule only once.
pub async fn run_scheduler(db: DatabaseConnection, worker: Worker) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        match schedule_once(&db).await {
            Ok(Some(job)) => {
                tracing::info!(job_id = %job.id, "queued a scheduled sync");
                worker.count_created(&job);
                worker.wake();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "scheduler check failed; retrying"),
        }
    }
}

/// One scheduler check: queues a job when the interval has passed since the last scheduled one
/// and none is in progress. Returns the job it queued.
pub async fn schedule_once(db: &DatabaseConnection) -> Result<Option<Job>> {
    let cfg = crate::directory::config_row(db).await?;
    let Some(minutes) = cfg.schedule_minutes.filter(|m| *m > 0) else {
        return Ok(None);
    };
    let last = sync_jobs::Entity::find()
        .filter(sync_jobs::Column::Trigger.eq(Trigger::Schedule))
        .order_by_desc(sync_jobs::Column::CreatedAt)
        .one(db)
        .await?;
    let due =
        last.is_none_or(|j| Utc::now() - j.created_at >= chrono::Duration::minutes(minutes as i64));
    if !due {
        return Ok(None);
    }
    match enqueue(
        db,
        NewJob {
            dry_run: false,
            trigger: Trigger::Schedule,
            confirm_deletions: None,
            requested_by: "schedule".into(),
        },
    )
    .await
    {
        Ok(job) => Ok(Some(job)),
        Err(Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
