//! Deleting users, and the rule for their archive folders (product.md §3.5): a folder that holds
//! messages outlives its user, detached; an empty one goes with it.

use std::collections::HashSet;

use chrono::Utc;
use dirsync_entity::{
    archive_folders, folder_access, sessions, user_emails, user_privileges, users,
};
use sea_orm::{
    sea_query::{Condition, Expr},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::ROWS_PER_STATEMENT;
use crate::Result;

/// What became of a deleted user's archive folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderFate {
    /// It holds messages: kept, with `user_id` cleared and `detached_at` set.
    Kept,
    /// It was empty: deleted with its user.
    Deleted,
}

/// A deleted user's folder and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderOutcome {
    /// The deleted user.
    pub user_id: Uuid,
    /// The folder.
    pub folder_id: Uuid,
    /// The folder's name.
    pub folder_name: String,
    /// Messages it held.
    pub message_count: i64,
    /// Kept or deleted.
    pub fate: FolderFate,
}

/// Deletes users with their privileges, folder access, addresses and sessions, and applies the
/// folder rule, inside the caller's transaction. Works on many users at once: a fixed number of
/// statements per thousand users, never a query per user. Ids of users that do not exist are
/// ignored. Returns one outcome per folder that belonged to a deleted user.
///
/// The folders are read with `FOR UPDATE` (PostgreSQL), so a `message_count` reported while the
/// deletion runs cannot slip between the decision and the write.
#[tracing::instrument(skip(db, ids), fields(users = ids.len()))]
pub async fn delete_users<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> Result<Vec<FolderOutcome>> {
    let now = Utc::now();
    let mut outcomes = Vec::new();
    let unique: Vec<Uuid> = {
        let mut seen = HashSet::new();
        ids.iter().copied().filter(|id| seen.insert(*id)).collect()
    };
    for chunk in unique.chunks(ROWS_PER_STATEMENT) {
        let chunk = chunk.to_vec();
        let folders = archive_folders::Entity::find()
            .filter(archive_folders::Column::UserId.is_in(chunk.clone()))
            .lock_exclusive()
            .all(db)
            .await?;
        let (kept, gone): (Vec<_>, Vec<_>) = folders.into_iter().partition(|f| f.message_count > 0);
        let kept_ids: Vec<Uuid> = kept.iter().map(|f| f.id).collect();
        let gone_ids: Vec<Uuid> = gone.iter().map(|f| f.id).collect();

        if !kept_ids.is_empty() {
            archive_folders::Entity::update_many()
                .col_expr(
                    archive_folders::Column::UserId,
                    Expr::value(Option::<Uuid>::None),
                )
                .col_expr(archive_folders::Column::DetachedAt, Expr::value(now))
                .filter(archive_folders::Column::Id.is_in(kept_ids))
                .exec(db)
                .await?;
        }
        // Other users' access to a kept folder stays: they may still read the archive.
        folder_access::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(folder_access::Column::UserId.is_in(chunk.clone()))
                    .add(folder_access::Column::FolderId.is_in(gone_ids.clone())),
            )
            .exec(db)
            .await?;
        if !gone_ids.is_empty() {
            archive_folders::Entity::delete_many()
                .filter(archive_folders::Column::Id.is_in(gone_ids))
                .exec(db)
                .await?;
        }
        // The foreign keys would cascade these; deleting them explicitly does not depend on
        // SQLite's foreign-key enforcement being on.
        user_privileges::Entity::delete_many()
            .filter(user_privileges::Column::UserId.is_in(chunk.clone()))
            .exec(db)
            .await?;
        user_emails::Entity::delete_many()
            .filter(user_emails::Column::UserId.is_in(chunk.clone()))
            .exec(db)
            .await?;
        sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.is_in(chunk.clone()))
            .exec(db)
            .await?;
        users::Entity::delete_many()
            .filter(users::Column::Id.is_in(chunk))
            .exec(db)
            .await?;

        for (folders, fate) in [(kept, FolderFate::Kept), (gone, FolderFate::Deleted)] {
            outcomes.extend(folders.into_iter().filter_map(|f| {
                Some(FolderOutcome {
                    user_id: f.user_id?,
                    folder_id: f.id,
                    folder_name: f.name,
                    message_count: f.message_count,
                    fate,
                })
            }));
        }
    }
    Ok(outcomes)
}
