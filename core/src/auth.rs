//! Callers' authentication: API keys, the bootstrap admin key and session tokens, all presented
//! as `Authorization: Bearer <token>`, and the roles that decide what a caller may do.
//!
//! Tokens are random and high-entropy, so a SHA-256 hash is enough to store them safely (a slow
//! password hash would only slow down every request). API keys carry a public prefix that finds
//! the row; the hash is then compared in constant time.

use chrono::{Duration, Utc};
use dirsync_entity::{api_keys, sessions, user_privileges, users};
use rand::{distributions::Alphanumeric, Rng};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::audit;
use crate::db::SqlText;
use crate::paging::{Page, PageRequest};
use crate::privileges::Privilege;
use crate::{Error, Result};

const API_KEY_PREFIX: &str = "dsk_";
const SESSION_PREFIX: &str = "dss_";

/// What a caller may do (`reader` < `operator` < `admin`), stored in `api_keys.role`.
pub use dirsync_entity::Role;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The `DIRSYNC_BOOTSTRAP_ADMIN_KEY`.
    Bootstrap,
    /// A stored API key.
    ApiKey { id: Uuid, name: String, role: Role },
    /// A signed-in user's session. `is_admin` when the user holds the `admin` privilege.
    Session {
        session_id: Uuid,
        user_id: Uuid,
        user_name: String,
        is_admin: bool,
    },
}

impl Principal {
    /// The role the caller acts with; a signed-in user without `admin` has none (only `/me`).
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::Bootstrap => Some(Role::Admin),
            Principal::ApiKey { role, .. } => Some(*role),
            Principal::Session { is_admin, .. } => is_admin.then_some(Role::Admin),
        }
    }

    /// How the caller is named in the audit trail and on jobs.
    pub fn actor(&self) -> String {
        match self {
            Principal::Bootstrap => "bootstrap".into(),
            Principal::ApiKey { name, .. } => format!("api_key:{name}"),
            Principal::Session { user_name, .. } => format!("user:{user_name}"),
        }
    }

    /// Fails with 403 unless the caller holds at least `needed`.
    pub fn require(&self, needed: Role) -> Result<()> {
        match self.role() {
            Some(r) if r >= needed => Ok(()),
            _ => Err(Error::forbidden(
                "forbidden",
                format!(
                    "this needs the {} role; ask an administrator for a key with it",
                    needed.as_str()
                ),
            )),
        }
    }
}

/// SHA-256 of a token, hex-encoded: what the database holds instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Finds the caller behind a bearer token.
pub async fn authenticate<C: ConnectionTrait>(
    db: &C,
    bootstrap: Option<&SecretString>,
    token: &str,
) -> Result<Principal> {
    let bad = || Error::unauthenticated("unauthorized", "the bearer token is not valid");
    if let Some(rest) = token.strip_prefix(API_KEY_PREFIX) {
        let (prefix, _) = rest.split_once('_').ok_or_else(bad)?;
        static BY_PREFIX: SqlText = SqlText::new();
        let query = BY_PREFIX.statement(db, vec![prefix.into()], || {
            api_keys::Entity::find().filter(api_keys::Column::Prefix.eq(prefix))
        });
        let key = api_keys::Model::find_by_statement(query)
            .one(db)
            .await?
            .ok_or_else(bad)?;
        let presented = token_hash(token);
        if !bool::from(presented.as_bytes().ct_eq(key.key_hash.as_bytes())) {
            return Err(bad());
        }
        // Recording use on every request would put a write on the read path; once a minute is
        // enough to tell which keys are alive.
        let now = Utc::now();
        if key
            .last_used_at
            .is_none_or(|t| now - t > Duration::minutes(1))
        {
            api_keys::Entity::update_many()
                .col_expr(
                    api_keys::Column::LastUsedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(api_keys::Column::Id.eq(key.id))
                .exec(db)
                .await?;
        }
        return Ok(Principal::ApiKey {
            id: key.id,
            name: key.name,
            role: key.role,
        });
    }
    if token.starts_with(SESSION_PREFIX) {
        return authenticate_session(db, token).await;
    }
    if let Some(expected) = bootstrap {
        let expected = expected.expose_secret().as_bytes();
        // Compare hashes so the comparison takes the same time whatever the lengths.
        let a = Sha256::digest(token.as_bytes());
        let b = Sha256::digest(expected);
        if bool::from(a.ct_eq(&b)) {
            return Ok(Principal::Bootstrap);
        }
    }
    Err(bad())
}

/// A session is only as good as the right that created it: every request re-checks what a new
/// sign-in would (the user exists, is not disabled, holds `login`) and reads `admin` afresh, so
/// that a change made by an administrator or a sync takes effect on the next request, not when
/// the session expires. A session whose user lost the right is ended (its rows deleted) on the
/// spot: the changes made through the API end sessions themselves, but a sync, or a change made
/// directly in the database, does not pass through them.
async fn authenticate_session<C: ConnectionTrait>(db: &C, token: &str) -> Result<Principal> {
    let (login, admin) = (Privilege::Login.as_str(), Privilege::Admin.as_str());
    let bad = || Error::unauthenticated("unauthorized", "the bearer token is not valid");
    let ended = || Error::unauthenticated("unauthorized", "the session has ended; sign in again");
    let now = Utc::now();
    let session = sessions::Entity::find()
        .filter(sessions::Column::TokenHash.eq(token_hash(token)))
        .one(db)
        .await?
        .ok_or_else(bad)?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(ended());
    }
    let Some(user) = users::Entity::find_by_id(session.user_id).one(db).await? else {
        end_sessions(db, session.user_id).await?;
        return Err(ended());
    };
    let held: Vec<String> = user_privileges::Entity::find()
        .select_only()
        .column(user_privileges::Column::Privilege)
        .filter(user_privileges::Column::UserId.eq(user.id))
        .filter(user_privileges::Column::Privilege.is_in([login, admin]))
        .into_tuple()
        .all(db)
        .await?;
    let may_sign_in = !user.disabled && held.iter().any(|p| p == login);
    if !may_sign_in {
        let n = end_sessions(db, user.id).await?;
        tracing::info!(
            user_id = %user.id,
            sessions_ended = n,
            disabled = user.disabled,
            "sessions ended: the user may no longer sign in"
        );
        return Err(Error::unauthenticated(
            "unauthorized",
            "the session has ended: the user is disabled or no longer holds the login privilege",
        ));
    }
    Ok(Principal::Session {
        session_id: session.id,
        user_id: user.id,
        user_name: user.user_name,
        is_admin: held.iter().any(|p| p == admin),
    })
}

/// Ends every session of a user (deletes the rows, so that nothing is left to revive); returns
/// how many there were, for the audit event of the change that ended them.
pub async fn end_sessions<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64> {
    Ok(sessions::Entity::delete_many()
        .filter(sessions::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}

/// An API key, without the key itself.
// The API's `ApiKey`; its doc comments are the OpenAPI descriptions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiKey))]
pub struct ApiKeyInfo {
    /// Key id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// How the key starts, to recognise it.
    // The public start of the key (`dsk_<prefix>_…`).
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: chrono::DateTime<Utc>,
    /// Last use, to the minute.
    pub last_used_at: Option<chrono::DateTime<Utc>>,
}

impl From<api_keys::Model> for ApiKeyInfo {
    fn from(m: api_keys::Model) -> Self {
        ApiKeyInfo {
            id: m.id,
            name: m.name,
            role: m.role,
            prefix: format!("{API_KEY_PREFIX}{}_", m.prefix),
            created_by: m.created_by,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        }
    }
}

/// Creates an API key for `actor` (who is recorded as its creator) and records `api_key.create`
/// in the audit trail in the same transaction; the returned secret is shown once and never
/// stored.
pub async fn create_api_key(
    db: &DatabaseConnection,
    name: &str,
    role: Role,
    actor: &str,
) -> Result<(ApiKeyInfo, SecretString)> {
    // The length rule applies to the name as sent (the documented maxLength), blanks included.
    if name.chars().count() > 100 {
        return Err(Error::invalid(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    let prefix = random_string(8);
    let key = format!("{API_KEY_PREFIX}{prefix}_{}", random_string(40));
    let model = api_keys::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(name.to_string()),
        role: Set(role),
        prefix: Set(prefix),
        key_hash: Set(token_hash(&key)),
        created_by: Set(actor.to_string()),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
    };
    let txn = db.begin().await?;
    let info = ApiKeyInfo::from(model.insert(&txn).await?);
    audit::record(
        &txn,
        actor,
        "api_key.create",
        "api_key",
        Some(info.id.to_string()),
        serde_json::json!({"name": info.name, "role": info.role}),
    )
    .await?;
    txn.commit().await?;
    Ok((info, key.into()))
}

/// Lists API keys, newest first.
pub async fn list_api_keys<C: ConnectionTrait>(
    db: &C,
    page: PageRequest<(chrono::DateTime<Utc>, Uuid)>,
) -> Result<Page<ApiKeyInfo>> {
    let mut q = api_keys::Entity::find()
        .order_by_desc(api_keys::Column::CreatedAt)
        .order_by_desc(api_keys::Column::Id);
    if let Some(after) = page.after {
        q = q.filter(crate::paging::newest_first_after(
            api_keys::Column::CreatedAt,
            api_keys::Column::Id,
            after,
        ));
    }
    let rows = q.limit(page.limit + 1).all(db).await?;
    Ok(Page::from_rows(rows, page.limit, |m| (m.created_at, m.id)).map(ApiKeyInfo::from))
}

/// Deletes an API key and records `api_key.delete` by `actor` in the same transaction; returns
/// the key as it was.
pub async fn delete_api_key(db: &DatabaseConnection, id: Uuid, actor: &str) -> Result<ApiKeyInfo> {
    // Reads before it writes: takes SQLite's write lock up front (see `begin_write`).
    let txn = crate::db::begin_write(db).await?;
    let info = ApiKeyInfo::from(
        api_keys::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound("API key"))?,
    );
    api_keys::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        actor,
        "api_key.delete",
        "api_key",
        Some(info.id.to_string()),
        serde_json::json!({"name": info.name, "role": info.role}),
    )
    .await?;
    txn.commit().await?;
    Ok(info)
}

/// Issues a session for a user; the token is returned once, only its hash is stored.
pub async fn create_session<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ttl: Duration,
) -> Result<(SecretString, chrono::DateTime<Utc>)> {
    let token = format!("{SESSION_PREFIX}{}", random_string(43));
    let now = Utc::now();
    let expires_at = now + ttl;
    sessions::ActiveModel {
        id: Set(Uuid::new_v4()),
        token_hash: Set(token_hash(&token)),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((token.into(), expires_at))
}

/// Revokes a session.
pub async fn revoke_session<C: ConnectionTrait>(db: &C, session_id: Uuid) -> Result<()> {
    sessions::Entity::update_many()
        .col_expr(
            sessions::Column::RevokedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(sessions::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}
