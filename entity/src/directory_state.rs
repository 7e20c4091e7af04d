//! What incremental sync starts from (one row, id 1), written by every applied sync in the
//! transaction of its changes: the admin-log cursor, the activities applied within the overlap
//! window (JSON), and the directory as last read (`snapshot`, JSON: the users in scope and the
//! sync groups' membership graph). The connection test and incremental jobs record whether the
//! admin log is readable.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Events up to this time are applied (a full sync: the moment its fetch began).
    pub cursor: Option<DateTimeUtc>,
    /// The time of the newest event applied.
    pub newest_event_at: Option<DateTimeUtc>,
    pub applied: String,
    pub snapshot: Option<String>,
    pub events_available: Option<bool>,
    pub events_reason: Option<String>,
    pub last_incremental_job_id: Option<Uuid>,
    pub updated_at: DateTimeUtc,
    /// Entra: the delta links an incremental job continues from (JSON), written by the sync
    /// that read them; `None` for Google, or before the first Entra sync.
    pub delta_links: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
