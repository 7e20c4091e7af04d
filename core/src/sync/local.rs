//! Reading the local side of a sync in a few bulk queries (never one per user).

use std::collections::{HashMap, HashSet};

use dirsync_entity::{archive_folders, user_emails, user_privileges, users};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::plan::{DirectoryId, LocalState, LocalUser};
use crate::privileges::Privilege;
use crate::users::{AuthMethod, EmailKind};
use crate::Result;

/// A user row as the planner needs it: timestamps and password hashes are not read (at
/// 100,000 users, decoding them is a good part of an unchanged re-run).
/// A damaged `auth_method` fails the load (the column does not decode) instead of being
/// guessed: read as `local`, a directory user would escape the sync (never disabled or deleted
/// again); read as `directory`, a local user could be taken over.
type UserRow = (Uuid, String, String, AuthMethod, Option<String>, bool);

/// Loads every user with its addresses, `admin` flag and own folder's message count.
pub async fn load<C: ConnectionTrait>(db: &C) -> Result<LocalState> {
    use users::Column as U;
    let rows: Vec<UserRow> = users::Entity::find()
        .select_only()
        .columns([
            U::Id,
            U::UserName,
            U::FullName,
            U::AuthMethod,
            U::DirectoryId,
            U::Disabled,
        ])
        .into_tuple()
        .all(db)
        .await?;
    let mut addresses: HashMap<Uuid, Vec<(bool, String)>> = HashMap::new();
    let emails: Vec<(Uuid, EmailKind, String)> = user_emails::Entity::find()
        .select_only()
        .columns([
            user_emails::Column::UserId,
            user_emails::Column::Kind,
            user_emails::Column::Address,
        ])
        .into_tuple()
        .all(db)
        .await?;
    for (user_id, kind, address) in emails {
        addresses
            .entry(user_id)
            .or_default()
            .push((kind == EmailKind::Primary, address));
    }
    let admins: HashSet<Uuid> = user_privileges::Entity::find()
        .select_only()
        .column(user_privileges::Column::UserId)
        .filter(user_privileges::Column::Privilege.eq(Privilege::Admin.as_str()))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let folders: HashMap<Uuid, i64> = archive_folders::Entity::find()
        .select_only()
        .columns([
            archive_folders::Column::UserId,
            archive_folders::Column::MessageCount,
        ])
        .filter(archive_folders::Column::UserId.is_not_null())
        .into_tuple::<(Option<Uuid>, i64)>()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(user, count)| user.map(|u| (u, count)))
        .collect();
    let mut users = Vec::with_capacity(rows.len());
    for (id, user_name, full_name, auth_method, directory_id, disabled) in rows {
        let directory = auth_method == AuthMethod::Directory;
        let mut addrs = addresses.remove(&id).unwrap_or_default();
        // Primary first, then the others in a stable order.
        addrs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        users.push(LocalUser {
            id,
            directory,
            directory_id: directory_id.map(DirectoryId::new),
            disabled,
            addresses: addrs.into_iter().map(|(_, a)| a).collect(),
            is_admin: admins.contains(&id),
            folder_messages: folders.get(&id).copied().unwrap_or(0),
            user_name,
            full_name,
        });
    }
    Ok(LocalState { users })
}
