//! A Google group seen by the last applied sync.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    pub email: String,
    pub email_key: String,
    pub name: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
