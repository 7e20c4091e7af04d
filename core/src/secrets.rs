//! Secrets at rest: AES-256-GCM with a random nonce per value and the value's place (table,
//! column, row) bound in as associated data, so a ciphertext copied to another row or column
//! fails to decrypt instead of yielding someone else's secret. Tampering is an error, never garbage.

use std::path::Path;

use aes_gcm::{
    aead::{Aead, KeyInit, Payload},
    Aes256Gcm, Nonce,
};
use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::settings::Settings;

const VERSION_PREFIX: &str = "v1:";
const KEY_FILE: &str = "secret.key";

/// Encrypts and decrypts secrets stored in the database.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

/// Decryption failed: the value was altered, moved, or encrypted under another key.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted ({context}): it was altered or DIRSYNC_SECRET_KEY changed")]
pub struct DecryptError {
    context: String,
}

impl Cipher {
    /// Builds the cipher from `DIRSYNC_SECRET_KEY`, or from `<data_dir>/secret.key`, creating that
    /// file (mode 0600) with a random key on first start.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Cipher> {
        let key = match &settings.secret_key {
            Some(k) => decode_key(k.expose_secret()).context("while reading DIRSYNC_SECRET_KEY")?,
            None => load_or_create_key_file(&settings.data_dir.join(KEY_FILE))?,
        };
        Ok(Cipher::from_key(&key))
    }

    /// Builds the cipher from a raw 32-byte key.
    pub fn from_key(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// Encrypts `plaintext` for the place named by `context` (e.g. `"oidc_config.client_secret:1"`).
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a bounded message cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{VERSION_PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a value produced by [`Cipher::encrypt`] for the same `context`.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<SecretString, DecryptError> {
        let err = || DecryptError {
            context: context.to_string(),
        };
        let b64 = stored.strip_prefix(VERSION_PREFIX).ok_or_else(err)?;
        let raw = STANDARD.decode(b64).map_err(|_| err())?;
        if raw.len() < 12 + 16 {
            return Err(err());
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| err())?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| err())
    }
}

fn decode_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    let raw = STANDARD
        .decode(b64.trim())
        .context("the key must be base64 (e.g. `openssl rand -base64 32`)")?;
    raw.try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("the key must be 32 bytes, not {}", v.len()))
}

fn load_or_create_key_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text).with_context(|| format!("while reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("while creating {}", dir.display()))?;
            }
            write_private_file(path, STANDARD.encode(key).as_bytes()).with_context(|| {
                format!("while creating the secret key file {}", path.display())
            })?;
            tracing::info!(path = %path.display(), "created a new secret key file");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("while reading {}", path.display())),
    }
}

/// Writes a file readable only by its owner (mode 0600 on Unix), failing if it exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_context() {
        let c = Cipher::from_key(&[7u8; 32]);
        let stored = c.encrypt("hunter2", "t.c:1");
        assert!(!stored.contains("hunter2"));
        assert_eq!(
            c.decrypt(&stored, "t.c:1").unwrap().expose_secret(),
            "hunter2"
        );
        assert!(c.decrypt(&stored, "t.c:2").is_err(), "moved to another row");
        assert_ne!(stored, c.encrypt("hunter2", "t.c:1"), "nonce is random");
    }

    #[test]
    fn tampering_is_an_error() {
        let c = Cipher::from_key(&[7u8; 32]);
        let stored = c.encrypt("hunter2", "ctx");
        let mut raw = STANDARD.decode(&stored[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:{}", STANDARD.encode(raw));
        assert!(c.decrypt(&tampered, "ctx").is_err());
        assert!(Cipher::from_key(&[8u8; 32])
            .decrypt(&stored, "ctx")
            .is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
