//! Decoding what the database stores as text (JSON lists, enum names): fail closed. A setting
//! that does not decode is never read as empty — an empty `sync_groups` means "everyone", an
//! empty `allowed_domains` means "any domain" — but refused with
//! [`Error::StoredDataInvalid`] naming the column, so a sync fails, sign-in refuses and `/ready`
//! reports it until an administrator saves the setting again.
//!
//! Enum columns and columns of JSON text are typed in `dirsync-entity` (`values.rs`): a name
//! that is none of the enum's, or a text that does not decode, fails the query with
//! [`Undecodable`], which [`Error`]'s `From<DbErr>` turns into the same refusal through
//! [`undecodable`].

use dirsync_entity::{AuthMethod, Undecodable};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{Error, Result};

/// The refusal for `column` (`table.column`), with how to repair it.
pub fn invalid(column: &'static str, expected: &str, repair: &str) -> Error {
    Error::StoredDataInvalid {
        column,
        message: format!(
            "the stored setting {column} does not decode (expected {expected}); nothing that \
             depends on it is done until it is repaired: {repair}"
        ),
    }
}

/// The refusal for a typed column whose stored text does not decode.
pub fn undecodable(u: &Undecodable) -> Error {
    invalid(
        u.column,
        &format!("{}, found {:?}", u.expected, u.found),
        repair_of(u.column),
    )
}

/// How a damaged job or change row is repaired: jobs are history, nothing reads them back.
pub(crate) const REPAIR_JOB: &str =
    "delete the damaged sync job (its changes go with it) or restore the value";

/// How an administrator repairs a damaged typed column (an enum, or JSON text).
fn repair_of(column: &str) -> &'static str {
    match column {
        "sync_jobs.summary" | "sync_changes.fields" => REPAIR_JOB,
        "audit_events.details" => "restore the entry's details from a backup",
        "notification_endpoints.events" => {
            "save the notification settings again with PUT /api/v1/notifications"
        }
        "directory_config.provider" => {
            "save the directory settings again with PUT /api/v1/directory"
        }
        "users.auth_method" => "restore the user's auth_method (local or directory)",
        "api_keys.role" => "delete the API key and create a new one",
        _ => "restore the stored value (it was damaged, or written by another version of dirsync)",
    }
}

/// A stored JSON list of strings.
pub fn string_list(column: &'static str, text: &str, repair: &str) -> Result<Vec<String>> {
    serde_json::from_str::<Vec<String>>(text)
        .map_err(|_| invalid(column, "a JSON list of strings", repair))
}

/// Every stored setting that does not decode, as `(column, message)`: what `/ready` reports.
pub async fn problems<C: ConnectionTrait>(db: &C) -> Result<Vec<(&'static str, String)>> {
    let mut found = Vec::new();
    let mut note = |r: Result<()>| -> Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(Error::StoredDataInvalid { column, message }) => {
                found.push((column, message));
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    // A typed column that does not decode fails the whole read: the row's other checks wait
    // until it is repaired.
    let row = dirsync_entity::directory_config::Entity::find_by_id(crate::directory::ROW_ID)
        .one(db)
        .await
        .map_err(Error::from);
    match row {
        Ok(Some(row)) => {
            for check in crate::directory::checks(&row) {
                note(check)?;
            }
        }
        Ok(None) => {}
        Err(e) => note(Err(e))?,
    }
    if let Some(row) = dirsync_entity::oidc_config::Entity::find_by_id(crate::oidc::config::ROW_ID)
        .one(db)
        .await?
    {
        note(crate::oidc::config::check(&row))?;
    }
    // One indexed count, not a scan of every user.
    use dirsync_entity::users;
    let damaged = users::Entity::find()
        .filter(users::Column::AuthMethod.is_not_in(AuthMethod::ALL.iter().copied()))
        .count(db)
        .await?;
    if damaged > 0 {
        found.push((
            "users.auth_method",
            format!(
                "the stored setting users.auth_method of {damaged} user(s) is neither local nor \
                 directory; syncs are refused until it is restored"
            ),
        ));
    }
    Ok(found)
}
