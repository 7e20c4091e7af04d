//! Queueing, reading, cancelling and waiting for jobs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dirsync_entity::{sync_changes, sync_jobs};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::model::{Job, NewJob, Status, StoredChange};
use crate::error::DbResultExt;
use crate::paging::{Page, PageRequest};
use crate::sync::{self, ChangeKind};
use crate::{Error, Result};

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
            serde_json::json!({"dry_run": new.dry_run, "confirm_deletions": new.confirm_deletions, "kind": new.kind}),
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
        kind: Set(new.kind),
        fallback_reason: Set(None),
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
    // Fields that do not decode fail the read (`stored_data_invalid`), not a change shown as
    // changing nothing.
    for m in rows.items {
        items.push(StoredChange {
            id: m.id,
            kind: m.kind,
            user_name: m.user_name,
            directory_id: m.directory_id,
            fields: m.fields.to_value(),
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
/// the job's heartbeat sees on any instance; [`Worker::cancel`](super::Worker::cancel) also signals a job running on
/// this instance at once.
///
/// Records `sync.cancel` by `actor` in the same transaction.
pub async fn cancel(db: &DatabaseConnection, id: Uuid, actor: &str) -> Result<Job> {
    let txn = crate::db::begin_write(db).await?;
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

pub(super) async fn store_changes<C: ConnectionTrait>(
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
        fields: Set(c.fields.clone()),
        reason: Set(c.reason.clone()),
    });
    crate::db::insert_rows(db, Box::new(rows)).await?;
    Ok(())
}
