//! One OpenID Connect provider (Google, or one Microsoft Entra tenant): the discovery document
//! and the JWKS, cached as the provider asks (`Cache-Control: max-age`), and the
//! authorization-code exchange.
//!
//! The JWKS is refetched when a token names an unknown `kid` (both providers rotate their keys
//! on no fixed schedule), but at most once per cooldown: a stream of forged tokens with made-up
//! `kid`s must not turn into a stream of requests to the provider. When the provider cannot be
//! reached, keys and discovery past their `max-age` keep being used for a while (`max_stale`),
//! so a short outage does not stop sign-ins.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use reqwest::header::{HeaderMap, CACHE_CONTROL};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Which company runs a provider: what messages call it, and the error codes of its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpKind {
    /// Sign in with Google.
    Google,
    /// Sign in with Microsoft (an Entra ID tenant).
    Microsoft,
}

impl IdpKind {
    /// The provider's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            IdpKind::Google => "Google",
            IdpKind::Microsoft => "Microsoft",
        }
    }

    /// 502 when the provider cannot be read.
    pub(crate) fn unavailable_code(self) -> &'static str {
        match self {
            IdpKind::Google => "google_unavailable",
            IdpKind::Microsoft => "microsoft_unavailable",
        }
    }

    /// 401 when the provider ended the sign-in with an `error` (e.g. `access_denied`).
    pub(crate) fn error_code(self) -> &'static str {
        match self {
            IdpKind::Google => "google_error",
            IdpKind::Microsoft => "microsoft_error",
        }
    }
}

/// A provider's discovery document, the parts dirsync uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// `https://accounts.google.com`, `https://login.microsoftonline.com/{tid}/v2.0`.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// Userinfo (unused by dirsync: the ID token carries what it needs).
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// How the token endpoint takes the client's credentials; absent means
    /// `client_secret_basic` (OpenID Connect Discovery 1.0 §3).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// How the client secret goes to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic, which RFC 6749 §2.3.1 requires every provider to
    /// support and prefers to the body.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl Discovery {
    /// The client authentication method to use: Basic when the provider lists it (or lists
    /// nothing, which means Basic), else the body; an error when it offers neither.
    pub fn client_auth(&self) -> Result<ClientAuth, crate::Error> {
        let Some(methods) = &self.token_endpoint_auth_methods_supported else {
            return Ok(ClientAuth::Basic);
        };
        let offers = |m: &str| methods.iter().any(|x| x == m);
        if offers("client_secret_basic") {
            Ok(ClientAuth::Basic)
        } else if offers("client_secret_post") {
            Ok(ClientAuth::Post)
        } else {
            Err(crate::Error::upstream(
                "client_auth_unsupported",
                format!(
                    "the provider's token endpoint takes neither client_secret_basic nor \
                     client_secret_post (it lists {methods:?}); dirsync cannot sign in with it"
                ),
            ))
        }
    }
}

struct Cached<T> {
    value: T,
    fetched_at: Instant,
    fresh_until: Instant,
}

#[derive(Clone)]
struct Jwk {
    n: String,
    e: String,
}

#[derive(Default)]
struct JwksState {
    keys: Option<Cached<HashMap<String, Jwk>>>,
    /// When an unknown `kid` last made us refetch.
    last_unknown_kid_refetch: Option<Instant>,
    /// Fetches made (for tests and logs).
    fetches: u64,
}

/// Why a key could not be had.
pub(crate) enum KeyError {
    /// The `kid` is not among the provider's keys, fetched again just now to be sure.
    Unknown,
    /// The `kid` is not among the provider's keys, which were fetched moments ago for another
    /// unknown `kid`, too recently to ask again: a key just published may be missing, so this
    /// says to retry in `retry_in` rather than that the provider does not publish the key.
    RecentlyFetched { retry_in: Duration },
    /// The provider could not be asked and nothing usable is cached.
    Unavailable(crate::Error),
}

/// The token endpoint's answer.
pub(crate) struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
}

/// Discovery and JWKS cache plus the code exchange of one provider; one per server (per tenant
/// for Microsoft), shared by its workers.
pub struct OidcProvider {
    kind: IdpKind,
    http: reqwest::Client,
    discovery_url: String,
    /// When set, the discovered endpoints must be on this origin (scheme, host, port): the
    /// client secret goes to the token endpoint, so a discovery document must not send it
    /// elsewhere than the configured login URL.
    origin: Option<url::Origin>,
    refetch_cooldown: Duration,
    max_stale: Duration,
    discovery: Mutex<Option<Cached<Discovery>>>,
    jwks: Mutex<JwksState>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("kind", &self.kind)
            .field("discovery_url", &self.discovery_url)
            .field("refetch_cooldown", &self.refetch_cooldown)
            .finish_non_exhaustive()
    }
}

/// Used when an answer has no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest `max-age` honoured.
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

fn max_age(headers: &HeaderMap) -> Duration {
    let Some(cc) = headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = None;
    for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age.unwrap_or(DEFAULT_MAX_AGE).min(MAX_MAX_AGE)
}

fn unavailable(kind: IdpKind, what: &str, detail: impl fmt::Display) -> crate::Error {
    tracing::warn!(provider = kind.name(), what, error = %detail, "an OpenID Connect endpoint failed");
    crate::Error::upstream(
        kind.unavailable_code(),
        format!(
            "{}'s {what} could not be read; try again in a moment",
            kind.name()
        ),
    )
}

/// `Authorization: Basic …` for a client (RFC 6749 §2.3.1): the id and the secret are each
/// form-urlencoded before they are joined with `:` and base64-encoded, so that a `:`, `+` or
/// `%` in them survives.
fn basic_credentials(client_id: &str, client_secret: &SecretString) -> String {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(client_secret.expose_secret()));
    format!("Basic {}", STANDARD.encode(pair))
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<JwkDoc>,
}

#[derive(Deserialize)]
struct JwkDoc {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(rename = "use", default)]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct TokenErrorAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl OidcProvider {
    /// A provider reading its discovery document at `discovery_url`, refetching the JWKS on an
    /// unknown `kid` at most every 30 s, using stale keys for up to a day when the provider is
    /// unreachable.
    pub fn new(kind: IdpKind, discovery_url: impl Into<String>) -> OidcProvider {
        OidcProvider {
            kind,
            origin: None,
            http: Self::http_client(&crate::outbound::Outbound::default()),
            discovery_url: discovery_url.into(),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            discovery: Mutex::new(None),
            jwks: Mutex::new(JwksState::default()),
        }
    }

    /// Google's provider, reading `discovery_url`.
    pub fn google(discovery_url: impl Into<String>) -> OidcProvider {
        OidcProvider::new(IdpKind::Google, discovery_url)
    }

    /// Accepts discovered endpoints only on the origin of `url` (see [`OidcProvider`]).
    pub fn with_origin_of(mut self, url: &str) -> OidcProvider {
        self.origin = url::Url::parse(url).ok().map(|u| u.origin());
        self
    }

    /// Who runs this provider.
    pub fn kind(&self) -> IdpKind {
        self.kind
    }

    /// Reaches the provider through these CAs and proxies.
    pub fn with_outbound(mut self, outbound: &crate::outbound::Outbound) -> OidcProvider {
        self.http = Self::http_client(outbound);
        self
    }

    fn http_client(outbound: &crate::outbound::Outbound) -> reqwest::Client {
        outbound
            .client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with static settings builds")
    }

    /// Sets the least time between two JWKS refetches caused by unknown `kid`s.
    pub fn with_refetch_cooldown(mut self, cooldown: Duration) -> OidcProvider {
        self.refetch_cooldown = cooldown;
        self
    }

    /// Sets how long keys and discovery past their `max-age` are still used while the provider
    /// is unreachable.
    pub fn with_max_stale(mut self, max_stale: Duration) -> OidcProvider {
        self.max_stale = max_stale;
        self
    }

    /// How many times the JWKS was fetched.
    pub async fn jwks_fetches(&self) -> u64 {
        self.jwks.lock().await.fetches
    }

    /// The discovery document, from the cache while fresh.
    pub async fn discovery(&self) -> Result<Discovery, crate::Error> {
        let mut cache = self.discovery.lock().await;
        let now = Instant::now();
        if let Some(c) = cache.as_ref() {
            if now < c.fresh_until {
                return Ok(c.value.clone());
            }
        }
        match self.fetch_discovery().await {
            Ok((doc, age)) => {
                *cache = Some(Cached {
                    value: doc.clone(),
                    fetched_at: now,
                    fresh_until: now + age,
                });
                Ok(doc)
            }
            Err(e) => match cache.as_ref() {
                Some(c) if now.duration_since(c.fetched_at) < self.max_stale => {
                    tracing::warn!(
                        provider = self.kind.name(),
                        "using a stale copy of the discovery document"
                    );
                    Ok(c.value.clone())
                }
                _ => Err(e),
            },
        }
    }

    async fn fetch_discovery(&self) -> Result<(Discovery, Duration), crate::Error> {
        let resp = self
            .http
            .get(&self.discovery_url)
            .send()
            .await
            .map_err(|e| unavailable(self.kind, "discovery document", e))?;
        if !resp.status().is_success() {
            return Err(unavailable(self.kind, "discovery document", resp.status()));
        }
        let age = max_age(resp.headers());
        let doc: Discovery = resp
            .json()
            .await
            .map_err(|e| unavailable(self.kind, "discovery document", e))?;
        if let Some(origin) = &self.origin {
            for (name, endpoint) in [
                ("authorization_endpoint", &doc.authorization_endpoint),
                ("token_endpoint", &doc.token_endpoint),
                ("jwks_uri", &doc.jwks_uri),
            ] {
                let on_origin = url::Url::parse(endpoint).is_ok_and(|u| u.origin() == *origin);
                if !on_origin {
                    tracing::warn!(
                        provider = self.kind.name(),
                        name,
                        endpoint,
                        "a discovered endpoint is not on the configured login URL"
                    );
                    return Err(crate::Error::upstream(
                        self.kind.unavailable_code(),
                        format!(
                            "{}'s discovery document names a {name} outside the configured \
                             login URL; dirsync does not send sign-ins there",
                            self.kind.name()
                        ),
                    ));
                }
            }
        }
        Ok((doc, age))
    }

    async fn fetch_jwks(&self) -> Result<(HashMap<String, Jwk>, Duration), crate::Error> {
        let uri = self.discovery().await?.jwks_uri;
        let resp = self
            .http
            .get(&uri)
            .send()
            .await
            .map_err(|e| unavailable(self.kind, "signing keys", e))?;
        if !resp.status().is_success() {
            return Err(unavailable(self.kind, "signing keys", resp.status()));
        }
        let age = max_age(resp.headers());
        let doc: JwksDoc = resp
            .json()
            .await
            .map_err(|e| unavailable(self.kind, "signing keys", e))?;
        let keys = doc
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA")
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| Some((k.kid?, Jwk { n: k.n?, e: k.e? })))
            .collect();
        Ok((keys, age))
    }

    /// Refreshes `state.keys` from the provider; on failure keeps what it has if not too stale.
    async fn refresh(&self, state: &mut JwksState) -> Result<(), crate::Error> {
        state.fetches += 1;
        let now = Instant::now();
        match self.fetch_jwks().await {
            Ok((keys, age)) => {
                tracing::debug!(
                    provider = self.kind.name(),
                    keys = keys.len(),
                    max_age_secs = age.as_secs(),
                    "fetched the signing keys"
                );
                state.keys = Some(Cached {
                    value: keys,
                    fetched_at: now,
                    fresh_until: now + age,
                });
                Ok(())
            }
            Err(e) => match &state.keys {
                Some(c) if now.duration_since(c.fetched_at) < self.max_stale => {
                    tracing::warn!(
                        provider = self.kind.name(),
                        "using stale signing keys while the JWKS is unreachable"
                    );
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// The RSA key of `kid`.
    pub(crate) async fn decoding_key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        let mut state = self.jwks.lock().await;
        let now = Instant::now();
        if state.keys.as_ref().is_none_or(|c| now >= c.fresh_until) {
            self.refresh(&mut state)
                .await
                .map_err(KeyError::Unavailable)?;
        }
        let lookup =
            |state: &JwksState| state.keys.as_ref().and_then(|c| c.value.get(kid).cloned());
        let jwk = match lookup(&state) {
            Some(k) => k,
            None => {
                if let Some(t) = state.last_unknown_kid_refetch {
                    let since = now.duration_since(t);
                    if since < self.refetch_cooldown {
                        return Err(KeyError::RecentlyFetched {
                            retry_in: self.refetch_cooldown - since,
                        });
                    }
                }
                state.last_unknown_kid_refetch = Some(now);
                tracing::info!(
                    provider = self.kind.name(),
                    kid,
                    "unknown signing key id; refetching the keys"
                );
                self.refresh(&mut state)
                    .await
                    .map_err(KeyError::Unavailable)?;
                lookup(&state).ok_or(KeyError::Unknown)?
            }
        };
        DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(|_| KeyError::Unknown)
    }

    /// Exchanges an authorization code (with the PKCE verifier and the client secret).
    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
        client_id: &str,
        client_secret: &SecretString,
        redirect_uri: &str,
    ) -> Result<Tokens, crate::Error> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
        ];
        let mut request = self.http.post(&discovery.token_endpoint);
        // One method per request (RFC 6749 §2.3): the credentials go either in the header or in
        // the body, never both.
        match discovery.client_auth()? {
            ClientAuth::Basic => {
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    basic_credentials(client_id, client_secret),
                );
            }
            ClientAuth::Post => {
                form.push(("client_id", client_id));
                form.push(("client_secret", client_secret.expose_secret()));
            }
        }
        let resp = request
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(self.kind, "token endpoint", e))?;
        let status = resp.status();
        if status.is_success() {
            let answer: TokenAnswer = resp
                .json()
                .await
                .map_err(|e| unavailable(self.kind, "token endpoint", e))?;
            let id_token = answer.id_token.ok_or_else(|| {
                unavailable(self.kind, "token endpoint", "the answer holds no id_token")
            })?;
            return Ok(Tokens {
                id_token,
                access_token: answer.access_token,
            });
        }
        let err: TokenErrorAnswer = resp.json().await.unwrap_or_default();
        let name = self.kind.name();
        tracing::info!(
            provider = name,
            status = status.as_u16(),
            error = %err.error,
            description = %err.error_description,
            "the provider refused the code exchange"
        );
        Err(match err.error.as_str() {
            "invalid_grant" => crate::Error::bad_request("code_rejected",
                format!(
                    "{name} did not accept the sign-in code ({}); start the sign-in again",
                    err.error_description
                ),
            ),
            "invalid_client" | "unauthorized_client" => crate::Error::upstream("client_rejected",
                format!("{name} does not accept dirsync's OAuth client: an administrator checks client_id and client_secret (PUT /api/v1/auth/oidc)"),
            ),
            "redirect_uri_mismatch" => crate::Error::upstream("redirect_uri_mismatch",
                format!("{name} does not accept dirsync's redirect URI: an administrator registers it for the OAuth client"),
            ),
            _ if status.is_server_error() || status.as_u16() == 429 => {
                unavailable(self.kind, "token endpoint", status)
            }
            other => crate::Error::upstream("code_exchange_failed",
                format!("{name} refused the code exchange ({other}); start the sign-in again"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, Endpoint};
    use reqwest::header::HeaderValue;

    #[test]
    fn max_age_follows_cache_control() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
            max_age(&m)
        };
        assert_eq!(
            h("public, max-age=21155, must-revalidate"),
            Duration::from_secs(21155)
        );
        assert_eq!(h("no-cache"), Duration::ZERO);
        assert_eq!(h("public"), DEFAULT_MAX_AGE);
        assert_eq!(h("max-age=999999999"), MAX_MAX_AGE);
        assert_eq!(max_age(&HeaderMap::new()), DEFAULT_MAX_AGE);
    }

    /// The client secret goes to the discovered token endpoint: with a login URL set, a
    /// discovery document naming an endpoint on another origin is refused, not followed.
    #[tokio::test]
    async fn discovered_endpoints_off_the_login_urls_origin_are_refused() {
        let emu = emulator().await;
        let own = OidcProvider::google(emu.discovery_url()).with_origin_of(&emu.base_url());
        assert!(own.discovery().await.is_ok());
        // The same document, judged against another origin.
        let foreign =
            OidcProvider::google(emu.discovery_url()).with_origin_of("http://127.0.0.2:1");
        let err = foreign.discovery().await.unwrap_err();
        assert!(
            err.to_string().contains("outside the configured login URL"),
            "{err}"
        );
    }

    async fn emulator() -> Emulator {
        Emulator::start(EmulatorOptions::with_directory(Directory::empty(
            "example.com",
        )))
        .await
        .unwrap()
    }

    #[test]
    fn basic_credentials_form_urlencode_id_and_secret() {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let header = basic_credentials("id:1", &SecretString::from("a+b c%d:é/"));
        let raw = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            "id%3A1:a%2Bb+c%25d%3A%C3%A9%2F"
        );
    }

    #[test]
    fn basic_is_preferred_and_the_body_is_the_fallback() {
        let with = |methods: Option<&[&str]>| Discovery {
            issuer: "https://accounts.google.com".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
            token_endpoint_auth_methods_supported: methods
                .map(|m| m.iter().map(|s| s.to_string()).collect()),
        };
        let google = ["client_secret_post", "client_secret_basic"];
        assert_eq!(
            with(Some(&google)).client_auth().unwrap(),
            ClientAuth::Basic
        );
        assert_eq!(with(None).client_auth().unwrap(), ClientAuth::Basic);
        assert_eq!(
            with(Some(&["client_secret_post"])).client_auth().unwrap(),
            ClientAuth::Post
        );
        let none = with(Some(&["private_key_jwt"])).client_auth().unwrap_err();
        assert_eq!(none.code(), "client_auth_unsupported");
    }

    #[tokio::test]
    async fn keys_are_cached_for_max_age_and_unknown_kids_refetch_once_per_cooldown() {
        let emu = emulator().await;
        let c = emu.control();
        let kid = c.signing_key_ids().remove(0);
        let google = OidcProvider::google(emu.discovery_url())
            .with_refetch_cooldown(Duration::from_millis(300));
        for _ in 0..3 {
            assert!(google.decoding_key(&kid).await.is_ok());
        }
        assert_eq!(c.request_count(Endpoint::Jwks), 1, "cached for max-age");
        assert_eq!(c.request_count(Endpoint::Discovery), 1);

        // A burst of unknown kids: one refetch; the others are told it was just done.
        assert!(matches!(
            google.decoding_key("forged-0").await,
            Err(KeyError::Unknown)
        ));
        for i in 1..5 {
            assert!(matches!(
                google.decoding_key(&format!("forged-{i}")).await,
                Err(KeyError::RecentlyFetched { retry_in }) if retry_in <= Duration::from_millis(300)
            ));
        }
        assert_eq!(c.request_count(Endpoint::Jwks), 2);
        // After the cooldown, one more.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(google.decoding_key("forged-x").await.is_err());
        assert!(google.decoding_key("forged-y").await.is_err());
        assert_eq!(c.request_count(Endpoint::Jwks), 3);

        // A rotated key is found with one refetch (the cooldown has passed again).
        tokio::time::sleep(Duration::from_millis(350)).await;
        let new_kid = c.rotate_signing_key();
        assert!(google.decoding_key(&new_kid).await.is_ok());
        assert!(
            google.decoding_key(&kid).await.is_ok(),
            "old key still published"
        );
        assert_eq!(c.request_count(Endpoint::Jwks), 4);
        assert_eq!(google.jwks_fetches().await, 4);
    }

    #[tokio::test]
    async fn stale_keys_are_used_while_google_is_unreachable() {
        let emu = emulator().await;
        let c = emu.control();
        let kid = c.signing_key_ids().remove(0);
        // max-age 0: every lookup asks Google again.
        c.set_jwks_max_age(Duration::ZERO);
        let google = OidcProvider::google(emu.discovery_url());
        assert!(google.decoding_key(&kid).await.is_ok());
        c.fail_requests(Endpoint::Jwks, 503, 2);
        assert!(google.decoding_key(&kid).await.is_ok(), "stale key used");
        assert!(google.decoding_key(&kid).await.is_ok(), "stale key used");
        assert!(google.decoding_key(&kid).await.is_ok(), "fresh again");
        assert_eq!(c.request_count(Endpoint::Jwks), 4);

        // Without anything cached, an outage is an error that says so.
        let cold = OidcProvider::google(emu.discovery_url());
        c.fail_requests(Endpoint::Jwks, 503, 1);
        match cold.decoding_key(&kid).await {
            Err(KeyError::Unavailable(e)) => assert_eq!(e.code(), "google_unavailable"),
            _ => panic!("expected google_unavailable"),
        }
        // Too stale is too stale.
        let strict = OidcProvider::google(emu.discovery_url()).with_max_stale(Duration::ZERO);
        assert!(strict.decoding_key(&kid).await.is_ok());
        c.fail_requests(Endpoint::Jwks, 503, 1);
        assert!(matches!(
            strict.decoding_key(&kid).await,
            Err(KeyError::Unavailable(_))
        ));
    }
}
