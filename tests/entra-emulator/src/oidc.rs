//! Sign in with Microsoft (reference §5): the authorization endpoint, the authorization-code
//! grant (PKCE, nonce, single-use codes), v2.0 ID tokens signed RS256 as
//! `https://login.microsoftonline.com/{tid}/v2.0`, and the JWKS with key rotation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use anyhow::Context;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::traits::PublicKeyParts;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};

use crate::apps::{generate_certificate, App};
use crate::server::preamble;
use crate::state::{Endpoint, State};
use crate::token::{random_b64, resolve_tenant, sts, StsError};

/// How many signing keys the JWKS keeps after a rotation (the newest signs).
const KEPT_KEYS: usize = 3;
/// Codes live about 10 minutes at Microsoft.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// A signing key: its certificate (for `x5c` and the `kid`, which is the certificate's `x5t`
/// as at Microsoft) and its RSA key.
pub(crate) struct SigningKey {
    pub kid: String,
    cert_der: Vec<u8>,
    n: String,
    e: String,
    pair: ring::signature::RsaKeyPair,
}

impl SigningKey {
    /// A new RSA 2048 key (slow in debug builds: call off the async runtime).
    pub fn generate() -> anyhow::Result<SigningKey> {
        let (cert, key_pem) = generate_certificate("entra-emulator token signing")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .context("while reading the signing key")?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| anyhow::anyhow!("while loading the signing key: {e}"))?;
        let public = <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&key_pem)
            .context("while reading the signing key")?
            .to_public_key();
        Ok(SigningKey {
            kid: cert.x5t.clone(),
            cert_der: cert.der,
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            pair,
        })
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// An issued authorization code.
struct Code {
    client_id: String,
    redirect_uri: String,
    user_id: String,
    scope: String,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    expires_at: Instant,
    redeemed: bool,
}

/// Signing keys (newest last), redirect URIs per client, codes.
#[derive(Default)]
pub(crate) struct OidcState {
    pub keys: Vec<SigningKey>,
    pub redirect_uris: HashMap<String, Vec<String>>,
    codes: HashMap<String, Code>,
    /// Fault injection: header and claim changes for the next ID token issued.
    pub tamper: Option<(Value, Value)>,
}

/// Sets (or, for `null`, removes) each member of `patch` in `target`.
fn apply_patch(target: &mut Value, patch: &Value) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/{tenant}/oauth2/v2.0/authorize", web::get().to(authorize))
        .route("/{tenant}/discovery/v2.0/keys", web::get().to(jwks))
        .route("/discovery/v2.0/keys", web::get().to(jwks_common));
}

fn issuer(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

fn error_page(e: StsError) -> HttpResponse {
    // Microsoft shows such errors on its own page instead of redirecting.
    HttpResponse::build(actix_web::http::StatusCode::BAD_REQUEST)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<html><body><h1>Sign in</h1><p id=\"error\" data-error=\"{}\" data-code=\"{}\">AADSTS{}: {}</p></body></html>",
            e.error, e.code, e.code, html_escape(&e.description)
        ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Answers the client at its redirect URI (`query`, or `form_post`).
fn back_to_client(redirect_uri: &str, mode: &str, params: &[(&str, &str)]) -> HttpResponse {
    if mode == "form_post" {
        let inputs: String = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
                    html_escape(k),
                    html_escape(v)
                )
            })
            .collect();
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(format!(
                "<html><body onload=\"document.forms[0].submit()\"><form method=\"POST\" action=\"{}\">{inputs}</form></body></html>",
                html_escape(redirect_uri)
            ));
    }
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return HttpResponse::BadRequest().body("bad redirect_uri"),
    };
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .finish()
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: signs in the user named by `login_hint` at once (UPN
/// or mail); without one, lists the enabled users as links to choose from.
async fn authorize(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::Authorize).await {
        return r;
    }
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let tenant = path.into_inner();
    // `common` and `organizations` sign users of this, the only tenant, in.
    if let Err(Some(e)) = resolve_tenant(&state, &tenant) {
        return error_page(e);
    }
    let Some(client_id) = get("client_id") else {
        return error_page(sts(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    let Some(app) = state.app(client_id) else {
        return error_page(sts(
            400,
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        ));
    };
    let registered = state
        .oidc
        .lock()
        .expect("oidc lock")
        .redirect_uris
        .get(&app.client_id)
        .cloned()
        .unwrap_or_default();
    let redirect_uri = get("redirect_uri").unwrap_or_default().to_string();
    if !registered.contains(&redirect_uri) {
        return error_page(sts(400, "invalid_request", 50011, format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'.", app.client_id)));
    }
    let mode = get("response_mode").unwrap_or("query").to_string();
    let st = get("state").unwrap_or_default().to_string();
    let fail = |error: &str, description: &str| {
        back_to_client(
            &redirect_uri,
            &mode,
            &[
                ("error", error),
                ("error_description", description),
                ("state", &st),
            ],
        )
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code' here.",
        );
    }
    let method = get("code_challenge_method").unwrap_or("plain");
    if get("code_challenge").is_some() && !matches!(method, "S256" | "plain") {
        return fail(
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method.",
        );
    }
    let Some(hint) = get("login_hint") else {
        return chooser(&state, &req);
    };
    let user = {
        let d = state.directory.read().expect("directory lock");
        d.user(hint)
            .or_else(|| {
                d.users().find(|u| {
                    u.mail
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case(hint))
                })
            })
            .cloned()
    };
    let Some(user) = user else {
        return fail(
            "invalid_request",
            "AADSTS50034: The user account does not exist in this directory.",
        );
    };
    if !user.account_enabled {
        return fail(
            "access_denied",
            "AADSTS50057: The user account is disabled.",
        );
    }
    let code = random_b64(48);
    state.oidc.lock().expect("oidc lock").codes.insert(
        code.clone(),
        Code {
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            user_id: user.id.clone(),
            scope: get("scope").unwrap_or("openid").to_string(),
            nonce: get("nonce").map(str::to_string),
            challenge: get("code_challenge").map(|c| (c.to_string(), method.to_string())),
            expires_at: Instant::now() + CODE_LIFETIME,
            redeemed: false,
        },
    );
    back_to_client(
        &redirect_uri,
        &mode,
        &[
            ("code", &code),
            ("state", &st),
            ("session_state", &uuid::Uuid::new_v4().to_string()),
        ],
    )
}

/// Without a `login_hint`: the enabled users, each a link that signs them in.
fn chooser(state: &State, req: &HttpRequest) -> HttpResponse {
    let d = state.directory.read().expect("directory lock");
    let here = format!("{}{}?{}", state.base_url, req.path(), req.query_string());
    let links: String = d
        .users()
        .filter(|u| u.account_enabled)
        .map(|u| {
            let mut url = url::Url::parse(&here).expect("the emulator's own URL");
            url.query_pairs_mut()
                .append_pair("login_hint", &u.user_principal_name);
            format!(
                "<li><a class=\"account\" data-upn=\"{}\" href=\"{}\">{}</a></li>",
                html_escape(&u.user_principal_name),
                html_escape(url.as_str()),
                html_escape(u.display_name.as_deref().unwrap_or(&u.user_principal_name))
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<html><body><h1>Pick an account</h1><ul>{links}</ul></body></html>"
        ))
}

/// The authorization-code grant, after the client authenticated (module `token`).
pub(crate) fn redeem(
    state: &State,
    app: &App,
    tid: &str,
    form: &[(String, String)],
) -> Result<Value, StsError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let grant = |code: u32, text: &str| sts(400, "invalid_grant", code, text.to_string());
    let code = field("code").ok_or_else(|| {
        sts(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        )
    })?;
    let mut oidc = state.oidc.lock().expect("oidc lock");
    let Some(c) = oidc.codes.get_mut(code) else {
        return Err(grant(
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ));
    };
    if c.redeemed {
        return Err(grant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."));
    }
    if c.expires_at <= Instant::now() {
        return Err(grant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."));
    }
    if c.client_id != app.client_id {
        return Err(grant(70000, "The provided value for the 'code' parameter is not valid. The code was issued to another client."));
    }
    if field("redirect_uri") != Some(c.redirect_uri.as_str()) {
        return Err(sts(400, "invalid_client", 500112, "The reply address does not match the reply address provided when requesting the authorization code."));
    }
    if let Some((challenge, method)) = &c.challenge {
        let Some(verifier) = field("code_verifier") else {
            return Err(grant(50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE."));
        };
        let computed = if method == "S256" {
            URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA256,
                verifier.as_bytes(),
            ))
        } else {
            verifier.to_string()
        };
        if computed != *challenge {
            return Err(grant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request."));
        }
    }
    // Single use, even when the answer below fails.
    c.redeemed = true;
    let (user_id, scope, nonce) = (c.user_id.clone(), c.scope.clone(), c.nonce.clone());
    let d = state.directory.read().expect("directory lock");
    let user = d
        .user(&user_id)
        .ok_or_else(|| grant(50034, "The user account does not exist in this directory."))?
        .clone();
    drop(d);
    let key = oidc
        .keys
        .last()
        .ok_or_else(|| sts(500, "server_error", 90033, "No signing key."))?;
    let now = chrono::Utc::now().timestamp();
    let lifetime = state
        .token_lifetime_secs
        .load(std::sync::atomic::Ordering::Relaxed);
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scopes.iter().filter(|s| !matches!(**s, "openid" | "offline_access")).copied().collect::<Vec<_>>().join(" "),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        // A user's Graph token: the emulator's Graph accepts only app tokens, so this one is
        // opaque and opens nothing.
        "access_token": random_b64(64),
    });
    if scopes.contains(&"openid") {
        let mut claims = json!({
            "ver": "2.0",
            "iss": issuer(tid),
            "sub": pairwise_sub(tid, &app.client_id, &user.id),
            "aud": app.client_id,
            "exp": now + 3600, "iat": now, "nbf": now,
            "tid": tid,
            "aio": random_b64(24),
            "uti": random_b64(16),
            "rh": "0.emulator.",
        });
        if scopes.contains(&"profile") {
            claims["oid"] = json!(user.id);
            claims["name"] = json!(user.display_name);
            claims["preferred_username"] = json!(user.user_principal_name);
        }
        if scopes.contains(&"email") {
            if let Some(m) = &user.mail {
                claims["email"] = json!(m);
            }
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let mut header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
        if let Some((h, c)) = oidc.tamper.take() {
            apply_patch(&mut header, &h);
            apply_patch(&mut claims, &c);
        }
        let key = oidc
            .keys
            .last()
            .ok_or_else(|| sts(500, "server_error", 90033, "No signing key."))?;
        body["id_token"] = json!(key.sign(&header, &claims));
    }
    if field("client_info") == Some("1") {
        body["client_info"] =
            json!(URL_SAFE_NO_PAD.encode(json!({"uid": user.id, "utid": tid}).to_string()));
    }
    Ok(body)
}

/// `sub`: pairwise, different per app for the same user, stable, not the object id.
fn pairwise_sub(tid: &str, client_id: &str, oid: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{tid}|{client_id}|{oid}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..32])[..43].to_string()
}

async fn jwks(state: web::Data<State>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::Jwks).await {
        return r;
    }
    let issuer_tid = match resolve_tenant(&state, &path.into_inner()) {
        Ok(tid) => tid,
        Err(None) => "{tenantid}".to_string(),
        Err(Some(e)) => return e.response(None),
    };
    keys_response(&state, &issuer_tid)
}

async fn jwks_common(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::Jwks).await {
        return r;
    }
    keys_response(&state, "{tenantid}")
}

fn keys_response(state: &State, issuer_tid: &str) -> HttpResponse {
    let oidc = state.oidc.lock().expect("oidc lock");
    let keys: Vec<Value> = oidc
        .keys
        .iter()
        .rev()
        .map(|k| {
            json!({"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid, "n": k.n, "e": k.e,
                   "x5c": [STANDARD.encode(&k.cert_der)], "issuer": issuer(issuer_tid)})
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=86400, private"))
        .json(json!({ "keys": keys }))
}

/// Adds a signing key that signs from now on; the oldest beyond [`KEPT_KEYS`] leave the JWKS
/// (all but the new one when `keep_old` is false). Returns the new `kid`.
pub(crate) fn rotate(state: &State, keep_old: bool) -> anyhow::Result<String> {
    let key = SigningKey::generate()?;
    let kid = key.kid.clone();
    let mut oidc = state.oidc.lock().expect("oidc lock");
    if !keep_old {
        oidc.keys.clear();
    }
    oidc.keys.push(key);
    let excess = oidc.keys.len().saturating_sub(KEPT_KEYS);
    oidc.keys.drain(..excess);
    Ok(kid)
}
