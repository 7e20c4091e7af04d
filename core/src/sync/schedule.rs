//! The schedule (product.md §3.11, §8): a full sync every `schedule_minutes`, and with
//! incremental sync on, an incremental job every `incremental_seconds` and a full one every
//! `full_sync_hours`; never two at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dirsync_entity::sync_jobs;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::jobs::{enqueue, Job, Kind, NewJob, Trigger, Worker};
use crate::{Error, Result};

/// How often the scheduler looks: often enough for `incremental_seconds` of 10.
const TICK: Duration = Duration::from_secs(5);

/// Queues scheduled jobs (see [`schedule_once`]), skipped while a job is in progress. The last
/// scheduled jobs' times are read from the database, so several instances schedule only once.
pub async fn run_scheduler(db: DatabaseConnection, worker: Worker) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(TICK).await;
        match schedule_once(&db).await {
            Ok(Some(job)) => {
                tracing::info!(job_id = %job.id, kind = job.kind.as_str(), "queued a scheduled sync");
                worker.count_created(&job);
                worker.wake();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "scheduler check failed; retrying"),
        }
    }
}

/// When the last scheduled job of `kind` was created. Nothing else is read: the rest of an old
/// job (its summary, say) is not the schedule's to decode.
async fn last_scheduled(db: &DatabaseConnection, kind: Kind) -> Result<Option<DateTime<Utc>>> {
    Ok(sync_jobs::Entity::find()
        .select_only()
        .column(sync_jobs::Column::CreatedAt)
        .filter(sync_jobs::Column::Trigger.eq(Trigger::Schedule))
        .filter(sync_jobs::Column::Kind.eq(kind))
        .order_by_desc(sync_jobs::Column::CreatedAt)
        .into_tuple()
        .one(db)
        .await?)
}

/// One scheduler check. A full sync is due every `schedule_minutes` and, while incremental
/// sync is on, every `full_sync_hours` (the safety net), whichever comes first; otherwise an
/// incremental job every `incremental_seconds`. Never two at once: a job in progress skips the
/// turn. Returns the job it queued.
pub async fn schedule_once(db: &DatabaseConnection) -> Result<Option<Job>> {
    let cfg = crate::directory::config_row(db).await?;
    let incremental = cfg
        .incremental_seconds
        .filter(|s| *s > 0)
        .map(|s| chrono::Duration::seconds(s as i64));
    let full_every = [
        cfg.schedule_minutes
            .filter(|m| *m > 0)
            .map(|m| chrono::Duration::minutes(m as i64)),
        incremental.map(|_| chrono::Duration::hours(cfg.full_sync_hours.max(1) as i64)),
    ]
    .into_iter()
    .flatten()
    .min();
    let now = Utc::now();
    let due = |last: Option<DateTime<Utc>>, every: chrono::Duration| {
        last.is_none_or(|t| now - t >= every)
    };
    let kind = match (full_every, incremental) {
        (Some(every), _) if due(last_scheduled(db, Kind::Full).await?, every) => Kind::Full,
        (_, Some(every)) if due(last_scheduled(db, Kind::Incremental).await?, every) => {
            Kind::Incremental
        }
        _ => return Ok(None),
    };
    match enqueue(
        db,
        NewJob {
            dry_run: false,
            kind,
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
