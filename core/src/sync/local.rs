//! Reading the local side of a sync in a few bulk queries (never one per user).

use std::collections::{HashMap, HashSet};

use dirsync_entity::{archive_folders, user_emails, user_privileges, users};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::plan::{LocalState, LocalUser};
use crate::Result;

/// Loads every user with its addresses, `admin` flag and own folder's message count.
pub async fn load<C: ConnectionTrait>(db: &C) -> Result<LocalState> {
    let rows = users::Entity::find().all(db).await?;
    let mut addresses: HashMap<Uuid, Vec<(bool, String)>> = HashMap::new();
    for e in user_emails::Entity::find().all(db).await? {
        addresses
            .entry(e.user_id)
            .or_default()
            .push((e.kind == "primary", e.address));
    }
    let admins: HashSet<Uuid> = user_privileges::Entity::find()
        .filter(user_privileges::Column::Privilege.eq("admin"))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    let folders: HashMap<Uuid, i64> = archive_folders::Entity::find()
        .filter(archive_folders::Column::UserId.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|f| f.user_id.map(|u| (u, f.message_count)))
        .collect();
    let users = rows
        .into_iter()
        .map(|u| {
            let mut addrs = addresses.remove(&u.id).unwrap_or_default();
            // Primary first, then the others in a stable order.
            addrs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            LocalUser {
                id: u.id,
                directory: u.auth_method == "directory",
                directory_id: u.directory_id,
                disabled: u.disabled,
                addresses: addrs.into_iter().map(|(_, a)| a).collect(),
                is_admin: admins.contains(&u.id),
                folder_messages: folders.get(&u.id).copied().unwrap_or(0),
                user_name: u.user_name,
                full_name: u.full_name,
            }
        })
        .collect();
    Ok(LocalState { users })
}
