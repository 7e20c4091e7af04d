//! The schedule (product.md §3.11): an apply job every `schedule_minutes`, skipped while a job
//! is in progress.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dirsync_entity::sync_jobs;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::jobs::{enqueue, Job, Kind, NewJob, Trigger, Worker};
use crate::{Error, Result};

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
    // When it was queued, nothing else: the rest of an old job (its summary, say) is not the
    // schedule's to decode.
    let last: Option<DateTime<Utc>> = sync_jobs::Entity::find()
        .select_only()
        .column(sync_jobs::Column::CreatedAt)
        .filter(sync_jobs::Column::Trigger.eq(Trigger::Schedule))
        .order_by_desc(sync_jobs::Column::CreatedAt)
        .into_tuple()
        .one(db)
        .await?;
    let due = last.is_none_or(|t| Utc::now() - t >= chrono::Duration::minutes(minutes as i64));
    if !due {
        return Ok(None);
    }
    match enqueue(
        db,
        NewJob {
            dry_run: false,
            kind: Kind::Full,
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
