//! A sync job as stored (`sync_jobs`, `sync_changes`) and as callers see it.

use chrono::{DateTime, Utc};
use dirsync_entity::{sync_jobs, JsonText};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sync::{ChangeKind, Summary};
use crate::{Error, Result};

/// What a job reads (`full`, `incremental`), stored in `sync_jobs.kind`.
pub use dirsync_entity::JobKind as Kind;
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
    /// `full` (every user and the sync groups' members) or `incremental` (what the admin log
    /// says changed since the cursor, re-read from the Directory API).
    pub kind: Kind,
    /// Set when an incremental job ran as a full sync, and why (no cursor yet, the cursor older
    /// than the log keeps, an event that names no user, more to re-read than a full sync
    /// reads, the log unreadable).
    pub fallback_reason: Option<String>,
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

impl TryFrom<sync_jobs::Model> for Job {
    type Error = Error;

    /// A code without its message is an error, not a job shown with an empty one. (A summary
    /// that does not decode fails the read of the row itself.)
    fn try_from(m: sync_jobs::Model) -> Result<Self> {
        let summary = m.summary.map(JsonText::into_inner);
        Ok(Job {
            id: m.id,
            dry_run: m.dry_run,
            kind: m.kind,
            fallback_reason: m.fallback_reason,
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
            error: match (m.error_code, m.error_message) {
                (None, _) => None,
                (Some(code), Some(message)) => Some(JobErrorBody { code, message }),
                // Written together: a code without its message is a damaged row.
                (Some(_), None) => {
                    return Err(crate::stored::invalid(
                        "sync_jobs.error_message",
                        "the message of the job's error_code",
                        crate::stored::REPAIR_JOB,
                    ))
                }
            },
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
    /// Full or incremental.
    pub kind: Kind,
    /// How it is started.
    pub trigger: Trigger,
    /// Lets a run that deletes more than the limit go through when it equals the planned count.
    pub confirm_deletions: Option<u32>,
    /// Who asks.
    pub requested_by: String,
}
