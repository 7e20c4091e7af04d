//! The service-account key file an administrator uploads (google-apis.md §1).

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Why a key file was refused, and which field is wrong. Kept inside this module (the connection
/// test reports the field as such); it leaves the module as a 422 `invalid_key_file`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct KeyFileError {
    field: Option<&'static str>,
    message: String,
}

impl KeyFileError {
    fn new(field: &'static str, message: impl Into<String>) -> KeyFileError {
        KeyFileError {
            field: Some(field),
            message: message.into(),
        }
    }

    /// The offending field of the key file (`None` when the file as a whole is unusable).
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// A message for the administrator: what is wrong and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<KeyFileError> for crate::Error {
    fn from(e: KeyFileError) -> Self {
        crate::Error::invalid("invalid_key_file", e.message)
            .with_details(serde_json::json!({ "field": e.field }))
    }
}

/// A parsed, usable service-account key. The private key never appears in `Debug` output.
#[derive(Clone)]
pub struct ServiceAccountKey {
    /// `client_email`: the JWT issuer, shown to the administrator as "Service Account".
    pub client_email: String,
    /// `private_key_id`: the JWT header `kid`, shown as "Key ID".
    pub private_key_id: String,
    /// `client_id`: the numeric id domain-wide delegation is granted to.
    pub client_id: Option<String>,
    /// `project_id`.
    pub project_id: Option<String>,
    /// `token_uri`: where the JWT grant is POSTed.
    pub token_uri: String,
    private_key: SecretString,
    encoding_key: EncodingKey,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("client_id", &self.client_id)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

fn required_string<'a>(
    obj: &'a serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, KeyFileError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(KeyFileError::new(
            field,
            format!("the key file has no `{field}`: upload the JSON key file exactly as Google Cloud produced it"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(KeyFileError::new(field, format!("`{field}` in the key file is empty")))
        }
        Some(Value::String(s)) => Ok(s.trim()),
        Some(_) => Err(KeyFileError::new(field, format!("`{field}` in the key file is not a string"))),
    }
}

fn optional_string(obj: &serde_json::Map<String, Value>, field: &'static str) -> Option<String> {
    obj.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl ServiceAccountKey {
    /// Parses and checks a key file: 422 `invalid_key_file`, whose `details.field` names the
    /// field that is wrong (null when the file as a whole is unusable).
    pub fn parse(bytes: &[u8]) -> crate::Result<ServiceAccountKey> {
        Ok(Self::parse_file(bytes)?)
    }

    /// [`ServiceAccountKey::parse`], keeping the field as such.
    pub(crate) fn parse_file(bytes: &[u8]) -> Result<ServiceAccountKey, KeyFileError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| KeyFileError {
            field: None,
            message: format!(
                "the key file is not valid JSON ({e}): upload the service-account key file (JSON) downloaded from Google Cloud"
            ),
        })?;
        let Value::Object(obj) = value else {
            return Err(KeyFileError {
                field: None,
                message:
                    "the key file is not a JSON object: upload the service-account key file (JSON)"
                        .into(),
            });
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("service_account") => {}
            Some(other) => {
                return Err(KeyFileError::new(
                    "type",
                    format!(
                        "`type` is {other:?}, not \"service_account\": create a key for a service account (IAM → Service accounts → Keys → Add key → JSON)"
                    ),
                ))
            }
            None => {
                return Err(KeyFileError::new(
                    "type",
                    "the key file has no `type` \"service_account\": upload a service-account key file",
                ))
            }
        }
        let client_email = required_string(&obj, "client_email")?;
        if !client_email.contains('@') {
            return Err(KeyFileError::new(
                "client_email",
                format!("`client_email` {client_email:?} is not an e-mail address"),
            ));
        }
        let private_key_id = required_string(&obj, "private_key_id")?;
        let token_uri = required_string(&obj, "token_uri")?;
        match url::Url::parse(token_uri) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(KeyFileError::new(
                    "token_uri",
                    format!("`token_uri` {token_uri:?} is not an http(s) URL"),
                ))
            }
        }
        if let Some(universe) = obj.get("universe_domain") {
            if universe.as_str() != Some("googleapis.com") {
                return Err(KeyFileError::new(
                    "universe_domain",
                    format!(
                        "`universe_domain` is {universe}, not \"googleapis.com\": domain-wide delegation only works in the googleapis.com universe"
                    ),
                ));
            }
        }
        let pem = required_string(&obj, "private_key")?;
        if !pem.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(KeyFileError::new(
                "private_key",
                "`private_key` is not an unencrypted PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----): upload the key file as Google produced it",
            ));
        }
        let encoding_key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
            KeyFileError::new(
                "private_key",
                "`private_key` cannot be read as an RSA private key: upload the key file as Google produced it",
            )
        })?;
        // Loading only decodes the PEM; signing once proves the key is a usable RSA key.
        jsonwebtoken::crypto::sign(b"probe", &encoding_key, Algorithm::RS256).map_err(|_| {
            KeyFileError::new(
                "private_key",
                "`private_key` is not a usable RSA key (RS256 signing failed): upload the key file as Google produced it",
            )
        })?;
        Ok(ServiceAccountKey {
            client_email: client_email.to_string(),
            private_key_id: private_key_id.to_string(),
            client_id: optional_string(&obj, "client_id"),
            project_id: optional_string(&obj, "project_id"),
            token_uri: token_uri.to_string(),
            private_key: SecretString::from(pem.to_string()),
            encoding_key,
        })
    }

    /// The PEM private key (to store it encrypted). Handle with care: never log it.
    pub fn private_key_pem(&self) -> &SecretString {
        &self.private_key
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding_key
    }

    /// What the administrator enters on the domain-wide delegation page: the numeric client id
    /// (or, when the file has none, the service account's address as a stand-in).
    pub fn delegation_client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.client_email)
    }

    /// Whether two keys are the same key (same id and private key).
    pub fn same_key_as(&self, other: &ServiceAccountKey) -> bool {
        self.private_key_id == other.private_key_id
            && self.private_key.expose_secret() == other.private_key.expose_secret()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A throwaway RSA 2048 test key (PKCS#8), generated for these tests only.
    pub(crate) const TEST_KEY_PEM: &str = include_str!("testdata/test_key.pem");

    pub(crate) fn key_file(overrides: Value) -> Vec<u8> {
        let mut v = json!({
            "type": "service_account",
            "project_id": "demo-proj",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": TEST_KEY_PEM,
            "client_email": "dir-reader@demo-proj.iam.gserviceaccount.com",
            "client_id": "101234567890123456789",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "universe_domain": "googleapis.com"
        });
        for (k, val) in overrides.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn err(overrides: Value) -> KeyFileError {
        ServiceAccountKey::parse_file(&key_file(overrides)).unwrap_err()
    }

    #[test]
    fn parses_a_google_key_file() {
        let k = ServiceAccountKey::parse(&key_file(json!({}))).unwrap();
        assert_eq!(
            k.client_email,
            "dir-reader@demo-proj.iam.gserviceaccount.com"
        );
        assert_eq!(k.private_key_id, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(k.client_id.as_deref(), Some("101234567890123456789"));
        assert_eq!(k.project_id.as_deref(), Some("demo-proj"));
        assert_eq!(k.token_uri, "https://oauth2.googleapis.com/token");
        // universe_domain is optional (older key files).
        assert!(ServiceAccountKey::parse(&key_file(json!({"universe_domain": null}))).is_ok());
    }

    #[test]
    fn debug_never_prints_the_private_key() {
        let k = ServiceAccountKey::parse(&key_file(json!({}))).unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
        assert!(!dbg.contains(&TEST_KEY_PEM[40..80]), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn not_json_has_no_field() {
        let e = ServiceAccountKey::parse_file(b"-----BEGIN PRIVATE KEY-----").unwrap_err();
        assert_eq!(e.field(), None);
        assert!(e.message().contains("not valid JSON"), "{e}");
        assert_eq!(
            ServiceAccountKey::parse_file(b"[1,2]").unwrap_err().field(),
            None
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (json!({"type": "authorized_user"}), "type"),
            (json!({"type": null}), "type"),
            (json!({"client_email": null}), "client_email"),
            (json!({"client_email": "  "}), "client_email"),
            (json!({"client_email": 42}), "client_email"),
            (json!({"client_email": "not-an-email"}), "client_email"),
            (json!({"private_key_id": null}), "private_key_id"),
            (json!({"private_key_id": ""}), "private_key_id"),
            (json!({"token_uri": null}), "token_uri"),
            (json!({"token_uri": ""}), "token_uri"),
            (json!({"token_uri": "not a url"}), "token_uri"),
            (json!({"private_key": null}), "private_key"),
            (json!({"private_key": ""}), "private_key"),
            (
                json!({"private_key": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}),
                "private_key",
            ),
            (
                json!({"private_key": "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n"}),
                "private_key",
            ),
            (
                json!({"private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"}),
                "private_key",
            ),
            (
                json!({"universe_domain": "example.test"}),
                "universe_domain",
            ),
        ];
        for (overrides, field) in cases {
            let e = err(overrides.clone());
            assert_eq!(e.field(), Some(field), "{overrides}: {e}");
            assert!(
                e.message().contains(field),
                "{overrides}: message names the field: {e}"
            );
            // Leaving the module, it is a 422 naming the field.
            let shown = ServiceAccountKey::parse(&key_file(overrides.clone()))
                .unwrap_err()
                .public();
            assert_eq!(shown.kind, crate::ErrorKind::Invalid);
            assert_eq!(shown.code, "invalid_key_file");
            assert_eq!(shown.message, e.message());
            assert_eq!(shown.details, Some(json!({ "field": field })));
        }
    }

    #[test]
    fn a_truncated_key_is_unparsable() {
        let truncated = format!("{}\n-----END PRIVATE KEY-----\n", &TEST_KEY_PEM[..300]);
        assert_eq!(
            err(json!({"private_key": truncated})).field(),
            Some("private_key")
        );
    }
}
