//! Who the caller is.

use actix_web::{get, web};
use dirsync_core::auth::{Principal, Role};
use dirsync_core::privileges::Privileges;
use dirsync_core::users::{self, User};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Anyone, Auth};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me);
}

/// What kind of caller.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// A signed-in user, with a session token.
    User,
    /// A stored API key.
    ApiKey,
    /// The bootstrap admin key (`DIRSYNC_BOOTSTRAP_ADMIN_KEY`).
    Bootstrap,
}

/// The caller: a signed-in user (with its record and privileges) or a key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user`, `api_key` or `bootstrap`.
    pub kind: CallerKind,
    /// The user name, the key's name, or `bootstrap`.
    pub name: String,
    /// The role the caller acts with; null for a signed-in user without the `admin` privilege,
    /// who may read only itself.
    pub role: Option<Role>,
    /// The signed-in user; null for keys.
    pub user: Option<User>,
    /// The signed-in user's privileges and folder access; empty for keys.
    #[serde(flatten)]
    pub privileges: Privileges,
}

/// Who the caller is.
///
/// Who the caller is: any authenticated caller may ask. A signed-in user gets its own record
/// and privileges; a key gets its name and role.
///
/// Role: any authenticated caller.
#[utoipa::path(tag = "sign-in", operation_id = "get_me", responses((status = 200, description = "The caller", body = Me)))]
#[get("/me")]
async fn me(caller: Auth<Anyone>, state: web::Data<AppState>) -> Result<web::Json<Me>, ApiError> {
    let role = caller.principal.role();
    let me = match &caller.principal {
        Principal::Session { user_id, .. } => {
            let (user, privileges) = users::profile(&state.db, *user_id).await?;
            Me {
                kind: CallerKind::User,
                name: user.user_name.clone(),
                role,
                user: Some(user),
                privileges,
            }
        }
        Principal::ApiKey { name, .. } => Me {
            kind: CallerKind::ApiKey,
            name: name.clone(),
            role,
            user: None,
            privileges: Privileges::default(),
        },
        Principal::Bootstrap => Me {
            kind: CallerKind::Bootstrap,
            name: "bootstrap".into(),
            role,
            user: None,
            privileges: Privileges::default(),
        },
    };
    Ok(web::Json(me))
}
