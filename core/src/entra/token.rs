//! App-only access tokens through the client-credentials grant (reference §1): a client
//! secret, or a client assertion signed with the certificate's private key.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::transport_error;
use super::{Credential, EntraError};
use crate::retry::{backoff, Hook, RetryPolicy};

/// The one scope of an app-only Graph token: every application permission the app has admin
/// consent for.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion (MSAL's: 10 minutes).
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// The credential ready to authenticate with: the secret, or the certificate's signing key and
/// thumbprint, parsed once when the client is built.
pub(crate) enum Signer {
    Secret(SecretString),
    Certificate {
        key: EncodingKey,
        /// base64url SHA-256 of the certificate's DER (the `x5t#S256` header).
        x5t_s256: String,
        /// Hex of the same, for messages.
        thumbprint_hex: String,
    },
}

impl Signer {
    /// Parses the stored credential. Fails on a certificate or key that is not PEM (or not RSA:
    /// Entra signs assertions with RSA only).
    pub(crate) fn parse(credential: &Credential) -> Result<Signer, EntraError> {
        match credential {
            Credential::ClientSecret(s) => {
                if s.expose_secret().trim().is_empty() {
                    return Err(EntraError::InvalidCredential(
                        "the client secret is empty".into(),
                    ));
                }
                Ok(Signer::Secret(s.clone()))
            }
            Credential::Certificate {
                certificate_pem,
                private_key_pem,
            } => {
                let der = certificate_der(certificate_pem)?;
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|_| {
                        EntraError::InvalidCredential(
                            "the private key is not an RSA private key in PEM (PKCS#8 \
                             \"BEGIN PRIVATE KEY\" or PKCS#1 \"BEGIN RSA PRIVATE KEY\")"
                                .into(),
                        )
                    })?;
                let digest = Sha256::digest(&der);
                Ok(Signer::Certificate {
                    key,
                    x5t_s256: URL_SAFE_NO_PAD.encode(digest),
                    thumbprint_hex: hex::encode(digest),
                })
            }
        }
    }

    /// What the connection test says about the credential (never the secret itself).
    pub(crate) fn describe(&self) -> String {
        match self {
            Signer::Secret(_) => "a client secret".to_string(),
            Signer::Certificate { thumbprint_hex, .. } => {
                format!("a certificate (SHA-256 thumbprint {thumbprint_hex}) and its private key")
            }
        }
    }
}

/// The DER of the first certificate in a PEM text.
fn certificate_der(pem: &str) -> Result<Vec<u8>, EntraError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let not_pem = || {
        EntraError::InvalidCredential(
            "the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        )
    };
    let start = pem.find(BEGIN).ok_or_else(not_pem)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or_else(not_pem)?;
    let body: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(body).map_err(|_| not_pem())?;
    // A DER certificate is a SEQUENCE: anything else is not one.
    if der.first() != Some(&0x30) || der.len() < 64 {
        return Err(not_pem());
    }
    Ok(der)
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize, Default)]
struct StsErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
}

/// What a cached token is for: the token URL (login URL and tenant), the client id and a
/// digest of the credential, so a changed secret or certificate never uses a token obtained
/// with the old one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    token_url: String,
    client_id: String,
    credential: [u8; 32],
}

/// Access tokens cached in the process, until shortly before they expire; shared by sync
/// jobs, the connection test and the group listing, which each build their own
/// [`super::GraphClient`] from the same [`super::EntraAccess`].
pub type TokenCache = crate::access_token::TokenCache<CacheKey>;

/// A digest of the credential, as a cache key: the secret or the key itself is not kept in
/// the map.
fn credential_digest(c: &Credential) -> [u8; 32] {
    let mut h = Sha256::new();
    match c {
        Credential::ClientSecret(s) => {
            h.update(b"secret\0");
            h.update(s.expose_secret().as_bytes());
        }
        Credential::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            h.update(b"certificate\0");
            h.update(certificate_pem.as_bytes());
            h.update(b"\0");
            h.update(private_key_pem.expose_secret().as_bytes());
        }
    }
    h.finalize().into()
}

/// Fetches and caches access tokens for one tenant, app and credential.
pub(crate) struct TokenSource {
    token_url: String,
    tenant: String,
    client_id: String,
    /// The parsed credential, or why it does not parse (the connection test's first step).
    signer: Result<Signer, EntraError>,
    /// Follows no redirects: a redirect would re-POST the secret or assertion elsewhere.
    http: reqwest::Client,
    retry: RetryPolicy,
    timeout: Duration,
    hook: Option<Hook>,
    cache: crate::access_token::Slot,
}

impl TokenSource {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        token_url: String,
        tenant: String,
        client_id: String,
        credential: &Credential,
        cache: &TokenCache,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
        hook: Option<Hook>,
    ) -> TokenSource {
        let slot = cache.slot(CacheKey {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            credential: credential_digest(credential),
        });
        TokenSource {
            token_url,
            tenant,
            client_id,
            signer: Signer::parse(credential),
            http,
            retry,
            timeout,
            hook,
            cache: slot,
        }
    }

    pub(crate) fn signer(&self) -> Result<&Signer, EntraError> {
        self.signer.as_ref().map_err(Clone::clone)
    }

    /// A valid access token, from the cache or freshly fetched.
    pub(crate) async fn get(&self) -> Result<SecretString, EntraError> {
        self.cache.get(false, || self.fetch()).await
    }

    /// A token fetched now whatever the cache holds (the connection test: a cached token would
    /// hide a secret revoked since), and cached for the others.
    pub(crate) async fn fresh(&self) -> Result<SecretString, EntraError> {
        self.cache.get(true, || self.fetch()).await
    }

    /// Drops `stale` from the cache (after a Graph 401), unless another caller already
    /// replaced it.
    pub(crate) async fn invalidate(&self, stale: &SecretString) {
        self.cache.invalidate(stale).await
    }

    fn assertion(&self, key: &EncodingKey, x5t_s256: &str) -> Result<String, EntraError> {
        let now = chrono::Utc::now().timestamp();
        let claims = AssertionClaims {
            aud: &self.token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        // PS256 with `x5t#S256`: the current documentation's form (RS256 with the SHA-1 `x5t`
        // is the older one).
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(x5t_s256.to_string());
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| EntraError::Signing(e.to_string()))
    }

    /// One token request, retried on 429, 5xx and transport failures.
    #[tracing::instrument(name = "entra_token", skip(self), fields(tenant = %self.tenant, client_id = %self.client_id))]
    async fn fetch(&self) -> Result<(SecretString, Duration), EntraError> {
        let signer = self.signer()?;
        let max = self.retry.token_max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A fresh assertion per attempt: each carries its own `jti`.
            let assertion = match signer {
                Signer::Secret(_) => None,
                Signer::Certificate { key, x5t_s256, .. } => {
                    Some(SecretString::from(self.assertion(key, x5t_s256)?))
                }
            };
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("scope", GRAPH_SCOPE),
            ];
            match (signer, &assertion) {
                (Signer::Secret(s), _) => form.push(("client_secret", s.expose_secret())),
                (_, Some(a)) => {
                    form.push(("client_assertion_type", ASSERTION_TYPE));
                    form.push(("client_assertion", a.expose_secret()));
                }
                (Signer::Certificate { .. }, None) => unreachable!("an assertion was signed"),
            }
            let started = Instant::now();
            let sent = self
                .http
                .post(&self.token_url)
                .timeout(self.timeout)
                .form(&form)
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.report(0, started.elapsed());
                    if attempt >= max {
                        return Err(transport_error("token", attempt, self.timeout, &e));
                    }
                    tracing::warn!(attempt, error = %e, "token request failed; retrying");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            self.report(status, started.elapsed());
            let retry_after = crate::retry::retry_after(resp.headers());
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    if attempt >= max {
                        return Err(transport_error("token", attempt, self.timeout, &e));
                    }
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            if status == 200 {
                return parse_token(&body);
            }
            let retryable = status == 429 || status >= 500;
            if retryable && attempt < max {
                let delay = retry_after
                    .map(|d| d.min(self.retry.max_retry_after))
                    .unwrap_or_else(|| backoff(&self.retry, attempt));
                tracing::warn!(attempt, status, "token endpoint asked to retry");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(self.classify(status, &body));
        }
    }

    fn classify(&self, status: u16, body: &[u8]) -> EntraError {
        // Only Microsoft's JSON error is read; any other body (an HTML page, a proxy's answer)
        // is never repeated to the caller.
        let err = match serde_json::from_slice::<StsErrorBody>(body) {
            Ok(e) if !e.error.is_empty() => e,
            _ => return EntraError::TokenEndpoint {
                status,
                error: "unexpected_answer".into(),
                aadsts: 0,
                description:
                    "the answer was not a Microsoft token error; check DIRSYNC_MICROSOFT_LOGIN_URL"
                        .into(),
            },
        };
        let client_id = self.client_id.clone();
        // The description's first line, without `AADSTS<n>: ` and the trace trailer.
        let first = err.error_description.lines().next().unwrap_or_default();
        let description = first
            .split_once(": ")
            .filter(|(p, _)| p.starts_with("AADSTS"))
            .map_or(first, |(_, rest)| rest)
            .to_string();
        let aadsts = err.error_codes.first().copied().unwrap_or(0);
        match aadsts {
            7000215 => EntraError::InvalidClientSecret { client_id },
            7000222 => EntraError::ClientSecretExpired { client_id },
            700016 => EntraError::UnknownApplication {
                client_id,
                tenant: self.tenant.clone(),
            },
            90002 => EntraError::UnknownTenant {
                tenant: self.tenant.clone(),
            },
            700027 => EntraError::CertificateNotRegistered {
                client_id,
                thumbprint: match &self.signer {
                    Ok(Signer::Certificate { thumbprint_hex, .. }) => thumbprint_hex.clone(),
                    _ => "unknown".into(),
                },
            },
            700024 => EntraError::ClockSkew { description },
            7000112 => EntraError::ApplicationDisabled { client_id },
            _ => EntraError::TokenEndpoint {
                status,
                error: err.error,
                aadsts,
                description,
            },
        }
    }

    fn report(&self, status: u16, elapsed: Duration) {
        if let Some(h) = &self.hook {
            h("token", status, elapsed);
        }
    }
}

/// A 200 answer: the token and its lifetime (`expires_in` an integer on v2.0, a string
/// tolerated as MSAL does; 600 s when absent, MSAL's default too).
fn parse_token(body: &[u8]) -> Result<(SecretString, Duration), EntraError> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let malformed = |detail: String| EntraError::MalformedResponse {
        endpoint: "token",
        detail,
    };
    let a: Answer = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if a.access_token.is_empty() {
        return Err(malformed("an empty access_token".into()));
    }
    let secs = match a.expires_in {
        None => 600,
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(600),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(600),
        Some(_) => 600,
    };
    tracing::debug!(expires_in = secs, "access token obtained");
    Ok((
        SecretString::from(a.access_token),
        Duration::from_secs(secs.max(1)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_that_is_not_pem_is_refused() {
        for pem in [
            "",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIB",
        ] {
            assert_eq!(
                certificate_der(pem).unwrap_err().code(),
                "invalid_entra_credential",
                "{pem:?}"
            );
        }
    }

    #[test]
    fn expires_in_may_be_a_number_or_a_string() {
        let (_, d) = parse_token(br#"{"access_token":"t","expires_in":3599}"#).unwrap();
        assert_eq!(d, Duration::from_secs(3599));
        let (_, d) = parse_token(br#"{"access_token":"t","expires_in":"86399"}"#).unwrap();
        assert_eq!(d, Duration::from_secs(86399));
        let (_, d) = parse_token(br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(d, Duration::from_secs(600));
        assert!(parse_token(br#"{"access_token":""}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
    }
}
