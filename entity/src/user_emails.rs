//! An e-mail address of a user; `address_key` is the lower-cased address.

use sea_orm::entity::prelude::*;

use crate::values::EmailKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub address_key: String,
    pub address: String,
    pub user_id: Uuid,
    pub kind: EmailKind,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
