//! This instance's worker: claims the active job with a lease, keeps the lease alive with a
//! heartbeat, runs the job and records its end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dirsync_entity::{sync_jobs, JsonText};
use sea_orm::{
    sea_query::{Condition, Expr},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::model::{Job, JobErrorBody, Progress, Status};
use super::store::{cancel, store_changes};
use crate::sync;
use crate::{Error, Result};

/// A job that fails this many times by losing its worker is given up.
const MAX_ATTEMPTS: i32 = 3;

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

    /// Records that this incremental job runs as a full sync, and why: shown while it runs
    /// and kept whatever its end (a job row is history, not a sync write).
    pub async fn fallback(&self, reason: &str) -> Result<()> {
        sync_jobs::Entity::update_many()
            .col_expr(sync_jobs::Column::FallbackReason, Expr::value(reason))
            .filter(sync_jobs::Column::Id.eq(self.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The job's database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A control for a job that is never stopped, writing its progress to `db` (for tests of
    /// the engine's reads).
    #[cfg(test)]
    pub(crate) fn for_tests(db: DatabaseConnection) -> JobControl {
        JobControl {
            db,
            id: Uuid::nil(),
            owner: String::new(),
            stop: Default::default(),
            lease_lost: Default::default(),
            last_progress: Default::default(),
        }
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
                    Expr::value(Some(JsonText(plan.summary))),
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

impl Worker {
    /// A worker for this instance.
    pub fn new(
        db: DatabaseConnection,
        runner: Arc<dyn JobRunner>,
        lease: Duration,
        metrics: crate::metrics::Metrics,
        host_name: &str,
    ) -> Worker {
        Worker {
            db,
            runner,
            owner: format!("{host_name}-{}", Uuid::new_v4().simple()),
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
