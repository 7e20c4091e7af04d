//! The signed-in user as a session answer shows it, and the checks every sign-in makes.

use dirsync_entity::{user_privileges, users};
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::privileges;

/// A user as shown with a new session: the user as the users module shows it, plus its
/// privileges.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// The user.
    pub user: crate::users::User,
    /// Privilege names held, sorted by name; a name a newer version wrote is shown as stored.
    pub privileges: Vec<String>,
}

/// The session view of the user `user_id`.
pub(crate) async fn view<C: ConnectionTrait>(db: &C, user_id: Uuid) -> crate::Result<SessionUser> {
    let user = crate::users::get(db, user_id).await?;
    let mut privileges = privileges::names(db, user_id).await?;
    privileges.sort();
    Ok(SessionUser { user, privileges })
}

/// Refuses a disabled user or one without the `login` privilege.
pub(crate) async fn check_may_sign_in<C: ConnectionTrait>(
    db: &C,
    user: &users::Model,
) -> Result<(), crate::Error> {
    if user.disabled {
        return Err(crate::Error::forbidden(
            "user_disabled",
            format!("the user {} is disabled", user.user_name),
        ));
    }
    let may = user_privileges::Entity::find_by_id((
        user.id,
        privileges::Privilege::Login.as_str().to_owned(),
    ))
    .one(db)
    .await?
    .is_some();
    if !may {
        return Err(crate::Error::forbidden(
            "login_not_allowed",
            format!(
                "the user {} does not hold the login privilege; an administrator grants it",
                user.user_name
            ),
        ));
    }
    Ok(())
}
