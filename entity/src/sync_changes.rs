//! One planned or applied change of a sync job.

use sea_orm::entity::prelude::*;

use crate::values::{ChangeKind, Fields};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_id: Uuid,
    pub kind: ChangeKind,
    pub user_name: String,
    pub directory_id: Option<String>,
    pub fields: Fields,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
