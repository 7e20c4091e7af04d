//! Login attempts: what `/oidc/login` remembers for the callback. The `state` is stored as its
//! SHA-256 only (it is the bearer of the attempt); the nonce and PKCE verifier are encrypted,
//! bound to their row. An attempt is consumed by one conditional UPDATE, so two callbacks with
//! the same state — on one server or on several sharing the database — cannot both use it.

use chrono::{Duration, Utc};
use dirsync_entity::login_attempts;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::binding::BrowserBinding;
use super::{random_token, SigninError, SigninErrorKind, ATTEMPT_TTL_MINUTES};
use crate::auth::token_hash;
use crate::secrets::Cipher;

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

/// Stores a new attempt (and forgets attempts that ended a day ago). With a browser binding,
/// the state can only be completed by that browser (see [`super::binding`]).
pub(crate) async fn create<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    return_to: Option<String>,
    login_hint: Option<String>,
    auth_test_id: Option<Uuid>,
    binding: Option<&BrowserBinding>,
) -> Result<NewAttempt, SigninError> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use sha2::{Digest, Sha256};
    let now = Utc::now();
    login_attempts::Entity::delete_many()
        .filter(login_attempts::Column::ExpiresAt.lt(now - Duration::days(1)))
        .exec(db)
        .await?;
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
    }
    .insert(db)
    .await?;
    Ok(NewAttempt {
        state: state.into(),
        nonce: nonce.into(),
        code_challenge,
    })
}

fn invalid_state(message: &str) -> SigninError {
    SigninError::new(
        SigninErrorKind::BadRequest,
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
) -> Result<Consumed, SigninError> {
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
        (_, None) => return Err(invalid_state("this sign-in is unknown (state)")),
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
            .map_err(|e| SigninError::Other(crate::Error::Internal(e.into())))
    };
    Ok(Consumed {
        nonce: decrypt(&row.nonce, nonce_context(row.id))?,
        verifier: decrypt(&row.pkce_verifier, verifier_context(row.id))?,
        return_to: row.return_to,
        auth_test_id: row.auth_test_id,
    })
}
