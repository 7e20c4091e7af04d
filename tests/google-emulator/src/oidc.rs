//! The OpenID Connect half (google-apis.md §5): discovery, the authorization endpoint (signs in
//! the directory user named by `login_hint`, or lets the browser pick one from a small form), the
//! authorization-code exchange with PKCE and client-secret checks (a second grant type of
//! `POST /token`), the JWKS with key rotation, and userinfo.
//!
//! ID tokens are what Google issues: RS256 with a `kid` from the JWKS, `iss`
//! `https://accounts.google.com`, `aud` = `azp` = the client id, `sub` = the Directory API user
//! `id`, `hd` = the account's domain, `email`, `email_verified`, `nonce`, `at_hash`, names,
//! `iat`, `exp`. For negative tests the next tokens can be tampered with ([`IdTokenTamper`],
//! [`Control::next_id_token_override`]).
//!
//! Not emulated: consent screens, `prompt=none` / `login_required`, refresh tokens, token
//! revocation, the x509 certificate endpoint (`/oauth2/v1/certs`). With a `login_hint` the user
//! is signed in at once whatever `prompt` says, so that tests need no browser.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::{Rng, RngCore};
use rsa::pkcs1v15::SigningKey as RsaSigner;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::errors::oauth_error;
use crate::server::preamble;
use crate::state::{Control, Endpoint, State};

/// The issuer Google writes into ID tokens; the emulator signs as Google does.
pub const ISSUER: &str = "https://accounts.google.com";
/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// Lifetime of ID tokens and access tokens.
const TOKEN_LIFETIME_SECS: i64 = 3600;
/// Google publishes two or three keys at a time.
const MAX_PUBLISHED_KEYS: usize = 3;
/// Google's JWKS answer says `max-age` of several hours.
const DEFAULT_JWKS_MAX_AGE: u64 = 21_155;

/// A registered OAuth client (a "Web application" client of Google Cloud's console).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    /// `client_id`, e.g. `123-abc.apps.googleusercontent.com`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// Authorized redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
}

/// How a client authenticates at the token endpoint (RFC 6749 §2.3.1; OpenID Connect Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The name in `token_endpoint_auth_methods_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
}

/// A change to the next ID token issued, for relying-party negative tests. Queued: each issued
/// token takes the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenTamper {
    /// Header `alg: none` and an empty signature.
    AlgNone,
    /// `alg: HS256`, HMAC-SHA256 keyed with the signing key's public key (PEM): the classic
    /// algorithm-confusion attack.
    Hs256WithPublicKey,
    /// A correct RS256 signature with one byte flipped.
    FlipSignatureByte,
    /// Signed by a key that is not in the JWKS (its `kid` is unknown).
    UnknownKid,
    /// `iss: https://accounts.google.com.evil`.
    WrongIssuer,
    /// `iss: accounts.google.com` (the legacy form Google still documents; valid).
    LegacyIssuer,
    /// `aud` and `azp` of another client.
    ForeignAudience,
    /// `aud: [client id, another client]`.
    ExtraAudience,
    /// `azp` of another client.
    WrongAzp,
    /// `exp` an hour ago (and `iat` two hours ago).
    Expired,
    /// `iat` an hour from now.
    IssuedInFuture,
    /// No `nonce` claim.
    NonceMissing,
    /// A `nonce` other than the one requested.
    NonceWrong,
    /// No `hd` claim (as for a consumer Google account).
    HdMissing,
    /// `hd: other-domain.example`.
    HdOther,
    /// `email_verified: false`.
    EmailNotVerified,
    /// `email_verified: "true"` (a string, as very old tokens had; valid).
    EmailVerifiedString,
}

type Override = Box<dyn FnOnce(&mut Value, &mut Value) + Send>;

pub(crate) struct SigningKey {
    kid: String,
    private: RsaPrivateKey,
    public: RsaPublicKey,
}

impl SigningKey {
    fn generate() -> SigningKey {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
        let public = RsaPublicKey::from(&private);
        let mut raw = [0u8; 20];
        rand::thread_rng().fill_bytes(&mut raw);
        SigningKey {
            kid: hex(&raw),
            private,
            public,
        }
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(self.public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(self.public.e().to_bytes_be()),
        })
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        RsaSigner::<Sha256>::new(self.private.clone())
            .sign(input)
            .to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    user_id: String,
    nonce: Option<String>,
    code_challenge: Option<(String, String)>,
    expires_at: Instant,
}

/// The OIDC half's state, inside [`State`].
pub(crate) struct OidcState {
    /// Published keys, oldest first; the last one signs.
    keys: Vec<SigningKey>,
    /// A key never published, for [`IdTokenTamper::UnknownKid`].
    rogue: Option<SigningKey>,
    keep_old_keys: bool,
    jwks_max_age: u64,
    clients: HashMap<String, OAuthClient>,
    codes: HashMap<String, CodeGrant>,
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, (String, Instant)>,
    tampers: VecDeque<IdTokenTamper>,
    overrides: VecDeque<Override>,
    issued: usize,
    /// What the token endpoint accepts and discovery lists (Google: both, post first).
    client_auth_methods: Vec<ClientAuthMethod>,
    /// The method of each authenticated code exchange, in order.
    client_auth_used: Vec<ClientAuthMethod>,
}

impl Default for OidcState {
    fn default() -> Self {
        OidcState {
            keys: Vec::new(),
            rogue: None,
            keep_old_keys: true,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            clients: HashMap::new(),
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            access_tokens: HashMap::new(),
            tampers: VecDeque::new(),
            overrides: VecDeque::new(),
            issued: 0,
            client_auth_methods: vec![
                ClientAuthMethod::ClientSecretPost,
                ClientAuthMethod::ClientSecretBasic,
            ],
            client_auth_used: Vec::new(),
        }
    }
}

impl OidcState {
    /// The signing key, generated on first use (RSA 2048 takes a moment; emulators that serve
    /// only the Directory API never pay for it).
    fn current_key(&mut self) -> &SigningKey {
        if self.keys.is_empty() {
            self.keys.push(SigningKey::generate());
        }
        self.keys.last().expect("a key")
    }

    fn rotate(&mut self) -> String {
        self.current_key();
        self.keys.push(SigningKey::generate());
        if !self.keep_old_keys {
            let last = self.keys.len() - 1;
            self.keys.drain(..last);
        }
        while self.keys.len() > MAX_PUBLISHED_KEYS {
            self.keys.remove(0);
        }
        self.keys.last().expect("a key").kid.clone()
    }
}

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery),
    )
    .route("/o/oauth2/v2/auth", web::get().to(authorize))
    // Older clients use the v1 path.
    .route("/o/oauth2/auth", web::get().to(authorize))
    .route("/oauth2/v3/certs", web::get().to(jwks))
    .route("/v1/userinfo", web::get().to(userinfo))
    .route("/oauth2/v3/userinfo", web::get().to(userinfo));
}

fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Google's error page for a broken authorization request ("Error 400: redirect_uri_mismatch").
fn error_page(status: u16, error: &str, description: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Error {status}: {e}</title></head>\
         <body><h1>Access blocked: authorization error</h1><p id=\"error\">Error {status}: {e}</p>\
         <p>{d}</p></body></html>",
        e = html_escape(error),
        d = html_escape(description)
    );
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .content_type("text/html; charset=utf-8")
    .body(body)
}

async fn discovery(state: web::Data<State>) -> HttpResponse {
    if let Some(r) = preamble(&state, Endpoint::Discovery).await {
        return r;
    }
    let base = &state.base_url;
    let auth_methods: Vec<&str> = state
        .oidc
        .lock()
        .expect("oidc lock")
        .client_auth_methods
        .iter()
        .map(|m| m.as_str())
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/json; charset=utf-8")
        .body(
            json!({
                "issuer": ISSUER,
                "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
                "device_authorization_endpoint": format!("{base}/device/code"),
                "token_endpoint": format!("{base}/token"),
                "userinfo_endpoint": format!("{base}/v1/userinfo"),
                "revocation_endpoint": format!("{base}/revoke"),
                "jwks_uri": format!("{base}/oauth2/v3/certs"),
                "response_types_supported": ["code", "token", "id_token", "code token",
                    "code id_token", "token id_token", "code token id_token", "none"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": auth_methods,
                "claims_supported": ["aud", "email", "email_verified", "exp", "family_name",
                    "given_name", "iat", "iss", "name", "picture", "sub"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer"]
            })
            .to_string(),
        )
}

async fn jwks(state: web::Data<State>) -> HttpResponse {
    if let Some(r) = preamble(&state, Endpoint::Jwks).await {
        return r;
    }
    let (keys, max_age) = {
        let mut o = state.oidc.lock().expect("oidc lock");
        o.current_key();
        (
            o.keys.iter().rev().map(SigningKey::jwk).collect::<Vec<_>>(),
            o.jwks_max_age,
        )
    };
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, must-revalidate, no-transform"),
        ))
        .content_type("application/json; charset=UTF-8")
        .body(json!({ "keys": keys }).to_string())
}

/// The query of an authorization request.
type Params = Vec<(String, String)>;

fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(400, "invalid_request", "Invalid redirect_uri."),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .finish()
}

async fn authorize(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = preamble(&state, Endpoint::Authorize).await {
        return r;
    }
    let params: Params = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let Some(client_id) = param(&params, "client_id") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: client_id",
        );
    };
    let client = state
        .oidc
        .lock()
        .expect("oidc lock")
        .clients
        .get(client_id)
        .cloned();
    let Some(client) = client else {
        return error_page(401, "invalid_client", "The OAuth client was not found.");
    };
    let Some(redirect_uri) = param(&params, "redirect_uri") else {
        return error_page(
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(
            400,
            "redirect_uri_mismatch",
            &format!(
                "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. \
                 If you're the app developer, register the redirect URI in the Google Cloud Console. \
                 Request details: redirect_uri={redirect_uri}"
            ),
        );
    }
    let state_param = param(&params, "state").unwrap_or_default().to_string();
    let back_error = |error: &str| {
        let mut pairs = vec![("error", error)];
        if !state_param.is_empty() {
            pairs.push(("state", state_param.as_str()));
        }
        redirect_with(redirect_uri, &pairs)
    };
    if param(&params, "response_type") != Some("code") {
        return error_page(
            400,
            "unsupported_response_type",
            "The emulator serves the authorization code flow only (response_type=code).",
        );
    }
    let scopes: Vec<&str> = param(&params, "scope")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if !scopes.contains(&"openid") {
        return error_page(
            400,
            "invalid_scope",
            "Some requested scopes were invalid. {invalid=[], missing=[openid]}",
        );
    }
    let code_challenge = match (
        param(&params, "code_challenge"),
        param(&params, "code_challenge_method"),
    ) {
        (None, None) => None,
        (Some(c), None) => Some((c.to_string(), "plain".to_string())),
        (Some(c), Some(m @ ("S256" | "plain"))) => Some((c.to_string(), m.to_string())),
        (None, Some(_)) => {
            return error_page(
                400,
                "invalid_request",
                "Missing required parameter: code_challenge",
            )
        }
        (Some(_), Some(m)) => {
            return error_page(
                400,
                "invalid_request",
                &format!("Invalid code_challenge_method: {m}"),
            )
        }
    };
    if param(&params, "deny").is_some() {
        return back_error("access_denied");
    }
    let (user, notice) = {
        let dir = state.directory.read().expect("directory lock");
        match param(&params, "login_hint") {
            Some(hint) => match dir.user(hint) {
                Some(u) if u.suspended || u.archived || u.deletion_time.is_some() => {
                    return error_page(
                        403,
                        "account_disabled",
                        &format!("Account disabled: {} cannot sign in.", u.primary_email),
                    );
                }
                Some(u) => (Some(u.clone()), None),
                None => (None, Some(format!("No account {hint}; choose one."))),
            },
            None => (None, None),
        }
    };
    let Some(user) = user else {
        return chooser(&state, &params, client_id, notice.as_deref());
    };
    let code = format!("4/0A{}", random_token(48));
    {
        let mut o = state.oidc.lock().expect("oidc lock");
        let now = Instant::now();
        o.codes.retain(|_, g| g.expires_at > now);
        o.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                user_id: user.id.clone(),
                nonce: param(&params, "nonce").map(str::to_string),
                code_challenge,
                expires_at: now + CODE_LIFETIME,
            },
        );
    }
    let domain = state
        .directory
        .read()
        .expect("directory lock")
        .domain()
        .to_string();
    let granted = "email profile openid https://www.googleapis.com/auth/userinfo.profile https://www.googleapis.com/auth/userinfo.email";
    let mut pairs = Vec::new();
    if !state_param.is_empty() {
        pairs.push(("state", state_param.as_str()));
    }
    pairs.extend([
        ("code", code.as_str()),
        ("scope", granted),
        ("authuser", "0"),
        ("hd", domain.as_str()),
        ("prompt", "consent"),
    ]);
    redirect_with(redirect_uri, &pairs)
}

/// The account chooser: one link per active user, each the same request with `login_hint` set.
fn chooser(state: &State, params: &Params, client_id: &str, notice: Option<&str>) -> HttpResponse {
    const MAX_LISTED: usize = 500;
    let dir = state.directory.read().expect("directory lock");
    let mut users: Vec<_> = dir
        .users()
        .filter(|u| !u.suspended && !u.archived && u.deletion_time.is_none())
        .collect();
    users.sort_by(|a, b| a.primary_email.cmp(&b.primary_email));
    let link = |extra: (&str, &str)| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params
            .iter()
            .filter(|(k, _)| k != "login_hint" && k != "deny")
        {
            s.append_pair(k, v);
        }
        s.append_pair(extra.0, extra.1);
        format!("/o/oauth2/v2/auth?{}", s.finish())
    };
    let mut items = String::new();
    for u in users.iter().take(MAX_LISTED) {
        items.push_str(&format!(
            "<li><a class=\"account\" data-email=\"{e}\" href=\"{href}\">{name} &lt;{e}&gt;</a></li>\n",
            e = html_escape(&u.primary_email),
            name = html_escape(&u.full_name()),
            href = html_escape(&link(("login_hint", &u.primary_email))),
        ));
    }
    let more = if users.len() > MAX_LISTED {
        format!(
            "<p>{} more accounts: pass login_hint.</p>",
            users.len() - MAX_LISTED
        )
    } else {
        String::new()
    };
    let notice = notice
        .map(|n| format!("<p id=\"notice\">{}</p>", html_escape(n)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in - Google Accounts</title></head>\
         <body><h1>Choose an account</h1><p>to continue to {client}</p>{notice}\n<ul id=\"accounts\">\n{items}</ul>{more}\
         <p><a id=\"cancel\" href=\"{cancel}\">Cancel</a></p></body></html>",
        client = html_escape(client_id),
        cancel = html_escape(&link(("deny", "1"))),
    );
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// HMAC-SHA256 (RFC 2104), for the algorithm-confusion tampering only.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Builds, tampers with (if asked) and signs an ID token.
fn issue_id_token(o: &mut OidcState, mut claims: Value) -> String {
    let tamper = o.tampers.pop_front();
    let over = o.overrides.pop_front();
    o.issued += 1;
    let now = chrono::Utc::now().timestamp();
    let client = claims["aud"].as_str().unwrap_or_default().to_string();
    let c = claims.as_object_mut().expect("claims object");
    match tamper {
        Some(IdTokenTamper::WrongIssuer) => {
            c.insert("iss".into(), json!("https://accounts.google.com.evil"));
        }
        Some(IdTokenTamper::LegacyIssuer) => {
            c.insert("iss".into(), json!("accounts.google.com"));
        }
        Some(IdTokenTamper::ForeignAudience) => {
            let other = "999999999999-foreign.apps.googleusercontent.com";
            c.insert("aud".into(), json!(other));
            c.insert("azp".into(), json!(other));
        }
        Some(IdTokenTamper::ExtraAudience) => {
            c.insert(
                "aud".into(),
                json!([client, "999999999999-other.apps.googleusercontent.com"]),
            );
        }
        Some(IdTokenTamper::WrongAzp) => {
            c.insert(
                "azp".into(),
                json!("999999999999-other.apps.googleusercontent.com"),
            );
        }
        Some(IdTokenTamper::Expired) => {
            c.insert("iat".into(), json!(now - 2 * TOKEN_LIFETIME_SECS));
            c.insert("exp".into(), json!(now - TOKEN_LIFETIME_SECS));
        }
        Some(IdTokenTamper::IssuedInFuture) => {
            c.insert("iat".into(), json!(now + TOKEN_LIFETIME_SECS));
            c.insert("exp".into(), json!(now + 2 * TOKEN_LIFETIME_SECS));
        }
        Some(IdTokenTamper::NonceMissing) => {
            c.remove("nonce");
        }
        Some(IdTokenTamper::NonceWrong) => {
            c.insert("nonce".into(), json!(random_token(16)));
        }
        Some(IdTokenTamper::HdMissing) => {
            c.remove("hd");
        }
        Some(IdTokenTamper::HdOther) => {
            c.insert("hd".into(), json!("other-domain.example"));
        }
        Some(IdTokenTamper::EmailNotVerified) => {
            c.insert("email_verified".into(), json!(false));
        }
        Some(IdTokenTamper::EmailVerifiedString) => {
            c.insert("email_verified".into(), json!("true"));
        }
        _ => {}
    }
    let kid = if tamper == Some(IdTokenTamper::UnknownKid) {
        o.rogue.get_or_insert_with(SigningKey::generate).kid.clone()
    } else {
        o.current_key().kid.clone()
    };
    let mut header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
    match tamper {
        Some(IdTokenTamper::AlgNone) => {
            header = json!({"alg": "none", "typ": "JWT"});
        }
        Some(IdTokenTamper::Hs256WithPublicKey) => header["alg"] = json!("HS256"),
        _ => {}
    }
    if let Some(f) = over {
        f(&mut claims, &mut header);
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match tamper {
        Some(IdTokenTamper::AlgNone) => Vec::new(),
        Some(IdTokenTamper::Hs256WithPublicKey) => {
            let pem = o
                .current_key()
                .public
                .to_public_key_pem(LineEnding::LF)
                .expect("public key PEM");
            hmac_sha256(pem.as_bytes(), input.as_bytes())
        }
        Some(IdTokenTamper::UnknownKid) => {
            o.rogue.as_ref().expect("rogue key").sign(input.as_bytes())
        }
        Some(IdTokenTamper::FlipSignatureByte) => {
            let mut s = o.current_key().sign(input.as_bytes());
            let mid = s.len() / 2;
            s[mid] ^= 0x01;
            s
        }
        _ => o.current_key().sign(input.as_bytes()),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A client's credentials as presented.
struct ClientCredentials {
    client_id: Option<String>,
    secret: Option<String>,
    /// How they came; `None` when no secret came at all.
    method: Option<ClientAuthMethod>,
}

/// The answer to a request that uses both methods at once, which RFC 6749 §2.3 forbids.
const TWO_METHODS: &str = "The client must not use more than one authentication method.";

/// Reads the client's credentials; [`TWO_METHODS`] when the request uses both methods.
fn client_credentials(
    req: &HttpRequest,
    form: &[(String, String)],
) -> Result<ClientCredentials, &'static str> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    // client_secret_basic: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    if let Some(basic) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
    {
        if let Some((id, secret)) = basic.split_once(':') {
            if get("client_secret").is_some() {
                return Err(TWO_METHODS);
            }
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            return Ok(ClientCredentials {
                client_id: Some(dec(id)),
                secret: Some(dec(secret)),
                method: Some(ClientAuthMethod::ClientSecretBasic),
            });
        }
    }
    let secret = get("client_secret");
    Ok(ClientCredentials {
        client_id: get("client_id"),
        method: secret.as_ref().map(|_| ClientAuthMethod::ClientSecretPost),
        secret,
    })
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// `POST /token` with `grant_type=authorization_code` (the token endpoint counted and faulted
/// it already).
pub(crate) fn code_exchange(
    state: &State,
    req: &HttpRequest,
    form: &[(String, String)],
) -> HttpResponse {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let ClientCredentials {
        client_id,
        secret,
        method,
    } = match client_credentials(req, form) {
        Ok(c) => c,
        Err(description) => return oauth_error(400, "invalid_request", description),
    };
    let Some(client_id) = client_id else {
        return oauth_error(
            400,
            "invalid_request",
            "Could not determine client ID from request.",
        );
    };
    let mut o = state.oidc.lock().expect("oidc lock");
    let Some(client) = o.clients.get(&client_id).cloned() else {
        return oauth_error(401, "invalid_client", "The OAuth client was not found.");
    };
    if secret.as_deref() != Some(client.client_secret.as_str()) {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    // A method the provider does not list is refused, as a provider configured so would.
    match method {
        Some(m) if o.client_auth_methods.contains(&m) => o.client_auth_used.push(m),
        _ => {
            return oauth_error(
                401,
                "invalid_client",
                "The client authentication method is not supported.",
            )
        }
    }
    let Some(code) = get("code") else {
        return oauth_error(400, "invalid_request", "Missing required parameter: code");
    };
    if o.used_codes.contains(code) {
        return oauth_error(400, "invalid_grant", "Bad Request");
    }
    // A code is single use, whether its exchange succeeds or not.
    let Some(grant) = o.codes.remove(code) else {
        return oauth_error(400, "invalid_grant", "Malformed auth code.");
    };
    o.used_codes.insert(code.to_string());
    if grant.expires_at <= Instant::now() || grant.client_id != client_id {
        return oauth_error(400, "invalid_grant", "Bad Request");
    }
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
    }
    if let Some((challenge, method)) = &grant.code_challenge {
        let Some(verifier) = get("code_verifier") else {
            return oauth_error(400, "invalid_grant", "Missing code verifier.");
        };
        let computed = if method == "S256" {
            s256(verifier)
        } else {
            verifier.to_string()
        };
        if !valid_verifier(verifier) || &computed != challenge {
            return oauth_error(400, "invalid_grant", "Invalid code verifier.");
        }
    }
    let (user, domain) = {
        let dir = state.directory.read().expect("directory lock");
        (dir.user(&grant.user_id).cloned(), dir.domain().to_string())
    };
    let Some(user) = user.filter(|u| !u.suspended && u.deletion_time.is_none()) else {
        return oauth_error(400, "invalid_grant", "Account has been deleted");
    };
    let access_token = format!("ya29.a0{}", random_token(96));
    let now = chrono::Utc::now().timestamp();
    let hash = Sha256::digest(access_token.as_bytes());
    let mut claims = json!({
        "iss": ISSUER,
        "azp": client_id,
        "aud": client_id,
        "sub": user.id,
        "hd": domain,
        "email": user.primary_email,
        "email_verified": true,
        "at_hash": URL_SAFE_NO_PAD.encode(&hash[..16]),
        "name": user.full_name(),
        "given_name": user.given_name,
        "family_name": user.family_name,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECS,
    });
    if let Some(n) = &grant.nonce {
        claims["nonce"] = json!(n);
    }
    let id_token = issue_id_token(&mut o, claims);
    let lifetime = Duration::from_secs(TOKEN_LIFETIME_SECS as u64);
    o.access_tokens.insert(
        access_token.clone(),
        (user.id.clone(), Instant::now() + lifetime),
    );
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            "no-cache, no-store, max-age=0, must-revalidate",
        ))
        .content_type("application/json; charset=utf-8")
        .body(
            json!({
                "access_token": access_token,
                "expires_in": TOKEN_LIFETIME_SECS - 1,
                "scope": "https://www.googleapis.com/auth/userinfo.email openid https://www.googleapis.com/auth/userinfo.profile",
                "token_type": "Bearer",
                "id_token": id_token,
            })
            .to_string(),
        )
}

async fn userinfo(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = preamble(&state, Endpoint::Userinfo).await {
        return r;
    }
    let unauthorized = || {
        HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ))
            .content_type("application/json; charset=utf-8")
            .body(
                json!({"error": "invalid_request",
                       "error_description": "Invalid Credentials"})
                .to_string(),
            )
    };
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized();
    };
    let user_id = {
        let o = state.oidc.lock().expect("oidc lock");
        match o.access_tokens.get(token.trim()) {
            Some((id, exp)) if *exp > Instant::now() => id.clone(),
            _ => return unauthorized(),
        }
    };
    let dir = state.directory.read().expect("directory lock");
    let Some(user) = dir.user(&user_id) else {
        return unauthorized();
    };
    HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(
            json!({
                "sub": user.id,
                "name": user.full_name(),
                "given_name": user.given_name,
                "family_name": user.family_name,
                "email": user.primary_email,
                "email_verified": true,
                "hd": dir.domain(),
            })
            .to_string(),
        )
}

impl Control {
    /// Registers an OAuth client (a "Web application" client) with its secret and authorized
    /// redirect URIs (matched exactly). Replaces a client with the same id.
    pub fn add_oauth_client(&self, client_id: &str, client_secret: &str, redirect_uris: &[&str]) {
        self.state.oidc.lock().expect("oidc lock").clients.insert(
            client_id.to_string(),
            OAuthClient {
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    /// The registered OAuth clients.
    pub fn oauth_clients(&self) -> Vec<OAuthClient> {
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .clients
            .values()
            .cloned()
            .collect()
    }

    /// Starts signing with a new key (RSA 2048, generated now). The old keys stay in the JWKS
    /// (at most three are published, as Google does) unless
    /// [`Control::set_keep_old_signing_keys`] said otherwise. Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> String {
        self.state.oidc.lock().expect("oidc lock").rotate()
    }

    /// Whether keys replaced by a rotation stay published (default true).
    pub fn set_keep_old_signing_keys(&self, keep: bool) {
        self.state.oidc.lock().expect("oidc lock").keep_old_keys = keep;
    }

    /// Unpublishes every key but the one signing now.
    pub fn retire_old_signing_keys(&self) {
        let mut o = self.state.oidc.lock().expect("oidc lock");
        let n = o.keys.len();
        if n > 1 {
            o.keys.drain(..n - 1);
        }
    }

    /// The `kid`s in the JWKS, the signing one last (generates the first key if needed).
    pub fn signing_key_ids(&self) -> Vec<String> {
        let mut o = self.state.oidc.lock().expect("oidc lock");
        o.current_key();
        o.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// The `max-age` of the JWKS answer (default 21155 s, as Google's).
    pub fn set_jwks_max_age(&self, max_age: Duration) {
        self.state.oidc.lock().expect("oidc lock").jwks_max_age = max_age.as_secs();
    }

    /// Tampers with the next ID token issued (queued: one tampering per token).
    pub fn tamper_next_id_token(&self, tamper: IdTokenTamper) {
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .tampers
            .push_back(tamper);
    }

    /// Lets `f` edit the claims and the header of the next ID token before it is signed (with
    /// the current key; the header's `kid`/`alg` are what `f` leaves).
    pub fn next_id_token_override(&self, f: impl FnOnce(&mut Value, &mut Value) + Send + 'static) {
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .overrides
            .push_back(Box::new(f));
    }

    /// The client authentication methods the token endpoint accepts for code exchanges, and
    /// discovery lists, in this order (default: both, `client_secret_post` first, as Google's
    /// discovery document lists them).
    pub fn set_token_endpoint_auth_methods(&self, methods: &[ClientAuthMethod]) {
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .client_auth_methods = methods.to_vec();
    }

    /// How each code exchange that passed client authentication authenticated, in order.
    pub fn client_auth_methods_used(&self) -> Vec<ClientAuthMethod> {
        self.state
            .oidc
            .lock()
            .expect("oidc lock")
            .client_auth_used
            .clone()
    }

    /// ID tokens issued so far.
    pub fn id_tokens_issued(&self) -> usize {
        self.state.oidc.lock().expect("oidc lock").issued
    }

    /// `{base_url}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.base_url)
    }
}

/// A random client id in Google's format.
pub fn random_client_id() -> String {
    let mut rng = rand::thread_rng();
    let n: u64 = rng.gen_range(100_000_000_000..999_999_999_999);
    format!(
        "{n}-{}.apps.googleusercontent.com",
        random_token(16).to_lowercase().replace(['-', '_'], "x")
    )
}
