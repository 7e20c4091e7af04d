//! A synchronization job; `active_slot` is 1 while queued or running (unique).

use sea_orm::entity::prelude::*;

use crate::values::{JobKind, JobStatus, JsonText, Phase, Summary, Trigger};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub dry_run: bool,
    pub trigger: Trigger,
    pub status: JobStatus,
    pub active_slot: Option<i32>,
    pub phase: Option<Phase>,
    pub users_fetched: i64,
    pub groups_fetched: i64,
    pub members_fetched: i64,
    pub pages_fetched: i64,
    pub summary: Option<JsonText<Summary>>,
    pub planned_deletions: Option<i32>,
    pub confirm_deletions: Option<i32>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub requested_by: String,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub cancel_requested: bool,
    pub attempts: i32,
    /// Times an instance that was stopped handed the job over to another.
    pub handovers: i32,
    pub kind: JobKind,
    /// Why an incremental job ran as a full one.
    pub fallback_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
