//! The Sign in with Google settings: `GET`/`PUT /api/v1/auth/oidc`.

use actix_web::{get, put, web};
use dirsync_core::oidc::config::{self, OidcView};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Admin, Auth, Operator};
use crate::error::ApiError;
use crate::state::AppState;

// ---- configuration ----

/// Sign-in settings (Sign in with Google, or with Microsoft when the directory is Entra ID).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The OAuth client id: from Google Cloud (`…apps.googleusercontent.com`), or the Entra app
    /// registration's application (client) id.
    pub client_id: String,
    /// The client secret. Required the first time; leave it out to keep the stored one. Never
    /// returned.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<SecretString>,
    /// The redirect URI registered for the client: `https://<host>[:port]/oidc/signin` (http
    /// only for localhost and loopback), checked as Google checks it.
    pub redirect_uri: String,
    /// Accepted domains: Google's `hd` claim (Workspace domains), or for Microsoft the domain of
    /// the user's UPN; empty = any domain (the user must still exist here). With exactly one,
    /// Google's account chooser is limited to it.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Lifetime of the sessions issued, 5 to 43200 minutes (default 480).
    #[serde(default, deserialize_with = "crate::integer::json_opt")]
    #[schema(minimum = 5, maximum = 43200)]
    pub session_ttl_minutes: Option<u32>,
}

/// Read the Sign in with Google configuration.
///
/// The Sign in with Google configuration. `client_secret` is never returned; `client_secret_set`
/// says whether one is stored.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "sign-in", operation_id = "get_oidc_config", responses((status = 200, description = "The configuration", body = OidcView)))]
#[get("/auth/oidc")]
pub(super) async fn get_oidc(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<config::OidcView>, ApiError> {
    Ok(web::Json(config::get(&state.db).await?))
}

/// Save the Sign in with Google configuration.
///
/// Saves the Sign in with Google configuration. The client secret is stored encrypted; leave it
/// out to keep the stored one. `redirect_uri` is checked as Google checks it: a 422 names the
/// rule broken in `details.rule`.
///
/// Role: admin.
#[utoipa::path(tag = "sign-in", operation_id = "put_oidc_config", request_body = OidcSettings,
    responses((status = 200, description = "The saved configuration", body = OidcView)))]
#[put("/auth/oidc")]
pub(super) async fn put_oidc(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<OidcSettings>,
) -> Result<web::Json<config::OidcView>, ApiError> {
    let b = body.into_inner();
    let settings = config::OidcSettings {
        client_id: b.client_id,
        client_secret: b.client_secret,
        redirect_uri: b.redirect_uri,
        allowed_domains: b.allowed_domains,
        session_ttl_minutes: b.session_ttl_minutes,
    };
    let (_, after, _) = config::update(&state.db, &state.cipher, &caller.actor(), settings).await?;
    Ok(web::Json(after))
}
