//! Archive folders: one per user, named after it, created with it. The archive server reports
//! how many messages each holds; a folder holding messages outlives its user, detached
//! (product.md §1, §3.5; the rule itself is [`crate::users::delete_users`]).

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, users};
use sea_orm::{
    sea_query::{Condition, Expr},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::db::related_column;
use crate::paging::{Page, PageRequest};
use crate::{audit, Error, Result};

/// An archive folder.
// With the name of its owner. The API's `ArchiveFolder`; its doc comments are the OpenAPI
// descriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromQueryResult)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ArchiveFolder))]
pub struct Folder {
    /// Folder id.
    pub id: Uuid,
    /// Name: its user's name when created.
    pub name: String,
    /// The owner; null once detached.
    pub user_id: Option<Uuid>,
    /// The owner's user name; null once detached.
    pub user_name: Option<String>,
    /// Messages held, as last reported by the archive server.
    pub message_count: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// When its user was deleted and the folder kept because it held messages.
    pub detached_at: Option<DateTime<Utc>>,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct FolderFilter {
    /// Only detached folders (`true`) or only folders with an owner (`false`).
    pub detached: Option<bool>,
}

fn select_folders() -> Select<archive_folders::Entity> {
    let owner = related_column::<users::Entity>(
        users::Column::UserName,
        users::Column::Id,
        (archive_folders::Entity, archive_folders::Column::UserId),
    );
    archive_folders::Entity::find()
        .select_only()
        .columns([
            archive_folders::Column::Id,
            archive_folders::Column::Name,
            archive_folders::Column::UserId,
            archive_folders::Column::MessageCount,
            archive_folders::Column::CreatedAt,
            archive_folders::Column::DetachedAt,
        ])
        .expr_as(owner, "user_name")
}

/// Folders ordered by name, then id; the cursor is the last folder's `(name, id)`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &FolderFilter,
    page: PageRequest<(String, Uuid)>,
) -> Result<Page<Folder>> {
    let mut q = select_folders()
        .order_by_asc(archive_folders::Column::Name)
        .order_by_asc(archive_folders::Column::Id);
    if let Some((name, id)) = &page.after {
        q = q.filter(
            Condition::any()
                .add(archive_folders::Column::Name.gt(name.as_str()))
                .add(
                    Condition::all()
                        .add(archive_folders::Column::Name.eq(name.as_str()))
                        .add(archive_folders::Column::Id.gt(*id)),
                ),
        );
    }
    match filter.detached {
        Some(true) => q = q.filter(archive_folders::Column::UserId.is_null()),
        Some(false) => q = q.filter(archive_folders::Column::UserId.is_not_null()),
        None => {}
    }
    let rows = q
        .limit(page.limit + 1)
        .into_model::<Folder>()
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |f| {
        (f.name.clone(), f.id)
    }))
}

/// One folder (404 when there is none).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Folder> {
    select_folders()
        .filter(archive_folders::Column::Id.eq(id))
        .into_model::<Folder>()
        .one(db)
        .await?
        .ok_or(Error::NotFound("archive folder"))
}

/// Records the number of messages a folder holds, as reported by the archive server; recorded
/// as `folder.update` when it changes. It decides whether the folder outlives its user.
#[tracing::instrument(skip(db))]
pub async fn set_message_count(
    db: &DatabaseConnection,
    actor: &str,
    id: Uuid,
    message_count: i64,
) -> Result<Folder> {
    if message_count < 0 {
        return Err(Error::invalid(
            "invalid_message_count",
            "message_count must be 0 or more",
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    // Locked, so that the audit trail's before and after are those of this change.
    archive_folders::Entity::find_by_id(id)
        .select_only()
        .column(archive_folders::Column::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .one(&txn)
        .await?
        .ok_or(Error::NotFound("archive folder"))?;
    let before = get(&txn, id).await?;
    if before.message_count == message_count {
        return Ok(before);
    }
    archive_folders::Entity::update_many()
        .col_expr(
            archive_folders::Column::MessageCount,
            Expr::value(message_count),
        )
        .filter(archive_folders::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let after = get(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        "folder.update",
        "archive_folder",
        Some(id.to_string()),
        json!({
            "name": after.name,
            "before": { "message_count": before.message_count },
            "after": { "message_count": after.message_count },
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}
