//! Applying a plan inside the caller's transaction, in batches: a fixed number of statements per
//! thousand users, never one round trip per user.

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, user_emails, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set, Statement, Value,
};
use uuid::Uuid;

use super::plan::Plan;
use crate::privileges::DefaultPrivileges;
use crate::Result;

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 1000;

/// Writes the plan. The caller owns the transaction: commit or roll back as one. Users created
/// receive `grants` (the default privileges in force).
pub async fn apply<C: ConnectionTrait>(
    db: &C,
    plan: &Plan,
    grants: &DefaultPrivileges,
    now: DateTime<Utc>,
) -> Result<()> {
    // The folder rule of §3.5 lives with the users: one implementation for the API and the sync.
    crate::users::delete_users(db, &plan.deletes).await?;
    update_users(db, plan, now).await?;
    create_users(db, plan, grants, now).await?;
    Ok(())
}

fn placeholders(backend: DbBackend, rows: usize, cols: usize) -> String {
    let mut n = 0;
    (0..rows)
        .map(|_| {
            let cells: Vec<String> = (0..cols)
                .map(|_| {
                    n += 1;
                    match backend {
                        DbBackend::Postgres => format!("${n}"),
                        _ => "?".to_string(),
                    }
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn update_users<C: ConnectionTrait>(db: &C, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
    let backend = db.get_database_backend();
    for chunk in plan.updates.chunks(CHUNK) {
        // One UPDATE … FROM a VALUES list per chunk (both SQLite ≥ 3.33 and PostgreSQL).
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        for u in chunk {
            values.push(u.id.into());
            values.push(u.user_name.clone().into());
            values.push(u.user_name.to_lowercase().into());
            values.push(u.full_name.clone().into());
            values.push(u.directory_id.clone().into());
            values.push(u.disabled.into());
        }
        // PostgreSQL may use one numbered parameter twice; SQLite's `?` needs binding twice.
        let now_ph = match backend {
            DbBackend::Postgres => format!("${}", values.len() + 1),
            _ => {
                values.push(now.into());
                "?".into()
            }
        };
        values.push(now.into());
        let sql = format!(
            "WITH v(id, user_name, user_name_key, full_name, directory_id, disabled) AS (VALUES {}) \
             UPDATE users SET user_name = v.user_name, user_name_key = v.user_name_key, \
             full_name = v.full_name, directory_id = v.directory_id, disabled = v.disabled, \
             updated_at = {now_ph}, last_synced_at = {now_ph} FROM v WHERE users.id = v.id",
            placeholders(backend, chunk.len(), 6)
        );
        db.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        // Archive folders are named after their users: follow renames.
        let mut fvalues: Vec<Value> = Vec::with_capacity(chunk.len() * 2);
        for u in chunk {
            fvalues.push(u.id.into());
            fvalues.push(u.user_name.clone().into());
        }
        let fsql = format!(
            "WITH v(uid, name) AS (VALUES {}) UPDATE archive_folders SET name = v.name \
             FROM v WHERE archive_folders.user_id = v.uid AND archive_folders.name <> v.name",
            placeholders(backend, chunk.len(), 2)
        );
        db.execute(Statement::from_sql_and_values(backend, fsql, fvalues))
            .await?;
    }
    // Addresses: remove the old sets of every user whose addresses change, then insert the new
    // ones, so that an address moving between users never trips the unique key.
    let changed: Vec<&super::plan::UserUpdate> = plan
        .updates
        .iter()
        .filter(|u| u.addresses.is_some())
        .collect();
    for chunk in changed.chunks(CHUNK) {
        user_emails::Entity::delete_many()
            .filter(user_emails::Column::UserId.is_in(chunk.iter().map(|u| u.id)))
            .exec(db)
            .await?;
    }
    let rows: Vec<user_emails::ActiveModel> = changed
        .iter()
        .flat_map(|u| email_rows(u.id, u.addresses.as_deref().unwrap_or_default()))
        .collect();
    insert_chunked::<user_emails::Entity, _, _>(db, Box::new(rows.into_iter())).await
}

fn email_rows(user_id: Uuid, addresses: &[String]) -> Vec<user_emails::ActiveModel> {
    addresses
        .iter()
        .enumerate()
        .map(|(i, a)| user_emails::ActiveModel {
            address_key: Set(a.to_lowercase()),
            address: Set(a.clone()),
            user_id: Set(user_id),
            kind: Set(if i == 0 { "primary" } else { "alias" }.into()),
        })
        .collect()
}

/// Rows built lazily. Boxed: the async-trait job runner must prove its future `Send`, which the
/// compiler cannot do for closures over borrowed plan entries held across an `await`.
type Rows<'a, A> = Box<dyn Iterator<Item = A> + Send + 'a>;

/// Inserts rows 1000 at a time, building each chunk only when it is written: the rows of a large
/// first sync are never all in memory at once.
async fn insert_chunked<E, A, C>(db: &C, rows: Rows<'_, A>) -> Result<()>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    E::Model: sea_orm::IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        E::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}

async fn create_users<C: ConnectionTrait>(
    db: &C,
    plan: &Plan,
    grants: &DefaultPrivileges,
    now: DateTime<Utc>,
) -> Result<()> {
    let user_rows = plan.creates.iter().map(|u| users::ActiveModel {
        id: Set(u.id),
        user_name: Set(u.user_name.clone()),
        user_name_key: Set(u.user_name.to_lowercase()),
        full_name: Set(u.full_name.clone()),
        auth_method: Set("directory".into()),
        directory_id: Set(Some(u.directory_id.clone())),
        disabled: Set(u.disabled),
        password_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(Some(now)),
    });
    insert_chunked::<users::Entity, _, _>(db, Box::new(user_rows)).await?;
    let emails = plan
        .creates
        .iter()
        .flat_map(|u| email_rows(u.id, &u.addresses));
    insert_chunked::<user_emails::Entity, _, _>(db, Box::new(emails)).await?;
    let folder_ids: Vec<Uuid> = plan.creates.iter().map(|_| Uuid::new_v4()).collect();
    let folders =
        plan.creates
            .iter()
            .zip(&folder_ids)
            .map(|(u, fid)| archive_folders::ActiveModel {
                id: Set(*fid),
                name: Set(u.user_name.clone()),
                user_id: Set(Some(u.id)),
                message_count: Set(0),
                created_at: Set(now),
                detached_at: Set(None),
            });
    insert_chunked::<archive_folders::Entity, _, _>(db, Box::new(folders)).await?;
    let owners: Vec<(Uuid, Uuid)> = plan.creates.iter().map(|u| u.id).zip(folder_ids).collect();
    grants.grant(db, &owners).await?;
    Ok(())
}
