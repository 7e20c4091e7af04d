//! The one directory configuration of an installation (row id 1 of `directory_config`): which
//! Google account to read, how, and the rules a sync follows.

use chrono::Utc;
use dirsync_entity::directory_config;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set, Unchanged};

/// Where users come from (`google_workspace` or `none`), stored in `directory_config.provider`.
pub use dirsync_entity::Provider;

use crate::{audit, Result};

/// The id of the only row.
pub const ROW_ID: i32 = 1;

/// The stored row, created with the defaults of product.md §1 when it does not exist yet.
pub async fn config_row<C: ConnectionTrait>(db: &C) -> Result<directory_config::Model> {
    if let Some(row) = directory_config::Entity::find_by_id(ROW_ID).one(db).await? {
        return Ok(row);
    }
    let row = directory_config::ActiveModel {
        id: Set(ROW_ID),
        provider: Set(Provider::None),
        admin_email: Set(None),
        customer_id: Set(Some("my_customer".into())),
        domain: Set(None),
        sync_groups: Set("[]".into()),
        auto_delete_users: Set(false),
        deletion_limit: Set(None),
        schedule_minutes: Set(None),
        default_privileges: Set(r#"["login"]"#.into()),
        default_folder_access: Set(r#"["read"]"#.into()),
        sa_client_email: Set(None),
        sa_private_key_id: Set(None),
        sa_client_id: Set(None),
        sa_project_id: Set(None),
        sa_token_uri: Set(None),
        sa_private_key: Set(None),
        updated_at: Set(Utc::now()),
        incremental_seconds: Set(None),
        full_sync_hours: Set(24),
        event_overlap_minutes: Set(10),
        tenant_id: Set(None),
        entra_client_id: Set(None),
        include_guests: Set(false),
        entra_credential_kind: Set(None),
        entra_secret: Set(None),
        entra_certificate_pem: Set(None),
        entra_thumbprint: Set(None),
    };
    // Two first requests may race to create the row; the loser reads the winner's.
    match row.insert(db).await {
        Ok(row) => Ok(row),
        Err(_) => Ok(directory_config::Entity::find_by_id(ROW_ID)
            .one(db)
            .await?
            .ok_or(crate::Error::NotFound("directory configuration"))?),
    }
}

/// The uploaded service account (the private key is never shown).
// The API's `ServiceAccount`; its doc comments are the OpenAPI descriptions. `client_email` is
// the JWT `iss`, `private_key_id` the "Key ID" of Google's console.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ServiceAccount))]
pub struct ServiceAccountInfo {
    /// The service account's address.
    pub client_email: String,
    /// The key's id.
    pub private_key_id: String,
    /// The numeric client id to grant domain-wide delegation to.
    pub client_id: Option<String>,
    /// The Cloud project.
    pub project_id: Option<String>,
}

/// The directory settings an administrator edits.
// Its field docs are the OpenAPI descriptions of `DirectoryConfig`'s fields (see
// `DirectoryView`); the API's request body, `DirectorySettings`, is its own type (it refuses
// unknown fields and takes integral numbers such as `50.0`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectorySettings {
    /// `google_workspace` or `none`.
    pub provider: Provider,
    /// The impersonated administrator.
    // The Workspace admin whose authority the service account borrows (domain-wide delegation).
    pub admin_email: Option<String>,
    /// Customer id (`my_customer` by default).
    // Exclusive with `domain`.
    pub customer_id: Option<String>,
    /// Domain, when reading one domain.
    // Read instead of the whole account.
    pub domain: Option<String>,
    /// Sync groups (lower-cased).
    // Group addresses whose members (nested groups included) are synced; empty = everyone.
    pub sync_groups: Vec<String>,
    /// Delete users that left the scope.
    // Directory users only; off, they are reported (`out_of_scope`).
    pub auto_delete_users: bool,
    /// Deletion limit; null = default rule.
    // Most deletions a run may make without confirmation; `None` = 10 %, at least 5.
    pub deletion_limit: Option<u32>,
    /// Schedule in minutes; null = none.
    // Run an apply job every N minutes.
    pub schedule_minutes: Option<u32>,
    /// Incremental sync every N seconds (10 to 86400); null = off.
    // Follow Google's admin log this often (the service account needs the audit scope); full
    // syncs then run every `full_sync_hours` as the safety net.
    pub incremental_seconds: Option<u32>,
    /// Hours between full syncs while incremental sync is on (1 to 720, default 24).
    pub full_sync_hours: u32,
    /// Minutes of the admin log read again before the cursor, for its lag (0 to 1440, default 10).
    pub event_overlap_minutes: u32,
}

/// Where incremental sync stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IncrementalStatus))]
pub struct IncrementalStatus {
    /// Admin events up to this time are applied; null before the first full sync.
    pub cursor: Option<chrono::DateTime<Utc>>,
    /// The last incremental job applied, or null.
    pub last_job_id: Option<uuid::Uuid>,
    /// Whether the admin log was readable at the last connection test or incremental job
    /// (false before either ran).
    pub available: bool,
    /// Why not, and what to do.
    pub reason: Option<String>,
}

impl IncrementalStatus {
    fn of(state: &crate::sync::snapshot::State) -> IncrementalStatus {
        let available = state.events_available.unwrap_or(false);
        IncrementalStatus {
            cursor: state.cursor,
            last_job_id: state.last_incremental_job_id,
            available,
            reason: match (state.events_available, &state.events_reason) {
                (_, Some(r)) => Some(r.clone()),
                (None, None) => Some(
                    "not checked yet: run the connection test (POST /api/v1/directory/test) or an \
                     incremental job"
                        .into(),
                ),
                (Some(_), None) => None,
            },
        }
    }
}

/// The directory configuration.
// The API's `DirectoryConfig`: the settings and the service account, one flat object on the
// wire. Its schema is built below rather than derived: utoipa documents `#[serde(flatten)]` as an
// `allOf` of a reference, and the published schema is one flat object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryView {
    /// Editable settings.
    #[serde(flatten)]
    pub settings: DirectorySettings,
    /// The uploaded service account, or null.
    pub service_account: Option<ServiceAccountInfo>,
    /// Where incremental sync stands.
    pub incremental: IncrementalStatus,
}

/// The settings' derived object, with the view's own fields added: a field added to
/// [`DirectorySettings`] is documented by itself; one added to [`DirectoryView`] goes below
/// (`the_directory_schema_names_every_field_of_the_view` in the API fails until it does).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DirectoryView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, RefBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        use utoipa::ToSchema;
        let RefOr::T(Schema::Object(mut object)) = DirectorySettings::schema() else {
            unreachable!("the derived schema of a struct is an object")
        };
        object.description = Some("The directory configuration.".into());
        object.properties.insert(
            "service_account".into(),
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(
                    RefBuilder::new()
                        .description(Some("The uploaded service account, or null."))
                        .ref_location_from_schema_name(ServiceAccountInfo::name()),
                )
                .into(),
        );
        object.properties.insert(
            "incremental".into(),
            RefBuilder::new()
                .description(Some("Where incremental sync stands."))
                .ref_location_from_schema_name(IncrementalStatus::name())
                .into(),
        );
        object.required.push("incremental".into());
        RefOr::T(Schema::Object(object))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DirectoryView {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("DirectoryConfig")
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        DirectorySettings::schemas(schemas);
        schemas.push((
            ServiceAccountInfo::name().into(),
            ServiceAccountInfo::schema(),
        ));
        ServiceAccountInfo::schemas(schemas);
        schemas.push((
            IncrementalStatus::name().into(),
            IncrementalStatus::schema(),
        ));
    }
}

const REPAIR_SETTINGS: &str = "save the directory settings again with PUT /api/v1/directory";

/// The stored `sync_groups`. Never read as empty when it does not decode: empty means every
/// user of the account is in scope.
pub fn sync_groups_of(row: &directory_config::Model) -> Result<Vec<String>> {
    crate::stored::string_list(
        "directory_config.sync_groups",
        &row.sync_groups,
        REPAIR_SETTINGS,
    )
}

/// Every decoding check of the row (for `/ready`).
pub(crate) fn checks(row: &directory_config::Model) -> Vec<Result<()>> {
    vec![
        sync_groups_of(row).map(drop),
        crate::privileges::defaults_of(row).map(drop),
    ]
}

fn view(
    row: &directory_config::Model,
    state: &crate::sync::snapshot::State,
) -> Result<DirectoryView> {
    Ok(DirectoryView {
        settings: DirectorySettings {
            provider: row.provider,
            admin_email: row.admin_email.clone(),
            customer_id: row.customer_id.clone(),
            domain: row.domain.clone(),
            sync_groups: sync_groups_of(row)?,
            auto_delete_users: row.auto_delete_users,
            deletion_limit: row.deletion_limit.map(|n| n.max(0) as u32),
            schedule_minutes: row.schedule_minutes.map(|n| n.max(0) as u32),
            incremental_seconds: row.incremental_seconds.map(|n| n.max(0) as u32),
            full_sync_hours: row.full_sync_hours.max(0) as u32,
            event_overlap_minutes: row.event_overlap_minutes.max(0) as u32,
        },
        service_account: match (&row.sa_client_email, &row.sa_private_key_id) {
            (Some(email), Some(kid)) => Some(ServiceAccountInfo {
                client_email: email.clone(),
                private_key_id: kid.clone(),
                client_id: row.sa_client_id.clone(),
                project_id: row.sa_project_id.clone(),
            }),
            _ => None,
        },
        incremental: IncrementalStatus::of(state),
    })
}

/// The current configuration.
pub async fn get<C: ConnectionTrait>(db: &C) -> Result<DirectoryView> {
    let row = config_row(db).await?;
    view(&row, &crate::sync::snapshot::load(db).await?)
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                && s.len() <= 254
        }
        None => false,
    }
}

/// Checks and normalises settings, with messages that name the field.
pub fn validate(mut s: DirectorySettings) -> Result<DirectorySettings> {
    let bad = |field: &'static str, msg: String| {
        crate::Error::invalid("invalid_directory_settings", format!("{field}: {msg}"))
            .with_details(serde_json::json!({ "field": field }))
    };
    s.admin_email = s
        .admin_email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if let Some(e) = &s.admin_email {
        if !looks_like_email(e) {
            return Err(bad(
                "admin_email",
                format!("{e:?} is not an e-mail address"),
            ));
        }
    }
    if s.provider == Provider::GoogleWorkspace && s.admin_email.is_none() {
        return Err(bad(
            "admin_email",
            "name the Workspace administrator to impersonate".into(),
        ));
    }
    s.customer_id = s
        .customer_id
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    s.domain = s
        .domain
        .map(|d| d.trim().to_lowercase())
        .filter(|d| !d.is_empty());
    match (&s.customer_id, &s.domain) {
        (Some(_), Some(_)) => {
            return Err(bad("domain", "give customer_id or domain, not both".into()))
        }
        (None, None) => s.customer_id = Some("my_customer".into()),
        _ => {}
    }
    let mut seen = std::collections::HashSet::new();
    let mut groups = Vec::new();
    for g in s.sync_groups {
        let g = g.trim().to_lowercase();
        if !looks_like_email(&g) {
            return Err(bad("sync_groups", format!("{g:?} is not a group address")));
        }
        if seen.insert(g.clone()) {
            groups.push(g);
        }
    }
    s.sync_groups = groups;
    if let Some(m) = s.schedule_minutes {
        if !(1..=10_080).contains(&m) {
            return Err(bad(
                "schedule_minutes",
                "must be 1 to 10080 (a week), or null".into(),
            ));
        }
    }
    if let Some(n) = s.incremental_seconds {
        if !(10..=86_400).contains(&n) {
            return Err(bad(
                "incremental_seconds",
                "must be 10 to 86400 (a day), or null".into(),
            ));
        }
    }
    if !(1..=720).contains(&s.full_sync_hours) {
        return Err(bad("full_sync_hours", "must be 1 to 720 (30 days)".into()));
    }
    if s.event_overlap_minutes > 1440 {
        return Err(bad(
            "event_overlap_minutes",
            "must be 0 to 1440 (a day)".into(),
        ));
    }
    if s.deletion_limit.is_some_and(|n| n > 1_000_000) {
        return Err(bad(
            "deletion_limit",
            "must be at most 1000000, or null".into(),
        ));
    }
    Ok(s)
}

/// Replaces the editable settings and records `directory.update` by `actor` in the same
/// transaction; returns the configuration before (`None` when the stored settings did not
/// decode: saving is how they are repaired) and after.
pub async fn update(
    db: &DatabaseConnection,
    actor: &str,
    settings: DirectorySettings,
) -> Result<(Option<DirectoryView>, DirectoryView)> {
    let s = validate(settings)?;
    let txn = crate::db::begin_write(db).await?;
    let (before, after) = write_settings(&txn, s).await?;
    audit::record(
        &txn,
        actor,
        "directory.update",
        "directory",
        None,
        serde_json::json!({
            "before": before.as_ref().map(|b| &b.settings),
            "after": after.settings,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok((before, after))
}

async fn write_settings<C: ConnectionTrait>(
    db: &C,
    s: DirectorySettings,
) -> Result<(Option<DirectoryView>, DirectoryView)> {
    let state = crate::sync::snapshot::load(db).await?;
    let before = match config_row(db).await {
        Ok(row) => view(&row, &state).ok(),
        // Saving is how a row that does not decode is repaired: it is written without being
        // read (the fields below are all the settings; the service account is left as is).
        Err(crate::Error::StoredDataInvalid { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut am = directory_config::ActiveModel {
        id: Unchanged(ROW_ID),
        ..Default::default()
    };
    am.provider = Set(s.provider);
    am.admin_email = Set(s.admin_email.clone());
    am.customer_id = Set(s.customer_id.clone());
    am.domain = Set(s.domain.clone());
    am.sync_groups = Set(serde_json::to_string(&s.sync_groups).expect("strings serialize"));
    am.auto_delete_users = Set(s.auto_delete_users);
    am.deletion_limit = Set(s.deletion_limit.map(|n| n as i32));
    am.schedule_minutes = Set(s.schedule_minutes.map(|n| n as i32));
    am.incremental_seconds = Set(s.incremental_seconds.map(|n| n as i32));
    am.full_sync_hours = Set(s.full_sync_hours as i32);
    am.event_overlap_minutes = Set(s.event_overlap_minutes as i32);
    am.updated_at = Set(Utc::now());
    let row = am.update(db).await?;
    Ok((before, view(&row, &state)?))
}

/// Where the private key is bound to (the associated data of its encryption).
const KEY_CONTEXT: &str = "directory_config.sa_private_key:1";

/// Stores an uploaded service-account key: its public fields in clear, the private key
/// encrypted, and records `directory.service_account.upload` by `actor` in the same
/// transaction. Returns the configuration before and after. The key's `token_uri` must be
/// allowed (Google's, or `allowed_token_url`): 422 `token_uri_not_allowed` otherwise.
pub async fn set_service_account(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    key: &crate::google::ServiceAccountKey,
    allowed_token_url: &str,
    actor: &str,
) -> Result<(DirectoryView, DirectoryView)> {
    use secrecy::ExposeSecret;
    if !crate::google::token_uri_allowed(&key.token_uri, allowed_token_url) {
        return Err(crate::Error::invalid(
            "token_uri_not_allowed",
            format!(
                "token_uri {:?} is not one of Google's token endpoints ({}) nor the server setting \
                 DIRSYNC_GOOGLE_TOKEN_URL: upload the key file exactly as Google produced it (an \
                 operator of this server can name another token endpoint in DIRSYNC_GOOGLE_TOKEN_URL)",
                key.token_uri,
                crate::google::GOOGLE_TOKEN_URLS.join(", "),
            ),
        )
        .with_details(serde_json::json!({
            "field": "token_uri",
            "setting": "DIRSYNC_GOOGLE_TOKEN_URL",
        })));
    }
    let txn = crate::db::begin_write(db).await?;
    let row = config_row(&txn).await?;
    let state = crate::sync::snapshot::load(&txn).await?;
    // Fails closed before writing anything when the stored settings do not decode.
    let before = view(&row, &state)?;
    let mut am: directory_config::ActiveModel = row.into();
    am.sa_client_email = Set(Some(key.client_email.clone()));
    am.sa_private_key_id = Set(Some(key.private_key_id.clone()));
    am.sa_client_id = Set(key.client_id.clone());
    am.sa_project_id = Set(key.project_id.clone());
    am.sa_token_uri = Set(Some(key.token_uri.clone()));
    am.sa_private_key = Set(Some(
        cipher.encrypt(key.private_key_pem().expose_secret(), KEY_CONTEXT),
    ));
    am.updated_at = Set(Utc::now());
    let after = view(&am.update(&txn).await?, &state)?;
    audit::record(
        &txn,
        actor,
        "directory.service_account.upload",
        "directory",
        None,
        serde_json::json!({"before": before.service_account, "after": after.service_account}),
    )
    .await?;
    txn.commit().await?;
    Ok((before, after))
}

/// The stored service-account key, decrypted; 409 `not_configured` when none was uploaded.
pub fn service_account_key(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
) -> Result<crate::google::ServiceAccountKey> {
    use secrecy::ExposeSecret;
    let (Some(email), Some(kid), Some(token_uri), Some(sealed)) = (
        &row.sa_client_email,
        &row.sa_private_key_id,
        &row.sa_token_uri,
        &row.sa_private_key,
    ) else {
        return Err(crate::Error::conflict(
            "not_configured",
            "no service-account key has been uploaded: PUT /api/v1/directory/service-account",
        ));
    };
    let pem = cipher
        .decrypt(sealed, KEY_CONTEXT)
        .map_err(|e| crate::Error::Internal(e.into()))?;
    // Rebuild the key file from its stored parts, so one parser checks both paths.
    let file = serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key_id": kid,
        "private_key": pem.expose_secret(),
        "token_uri": token_uri,
        "client_id": row.sa_client_id,
        "project_id": row.sa_project_id,
    });
    crate::google::ServiceAccountKey::parse_file(file.to_string().as_bytes()).map_err(|e| {
        crate::Error::Internal(anyhow::anyhow!(
            "stored key no longer parses: {}",
            e.message()
        ))
    })
}

/// How this server reaches Google for the directory: its settings and the access-token cache
/// shared by every client it builds (sync jobs, the connection test, the group listing).
#[derive(Clone, Debug)]
pub struct GoogleAccess {
    /// `DIRSYNC_GOOGLE_DIRECTORY_URL`.
    pub directory_url: String,
    /// `DIRSYNC_GOOGLE_TOKEN_URL`.
    pub token_url: String,
    /// Access tokens, per key, admin and scopes.
    pub tokens: crate::google::TokenCache,
    /// This server's metrics registry, where every client counts its Google requests.
    pub metrics: crate::metrics::Metrics,
    /// Trusted CAs and proxies for Google requests.
    pub outbound: crate::outbound::Outbound,
}

impl GoogleAccess {
    /// From the server settings, with an empty token cache.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        metrics: crate::metrics::Metrics,
    ) -> GoogleAccess {
        GoogleAccess {
            directory_url: settings.google_directory_url.clone(),
            token_url: settings.google_token_url.clone(),
            tokens: crate::google::TokenCache::new(),
            metrics,
            outbound: settings.outbound.clone(),
        }
    }
}

/// The sync engine's reader of the configured directory (`crate::provider`); 409
/// `not_configured` when no directory is set up. A new provider adds its arm here.
pub fn provider_for(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
    google: &GoogleAccess,
) -> Result<Box<dyn crate::provider::DirectoryProvider>> {
    match row.provider {
        Provider::GoogleWorkspace => Ok(Box::new(client_for(row, cipher, google)?)),
        // Issue 16: Microsoft Graph's reader is being built (core/src/entra/).
        Provider::MicrosoftEntra | Provider::None => Err(not_google()),
    }
}

fn not_google() -> crate::Error {
    crate::Error::conflict(
        "not_configured",
        "the directory provider is not google_workspace: PUT /api/v1/directory first",
    )
}

/// A Directory API client for the stored configuration; 409 `not_configured` when the
/// directory is not set up for Google Workspace.
pub fn client_for(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
    google: &GoogleAccess,
) -> Result<crate::google::DirectoryClient> {
    use crate::google::{Account, ClientConfig, DirectoryClient};
    if row.provider != Provider::GoogleWorkspace {
        return Err(not_google());
    }
    let key = service_account_key(row, cipher)?;
    let admin = row.admin_email.clone().ok_or_else(|| {
        crate::Error::conflict(
            "not_configured",
            "admin_email is not set: PUT /api/v1/directory",
        )
    })?;
    let account = match (&row.domain, &row.customer_id) {
        (Some(d), _) => Account::Domain(d.clone()),
        (None, Some(c)) => Account::Customer(c.clone()),
        (None, None) => Account::default(),
    };
    let mut config = ClientConfig::new(key, google.directory_url.as_str(), admin, account);
    config.token_url = google.token_url.clone();
    config.tokens = google.tokens.clone();
    config.outbound = google.outbound.clone();
    let metrics = google.metrics.clone();
    config.on_request = Some(std::sync::Arc::new(
        move |endpoint: &str, status: u16, elapsed: std::time::Duration| {
            metrics.google_request(endpoint, status, elapsed.as_secs_f64());
        },
    ));
    Ok(DirectoryClient::new(config)?)
}

/// One step of the connection test.
// As shown, and as sent to notification endpoints. Its doc comments are the OpenAPI
// descriptions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStep {
    /// `key_parsed`, `token_obtained`, `users_readable`, `groups_readable` or
    /// `events_readable` (the admin log, for incremental sync; it fails the test only when
    /// `incremental_seconds` is set).
    pub name: String,
    /// Whether it worked.
    pub ok: bool,
    /// What was found, or what to do about it.
    pub message: String,
    /// Error code when it failed (`unauthorized_client`, `admin_not_found`, ...).
    pub code: Option<String>,
}

/// The connection test's result: the steps run, stopping at the first failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionTest {
    /// Every step passed.
    pub ok: bool,
    /// The steps, in order.
    pub steps: Vec<TestStep>,
}

/// Tests the connection to Google with the stored settings (key, token, users, groups). A
/// failed test queues `directory.test_failed` notifications with the result; the caller wakes
/// the notifier. 409 `not_configured` when there is nothing to test.
#[tracing::instrument(skip_all)]
pub async fn test_connection(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    google: &GoogleAccess,
) -> Result<ConnectionTest> {
    let row = config_row(db).await?;
    let client = client_for(&row, cipher, google)?;
    let report = client.test_connection().await;
    // The admin-log step counts only when incremental sync is scheduled (product.md §8); its
    // result is `incremental.available` either way.
    let events = report.events().map(|s| (s.ok, s.message.clone()));
    if let Some((readable, message)) = &events {
        crate::sync::snapshot::record_events_access(
            db,
            *readable,
            (!readable).then(|| message.clone()),
        )
        .await?;
    }
    let events_ok = events.as_ref().is_none_or(|(ok, _)| *ok);
    let test = ConnectionTest {
        ok: report.ok() && (row.incremental_seconds.is_none() || events_ok),
        steps: report
            .steps
            .into_iter()
            .map(|s| TestStep {
                name: s.name.to_string(),
                ok: s.ok,
                message: s.message,
                code: s.code.map(str::to_string),
            })
            .collect(),
    };
    if !test.ok {
        let body = serde_json::to_value(&test).unwrap_or_default();
        crate::notifications::test_failed(db, body).await;
    }
    Ok(test)
}

/// Every group of the configured account, live from Google (for choosing `sync_groups`).
#[tracing::instrument(skip_all)]
pub async fn list_groups(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    google: &GoogleAccess,
) -> Result<Vec<crate::google::Group>> {
    let row = config_row(db).await?;
    let client = client_for(&row, cipher, google)?;
    Ok(client.list_groups().await?)
}
