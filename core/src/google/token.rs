//! Access tokens through the JWT bearer grant with domain-wide delegation (google-apis.md §2).

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{GoogleError, ServiceAccountKey};
use crate::retry::{Hook, RetryPolicy};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// What a cached token is for: the key (its id, service account and token endpoint), the
/// impersonated subject and the scopes. A different key or admin is a different entry, so a
/// changed configuration never uses a token obtained for the old one, on any instance.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    private_key_id: String,
    client_email: String,
    token_uri: String,
    subject: String,
    scopes: String,
}

/// Access tokens cached in the process (product §2: "cached until shortly before expiry"),
/// shared by sync jobs, the connection test and the group listing, which each build their own
/// [`super::DirectoryClient`].
pub type TokenCache = crate::access_token::TokenCache<CacheKey>;

/// Fetches and caches access tokens for one key, subject and scopes.
pub(crate) struct TokenSource {
    key: ServiceAccountKey,
    subject: String,
    scopes: String,
    /// `DIRSYNC_GOOGLE_TOKEN_URL`: with Google's own endpoints, where `token_uri` may point.
    allowed_token_url: String,
    /// Follows no redirects: a redirect would re-POST the signed assertion elsewhere.
    http: reqwest::Client,
    retry: RetryPolicy,
    timeout: Duration,
    hook: Option<Hook>,
    cache: crate::access_token::Slot,
}

impl TokenSource {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        key: ServiceAccountKey,
        subject: String,
        allowed_token_url: String,
        cache: &TokenCache,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
        hook: Option<Hook>,
        scopes: &[&str],
    ) -> TokenSource {
        let scopes = scopes.join(" ");
        let slot = cache.slot(CacheKey {
            private_key_id: key.private_key_id.clone(),
            client_email: key.client_email.clone(),
            token_uri: key.token_uri.clone(),
            subject: subject.clone(),
            scopes: scopes.clone(),
        });
        TokenSource {
            key,
            subject,
            scopes,
            allowed_token_url,
            http,
            retry,
            timeout,
            hook,
            cache: slot,
        }
    }

    pub(crate) fn key(&self) -> &ServiceAccountKey {
        &self.key
    }

    /// A valid access token, from the cache or freshly fetched.
    pub(crate) async fn get(&self) -> Result<SecretString, GoogleError> {
        self.cache.get(false, || self.fetch()).await
    }

    /// Drops `stale` from the cache (after a 401), unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, stale: &SecretString) {
        self.cache.invalidate(stale).await
    }

    fn assertion(&self) -> Result<String, GoogleError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.key.client_email,
            sub: &self.subject,
            scope: &self.scopes,
            aud: &self.key.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.private_key_id.clone());
        jsonwebtoken::encode(&header, &claims, self.key.encoding_key())
            .map_err(|e| GoogleError::Signing(e.to_string()))
    }

    /// One token request with google-auth's retry rules: 500, 503, 504, 408, 429 and the
    /// `internal_failure` / `server_error` / `temporarily_unavailable` errors, and transport
    /// failures, are retried with doubling delays and about 10 % jitter.
    #[tracing::instrument(name = "google_token", skip(self), fields(client_email = %self.key.client_email, sub = %self.subject))]
    async fn fetch(&self) -> Result<(SecretString, Duration), GoogleError> {
        // Checked here too, not only at upload: a key stored before the guard existed, or under
        // another DIRSYNC_GOOGLE_TOKEN_URL, must not be sent anywhere else either.
        if !super::token_uri_allowed(&self.key.token_uri, &self.allowed_token_url) {
            return Err(super::guard::not_allowed(
                &self.key.token_uri,
                &self.allowed_token_url,
            ));
        }
        let max = self.retry.token_max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let assertion = self.assertion()?;
            let started = std::time::Instant::now();
            let form = [
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.as_str()),
            ];
            let sent = self
                .http
                .post(&self.key.token_uri)
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
                    tokio::time::sleep(token_backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            let status = resp.status().as_u16();
            self.report(status, started.elapsed());
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    if attempt >= max {
                        return Err(transport_error("token", attempt, self.timeout, &e));
                    }
                    tokio::time::sleep(token_backoff(&self.retry, attempt)).await;
                    continue;
                }
            };
            if status == 200 {
                let t: TokenResponse =
                    serde_json::from_slice(&body).map_err(|e| GoogleError::MalformedResponse {
                        endpoint: "token",
                        detail: e.to_string(),
                    })?;
                let lifetime = Duration::from_secs(t.expires_in.unwrap_or(3600).max(1));
                tracing::debug!(expires_in = lifetime.as_secs(), "access token obtained");
                return Ok((SecretString::from(t.access_token), lifetime));
            }
            // Only Google's JSON error (`{"error": "...", ...}`) is read; any other body — an
            // HTML page, a redirect's, another service's JSON — is never repeated to the caller.
            let err = match serde_json::from_slice::<TokenErrorBody>(&body) {
                Ok(e) if !e.error.is_empty() => e,
                _ => TokenErrorBody {
                    error: "unexpected_answer".into(),
                    error_description: "the answer was not a Google token error; check that the key's token_uri is Google's".into(),
                },
            };
            let retryable = matches!(status, 500 | 503 | 504 | 408 | 429)
                || matches!(
                    err.error.as_str(),
                    "internal_failure" | "server_error" | "temporarily_unavailable"
                );
            if retryable && attempt < max {
                tracing::warn!(attempt, status, error = %err.error, "token endpoint failed; retrying");
                tokio::time::sleep(token_backoff(&self.retry, attempt)).await;
                continue;
            }
            return Err(self.classify(status, err));
        }
    }

    fn classify(&self, status: u16, err: TokenErrorBody) -> GoogleError {
        let d = err.error_description;
        match err.error.as_str() {
            "unauthorized_client" => GoogleError::UnauthorizedClient {
                client_id: self.key.delegation_client_id().to_string(),
                // The scopes this source asks for: the Directory ones, or the audit log's.
                scopes: self.scopes.replace(' ', ","),
            },
            "invalid_grant" if d.contains("Invalid email or User ID") => {
                GoogleError::AdminNotFound {
                    admin_email: self.subject.clone(),
                }
            }
            "invalid_grant"
                if d.contains("short-lived") || d.contains("iat") || d.contains("exp ") =>
            {
                GoogleError::ClockSkew { description: d }
            }
            "invalid_grant"
                if d.contains("Signature")
                    || d.contains("account not found")
                    || d.contains("disabled") =>
            {
                GoogleError::InvalidKey {
                    private_key_id: self.key.private_key_id.clone(),
                    description: d,
                }
            }
            "invalid_grant" => GoogleError::InvalidGrant { description: d },
            _ => GoogleError::TokenEndpoint {
                status,
                error: err.error,
                description: d,
            },
        }
    }

    fn report(&self, status: u16, elapsed: Duration) {
        if let Some(h) = &self.hook {
            h("token", status, elapsed);
        }
    }
}

/// google-auth's token retry delay: base × 2^(attempt-1), ±10 %.
fn token_backoff(p: &RetryPolicy, attempt: u32) -> Duration {
    let d = p.base_delay.saturating_mul(1u32 << (attempt - 1).min(16));
    let jitter = rand::random::<f64>() * 0.2 - 0.1;
    d.mul_f64(1.0 + jitter).min(p.max_delay.max(p.base_delay))
}

pub(crate) fn transport_error(
    endpoint: &'static str,
    attempts: u32,
    timeout: Duration,
    e: &reqwest::Error,
) -> GoogleError {
    if e.is_timeout() {
        return GoogleError::Timeout {
            endpoint,
            timeout,
            attempts,
        };
    }
    let message = crate::retry::failure_words(e);
    GoogleError::Unreachable {
        endpoint,
        attempts,
        message,
    }
}
