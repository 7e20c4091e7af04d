//! The signed-in user as a session answer shows it, and the checks every sign-in makes.

use dirsync_entity::{user_privileges, users};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::privileges;

/// A signed-in user: the user as `GET /api/v1/users/{id}` shows it, plus its privileges.
// The API's `SignedInUser`; its doc comments are the OpenAPI descriptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SignedInUser))]
pub struct SessionUser {
    /// The user (never disabled here: disabled users cannot sign in).
    #[serde(flatten)]
    pub user: crate::users::User,
    /// Privileges held (`admin` makes the session act as an admin).
    // Names, sorted; a name a newer version wrote is shown as stored rather than dropped.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::privileges::Privilege>))]
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
