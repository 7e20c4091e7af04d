//! The one sign-in configuration (Google or Microsoft, the directory's provider) (row id 1 of `oidc_config`). The client secret is
//! stored encrypted (bound to its row and column) and never shown: the view only says whether
//! one is set.

use chrono::{DateTime, Utc};
use dirsync_entity::oidc_config;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::secrets::Cipher;
use crate::{Error, Result};

/// The id of the only row.
pub const ROW_ID: i32 = 1;
/// Where the client secret is bound to (the associated data of its encryption).
const SECRET_CONTEXT: &str = "oidc_config.client_secret:1";
/// Session lifetime when none is configured (product §1).
pub const DEFAULT_SESSION_TTL_MINUTES: u32 = 480;
/// Shortest and longest session lifetime accepted, in minutes (5 minutes to 30 days).
pub const SESSION_TTL_RANGE: std::ops::RangeInclusive<u32> = 5..=43_200;

/// The sign-in configuration (the client secret is never shown).
// The API's `OidcConfig`; its doc comments are the OpenAPI descriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = OidcConfig))]
pub struct OidcView {
    /// The OAuth client id; null until configured.
    pub client_id: Option<String>,
    /// Whether a client secret is stored.
    pub client_secret_set: bool,
    /// The redirect URI; null until configured.
    pub redirect_uri: Option<String>,
    /// Accepted domains (Google's `hd` claim; Microsoft: the UPN's domain); empty = any.
    pub allowed_domains: Vec<String>,
    /// Session lifetime in minutes.
    pub session_ttl_minutes: u32,
    /// Last change; null until configured.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What an administrator saves.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The OAuth client id (`…apps.googleusercontent.com`).
    pub client_id: String,
    /// The client secret; `None` keeps the stored one.
    pub client_secret: Option<SecretString>,
    /// Must follow Google's rules and end in `/oidc/signin`.
    pub redirect_uri: String,
    /// Accepted domains (Google's `hd` claim; Microsoft: the UPN's domain).
    pub allowed_domains: Vec<String>,
    /// Session lifetime; `None` = 480.
    pub session_ttl_minutes: Option<u32>,
}

/// The configuration in force, secret decrypted: what the flow needs.
pub(crate) struct ActiveConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
    pub allowed_domains: Vec<String>,
    pub session_ttl: chrono::Duration,
}

/// The stored `allowed_domains`. Never read as empty when it does not decode: empty admits
/// every domain.
fn allowed_domains_of(r: &oidc_config::Model) -> Result<Vec<String>> {
    crate::stored::string_list(
        "oidc_config.allowed_domains",
        &r.allowed_domains,
        "save the sign-in settings again with PUT /api/v1/auth/oidc",
    )
}

/// Whether the stored row decodes (for `/ready`).
pub(crate) fn check(r: &oidc_config::Model) -> Result<()> {
    allowed_domains_of(r).map(drop)
}

fn view(row: Option<&oidc_config::Model>) -> Result<OidcView> {
    Ok(match row {
        None => OidcView {
            client_id: None,
            client_secret_set: false,
            redirect_uri: None,
            allowed_domains: Vec::new(),
            session_ttl_minutes: DEFAULT_SESSION_TTL_MINUTES,
            updated_at: None,
        },
        Some(r) => OidcView {
            client_id: Some(r.client_id.clone()),
            client_secret_set: r.client_secret.is_some(),
            redirect_uri: Some(r.redirect_uri.clone()),
            allowed_domains: allowed_domains_of(r)?,
            session_ttl_minutes: r.session_ttl_minutes.max(0) as u32,
            updated_at: Some(r.updated_at),
        },
    })
}

/// The current configuration.
pub async fn get<C: ConnectionTrait>(db: &C) -> Result<OidcView> {
    view(
        oidc_config::Entity::find_by_id(ROW_ID)
            .one(db)
            .await?
            .as_ref(),
    )
}

fn bad(field: &'static str, message: String) -> Error {
    Error::invalid("invalid_oidc_settings", format!("{field}: {message}"))
        .with_details(serde_json::json!({ "field": field }))
}

fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn printable_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_graphic())
}

/// Checks and normalises settings: 422 naming the field (and, for `redirect_uri`, the rule).
pub fn validate(mut s: OidcSettings) -> Result<OidcSettings> {
    s.client_id = s.client_id.trim().to_string();
    if !printable_token(&s.client_id) {
        return Err(bad(
            "client_id",
            "must be the OAuth client id from Google Cloud or the Entra app registration (1 to 255 printable characters)".into(),
        ));
    }
    if let Some(secret) = &s.client_secret {
        let trimmed = secret.expose_secret().trim();
        if !printable_token(trimmed) {
            return Err(bad(
                "client_secret",
                "must be the OAuth client secret (1 to 255 printable characters)".into(),
            ));
        }
        s.client_secret = Some(trimmed.to_string().into());
    }
    s.redirect_uri = s.redirect_uri.trim().to_string();
    super::check_redirect_uri(&s.redirect_uri)?;
    let mut domains: Vec<String> = Vec::new();
    for d in &s.allowed_domains {
        let d = d.trim().to_ascii_lowercase();
        if !valid_domain(&d) {
            return Err(bad(
                "allowed_domains",
                format!("{d:?} is not a domain name (e.g. example.com)"),
            ));
        }
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    s.allowed_domains = domains;
    let ttl = s.session_ttl_minutes.unwrap_or(DEFAULT_SESSION_TTL_MINUTES);
    if !SESSION_TTL_RANGE.contains(&ttl) {
        return Err(bad(
            "session_ttl_minutes",
            format!(
                "must be {} to {} minutes",
                SESSION_TTL_RANGE.start(),
                SESSION_TTL_RANGE.end()
            ),
        ));
    }
    s.session_ttl_minutes = Some(ttl);
    Ok(s)
}

/// Saves the configuration and records `oidc.update` by `actor` (the secret only as changed or
/// not) in the same transaction; returns it before (`None` when the stored row did not decode:
/// saving is how it is repaired) and after, and whether the secret changed.
pub async fn update(
    db: &DatabaseConnection,
    cipher: &Cipher,
    actor: &str,
    settings: OidcSettings,
) -> Result<(Option<OidcView>, OidcView, bool)> {
    let s = validate(settings)?;
    let txn = crate::db::begin_write(db).await?;
    let (before, after, secret_changed) = write(&txn, cipher, s).await?;
    crate::audit::record(
        &txn,
        actor,
        "oidc.update",
        "oidc_config",
        None,
        serde_json::json!({
            "before": before,
            "after": after,
            "client_secret": if secret_changed { Some("[changed]") } else { None },
        }),
    )
    .await?;
    txn.commit().await?;
    Ok((before, after, secret_changed))
}

async fn write<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    s: OidcSettings,
) -> Result<(Option<OidcView>, OidcView, bool)> {
    let row = oidc_config::Entity::find_by_id(ROW_ID).one(db).await?;
    let before = view(row.as_ref()).ok();
    let sealed = s
        .client_secret
        .as_ref()
        .map(|secret| cipher.encrypt(secret.expose_secret(), SECRET_CONTEXT));
    if row.as_ref().is_none_or(|r| r.client_secret.is_none()) && sealed.is_none() {
        return Err(bad(
            "client_secret",
            "is required the first time (later, leave it out to keep the stored one)".into(),
        ));
    }
    let secret_changed = sealed.is_some();
    let mut am: oidc_config::ActiveModel = match row {
        Some(r) => r.into(),
        None => oidc_config::ActiveModel {
            id: Set(ROW_ID),
            ..Default::default()
        },
    };
    let is_new = am.client_id.is_not_set();
    am.client_id = Set(s.client_id);
    if let Some(sealed) = sealed {
        am.client_secret = Set(Some(sealed));
    }
    am.redirect_uri = Set(s.redirect_uri);
    am.allowed_domains = Set(serde_json::to_string(&s.allowed_domains).expect("strings"));
    am.session_ttl_minutes =
        Set(s.session_ttl_minutes.unwrap_or(DEFAULT_SESSION_TTL_MINUTES) as i32);
    am.updated_at = Set(Utc::now());
    let row = if is_new {
        am.insert(db).await?
    } else {
        am.update(db).await?
    };
    Ok((before, view(Some(&row))?, secret_changed))
}

/// The configuration in force, or `not_configured`.
pub(crate) async fn active<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
) -> Result<ActiveConfig, crate::Error> {
    let Some(row) = oidc_config::Entity::find_by_id(ROW_ID).one(db).await? else {
        return Err(super::not_configured());
    };
    let Some(sealed) = &row.client_secret else {
        return Err(super::not_configured());
    };
    let client_secret = cipher
        .decrypt(sealed, SECRET_CONTEXT)
        .map_err(|e| Error::Internal(e.into()))?;
    // Fails closed: undecodable allowed domains refuse every sign-in (stored_data_invalid).
    let v = view(Some(&row))?;
    Ok(ActiveConfig {
        client_id: row.client_id,
        client_secret,
        redirect_uri: row.redirect_uri,
        allowed_domains: v.allowed_domains,
        session_ttl: chrono::Duration::minutes(i64::from(v.session_ttl_minutes)),
    })
}

/// The session lifetime in force (the default when Sign in with Google is not configured).
pub(crate) async fn session_ttl<C: ConnectionTrait>(db: &C) -> Result<chrono::Duration> {
    let minutes = get(db).await?.session_ttl_minutes;
    Ok(chrono::Duration::minutes(i64::from(minutes)))
}
