//! Login attempts: what `/oidc/login` remembers for the callback. The `state` is stored as its
//! SHA-256 only (it is the bearer of the attempt); the nonce and PKCE verifier are encrypted,
//! bound to their row. An attempt is consumed by one conditional UPDATE, so two callbacks with
//! the same state — on one server or on several sharing the database — cannot both use it.
//!
//! Anyone may start a sign-in, and each start stores a row: what one client can make the server
//! store is bounded by the sign-in rate limit, by a cap on the attempts a client address has
//! open at once, and by forgetting attempts as soon as they expire.

use chrono::{Duration, Utc};
use dirsync_entity::login_attempts;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::binding::BrowserBinding;
use super::{random_token, ATTEMPT_TTL_MINUTES};
use crate::auth::token_hash;
use crate::net::ClientAddr;
use crate::secrets::Cipher;

/// The client that starts an attempt, and how many attempts it may have open at once.
#[derive(Debug, Clone, Copy)]
pub struct AttemptClient {
    /// The client address (see [`crate::net::client_addr`]).
    pub addr: ClientAddr,
    /// Attempts it may have open — neither consumed nor expired — at once (0: no cap).
    pub max_open: u32,
}

/// A new attempt's secrets, to put into the authorization URL.
pub(crate) struct NewAttempt {
    pub state: SecretString,
    pub nonce: SecretString,
    pub code_challenge: String,
}

/// A consumed attempt.
pub(crate) struct Consumed {
    pub nonce: SecretString,
    pub verifier: SecretString,
    pub return_to: Option<String>,
    pub auth_test_id: Option<Uuid>,
}

fn nonce_context(id: Uuid) -> String {
    format!("login_attempts.nonce:{id}")
}

fn verifier_context(id: Uuid) -> String {
    format!("login_attempts.pkce_verifier:{id}")
}

/// Stores a new attempt for `client` (`None`: an administrator's auth test), refused with
/// `rate_limited` while that client has its cap of attempts open; forgets expired attempts.
/// With a browser binding, the state can only be completed by that browser (see
/// [`super::binding`]).
pub(crate) async fn create<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    return_to: Option<String>,
    login_hint: Option<String>,
    auth_test_id: Option<Uuid>,
    client: Option<AttemptClient>,
    binding: Option<&BrowserBinding>,
) -> Result<NewAttempt, crate::Error> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use sha2::{Digest, Sha256};
    let now = Utc::now();
    // An expired attempt can never be used again: it is only storage. (A late callback for one
    // is told its sign-in is unknown or expired, as before.)
    login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    let client_key = client.map(|c| c.addr.to_string());
    if let (Some(c), Some(key)) = (client, &client_key) {
        check_open_attempts(db, key, c.max_open, now).await?;
    }
    let id = Uuid::new_v4();
    let state = binding.map_or_else(|| random_token(32), BrowserBinding::new_state);
    let nonce = random_token(32);
    // 64 random bytes: an 86-character verifier (RFC 7636 allows 43 to 128).
    let verifier = random_token(64);
    let code_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    login_attempts::ActiveModel {
        id: Set(id),
        state_hash: Set(token_hash(&state)),
        nonce: Set(cipher.encrypt(&nonce, &nonce_context(id))),
        pkce_verifier: Set(cipher.encrypt(&verifier, &verifier_context(id))),
        return_to: Set(return_to),
        login_hint: Set(login_hint),
        auth_test_id: Set(auth_test_id),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(ATTEMPT_TTL_MINUTES)),
        consumed_at: Set(None),
        client_key: Set(client_key),
    }
    .insert(db)
    .await?;
    Ok(NewAttempt {
        state: state.into(),
        nonce: nonce.into(),
        code_challenge,
    })
}

/// Refuses a new attempt when `client_key` already has `max_open` attempts open, with the
/// time until the oldest of them expires. Counted and then inserted without a lock: requests
/// racing each other may pass the cap by the number in flight, which the sign-in rate limit
/// bounds.
async fn check_open_attempts<C: ConnectionTrait>(
    db: &C,
    client_key: &str,
    max_open: u32,
    now: chrono::DateTime<Utc>,
) -> Result<(), crate::Error> {
    if max_open == 0 {
        return Ok(());
    }
    // The expiry times of up to `max_open` open attempts, oldest first: one indexed query.
    let open: Vec<chrono::DateTime<Utc>> = login_attempts::Entity::find()
        .select_only()
        .column(login_attempts::Column::ExpiresAt)
        .filter(login_attempts::Column::ClientKey.eq(client_key))
        .filter(login_attempts::Column::ExpiresAt.gt(now))
        .filter(login_attempts::Column::ConsumedAt.is_null())
        .order_by_asc(login_attempts::Column::ExpiresAt)
        .limit(u64::from(max_open))
        .into_tuple()
        .all(db)
        .await?;
    if open.len() < max_open as usize {
        return Ok(());
    }
    let wait = (open[0] - now).num_seconds().max(1) as u64;
    tracing::info!(
        client = client_key,
        max_open,
        "sign-in refused: the client has its cap of open attempts"
    );
    Err(crate::Error::RateLimited {
        retry_after_secs: wait,
    })
}

fn invalid_state(message: &str) -> crate::Error {
    crate::Error::bad_request(
        "invalid_state",
        format!("{message}; start the sign-in again"),
    )
}

/// Consumes the attempt of `state`: once, before it expires. Nothing is asked of Google for a
/// state that fails here.
pub(crate) async fn consume<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    state: &SecretString,
) -> Result<Consumed, crate::Error> {
    let hash = token_hash(state.expose_secret());
    let now = Utc::now();
    let claimed = login_attempts::Entity::update_many()
        .col_expr(login_attempts::Column::ConsumedAt, Expr::value(now))
        .filter(login_attempts::Column::StateHash.eq(hash.as_str()))
        .filter(login_attempts::Column::ConsumedAt.is_null())
        .filter(login_attempts::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?
        .rows_affected;
    let row = login_attempts::Entity::find()
        .filter(login_attempts::Column::StateHash.eq(hash.as_str()))
        .one(db)
        .await?;
    let row = match (claimed, row) {
        (1, Some(row)) => row,
        (_, None) => return Err(invalid_state("this sign-in is unknown or expired (state)")),
        (_, Some(row)) if row.consumed_at.is_some() => {
            return Err(invalid_state("this sign-in was already completed (state)"))
        }
        (_, Some(_)) => {
            return Err(invalid_state(&format!(
                "this sign-in expired (it must finish within {ATTEMPT_TTL_MINUTES} minutes)"
            )))
        }
    };
    let decrypt = |sealed: &str, context: String| {
        cipher
            .decrypt(sealed, &context)
            .map_err(|e| crate::Error::Internal(e.into()))
    };
    Ok(Consumed {
        nonce: decrypt(&row.nonce, nonce_context(row.id))?,
        verifier: decrypt(&row.pkce_verifier, verifier_context(row.id))?,
        return_to: row.return_to,
        auth_test_id: row.auth_test_id,
    })
}
