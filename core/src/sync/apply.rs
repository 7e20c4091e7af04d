//! Applying a plan inside the caller's transaction, in batches: a fixed number of statements per
//! thousand users, never one round trip per user.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, user_emails, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityName, EntityTrait, IdenStatic, QueryFilter, Set,
    Statement, Value,
};
use uuid::Uuid;

use super::plan::{LocalState, Plan};
use crate::db::{insert_rows, placeholders, ROWS_PER_STATEMENT};
use crate::privileges::DefaultPrivileges;
use crate::users::{AddressKey, AuthMethod, EmailKind};
use crate::Result;

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

/// A name or address that one of the apply's statements would give to a second user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The user the statement writes.
    pub user_name: String,
    /// The name or address it would take.
    pub taken: String,
    /// Which unique rule: `user name` or `address`.
    pub rule: &'static str,
    /// Who holds it at that point.
    pub holder: String,
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the plan gives the {} {} to {} while {} still holds it",
            self.rule, self.taken, self.user_name, self.holder
        )
    }
}

/// Checks, without the database, that every statement of [`apply`] keeps names and addresses
/// unique when run in its order: deletions, renamed users' temporary names, updates, address
/// sets, creations. The planner guarantees it; this says which user and which address in words
/// should that guarantee ever break, before anything is written.
pub fn check<'a>(plan: &'a Plan, local: &'a LocalState) -> std::result::Result<(), Clash> {
    let deleted: HashSet<Uuid> = plan.deletes.iter().copied().collect();
    let renamed: HashSet<Uuid> = plan
        .updates
        .iter()
        .filter(|u| u.renamed)
        .map(|u| u.id)
        .collect();
    let readdressed: HashSet<Uuid> = plan
        .updates
        .iter()
        .filter(|u| u.addresses.is_some())
        .map(|u| u.id)
        .collect();
    let mut names: HashMap<AddressKey, &'a str> = HashMap::with_capacity(local.users.len());
    let mut addresses: HashMap<AddressKey, &'a str> = HashMap::with_capacity(local.users.len());
    for u in local.users.iter().filter(|u| !deleted.contains(&u.id)) {
        if !renamed.contains(&u.id) {
            names.insert(AddressKey::new(&u.user_name), &u.user_name);
        }
        if !readdressed.contains(&u.id) {
            for a in &u.addresses {
                addresses.insert(AddressKey::new(a), &u.user_name);
            }
        }
    }
    let take = |map: &mut HashMap<AddressKey, &'a str>, rule, taken: &str, user: &'a str| {
        let k = AddressKey::new(taken);
        if let Some(holder) = map.get(&k) {
            return Err(Clash {
                user_name: user.to_string(),
                taken: taken.to_string(),
                rule,
                holder: holder.to_string(),
            });
        }
        map.insert(k, user);
        Ok(())
    };
    for u in &plan.updates {
        if u.renamed {
            take(&mut names, "user name", &u.user_name, &u.user_name)?;
        }
        for a in u.addresses.iter().flatten() {
            take(&mut addresses, "address", a, &u.user_name)?;
        }
    }
    for c in &plan.creates {
        take(&mut names, "user name", &c.user_name, &c.user_name)?;
        for a in &c.addresses {
            take(&mut addresses, "address", a, &c.user_name)?;
        }
    }
    Ok(())
}

/// A table or column name of an entity, quoted for the hand-written statements below (the
/// names come from the entities, so a renamed column cannot be missed here).
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

async fn update_users<C: ConnectionTrait>(db: &C, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
    use users::Column as U;
    let backend = db.get_database_backend();
    // Names may move between users in chains and cycles (b → c while a → b; a and b swapping).
    // Both databases check a unique index at each row, not at the end of the statement, so the
    // renamed users first take a temporary key that no user name can hold (user names have no
    // spaces), and only then their new names. Inside this transaction: never visible outside.
    let renamed: Vec<&super::plan::UserUpdate> =
        plan.updates.iter().filter(|u| u.renamed).collect();
    for chunk in renamed.chunks(ROWS_PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 2);
        for u in chunk {
            values.push(u.id.into());
            values.push(format!("moving {}", u.id).into());
        }
        let sql = format!(
            "WITH v(id, user_name_key) AS (VALUES {}) \
             UPDATE {users} SET {name_key} = v.user_name_key FROM v WHERE {users}.{id} = v.id",
            placeholders(backend, chunk.len(), 2),
            users = quoted(users::Entity.table_name()),
            name_key = quoted(U::UserNameKey.as_str()),
            id = quoted(U::Id.as_str()),
        );
        db.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    for chunk in plan.updates.chunks(ROWS_PER_STATEMENT) {
        // One UPDATE … FROM a VALUES list per chunk (both SQLite ≥ 3.33 and PostgreSQL).
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        for u in chunk {
            values.push(u.id.into());
            values.push(u.user_name.clone().into());
            values.push(AddressKey::new(&u.user_name).into());
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
             UPDATE {users} SET {name} = v.user_name, {name_key} = v.user_name_key, \
             {full_name} = v.full_name, {directory_id} = v.directory_id, {disabled} = v.disabled, \
             {updated_at} = {now_ph}, {last_synced_at} = {now_ph} FROM v WHERE {users}.{id} = v.id",
            placeholders(backend, chunk.len(), 6),
            users = quoted(users::Entity.table_name()),
            name = quoted(U::UserName.as_str()),
            name_key = quoted(U::UserNameKey.as_str()),
            full_name = quoted(U::FullName.as_str()),
            directory_id = quoted(U::DirectoryId.as_str()),
            disabled = quoted(U::Disabled.as_str()),
            updated_at = quoted(U::UpdatedAt.as_str()),
            last_synced_at = quoted(U::LastSyncedAt.as_str()),
            id = quoted(U::Id.as_str()),
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
            "WITH v(uid, name) AS (VALUES {}) UPDATE {folders} SET {name} = v.name \
             FROM v WHERE {folders}.{user_id} = v.uid AND {folders}.{name} <> v.name",
            placeholders(backend, chunk.len(), 2),
            folders = quoted(archive_folders::Entity.table_name()),
            name = quoted(archive_folders::Column::Name.as_str()),
            user_id = quoted(archive_folders::Column::UserId.as_str()),
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
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        user_emails::Entity::delete_many()
            .filter(user_emails::Column::UserId.is_in(chunk.iter().map(|u| u.id)))
            .exec(db)
            .await?;
    }
    let rows = changed
        .into_iter()
        .flat_map(|u| email_rows(u.id, u.addresses.as_deref().unwrap_or_default()));
    insert_rows(db, Box::new(rows)).await?;
    Ok(())
}

/// A user's address rows: the first address is the primary.
fn email_rows(
    user_id: Uuid,
    addresses: &[String],
) -> impl Iterator<Item = user_emails::ActiveModel> + '_ {
    addresses
        .iter()
        .enumerate()
        .map(move |(i, a)| user_emails::ActiveModel {
            address_key: Set(AddressKey::new(a).into()),
            address: Set(a.clone()),
            user_id: Set(user_id),
            kind: Set(if i == 0 {
                EmailKind::Primary
            } else {
                EmailKind::Alias
            }),
        })
}

async fn create_users<C: ConnectionTrait>(
    db: &C,
    plan: &Plan,
    grants: &DefaultPrivileges,
    now: DateTime<Utc>,
) -> Result<()> {
    let user_rows = plan.creates.iter().map(move |u| users::ActiveModel {
        id: Set(u.id),
        user_name: Set(u.user_name.clone()),
        user_name_key: Set(AddressKey::new(&u.user_name).into()),
        full_name: Set(u.full_name.clone()),
        auth_method: Set(AuthMethod::Directory),
        directory_id: Set(Some(u.directory_id.clone().into())),
        disabled: Set(u.disabled),
        password_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(Some(now)),
    });
    insert_rows(db, Box::new(user_rows)).await?;
    let emails = plan
        .creates
        .iter()
        .flat_map(|u| email_rows(u.id, &u.addresses));
    insert_rows(db, Box::new(emails)).await?;
    let folder_ids: Vec<Uuid> = plan.creates.iter().map(|_| Uuid::new_v4()).collect();
    let folders =
        plan.creates
            .iter()
            .zip(&folder_ids)
            .map(move |(u, fid)| archive_folders::ActiveModel {
                id: Set(*fid),
                name: Set(u.user_name.clone()),
                user_id: Set(Some(u.id)),
                message_count: Set(0),
                created_at: Set(now),
                detached_at: Set(None),
            });
    insert_rows(db, Box::new(folders)).await?;
    let owners: Vec<(Uuid, Uuid)> = plan.creates.iter().map(|u| u.id).zip(folder_ids).collect();
    grants.grant(db, &owners).await?;
    Ok(())
}
