//! `POST /token`: the OAuth 2.0 token endpoint.
//!
//! Two grants: the JWT bearer grant (RFC 7523) that service accounts use with domain-wide
//! delegation, and the OpenID Connect authorization-code exchange (in [`crate::oidc`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde_json::json;

use crate::accounts::Jwt;
use crate::errors::{oauth_default, oauth_error, SHORT_LIVED, UNAUTHORIZED_CLIENT};
use crate::server::preamble;
use crate::state::{Endpoint, State, TokenInfo};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Audiences accepted besides the emulator's own token URL.
const GOOGLE_TOKEN_URLS: [&str; 3] = [
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    // Older libraries.
    "https://www.googleapis.com/oauth2/v4/token",
];
/// Clock skew tolerated on `iat` / `exp`.
const SKEW: i64 = 300;

pub(crate) async fn token(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(resp) = preamble(&state, Endpoint::Token).await {
        return resp;
    }
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match get("grant_type") {
        Some(JWT_BEARER) => jwt_bearer(&state, get("assertion")),
        Some("authorization_code") => crate::oidc::code_exchange(&state, &req, &form),
        Some(other) => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
        None => oauth_error(400, "unsupported_grant_type", "Invalid grant_type: "),
    }
}

fn jwt_bearer(state: &State, assertion: Option<&str>) -> HttpResponse {
    let Some(assertion) = assertion.filter(|a| !a.is_empty()) else {
        return oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let Some(jwt) = Jwt::decode(assertion) else {
        return oauth_error(400, "invalid_grant", "Invalid JWT: could not be parsed.");
    };
    let kid = jwt.header.get("kid").and_then(|v| v.as_str());
    let iss = jwt.claim_str("iss");
    let Some(account) = state.account_by(kid, iss) else {
        return oauth_error(400, "invalid_grant", "Invalid grant: account not found");
    };
    // A `kid` naming another key of the account (or a deleted one) fails like a bad signature.
    if kid.is_some_and(|k| k != account.private_key_id) || !jwt.verify_rs256(&account.public_key) {
        return oauth_error(400, "invalid_grant", "Invalid JWT Signature.");
    }
    let aud_ok = jwt
        .claim_str("aud")
        .is_some_and(|aud| aud == state.token_uri || GOOGLE_TOKEN_URLS.contains(&aud));
    if !aud_ok {
        return oauth_error(400, "invalid_grant", "Invalid JWT: Failed audience check.");
    }
    let now = chrono::Utc::now().timestamp();
    let (Some(iat), Some(exp)) = (jwt.claim_i64("iat"), jwt.claim_i64("exp")) else {
        return oauth_error(400, "invalid_grant", SHORT_LIVED);
    };
    if exp < iat || exp - iat > 3600 || iat > now + SKEW || exp < now - SKEW {
        return oauth_error(400, "invalid_grant", SHORT_LIVED);
    }
    let scopes: HashSet<String> = jwt
        .claim_str("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return oauth_error(
            400,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let subject = jwt
        .claim_str("sub")
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    if let Some(sub) = &subject {
        // Domain-wide delegation: every requested scope must be granted to the client id.
        let granted = state
            .delegation
            .read()
            .expect("delegation lock")
            .get(&account.client_id)
            .is_some_and(|g| scopes.is_subset(g));
        if !granted {
            return oauth_error(401, "unauthorized_client", UNAUTHORIZED_CLIENT);
        }
        if state
            .directory
            .read()
            .expect("directory lock")
            .user(sub)
            .is_none()
        {
            return oauth_error(400, "invalid_grant", "Invalid email or User ID");
        }
    }
    let mut raw = [0u8; 96];
    rand::thread_rng().fill_bytes(&mut raw);
    let access_token = format!("ya29.c.{}", URL_SAFE_NO_PAD.encode(raw));
    let lifetime = *state.token_lifetime.read().expect("lifetime lock");
    state.tokens.lock().expect("tokens lock").insert(
        access_token.clone(),
        TokenInfo {
            subject,
            scopes,
            expires_at: Instant::now() + lifetime,
        },
    );
    HttpResponse::Ok()
        .insert_header((
            "Cache-Control",
            "no-cache, no-store, max-age=0, must-revalidate",
        ))
        .content_type("application/json; charset=utf-8")
        .body(
            json!({
                "access_token": access_token,
                "expires_in": lifetime.saturating_sub(Duration::from_secs(1)).as_secs(),
                "token_type": "Bearer"
            })
            .to_string(),
        )
}

/// Fault-injected failure of the token endpoint.
pub(crate) fn injected(
    status: u16,
    error: Option<&str>,
    description: Option<&str>,
) -> HttpResponse {
    let (e, d) = oauth_default(status);
    oauth_error(status, error.unwrap_or(e), description.unwrap_or(d))
}
