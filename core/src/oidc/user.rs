//! The signed-in user as a session answer shows it, and the checks every sign-in makes.

use chrono::{DateTime, Utc};
use dirsync_entity::{archive_folders, user_emails, user_privileges, users};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use uuid::Uuid;

use super::{SigninError, SigninErrorKind};

/// The privilege a user needs to sign in at all.
pub const LOGIN_PRIVILEGE: &str = "login";

/// A user as shown with a new session (product §5's user shape, plus its privileges).
#[derive(Debug, Clone, Serialize)]
pub struct SessionUser {
    /// User id.
    pub id: Uuid,
    /// User name (for directory users the primary address).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// `local` or `directory`.
    pub auth_method: String,
    /// Google's user id, for directory users.
    pub directory_id: Option<String>,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// Addresses, primary first.
    pub emails: Vec<String>,
    /// The user's archive folder.
    pub archive_folder_id: Option<Uuid>,
    /// Privileges held.
    pub privileges: Vec<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last changed by a sync.
    pub last_synced_at: Option<DateTime<Utc>>,
}

pub(crate) async fn privileges<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<String>, sea_orm::DbErr> {
    let mut p: Vec<String> = user_privileges::Entity::find()
        .filter(user_privileges::Column::UserId.eq(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.privilege)
        .collect();
    p.sort();
    Ok(p)
}

/// The user's addresses, primary first.
pub(crate) async fn emails<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<String>, sea_orm::DbErr> {
    let mut rows = user_emails::Entity::find()
        .filter(user_emails::Column::UserId.eq(user_id))
        .order_by_asc(user_emails::Column::AddressKey)
        .all(db)
        .await?;
    rows.sort_by_key(|r| r.kind != "primary");
    Ok(rows.into_iter().map(|r| r.address).collect())
}

/// The view of `user`.
pub(crate) async fn view<C: ConnectionTrait>(
    db: &C,
    user: users::Model,
) -> Result<SessionUser, sea_orm::DbErr> {
    let folder = archive_folders::Entity::find()
        .filter(archive_folders::Column::UserId.eq(user.id))
        .one(db)
        .await?;
    Ok(SessionUser {
        emails: emails(db, user.id).await?,
        privileges: privileges(db, user.id).await?,
        archive_folder_id: folder.map(|f| f.id),
        id: user.id,
        user_name: user.user_name,
        full_name: user.full_name,
        auth_method: user.auth_method,
        directory_id: user.directory_id,
        disabled: user.disabled,
        created_at: user.created_at,
        updated_at: user.updated_at,
        last_synced_at: user.last_synced_at,
    })
}

/// Refuses a disabled user or one without the `login` privilege.
pub(crate) async fn check_may_sign_in<C: ConnectionTrait>(
    db: &C,
    user: &users::Model,
) -> Result<(), SigninError> {
    if user.disabled {
        return Err(SigninError::new(
            SigninErrorKind::Forbidden,
            "user_disabled",
            format!("the user {} is disabled", user.user_name),
        ));
    }
    let may = user_privileges::Entity::find_by_id((user.id, LOGIN_PRIVILEGE.to_string()))
        .one(db)
        .await?
        .is_some();
    if !may {
        return Err(SigninError::new(
            SigninErrorKind::Forbidden,
            "login_not_allowed",
            format!(
                "the user {} does not hold the login privilege; an administrator grants it",
                user.user_name
            ),
        ));
    }
    Ok(())
}
