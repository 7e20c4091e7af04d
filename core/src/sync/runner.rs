//! Running one sync job: configuration → read (full, or incremental from the directory's
//! changes, which falls back to full) → plan → safeguards → apply, all or nothing. The reads go
//! through the configured directory's provider (`crate::provider`), never to a named directory.

use std::sync::Arc;

use chrono::Utc;
use dirsync_entity::sync_jobs;
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::apply;
use super::plan::RemoteState;
use super::plan::{plan, Rules};
use super::safeguards;
use super::snapshot::{self, ScopeKey, Snapshot, State};
use super::{fetch, incremental, local};
use crate::jobs::{JobControl, JobRunner, Kind, Outcome, Phase, Progress, Status};
use crate::secrets::Cipher;
use crate::{directory, Result};

/// Runs sync jobs against the configured directory.
pub struct SyncRunner {
    cipher: Cipher,
    access: directory::DirectoryAccess,
}

impl SyncRunner {
    /// A runner using the server's cipher, and its settings and access-token caches for each
    /// directory provider.
    pub fn new(cipher: Cipher, access: directory::DirectoryAccess) -> Arc<SyncRunner> {
        Arc::new(SyncRunner { cipher, access })
    }
}

#[async_trait::async_trait]
impl JobRunner for SyncRunner {
    async fn run(&self, job: &sync_jobs::Model, ctl: &JobControl) -> Outcome {
        match self.run_inner(job, ctl).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Failed(e.into()),
        }
    }
}

fn phase(p: &mut Progress, phase: Phase) {
    p.phase = Some(phase);
}

impl SyncRunner {
    async fn run_inner(&self, job: &sync_jobs::Model, ctl: &JobControl) -> Result<Outcome> {
        let db: &DatabaseConnection = ctl.db();
        let cfg = directory::config_row(db).await?;
        // Undecodable sync groups fail the job (stored_data_invalid): read as empty, they would
        // put every user of the account in scope.
        let sync_groups = directory::sync_groups_of(&cfg)?;
        let provider = directory::provider_for(&cfg, &self.cipher, &self.access)?;
        let scope_key = ScopeKey::new(
            cfg.customer_id.as_deref(),
            cfg.domain.as_deref(),
            &sync_groups,
        );
        let mut progress = Progress::default();
        // A cancel abandons the request in flight (dropping the read drops it) rather than
        // waiting for the directory's answer; the reads also check between pages.
        let mut read = None;
        if job.kind == Kind::Incremental {
            let state = snapshot::load(db).await?;
            let stored = snapshot::load_snapshot(db).await?;
            let overlap = chrono::Duration::minutes(cfg.event_overlap_minutes.max(0) as i64);
            let outcome = tokio::select! {
                r = incremental::read(&*provider, &state, stored, &scope_key, overlap, &mut progress, ctl) => r?,
                () = ctl.stopped() => return Ok(ctl.stop_outcome()),
            };
            if ctl.should_stop() {
                return Ok(ctl.stop_outcome());
            }
            match outcome {
                incremental::Outcome::Ready(inc) => {
                    snapshot::record_events_access(db, true, None).await?;
                    read = Some(inc);
                }
                incremental::Outcome::Fallback {
                    reason,
                    events_unreadable,
                } => {
                    tracing::info!(job_id = %job.id, %reason, "incremental job runs as a full sync");
                    ctl.fallback(&reason).await?;
                    if let Some(why) = events_unreadable {
                        snapshot::record_events_access(db, false, Some(why)).await?;
                    }
                }
            }
        }
        // What the run reads, the directory to store with its users (once planned), and the
        // state to store with it.
        let (remote, snap, next_state) = match read {
            Some(inc) => {
                let incremental::Incremental {
                    mut snapshot,
                    in_scope,
                    state,
                } = *inc;
                let remote = RemoteState {
                    users: std::mem::take(&mut snapshot.users),
                    in_scope,
                };
                let next = State {
                    last_incremental_job_id: Some(job.id),
                    ..state
                };
                (remote, snapshot, next)
            }
            None => {
                // The cursor of a full read is the moment it began: every event before it is
                // in what it reads.
                let began = Utc::now();
                phase(&mut progress, Phase::FetchingUsers);
                ctl.progress(&progress, true).await;
                // Change tracking begins before the read, so that nothing changed during it is
                // missed (what the read saw too is read again, harmlessly).
                let marker = tokio::select! {
                    m = provider.change_marker() => m,
                    () = ctl.stopped() => return Ok(ctl.stop_outcome()),
                };
                let change_marker = marker.unwrap_or_else(|e| {
                    tracing::warn!(
                        job_id = %job.id,
                        error = %e,
                        "change tracking could not begin; the next incremental job runs as a full sync"
                    );
                    None
                });
                let fetched = tokio::select! {
                    f = fetch::fetch(&*provider, &sync_groups, &mut progress, ctl) => f?,
                    () = ctl.stopped() => return Ok(ctl.stop_outcome()),
                };
                if ctl.should_stop() {
                    return Ok(ctl.stop_outcome());
                }
                let snap = Snapshot {
                    scope_key,
                    full_read_at: began,
                    account_users: fetched.remote.users.len() as u64,
                    account_groups: fetched.account_groups,
                    users: Vec::new(),
                    graph: fetched.graph,
                };
                let next = State {
                    cursor: Some(began),
                    newest_event_at: Some(began),
                    // A full job leaves the last incremental job as it was.
                    last_incremental_job_id: (job.kind == Kind::Incremental).then_some(job.id),
                    change_marker,
                    ..State::default()
                };
                (fetched.remote, snap, next)
            }
        };

        phase(&mut progress, Phase::Planning);
        ctl.progress(&progress, true).await;
        let local = local::load(db).await?;
        let directory_users = local.users.iter().filter(|u| u.directory).count();
        safeguards::check_not_empty(&remote, directory_users)?;
        let the_plan = plan(
            &remote,
            &local,
            Rules {
                auto_delete_users: cfg.auto_delete_users,
            },
        );
        // The planner settles every name and address; should that ever break, say which user
        // and which address before writing anything, rather than meet the unique index.
        if let Err(clash) = apply::check(&the_plan, &local) {
            return Err(crate::Error::conflict(
                "address_clash",
                format!(
                    "{clash}; nothing was written. This is a fault in dirsync's planner: report it \
                     with this job's changes. Renaming or removing that address in Google lets the \
                     next run through"
                ),
            ));
        }
        // A dry run stores nothing, so it encodes nothing either.
        let snapshot_text = (!job.dry_run).then(|| snap.encode_with(&remote));
        drop(local);
        drop(remote);
        drop(snap);
        if ctl.should_stop() {
            return Ok(ctl.stop_outcome());
        }

        let over_limit = safeguards::check_deletions(
            the_plan.deletes.len() as u64,
            cfg.deletion_limit.map(|n| n.max(0) as u32),
            directory_users,
            job.confirm_deletions.map(|n| n as u64),
        );
        let grants = crate::privileges::load_defaults(db).await?;
        if ctl.should_stop() {
            return Ok(ctl.stop_outcome());
        }
        let txn = db.begin().await.map_err(crate::Error::from)?;
        if let Err(error) = over_limit {
            return match ctl
                .finish(&txn, Status::Blocked, Some(&the_plan), Some(&error))
                .await?
            {
                true => {
                    txn.commit().await.map_err(crate::Error::from)?;
                    Ok(Outcome::Blocked)
                }
                false => Ok(Outcome::LeaseLost),
            };
        }

        if !job.dry_run {
            phase(&mut progress, Phase::Applying);
            ctl.progress(&progress, true).await;
            apply::apply(&txn, &the_plan, &grants, Utc::now())
                .await
                .map_err(taken_meanwhile)?;
        }
        // What this run read becomes the next incremental job's start, with its changes or not
        // at all.
        if let Some(text) = snapshot_text {
            snapshot::save(&txn, next_state, text).await?;
        }
        if ctl.should_stop() {
            txn.rollback().await.map_err(crate::Error::from)?;
            return Ok(ctl.stop_outcome());
        }
        if !ctl
            .finish(&txn, Status::Succeeded, Some(&the_plan), None)
            .await?
        {
            txn.rollback().await.map_err(crate::Error::from)?;
            return Ok(Outcome::LeaseLost);
        }
        txn.commit().await.map_err(crate::Error::from)?;
        Ok(Outcome::Done)
    }
}

/// A unique index that fails in the apply means another writer (the API creating a user, an
/// administrator's edit) took a name or address between the planning and this transaction: the
/// planner itself never plans one user onto another's name ([`apply::check`]). Say which rule in
/// words; the next run plans against that user and reports it as a conflict.
fn taken_meanwhile(e: crate::Error) -> crate::Error {
    let crate::Error::Db(db) = e else {
        return e;
    };
    let Some(sea_orm::SqlErr::UniqueConstraintViolation(what)) = db.sql_err() else {
        return crate::Error::Db(db);
    };
    let rule = if what.contains("user_name_key") {
        "user names are unique"
    } else if what.contains("address_key") || what.contains("user_emails") {
        "an address belongs to one user"
    } else if what.contains("directory_id") {
        "a Google user is linked to one user here"
    } else {
        "a unique rule of the users table"
    };
    crate::Error::conflict(
        "address_taken_meanwhile",
        format!(
            "while this job ran, another change gave a user a name or address that the plan gives \
             to a directory user ({rule}; the database said: {what}); nothing was written. Run \
             the sync again: the next plan sees that user and reports the clash as a conflict"
        ),
    )
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database};

    use super::taken_meanwhile;

    #[tokio::test]
    async fn a_unique_index_met_in_the_apply_is_told_in_words_with_the_rule() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, user_name_key TEXT NOT NULL UNIQUE); \
             INSERT INTO users (user_name_key) VALUES ('a@example.com')",
        )
        .await
        .unwrap();
        let err = db
            .execute_unprepared("INSERT INTO users (user_name_key) VALUES ('a@example.com')")
            .await
            .unwrap_err();
        let crate::Error::Conflict { code, message, .. } = taken_meanwhile(err.into()) else {
            panic!("not mapped");
        };
        assert_eq!(code, "address_taken_meanwhile");
        assert!(message.contains("user names are unique"), "{message}");
        assert!(message.contains("nothing was written"), "{message}");
    }
}
