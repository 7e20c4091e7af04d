//! A webhook endpoint: where notifications of chosen events are POSTed; the signing secret is
//! stored encrypted.

use sea_orm::entity::prelude::*;

use crate::values::{EventType, JsonText};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub url: String,
    /// A JSON list of event types, sorted.
    pub events: JsonText<Vec<EventType>>,
    /// Encrypted (`notification_endpoints.secret:<id>`).
    pub secret: String,
    pub only_when_changed: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
