//! The sign-in side: OpenID discovery and the token endpoint's client-credentials grant
//! (reference §1, §5.1), with the STS error body and its AADSTS codes.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::apps::App;
use crate::server::preamble;
use crate::state::{Endpoint, State, TokenInfo};

/// The one resource the emulator issues tokens for.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Graph's well-known application id, which also names the resource in a scope.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tolerated clock skew on assertion times.
const SKEW_SECS: i64 = 300;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        web::get().to(discovery),
    )
    .route("/{tenant}/oauth2/v2.0/token", web::post().to(token))
    .configure(crate::oidc::routes);
}

/// An STS error: HTTP status, `error`, AADSTS code, description (without the trailer).
pub(crate) struct StsError {
    pub status: u16,
    pub error: String,
    pub code: u32,
    pub description: String,
}

pub(crate) fn sts(
    status: u16,
    error: &'static str,
    code: u32,
    description: impl Into<String>,
) -> StsError {
    StsError {
        status,
        error: error.to_string(),
        code,
        description: description.into(),
    }
}

impl StsError {
    /// The body every STS endpoint answers errors with (reference §1): the description ends
    /// with the trace id, correlation id and timestamp, as the real one does.
    pub fn response(&self, correlation_id: Option<&str>) -> HttpResponse {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = correlation_id
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(self.status)
                .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
        )
        .insert_header((header::CACHE_CONTROL, "no-store, no-cache"))
        .json(body)
    }
}

/// An injected token-endpoint failure in the STS shape.
pub(crate) fn injected(status: u16, code: Option<&str>) -> HttpResponse {
    let (error, aadsts, text) = match status {
        429 => (
            "temporarily_unavailable",
            50196,
            "The server temporarily throttled the request.",
        ),
        500..=599 => (
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        ),
        401 => ("invalid_client", 7000215, "Invalid client secret provided."),
        _ => ("invalid_request", 90014, "The request is invalid."),
    };
    let mut e = sts(status, error, aadsts, text);
    if let Some(code) = code {
        e.error = code.to_string();
    }
    e.response(None)
}

/// The tenant a path names: `Ok(tenant id)`, or the STS error for an unknown one. `common`,
/// `organizations` and `consumers` give `Err(None)`: they exist, but name no tenant.
pub(crate) fn resolve_tenant(state: &State, name: &str) -> Result<String, Option<StsError>> {
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(name))
    {
        return Err(None);
    }
    let d = state.directory.read().expect("directory lock");
    if d.tenant.is_named(name) {
        Ok(d.tenant.id.clone())
    } else {
        Err(Some(unknown_tenant(name)))
    }
}

fn unknown_tenant(name: &str) -> StsError {
    sts(
        400,
        "invalid_tenant",
        90002,
        format!(
            "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn correlation(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the tenant-specific document, every
/// endpoint on the emulator; for `common`/`organizations` the `{tenantid}` issuer template.
async fn discovery(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::Discovery).await {
        return r;
    }
    let name = path.into_inner();
    let (segment, issuer_tenant) = match resolve_tenant(&state, &name) {
        Ok(tid) => (tid.clone(), tid),
        Err(None) => (name.to_ascii_lowercase(), "{tenantid}".to_string()),
        Err(Some(e)) => return e.response(correlation(&req).as_deref()),
    };
    let base = &state.base_url;
    let at = |p: &str| format!("{base}/{segment}/{p}");
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=86400, private"))
        .json(json!({
            "token_endpoint": at("oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": at("discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            // Signed as Microsoft, as product.md asks: dirsync checks this exact issuer.
            "issuer": format!("https://login.microsoftonline.com/{issuer_tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{base}/oidc/userinfo"),
            "authorization_endpoint": at("oauth2/v2.0/authorize"),
            "device_authorization_endpoint": at("oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": at("oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": at("kerberos"),
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }))
}

/// `POST /{tenant}/oauth2/v2.0/token` (client credentials).
async fn token(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(r) = preamble(&state, &req, Endpoint::Token).await {
        return r;
    }
    let corr = correlation(&req);
    match client_credentials(&state, &req, &path.into_inner(), &body) {
        Ok(v) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store, no-cache"))
            .json(v),
        Err(e) => e.response(corr.as_deref()),
    }
}

fn client_credentials(
    state: &State,
    req: &HttpRequest,
    tenant: &str,
    body: &[u8],
) -> Result<Value, StsError> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let tenant_id = match resolve_tenant(state, tenant) {
        Ok(t) => t,
        Err(Some(e)) => return Err(e),
        Err(None) => {
            return Err(sts(
                400,
                "invalid_request",
                9001023,
                "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            ))
        }
    };
    match field("grant_type") {
        Some("client_credentials") | Some("authorization_code") => {}
        None => {
            return Err(sts(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            ))
        }
        Some(other) => {
            return Err(sts(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ))
        }
    }
    let basic = basic_credentials(req);
    let client_id = field("client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| {
            sts(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        })?;
    let code_grant = field("grant_type") == Some("authorization_code");
    if !code_grant {
        let scope = field("scope").ok_or_else(|| {
            sts(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        })?;
        check_scope(scope, &tenant_id)?;
    }
    let directory_name = state
        .directory
        .read()
        .expect("directory lock")
        .tenant
        .display_name
        .clone();
    let app = state.app(&client_id).ok_or_else(|| {
        sts(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{directory_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    })?;
    if !app.enabled {
        return Err(sts(
            400,
            "unauthorized_client",
            7000112,
            format!("Application '{}'({}) is disabled.", app.client_id, app.name),
        ));
    }
    let secret = field("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, s)| s));
    if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(JWT_BEARER) {
            return Err(sts(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            ));
        }
        check_assertion(state, &app, tenant, &tenant_id, assertion)?;
    } else if let Some(secret) = secret {
        check_secret(&app, &secret)?;
    } else {
        return Err(sts(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    if code_grant {
        return crate::oidc::redeem(state, &app, &tenant_id, &form);
    }
    Ok(issue(state, &app, &tenant_id))
}

/// `client_id:client_secret` from HTTP Basic, each form-urlencoded first (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

/// One scope, `<Graph>/.default`: Graph named by URL or by its app id.
fn check_scope(scope: &str, tenant_id: &str) -> Result<(), StsError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if let Some(s) = scopes.iter().find(|s| !s.ends_with("/.default")) {
        return Err(sts(
            400,
            "invalid_scope",
            1002012,
            format!("The provided value for scope {s} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        ));
    }
    if scopes.len() != 1 {
        return Err(sts(
            400,
            "invalid_scope",
            70011,
            format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        ));
    }
    let resource = scopes[0]
        .trim_end_matches("/.default")
        .trim_end_matches('/');
    if resource != GRAPH_RESOURCE && resource != GRAPH_APP_ID {
        return Err(sts(
            400,
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant named {tenant_id}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
        ));
    }
    Ok(())
}

fn check_secret(app: &App, secret: &str) -> Result<(), StsError> {
    match app.secrets.iter().find(|s| s.value == secret) {
        None => Err(sts(
            401,
            "invalid_client",
            7000215,
            format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
        )),
        Some(s) if s.expires_at <= chrono::Utc::now() => Err(sts(
            401,
            "invalid_client",
            7000222,
            format!("The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", app.client_id),
        )),
        Some(_) => Ok(()),
    }
}

fn malformed(what: &str) -> StsError {
    sts(
        400,
        "invalid_request",
        50027,
        format!("JWT token is invalid or malformed ({what})."),
    )
}

/// A client assertion: a JWT signed (RS256 or PS256) by a certificate registered on the app,
/// found by its `x5t` or `x5t#S256` thumbprint; `aud` the token URL; `iss` = `sub` = the
/// client id; `exp` (and `nbf` when present) around now.
fn check_assertion(
    state: &State,
    app: &App,
    path_tenant: &str,
    tenant_id: &str,
    jwt: &str,
) -> Result<(), StsError> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(malformed("not three parts"));
    }
    let decode = |p: &str| -> Result<Value, StsError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p.trim_end_matches('='))
            .map_err(|_| malformed("bad base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| malformed("bad JSON"))
    };
    let headers = decode(parts[0])?;
    let claims = decode(parts[1])?;
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2].trim_end_matches('='))
        .map_err(|_| malformed("bad signature encoding"))?;
    let alg = headers["alg"].as_str().unwrap_or("");
    // MSAL Python pads its base64url thumbprints with `=`; Entra accepts both spellings.
    let x5t = headers["x5t"].as_str().map(|t| t.trim_end_matches('='));
    let x5t_s256 = headers["x5t#S256"]
        .as_str()
        .map(|t| t.trim_end_matches('='));
    let thumb = x5t_s256.or(x5t).unwrap_or("");
    let cert = app
        .certificates
        .iter()
        .find(|c| x5t.is_some_and(|t| t == c.x5t) || x5t_s256.is_some_and(|t| t == c.x5t_s256));
    let Some(cert) = cert else {
        return Err(sts(
            401,
            "invalid_client",
            700027,
            format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{}']", app.client_id, app.client_id),
        ));
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    if !cert.verifies(alg, signed.as_bytes(), &signature) {
        return Err(sts(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    let base = &state.base_url;
    let audiences = [
        format!("{base}/{path_tenant}/oauth2/v2.0/token"),
        format!("{base}/{tenant_id}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"),
        format!("https://login.microsoftonline.com/{path_tenant}/oauth2/v2.0/token"),
    ];
    let aud_ok = match &claims["aud"] {
        Value::String(a) => audiences.iter().any(|x| x.eq_ignore_ascii_case(a)),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x.eq_ignore_ascii_case(a))),
        _ => false,
    };
    if !aud_ok {
        return Err(sts(
            401,
            "invalid_client",
            700212,
            format!("No matching federated identity record found for presented assertion audience '{}'.", claims["aud"]),
        ));
    }
    for claim in ["iss", "sub"] {
        if !claims[claim]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case(&app.client_id))
        {
            return Err(sts(
                401,
                "invalid_client",
                700023,
                format!(
                    "The '{claim}' claim of the client assertion must be the client id '{}'.",
                    app.client_id
                ),
            ));
        }
    }
    let now = chrono::Utc::now().timestamp();
    // NumericDates may have fractions (RFC 7519 §2); MSAL Python sends `time.time() + 600`.
    let exp = claims["exp"].as_f64().map(|t| t as i64);
    let nbf = claims["nbf"].as_f64().map(|t| t as i64);
    let outside = match exp {
        None => true,
        Some(exp) => exp + SKEW_SECS < now || nbf.is_some_and(|n| n - SKEW_SECS > now),
    };
    if outside {
        let fmt = |t: Option<i64>| {
            t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        return Err(sts(
            401,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                fmt(Some(now)),
                fmt(nbf),
                fmt(exp)
            ),
        ));
    }
    Ok(())
}

/// Issues an app-only Graph token. It has the shape of Microsoft's (a v1.0 JWT whose header
/// carries a `nonce`, so nobody but Graph can verify it) and the claims of §1; the emulator
/// itself recognises it by value, so its signature is random bytes.
fn issue(state: &State, app: &App, tenant_id: &str) -> Value {
    let lifetime = state
        .token_lifetime_secs
        .load(std::sync::atomic::Ordering::Relaxed);
    let now = chrono::Utc::now().timestamp();
    let header = json!({"typ": "JWT", "nonce": random_b64(32), "alg": "RS256", "x5t": "emulator", "kid": "emulator"});
    let mut claims = json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now, "nbf": now, "exp": now + lifetime as i64,
        "app_displayname": app.name,
        "appid": app.client_id,
        "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tenant_id}/"),
        "idtyp": "app",
        "oid": app.object_id,
        "sub": app.object_id,
        "tid": tenant_id,
        "ver": "1.0",
    });
    // Without admin consent the token is still issued, only without `roles`.
    if !app.roles.is_empty() {
        claims["roles"] = json!(app.roles);
    }
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_b64(256)
    );
    state.tokens.lock().expect("tokens lock").insert(
        token.clone(),
        TokenInfo {
            roles: app.roles.clone(),
            expires_at: Instant::now() + Duration::from_secs(lifetime),
        },
    );
    json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    })
}

pub(crate) fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}
