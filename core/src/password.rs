//! Local sign-in with a password (argon2id PHC strings in `users.password_hash`).
//!
//! An unknown user, a directory user and a wrong password get the same answer after about the
//! same time: when the user does not exist, is not local, or has no password, the password is
//! verified against a dummy hash.
//! Hashing runs off the async runtime.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use dirsync_entity::{users, AuthMethod};
use rand::RngCore;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};

use crate::oidc::{config, user, SignedIn};
use crate::Error;

/// Hashes a password as argon2id with default parameters and a random salt (a PHC string): the
/// one hash of the passwords that [`password_login`] verifies. CPU-heavy: call it from blocking
/// code (`spawn_blocking`).
pub fn hash_password(password: &str) -> crate::Result<String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| Error::Internal(anyhow::anyhow!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(anyhow::anyhow!("hashing a password: {e}")))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut random);
        hash_password(&hex::encode(random)).expect("hashing a fixed-size password works")
    })
}

/// True when `password` matches `stored`; always does one argon2 verification.
fn verify(stored: Option<&str>, password: &str) -> bool {
    let parsed = stored.and_then(|s| PasswordHash::new(s).ok());
    let real = parsed.is_some();
    let hash =
        parsed.unwrap_or_else(|| PasswordHash::new(dummy_hash()).expect("dummy hash parses"));
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok();
    ok && real
}

fn invalid_credentials() -> crate::Error {
    crate::Error::unauthenticated(
        "invalid_credentials",
        "the user name or the password is wrong",
    )
}

/// Signs a `local` user in with a password. Unknown user, directory user, no password and wrong
/// password are one answer (`invalid_credentials`) after the same work; a disabled user or one
/// without `login` is refused once the password proved who it is.
#[tracing::instrument(skip(db, password))]
pub async fn password_login<C: ConnectionTrait>(
    db: &C,
    user_name: &str,
    password: SecretString,
) -> Result<SignedIn, crate::Error> {
    let key = crate::users::AddressKey::new(user_name.trim());
    let found = if key.as_str().is_empty() || key.as_str().len() > 254 {
        None
    } else {
        users::Entity::find()
            .filter(users::Column::UserNameKey.eq(key))
            .one(db)
            .await?
    };
    // Only local users have passwords. A directory user is answered like an unknown name,
    // after the same argon2 work: otherwise the answer, or its speed, tells anyone which
    // addresses belong to the directory.
    let found = found.filter(|u| u.auth_method == AuthMethod::Local);
    let stored = found.as_ref().and_then(|u| u.password_hash.clone());
    let ok =
        tokio::task::spawn_blocking(move || verify(stored.as_deref(), password.expose_secret()))
            .await
            .map_err(|e| Error::Internal(e.into()))?;
    let user = match (ok, found) {
        (true, Some(u)) => u,
        _ => {
            tracing::info!("password sign-in refused");
            return Err(invalid_credentials());
        }
    };
    user::check_may_sign_in(db, &user).await?;
    let ttl = config::session_ttl(db).await?;
    let (token, expires_at) = crate::auth::create_session(db, user.id, ttl).await?;
    tracing::info!(user_id = %user.id, "signed in with a password");
    Ok(SignedIn {
        token,
        expires_at,
        user: user::view(db, user.id).await?,
        return_to: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_the_dummy_never_matches() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(Some(&h), "correct horse"));
        assert!(!verify(Some(&h), "wrong"));
        assert!(!verify(None, "correct horse"));
        assert!(!verify(Some("not a phc string"), "x"));
    }
}
