//! Service accounts the emulator issues, and the JWT assertions they sign.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::Rng;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

/// One service account: its identity, its public key, and the key file handed out.
#[derive(Clone)]
pub struct ServiceAccount {
    /// `client_email`, the JWT `iss`.
    pub client_email: String,
    /// Numeric `client_id` (what domain-wide delegation is granted to).
    pub client_id: String,
    /// `private_key_id`, the JWT header `kid`.
    pub private_key_id: String,
    /// `project_id`.
    pub project_id: String,
    /// The key file (google-apis.md §1 format).
    pub key_json: String,
    pub(crate) public_key: RsaPublicKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Generates an RSA 2048 key and the key file for it (CPU-heavy: ~0.1–1 s).
    pub fn generate(
        name: &str,
        project_id: &str,
        token_uri: &str,
    ) -> anyhow::Result<ServiceAccount> {
        let mut rng = rand::rngs::OsRng;
        let key = RsaPrivateKey::new(&mut rng, 2048)?;
        let public_key = RsaPublicKey::from(&key);
        let pem = key.to_pkcs8_pem(LineEnding::LF)?;
        let private_key_id: String = (0..40)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).expect("hex digit"))
            .collect();
        let client_id = format!("1{:020}", rng.gen_range(0..100_000_000_000_000_000_000u128));
        let client_email = format!("{name}@{project_id}.iam.gserviceaccount.com");
        let key_json = serde_json::to_string_pretty(&serde_json::json!({
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": private_key_id,
            "private_key": pem.as_str(),
            "client_email": client_email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                client_email.replace('@', "%40")
            ),
            "universe_domain": "googleapis.com"
        }))?;
        Ok(ServiceAccount {
            client_email,
            client_id,
            private_key_id,
            project_id: project_id.to_string(),
            key_json,
            public_key,
        })
    }
}

/// Decodes base64url with or without padding.
pub(crate) fn b64url(s: &str) -> Option<Vec<u8>> {
    if s.ends_with('=') {
        URL_SAFE.decode(s).ok()
    } else {
        URL_SAFE_NO_PAD.decode(s).ok()
    }
}

/// A JWT split into its decoded parts.
pub(crate) struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// Splits and decodes; `None` when it is not a JWT at all.
    pub fn decode(token: &str) -> Option<Jwt> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&b64url(h)?).ok()?;
        let claims: Value = serde_json::from_slice(&b64url(c)?).ok()?;
        if !header.is_object() || !claims.is_object() {
            return None;
        }
        Some(Jwt {
            header,
            claims,
            signing_input: format!("{h}.{c}"),
            signature: b64url(s)?,
        })
    }

    /// RS256 signature check with `key`.
    pub fn verify_rs256(&self, key: &RsaPublicKey) -> bool {
        if self.header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return false;
        }
        let Ok(sig) = Signature::try_from(self.signature.as_slice()) else {
            return false;
        };
        VerifyingKey::<Sha256>::new(key.clone())
            .verify(self.signing_input.as_bytes(), &sig)
            .is_ok()
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }
}
