//! Users of the archive server (product.md §1): local users managed here, directory users
//! managed by Google Workspace through the sync. Every user owns one archive folder, named after
//! it; addresses and user names are unique case-insensitively through lower-cased `*_key`
//! columns.

mod delete;
mod email;
mod list;
#[cfg(test)]
mod scale_tests;

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, user_emails, users};
use sea_orm::{
    sea_query::{Expr, Query},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QuerySelect, Select, Set,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::db::{begin_write, lock_user, related_column, SqlText};
use crate::error::DbResultExt;
use crate::privileges::{self, Access, FolderAccess, Privileges};
use crate::{audit, Error, Result};

pub use delete::{delete_users, FolderFate, FolderOutcome};
pub use email::{AddressKey, Email};
pub use list::{contains_pattern, list, UserFilter};

/// How a user signs in (`local` or `directory`), stored in `users.auth_method`.
pub use dirsync_entity::AuthMethod;
/// Primary or alias, stored in `user_emails.kind`.
pub use dirsync_entity::EmailKind;

/// A user. Never carries a password or its hash.
// The doc comments of this type are its OpenAPI description (the API's `User`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// User name, unique without case (directory users: the primary address, lower-cased).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// `local` or `directory`.
    pub auth_method: AuthMethod,
    /// The Google user id of a directory user.
    pub directory_id: Option<String>,
    /// A disabled user cannot sign in (directory users: suspended or archived in Google).
    pub disabled: bool,
    /// Addresses: the primary one first, then the others by address.
    pub emails: Vec<String>,
    /// The user's archive folder.
    pub archive_folder_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last written by a sync.
    pub last_synced_at: Option<DateTime<Utc>>,
}

/// A user row with its folder id, as the queries of this module select it.
#[derive(Debug, FromQueryResult)]
struct UserRow {
    id: Uuid,
    user_name: String,
    user_name_key: String,
    full_name: String,
    auth_method: AuthMethod,
    directory_id: Option<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_synced_at: Option<DateTime<Utc>>,
    archive_folder_id: Option<Uuid>,
}

/// Users' columns (never the password hash) and their folder's id, found through the unique
/// index on `archive_folders.user_id`.
fn select_users() -> Select<users::Entity> {
    let folder = related_column::<archive_folders::Entity>(
        archive_folders::Column::Id,
        archive_folders::Column::UserId,
        (users::Entity, users::Column::Id),
    );
    users::Entity::find()
        .select_only()
        .columns([
            users::Column::Id,
            users::Column::UserName,
            users::Column::UserNameKey,
            users::Column::FullName,
            users::Column::AuthMethod,
            users::Column::DirectoryId,
            users::Column::Disabled,
            users::Column::CreatedAt,
            users::Column::UpdatedAt,
            users::Column::LastSyncedAt,
        ])
        .expr_as(folder, "archive_folder_id")
}

/// Builds users from rows, with all their addresses fetched in one query.
async fn with_emails<C: ConnectionTrait>(db: &C, rows: Vec<UserRow>) -> Result<Vec<User>> {
    use std::collections::HashMap;
    let mut emails: HashMap<Uuid, Vec<user_emails::Model>> = HashMap::new();
    if !rows.is_empty() {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let found = if let [id] = ids[..] {
            // One user, as for a lookup: a statement of fixed text.
            static OF_USER: SqlText = SqlText::new();
            let query = OF_USER.statement(db, vec![id.into()], || {
                user_emails::Entity::find().filter(user_emails::Column::UserId.eq(id))
            });
            user_emails::Model::find_by_statement(query).all(db).await?
        } else {
            user_emails::Entity::find()
                .filter(user_emails::Column::UserId.is_in(ids))
                .all(db)
                .await?
        };
        for e in found {
            emails.entry(e.user_id).or_default().push(e);
        }
    }
    rows.into_iter()
        .map(|r| {
            let mut list = emails.remove(&r.id).unwrap_or_default();
            list.sort_by(|a, b| {
                (a.kind != EmailKind::Primary, &a.address_key)
                    .cmp(&(b.kind != EmailKind::Primary, &b.address_key))
            });
            Ok(User {
                id: r.id,
                user_name: r.user_name,
                full_name: r.full_name,
                auth_method: r.auth_method,
                directory_id: r.directory_id,
                disabled: r.disabled,
                emails: list.into_iter().map(|e| e.address).collect(),
                archive_folder_id: r.archive_folder_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
                last_synced_at: r.last_synced_at,
            })
        })
        .collect()
}

/// One user (404 when there is none).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<User> {
    static BY_ID: SqlText = SqlText::new();
    let query = BY_ID.statement(db, vec![id.into()], || {
        select_users().filter(users::Column::Id.eq(id))
    });
    let row = UserRow::find_by_statement(query)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    Ok(with_emails(db, vec![row]).await?.remove(0))
}

/// A user and its privileges, e.g. for a signed-in user asking about itself.
pub async fn profile<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(User, Privileges)> {
    let user = get(db, id).await?;
    let privileges = privileges::load(db, id).await?;
    Ok((user, privileges))
}

/// The owner of an address, primary or alias, compared case-insensitively: how the archive
/// server routes mail. Two queries: the user found through the `user_emails` primary key (with
/// its folder), then its addresses.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn find_by_email<C: ConnectionTrait>(db: &C, address: &str) -> Result<User> {
    let email = Email::parse(address)?;
    static BY_ADDRESS: SqlText = SqlText::new();
    let query = BY_ADDRESS.statement(db, vec![email.key().into()], || {
        let owner = Query::select()
            .column(user_emails::Column::UserId)
            .from(user_emails::Entity)
            .and_where(Expr::col(user_emails::Column::AddressKey).eq(email.key()))
            .to_owned();
        select_users().filter(users::Column::Id.in_subquery(owner))
    });
    let row = UserRow::find_by_statement(query)
        .one(db)
        .await?
        .ok_or(Error::NotFound("user with this address"))?;
    Ok(with_emails(db, vec![row]).await?.remove(0))
}

/// A local user to create.
#[derive(Debug, Default)]
pub struct NewUser {
    /// Unique user name (case-insensitive).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// Addresses; the first is the primary one.
    pub emails: Vec<String>,
    /// An optional password for signing in with the user name.
    pub password: Option<SecretString>,
    /// Privilege names; none when left out.
    pub privileges: Vec<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    /// New user name.
    pub user_name: Option<String>,
    /// New full name.
    pub full_name: Option<String>,
    /// New set of addresses (replaces all); the first is the primary one.
    pub emails: Option<Vec<String>>,
    /// New password.
    pub password: Option<SecretString>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

impl UserChanges {
    /// The fields a directory user takes from Google, which are therefore not editable here.
    fn directory_managed_fields(&self) -> Vec<&'static str> {
        [
            ("user_name", self.user_name.is_some()),
            ("full_name", self.full_name.is_some()),
            ("emails", self.emails.is_some()),
            ("password", self.password.is_some()),
            ("disabled", self.disabled.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, set)| set.then_some(f))
        .collect()
    }
}

// User names and full names are measured as given (not trimmed) so that the documented
// `maxLength` means what it says.
fn check_user_name(name: &str) -> Result<String> {
    let n = name.chars().count();
    if n == 0 || n > 255 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "invalid_user_name",
            "user_name must be 1 to 255 characters without spaces or control characters",
        ));
    }
    Ok(name.to_string())
}

fn check_full_name(raw: &str) -> Result<String> {
    if raw.chars().count() > 255 || raw.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_full_name",
            "full_name must be at most 255 characters without control characters",
        ));
    }
    Ok(raw.trim().to_string())
}

fn check_emails(raw: &[String]) -> Result<Vec<Email>> {
    let mut seen = std::collections::HashSet::new();
    let mut emails = Vec::with_capacity(raw.len());
    for r in raw {
        let e = Email::parse(r)?;
        if !seen.insert(e.key()) {
            return Err(Error::invalid(
                "duplicate_email",
                format!("{e} is listed twice (addresses are compared without case)"),
            )
            .with_details(json!({ "field": "emails", "address": e.as_str() })));
        }
        emails.push(e);
    }
    Ok(emails)
}

/// Shortest and longest password accepted.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=1024;

/// Checks a new password's length and hashes it ([`crate::password::hash_password`]) off the
/// async runtime: a hash takes tens of milliseconds of CPU on purpose.
async fn hash_new_password(password: SecretString) -> Result<String> {
    let n = password.expose_secret().chars().count();
    if !PASSWORD_CHARS.contains(&n) {
        return Err(Error::invalid(
            "invalid_password",
            format!(
                "password must be {} to {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ));
    }
    tokio::task::spawn_blocking(move || crate::password::hash_password(password.expose_secret()))
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("password hashing task failed: {e}")))?
}

fn user_name_taken(name: &str) -> Error {
    Error::conflict(
        "user_name_taken",
        format!("user name {name:?} is already taken (user names are compared without case)"),
    )
    .with_details(json!({ "field": "user_name", "user_name": name }))
}

/// Fails with 409 `email_taken` naming every address that another user already owns.
async fn check_addresses_free<C: ConnectionTrait>(
    db: &C,
    emails: &[Email],
    user_id: Uuid,
) -> Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let keys: Vec<AddressKey> = emails.iter().map(Email::key).collect();
    let taken: Vec<String> = user_emails::Entity::find()
        .select_only()
        .column(user_emails::Column::AddressKey)
        .filter(user_emails::Column::AddressKey.is_in(keys))
        .filter(user_emails::Column::UserId.ne(user_id))
        .into_tuple()
        .all(db)
        .await?;
    if taken.is_empty() {
        return Ok(());
    }
    let clashing: Vec<&str> = emails
        .iter()
        .filter(|e| {
            let key = e.key();
            taken.iter().any(|t| t == key.as_str())
        })
        .map(Email::as_str)
        .collect();
    Err(email_taken(&clashing))
}

fn email_taken(addresses: &[&str]) -> Error {
    Error::conflict(
        "email_taken",
        format!(
            "{} already belong{} to another user (addresses are compared without case)",
            addresses.join(", "),
            if addresses.len() == 1 { "s" } else { "" }
        ),
    )
    .with_details(json!({ "field": "emails", "addresses": addresses }))
}

async fn insert_emails<C: ConnectionTrait>(db: &C, user_id: Uuid, emails: &[Email]) -> Result<()> {
    if emails.is_empty() {
        return Ok(());
    }
    let rows = emails
        .iter()
        .enumerate()
        .map(|(i, e)| user_emails::ActiveModel {
            address_key: Set(e.key().into()),
            address: Set(e.as_str().to_string()),
            user_id: Set(user_id),
            kind: Set(if i == 0 {
                EmailKind::Primary
            } else {
                EmailKind::Alias
            }),
        });
    // Checked just before; a clash here is a concurrent request that won the race.
    user_emails::Entity::insert_many(rows)
        .exec(db)
        .await
        .on_unique_violation(|| {
            let all: Vec<&str> = emails.iter().map(Email::as_str).collect();
            email_taken(&all)
        })?;
    Ok(())
}

/// Creates a local user with its addresses and its archive folder (named after it), in one
/// transaction recorded as `user.create`.
///
/// Privileges: a user created here gets exactly the privileges named in the request (none when
/// left out), plus `read` on its own folder. The configured default privileges are for users
/// created by synchronization (product.md §1): an administrator creating a user by hand says
/// what it may do.
#[tracing::instrument(skip(db, new), fields(user_name = %new.user_name))]
pub async fn create(db: &DatabaseConnection, actor: &str, new: NewUser) -> Result<User> {
    let user_name = check_user_name(&new.user_name)?;
    let full_name = check_full_name(&new.full_name)?;
    let emails = check_emails(&new.emails)?;
    let requested = privileges::parse_privileges(&new.privileges)?;
    let password_set = new.password.is_some();
    let password_hash = match new.password {
        Some(p) => Some(hash_new_password(p).await?),
        None => None,
    };

    let now = Utc::now();
    let id = Uuid::new_v4();
    let folder_id = Uuid::new_v4();
    let txn = begin_write(db).await?;
    users::ActiveModel {
        id: Set(id),
        user_name: Set(user_name.clone()),
        user_name_key: Set(AddressKey::new(&user_name).into()),
        full_name: Set(full_name),
        auth_method: Set(AuthMethod::Local),
        directory_id: Set(None),
        disabled: Set(false),
        password_hash: Set(password_hash),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(None),
    }
    .insert(&txn)
    .await
    .on_unique_violation(|| user_name_taken(&user_name))?;
    check_addresses_free(&txn, &emails, id).await?;
    insert_emails(&txn, id, &emails).await?;
    archive_folders::ActiveModel {
        id: Set(folder_id),
        name: Set(user_name.clone()),
        user_id: Set(Some(id)),
        message_count: Set(0),
        created_at: Set(now),
        detached_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let granted = Privileges {
        privileges: requested,
        folder_access: vec![FolderAccess {
            folder_id,
            access: vec![Access::Read],
        }],
    };
    privileges::insert(&txn, &[(id, &granted)]).await?;
    let user = get(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        "user.create",
        "user",
        Some(id.to_string()),
        json!({ "after": user, "privileges": granted, "password_set": password_set }),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Changes a local user, in one transaction recorded as `user.update`. A directory user's
/// user name, full name, addresses, state and password come from Google Workspace: changing
/// them here is refused (409 `managed_by_directory`); its privileges stay editable.
///
/// A new user name renames the user's archive folder too, which is named after its user.
#[tracing::instrument(skip(db, changes))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &str,
    id: Uuid,
    changes: UserChanges,
) -> Result<User> {
    let user_name = changes
        .user_name
        .as_deref()
        .map(check_user_name)
        .transpose()?;
    let full_name = changes
        .full_name
        .as_deref()
        .map(check_full_name)
        .transpose()?;
    let emails = changes.emails.as_deref().map(check_emails).transpose()?;
    let managed = changes.directory_managed_fields();
    let password_changed = changes.password.is_some();
    let password_hash = match changes.password {
        Some(p) => Some(hash_new_password(p).await?),
        None => None,
    };

    let txn = begin_write(db).await?;
    lock_user(&txn, id).await?;
    let before = get(&txn, id).await?;
    if before.auth_method == AuthMethod::Directory && !managed.is_empty() {
        return Err(Error::conflict(
            "managed_by_directory",
            format!(
                "{} of {} come{} from Google Workspace: change {} in the Google Admin console \
                 and run a sync; the user's privileges stay editable here",
                managed.join(", "),
                before.user_name,
                if managed.len() == 1 { "s" } else { "" },
                if managed.len() == 1 { "it" } else { "them" },
            ),
        )
        .with_details(json!({ "fields": managed })));
    }

    let mut row = users::ActiveModel {
        id: Set(id),
        ..Default::default()
    };
    let mut changed = false;
    if let Some(name) = &user_name {
        if *name != before.user_name {
            row.user_name = Set(name.clone());
            row.user_name_key = Set(AddressKey::new(name).into());
            changed = true;
        }
    }
    if let Some(full) = full_name {
        if full != before.full_name {
            row.full_name = Set(full);
            changed = true;
        }
    }
    if let Some(d) = changes.disabled {
        if d != before.disabled {
            row.disabled = Set(d);
            changed = true;
        }
    }
    if let Some(hash) = password_hash {
        row.password_hash = Set(Some(hash));
        changed = true;
    }
    if let Some(emails) = &emails {
        let now: Vec<&str> = emails.iter().map(Email::as_str).collect();
        if now != before.emails.iter().map(String::as_str).collect::<Vec<_>>() {
            check_addresses_free(&txn, emails, id).await?;
            user_emails::Entity::delete_many()
                .filter(user_emails::Column::UserId.eq(id))
                .exec(&txn)
                .await?;
            insert_emails(&txn, id, emails).await?;
            changed = true;
        }
    }
    if !changed {
        return Ok(before);
    }
    row.updated_at = Set(Utc::now());
    let renamed = row.user_name.is_set();
    row.update(&txn)
        .await
        .on_unique_violation(|| user_name_taken(user_name.as_deref().unwrap_or_default()))?;
    if renamed {
        archive_folders::Entity::update_many()
            .col_expr(
                archive_folders::Column::Name,
                Expr::value(user_name.clone().unwrap_or_default()),
            )
            .filter(archive_folders::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
    }
    let after = get(&txn, id).await?;
    // A disabled user could not sign in now, and a new password is set to lock out whoever
    // knew the old one: either way the sessions made before end here.
    let sessions_ended = if password_changed || (after.disabled && !before.disabled) {
        crate::auth::end_sessions(&txn, id).await?
    } else {
        0
    };
    audit::record(
        &txn,
        actor,
        "user.update",
        "user",
        Some(id.to_string()),
        json!({ "before": before, "after": after, "password_changed": password_changed,
                "sessions_ended": sessions_ended }),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

/// Deletes a user (local or directory) with its privileges, addresses and sessions; its archive
/// folder is kept, detached, when it holds messages, and deleted otherwise (product.md §3.5).
/// Recorded as `user.delete` with the folder's fate.
#[tracing::instrument(skip(db))]
pub async fn delete(
    db: &DatabaseConnection,
    actor: &str,
    id: Uuid,
) -> Result<Option<FolderOutcome>> {
    let txn = begin_write(db).await?;
    lock_user(&txn, id).await?;
    let before = get(&txn, id).await?;
    // `delete_users` deletes them too; ending them first counts them for the audit trail.
    let sessions_ended = crate::auth::end_sessions(&txn, id).await?;
    let folder = delete_users(&txn, &[id]).await?.pop();
    audit::record(
        &txn,
        actor,
        "user.delete",
        "user",
        Some(id.to_string()),
        json!({ "before": before, "folder": folder, "sessions_ended": sessions_ended }),
    )
    .await?;
    txn.commit().await?;
    Ok(folder)
}
