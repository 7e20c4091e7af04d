//! Applying a plan inside the caller's transaction, in batches: a fixed number of statements per
//! thousand users, never one round trip per user.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, user_emails, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value,
};
use uuid::Uuid;

use super::plan::{LocalState, Plan};
use crate::db::{insert_rows, placeholders, ROWS_PER_STATEMENT};
use crate::privileges::DefaultPrivileges;
use crate::users::{AuthMethod, EmailKind};
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
    let mut names: HashMap<String, &'a str> = HashMap::with_capacity(local.users.len());
    let mut addresses: HashMap<String, &'a str> = HashMap::with_capacity(local.users.len());
    for u in local.users.iter().filter(|u| !deleted.contains(&u.id)) {
        if !renamed.contains(&u.id) {
            names.insert(u.user_name.to_lowercase(), &u.user_name);
        }
        if !readdressed.contains(&u.id) {
            for a in &u.addresses {
                addresses.insert(a.to_lowercase(), &u.user_name);
            }
        }
    }
    let take = |map: &mut HashMap<String, &'a str>, rule, taken: &str, user: &'a str| {
        let k = taken.to_lowercase();
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

async fn update_users<C: ConnectionTrait>(db: &C, plan: &Plan, now: DateTime<Utc>) -> Result<()> {
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
             UPDATE users SET user_name_key = v.user_name_key FROM v WHERE users.id = v.id",
            placeholders(backend, chunk.len(), 2)
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
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        user_emails::Entity::delete_many()
            .filter(user_emails::Column::UserId.is_in(chunk.iter().map(|u| u.id)))
            .exec(db)
            .await?;
    }
    let rows = changed
        .into_iter()
        .flat_map(|u| email_rows(u.id, u.addresses.as_deref().unwrap_or_default()));
    insert_rows::<user_emails::Entity, _>(db, EMAIL_COLUMNS, Box::new(rows)).await?;
    Ok(())
}

const EMAIL_COLUMNS: &[user_emails::Column] = &[
    user_emails::Column::AddressKey,
    user_emails::Column::Address,
    user_emails::Column::UserId,
    user_emails::Column::Kind,
];

fn email_rows(user_id: Uuid, addresses: &[String]) -> impl Iterator<Item = Vec<Value>> + '_ {
    addresses.iter().enumerate().map(move |(i, a)| {
        vec![
            a.to_lowercase().into(),
            a.clone().into(),
            user_id.into(),
            if i == 0 {
                EmailKind::Primary
            } else {
                EmailKind::Alias
            }
            .into(),
        ]
    })
}

async fn create_users<C: ConnectionTrait>(
    db: &C,
    plan: &Plan,
    grants: &DefaultPrivileges,
    now: DateTime<Utc>,
) -> Result<()> {
    use users::Column as U;
    let user_rows = plan.creates.iter().map(move |u| {
        vec![
            u.id.into(),
            u.user_name.clone().into(),
            u.user_name.to_lowercase().into(),
            u.full_name.clone().into(),
            AuthMethod::Directory.into(),
            Some(u.directory_id.clone()).into(),
            u.disabled.into(),
            Option::<String>::None.into(),
            now.into(),
            now.into(),
            Some(now).into(),
        ]
    });
    let user_columns = [
        U::Id,
        U::UserName,
        U::UserNameKey,
        U::FullName,
        U::AuthMethod,
        U::DirectoryId,
        U::Disabled,
        U::PasswordHash,
        U::CreatedAt,
        U::UpdatedAt,
        U::LastSyncedAt,
    ];
    insert_rows::<users::Entity, _>(db, &user_columns, Box::new(user_rows)).await?;
    let emails = plan
        .creates
        .iter()
        .flat_map(|u| email_rows(u.id, &u.addresses));
    insert_rows::<user_emails::Entity, _>(db, EMAIL_COLUMNS, Box::new(emails)).await?;
    let folder_ids: Vec<Uuid> = plan.creates.iter().map(|_| Uuid::new_v4()).collect();
    use archive_folders::Column as F;
    let folders = plan.creates.iter().zip(&folder_ids).map(move |(u, fid)| {
        vec![
            (*fid).into(),
            u.user_name.clone().into(),
            Some(u.id).into(),
            0i64.into(),
            now.into(),
            Option::<DateTime<Utc>>::None.into(),
        ]
    });
    let folder_columns = [
        F::Id,
        F::Name,
        F::UserId,
        F::MessageCount,
        F::CreatedAt,
        F::DetachedAt,
    ];
    insert_rows::<archive_folders::Entity, _>(db, &folder_columns, Box::new(folders)).await?;
    let owners: Vec<(Uuid, Uuid)> = plan.creates.iter().map(|u| u.id).zip(folder_ids).collect();
    grants.grant(db, &owners).await?;
    Ok(())
}
