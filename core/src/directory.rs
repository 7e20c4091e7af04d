//! The one directory configuration of an installation (row id 1 of `directory_config`): which
//! directory to read (a Google Workspace account or a Microsoft Entra tenant), with which
//! credential, and the rules a sync follows.
//!
//! Changing the provider is a switch: refused while directory users exist (they were matched by
//! the other directory's ids, which the new one does not know), and it forgets what belonged to
//! the directory left behind (its credential, and the incremental state of `directory_state`).

use chrono::Utc;
use dirsync_entity::directory_config;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set, Unchanged,
};
use secrecy::SecretString;

/// Which credential of an Entra app registration is stored (`client_secret` or `certificate`).
pub use dirsync_entity::values::EntraCredentialKind;
/// Where users come from (`google_workspace`, `microsoft_entra` or `none`), stored in
/// `directory_config.provider`.
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
    /// `google_workspace`, `microsoft_entra` or `none`.
    pub provider: Provider,
    /// The impersonated administrator (Google Workspace only).
    // The Workspace admin whose authority the service account borrows (domain-wide delegation).
    pub admin_email: Option<String>,
    /// Customer id (Google Workspace only; `my_customer` by default).
    // Exclusive with `domain`.
    pub customer_id: Option<String>,
    /// Domain, when reading one domain (Google Workspace only).
    // Read instead of the whole account.
    pub domain: Option<String>,
    /// The Entra tenant: its id (a GUID, lower-cased) or a verified domain (Microsoft Entra
    /// only).
    pub tenant_id: Option<String>,
    /// The Entra app registration's Application (client) ID, a GUID (Microsoft Entra only).
    pub client_id: Option<String>,
    /// Whether guests (`userType: Guest`) are synced (Microsoft Entra only; default false).
    pub include_guests: bool,
    /// Sync groups (lower-cased): group addresses, or for Microsoft Entra also group ids.
    // Groups whose members (nested groups included) are synced; empty = everyone.
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

/// The Entra app credential stored (never the secret or the private key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EntraCredential))]
pub struct EntraCredentialInfo {
    /// `client_secret` or `certificate`.
    pub kind: EntraCredentialKind,
    /// The certificate's SHA-1 thumbprint, upper-case hex, as the Entra admin center shows it;
    /// null for a client secret.
    pub thumbprint: Option<String>,
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
    /// The uploaded Entra credential, or null.
    pub entra_credential: Option<EntraCredentialInfo>,
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
            "entra_credential".into(),
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(
                    RefBuilder::new()
                        .description(Some(
                            "The uploaded Entra app credential (its kind, and a certificate's \
                             thumbprint; never the secret or the key), or null.",
                        ))
                        .ref_location_from_schema_name(EntraCredentialInfo::name()),
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
            EntraCredentialInfo::name().into(),
            EntraCredentialInfo::schema(),
        ));
        EntraCredentialInfo::schemas(schemas);
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
            tenant_id: row.tenant_id.clone(),
            client_id: row.entra_client_id.clone(),
            include_guests: row.include_guests,
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
        entra_credential: entra_credential_info(row),
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

/// A GUID as Microsoft spells them (8-4-4-4-12 hex digits), lower-cased; `None` when `s` is
/// not one. Entra compares them without regard to case; stored lower-cased, two spellings of one
/// id are one value.
fn guid(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    let ok = s.split('-').count() == 5
        && s.split('-')
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(s)
}

/// A DNS name such as a verified domain (`contoso.com`, `contoso.onmicrosoft.com`): two labels
/// at least, of letters, digits and inner hyphens, 63 characters each and 253 in all, the last
/// not all digits (an address is no domain).
fn looks_like_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// The tenant names of Microsoft's multi-tenant endpoints: they name no tenant, and a directory
/// read through them would not be the customer's.
const TENANT_ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

/// Checks and normalises settings, with messages that name the field. Google's fields
/// (`admin_email`, `customer_id`, `domain`) are refused with `microsoft_entra`, and Entra's
/// (`tenant_id`, `client_id`, `include_guests: true`) with any other provider: a request that
/// mixes them is a mistake to point out, not half a configuration to save.
pub fn validate(mut s: DirectorySettings) -> Result<DirectorySettings> {
    let bad = |field: &'static str, msg: String| {
        crate::Error::invalid("invalid_directory_settings", format!("{field}: {msg}"))
            .with_details(serde_json::json!({ "field": field }))
    };
    let trimmed = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    s.admin_email = trimmed(s.admin_email);
    s.customer_id = trimmed(s.customer_id);
    s.domain = trimmed(s.domain).map(|d| d.to_lowercase());
    s.tenant_id = trimmed(s.tenant_id);
    s.client_id = trimmed(s.client_id);
    let entra = s.provider == Provider::MicrosoftEntra;
    let (foreign, owner) = if entra {
        (
            [
                ("admin_email", s.admin_email.is_some()),
                ("customer_id", s.customer_id.is_some()),
                ("domain", s.domain.is_some()),
            ],
            Provider::GoogleWorkspace,
        )
    } else {
        (
            [
                ("tenant_id", s.tenant_id.is_some()),
                ("client_id", s.client_id.is_some()),
                ("include_guests", s.include_guests),
            ],
            Provider::MicrosoftEntra,
        )
    };
    if let Some((field, _)) = foreign.iter().find(|(_, given)| *given) {
        return Err(crate::Error::invalid(
            "invalid_directory_settings",
            format!(
                "{field}: applies to provider {} only, and provider is {}: leave it out (or \
                 null), or set provider to {}",
                owner.as_str(),
                s.provider.as_str(),
                owner.as_str(),
            ),
        )
        .with_details(serde_json::json!({ "field": field, "provider": s.provider })));
    }
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
    match (&s.customer_id, &s.domain) {
        (Some(_), Some(_)) => {
            return Err(bad("domain", "give customer_id or domain, not both".into()))
        }
        (None, None) if !entra => s.customer_id = Some("my_customer".into()),
        _ => {}
    }
    if entra {
        let tenant = s.tenant_id.take().ok_or_else(|| {
            bad(
                "tenant_id",
                "name the tenant: its Directory (tenant) ID, or one of its verified domains".into(),
            )
        })?;
        s.tenant_id = Some(match guid(&tenant) {
            Some(id) => id,
            None if TENANT_ALIASES.contains(&tenant.to_ascii_lowercase().as_str()) => {
                return Err(bad(
                    "tenant_id",
                    format!(
                        "{tenant:?} names Microsoft's multi-tenant endpoint, not a tenant: give \
                         the tenant's Directory (tenant) ID or a verified domain"
                    ),
                ))
            }
            None if looks_like_domain(&tenant.to_ascii_lowercase()) => tenant.to_ascii_lowercase(),
            None => {
                return Err(bad(
                    "tenant_id",
                    format!(
                        "{tenant:?} is neither a tenant id (a GUID such as \
                         72f988bf-86f1-41af-91ab-2d7cd011db47) nor a domain name"
                    ),
                ))
            }
        });
        let client = s.client_id.take().ok_or_else(|| {
            bad(
                "client_id",
                "give the app registration's Application (client) ID".into(),
            )
        })?;
        s.client_id = Some(guid(&client).ok_or_else(|| {
            bad(
                "client_id",
                format!(
                    "{client:?} is not a GUID: give the app registration's Application (client) \
                     ID, not its name or object id"
                ),
            )
        })?);
    }
    let mut seen = std::collections::HashSet::new();
    let mut groups = Vec::new();
    for g in s.sync_groups {
        let g = g.trim().to_lowercase();
        // Entra groups are named by id as often as by address (many have no address at all).
        let id = entra && guid(&g).is_some();
        if !id && !looks_like_email(&g) {
            return Err(bad(
                "sync_groups",
                if entra {
                    format!("{g:?} is neither a group id (a GUID) nor a group address")
                } else {
                    format!("{g:?} is not a group address")
                },
            ));
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
///
/// A new `provider` is a switch ([`check_switch`]): 409 `provider_switch_blocked` while
/// directory users exist, 409 `sync_in_progress` while a sync job is queued or running.
/// Allowed, it clears the stored credentials of every provider but the new one and deletes the
/// incremental state (`directory_state`: cursor, snapshot, delta links), so that the first sync
/// of the new directory is a full one and nothing of the old one is kept or reused.
pub async fn update(
    db: &DatabaseConnection,
    actor: &str,
    settings: DirectorySettings,
) -> Result<(Option<DirectoryView>, DirectoryView)> {
    let s = validate(settings)?;
    let txn = crate::db::begin_write(db).await?;
    let switched_from = check_switch(&txn, s.provider).await?;
    if switched_from.is_some() {
        dirsync_entity::directory_state::Entity::delete_many()
            .exec(&txn)
            .await?;
    }
    let (before, after) = write_settings(&txn, s, switched_from.is_some()).await?;
    let mut details = serde_json::json!({
        "before": before.as_ref().map(|b| &b.settings),
        "after": after.settings,
    });
    if let Some(from) = switched_from {
        details["provider_switch"] = serde_json::json!({
            "from": from,
            "to": after.settings.provider,
            "service_account_cleared": before.as_ref().is_some_and(|b| b.service_account.is_some())
                && after.service_account.is_none(),
            "entra_credential_cleared": before.as_ref().is_some_and(|b| b.entra_credential.is_some())
                && after.entra_credential.is_none(),
            "incremental_state_cleared": true,
        });
    }
    audit::record(&txn, actor, "directory.update", "directory", None, details).await?;
    txn.commit().await?;
    Ok((before, after))
}

/// Whether saving `new` switches the provider, and whether it may: `Some(old)` when it does.
///
/// Directory users (`auth_method = directory`) are matched to the directory by its own ids
/// (Google's numeric ids, Graph's object ids); another directory knows none of them, so its first
/// sync would see them all leave, and its users arrive as clashes. Rather than re-match anyone
/// silently, the switch is refused while any exist, saying what to do. The one allowed case is
/// from `none` to `google_workspace`: before Entra, Google was the only directory, and an
/// installation may have left it for `none` with its users kept.
///
/// A stored provider that does not decode counts as another provider (fail closed).
async fn check_switch<C: ConnectionTrait>(db: &C, new: Provider) -> Result<Option<Provider>> {
    use dirsync_entity::{sync_jobs, users};
    let stored: Option<String> = directory_config::Entity::find_by_id(ROW_ID)
        .select_only()
        .column(directory_config::Column::Provider)
        .into_tuple()
        .one(db)
        .await?;
    let old = match stored {
        None => Some(Provider::None),
        Some(name) => Provider::from_name(&name),
    };
    if old == Some(new) {
        return Ok(None);
    }
    let origin = match old {
        Some(Provider::None) => Some(Provider::GoogleWorkspace),
        other => other,
    };
    let directory_users = users::Entity::find()
        .filter(users::Column::AuthMethod.eq(dirsync_entity::AuthMethod::Directory))
        .count(db)
        .await?;
    if directory_users > 0 && origin != Some(new) {
        let from = old.map_or("(unreadable)", Provider::as_str);
        return Err(crate::Error::conflict(
            "provider_switch_blocked",
            format!(
                "{directory_users} directory user(s) were synced from provider {from}; provider \
                 {} does not know them and nothing is re-matched across directories. Keep \
                 provider {from}, or first delete those users (GET \
                 /api/v1/users?auth_method=directory, then DELETE /api/v1/users/{{id}}; archive \
                 folders holding mail are kept) and switch again",
                new.as_str(),
            ),
        )
        .with_details(serde_json::json!({
            "from": from,
            "to": new,
            "directory_users": directory_users,
        })));
    }
    let active = sync_jobs::Entity::find()
        .filter(sync_jobs::Column::ActiveSlot.eq(1))
        .one(db)
        .await?;
    if let Some(job) = active {
        return Err(crate::Error::conflict(
            "sync_in_progress",
            format!(
                "sync job {} is queued or running against the current provider; wait for it or \
                 cancel it, then switch provider",
                job.id
            ),
        )
        .with_details(serde_json::json!({ "job_id": job.id })));
    }
    Ok(Some(old.unwrap_or(Provider::None)))
}

async fn write_settings<C: ConnectionTrait>(
    db: &C,
    s: DirectorySettings,
    switched: bool,
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
    if switched {
        // Only the new provider's credential may stay: it may have been uploaded before the
        // switch, as a Google key is uploaded before the settings that use it.
        if s.provider != Provider::GoogleWorkspace {
            am.sa_client_email = Set(None);
            am.sa_private_key_id = Set(None);
            am.sa_client_id = Set(None);
            am.sa_project_id = Set(None);
            am.sa_token_uri = Set(None);
            am.sa_private_key = Set(None);
        }
        if s.provider != Provider::MicrosoftEntra {
            am.entra_credential_kind = Set(None);
            am.entra_secret = Set(None);
            am.entra_certificate_pem = Set(None);
            am.entra_thumbprint = Set(None);
        }
    }
    am.provider = Set(s.provider);
    am.admin_email = Set(s.admin_email.clone());
    am.customer_id = Set(s.customer_id.clone());
    am.domain = Set(s.domain.clone());
    am.tenant_id = Set(s.tenant_id.clone());
    am.entra_client_id = Set(s.client_id.clone());
    am.include_guests = Set(s.include_guests);
    am.sync_groups = Set(serde_json::to_string(&s.sync_groups).expect("strings serialize"));
    am.auto_delete_users = Set(s.auto_delete_users);
    am.deletion_limit = Set(s.deletion_limit.map(|n| n as i32));
    am.schedule_minutes = Set(s.schedule_minutes.map(|n| n as i32));
    am.incremental_seconds = Set(s.incremental_seconds.map(|n| n as i32));
    am.full_sync_hours = Set(s.full_sync_hours as i32);
    am.event_overlap_minutes = Set(s.event_overlap_minutes as i32);
    am.updated_at = Set(Utc::now());
    let row = am.update(db).await?;
    let state = if switched {
        crate::sync::snapshot::load(db).await?
    } else {
        state
    };
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

/// The Entra credential shown for a row: its kind, and a certificate's thumbprint.
fn entra_credential_info(row: &directory_config::Model) -> Option<EntraCredentialInfo> {
    match (row.entra_credential_kind, &row.entra_secret) {
        (Some(kind), Some(_)) => Some(EntraCredentialInfo {
            kind,
            thumbprint: match kind {
                EntraCredentialKind::Certificate => row.entra_thumbprint.clone(),
                EntraCredentialKind::ClientSecret => None,
            },
        }),
        _ => None,
    }
}

/// What the associated data of `entra_secret`'s encryption binds it to: the column and the
/// kind, so that a secret cannot be read back as a private key (or the reverse) by editing the
/// kind column.
fn entra_secret_context(kind: EntraCredentialKind) -> String {
    format!("directory_config.entra_secret:{}:1", kind.as_str())
}

/// An Entra app credential as uploaded (`PUT /api/v1/directory/entra-credential`), unchecked.
pub enum EntraCredentialUpload {
    /// A client secret's value.
    ClientSecret(SecretString),
    /// A certificate (PEM) and its private key (PEM).
    Certificate {
        /// The certificate registered on the app.
        certificate_pem: String,
        /// Its private key.
        private_key_pem: SecretString,
    },
}

impl EntraCredentialUpload {
    /// The one form among the request's fields: `client_secret` alone, or `certificate_pem` with
    /// `private_key_pem`. 422 `invalid_entra_credential` for both forms, neither, or half of the
    /// certificate form: guessing which was meant could store a credential nobody chose.
    pub fn from_fields(
        client_secret: Option<SecretString>,
        certificate_pem: Option<String>,
        private_key_pem: Option<SecretString>,
    ) -> Result<EntraCredentialUpload> {
        let refused = |field: &'static str, message: &str| {
            crate::Error::invalid("invalid_entra_credential", message.to_string())
                .with_details(serde_json::json!({ "field": field }))
        };
        match (client_secret, certificate_pem, private_key_pem) {
            (Some(secret), None, None) => Ok(EntraCredentialUpload::ClientSecret(secret)),
            (None, Some(certificate_pem), Some(private_key_pem)) => {
                Ok(EntraCredentialUpload::Certificate {
                    certificate_pem,
                    private_key_pem,
                })
            }
            (Some(_), _, _) => Err(refused(
                "client_secret",
                "give either client_secret, or certificate_pem with private_key_pem, not both",
            )),
            (None, Some(_), None) => Err(refused(
                "private_key_pem",
                "certificate_pem needs private_key_pem, the certificate's private key",
            )),
            (None, None, Some(_)) => Err(refused(
                "certificate_pem",
                "private_key_pem needs certificate_pem, the certificate it belongs to",
            )),
            (None, None, None) => Err(refused(
                "client_secret",
                "give client_secret, or certificate_pem with private_key_pem",
            )),
        }
    }
}

/// Stores the Entra app's credential, replacing any before, and records
/// `directory.entra_credential.upload` by `actor` (kind and thumbprint, never the secret) in the
/// same transaction. A client secret is stored encrypted; a certificate is checked first
/// ([`crate::entra::credential::check_certificate`]), then stored in clear with its thumbprint
/// and its private key encrypted. Like the Google key, it may be uploaded whatever the provider
/// is (before switching to `microsoft_entra`, say). Returns the configuration before and after.
#[tracing::instrument(skip_all)]
pub async fn set_entra_credential(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    upload: EntraCredentialUpload,
    actor: &str,
) -> Result<(DirectoryView, DirectoryView)> {
    use secrecy::ExposeSecret;
    let (kind, secret, certificate_pem, thumbprint) = match upload {
        EntraCredentialUpload::ClientSecret(secret) => {
            let secret = crate::entra::credential::check_client_secret(secret.expose_secret())?;
            (EntraCredentialKind::ClientSecret, secret, None, None)
        }
        EntraCredentialUpload::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            let checked = crate::entra::credential::check_certificate(
                &certificate_pem,
                private_key_pem.expose_secret(),
                Utc::now(),
            )?;
            (
                EntraCredentialKind::Certificate,
                checked.private_key_pem,
                Some(checked.certificate_pem),
                Some(checked.thumbprint),
            )
        }
    };
    let txn = crate::db::begin_write(db).await?;
    let row = config_row(&txn).await?;
    let state = crate::sync::snapshot::load(&txn).await?;
    // Fails closed before writing anything when the stored settings do not decode.
    let before = view(&row, &state)?;
    let mut am: directory_config::ActiveModel = row.into();
    am.entra_credential_kind = Set(Some(kind));
    am.entra_secret = Set(Some(
        cipher.encrypt(secret.expose_secret(), &entra_secret_context(kind)),
    ));
    am.entra_certificate_pem = Set(certificate_pem);
    am.entra_thumbprint = Set(thumbprint);
    am.updated_at = Set(Utc::now());
    let after = view(&am.update(&txn).await?, &state)?;
    audit::record(
        &txn,
        actor,
        "directory.entra_credential.upload",
        "directory",
        None,
        serde_json::json!({"before": before.entra_credential, "after": after.entra_credential}),
    )
    .await?;
    txn.commit().await?;
    Ok((before, after))
}

/// The stored Entra credential, decrypted for use; 409 `not_configured` when none was uploaded.
pub fn entra_credential(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
) -> Result<crate::entra::Credential> {
    let (Some(kind), Some(sealed)) = (row.entra_credential_kind, &row.entra_secret) else {
        return Err(crate::Error::conflict(
            "not_configured",
            "no Entra credential has been uploaded: PUT /api/v1/directory/entra-credential",
        ));
    };
    let secret = cipher
        .decrypt(sealed, &entra_secret_context(kind))
        .map_err(|e| crate::Error::Internal(e.into()))?;
    Ok(match kind {
        EntraCredentialKind::ClientSecret => crate::entra::Credential::ClientSecret(secret),
        EntraCredentialKind::Certificate => crate::entra::Credential::Certificate {
            certificate_pem: row.entra_certificate_pem.clone().ok_or_else(|| {
                crate::Error::Internal(anyhow::anyhow!(
                    "directory_config.entra_certificate_pem is empty beside a certificate's key"
                ))
            })?,
            private_key_pem: secret,
        },
    })
}

/// The stored configuration as an Entra client needs it; 409 `not_configured` when the provider
/// is not `microsoft_entra`, or the tenant, client id or credential is missing.
pub fn entra_config(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
) -> Result<crate::entra::EntraConfig> {
    let missing = |what: &str| {
        crate::Error::conflict(
            "not_configured",
            format!("{what} is not set: PUT /api/v1/directory"),
        )
    };
    if row.provider != Provider::MicrosoftEntra {
        return Err(crate::Error::conflict(
            "not_configured",
            "the directory provider is not microsoft_entra: PUT /api/v1/directory first",
        ));
    }
    Ok(crate::entra::EntraConfig {
        tenant_id: row.tenant_id.clone().ok_or_else(|| missing("tenant_id"))?,
        client_id: row
            .entra_client_id
            .clone()
            .ok_or_else(|| missing("client_id"))?,
        credential: entra_credential(row, cipher)?,
        include_guests: row.include_guests,
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

/// How this server reaches each directory provider: what the sync runner, the connection test
/// and the group listing build their clients from.
#[derive(Clone, Debug)]
pub struct DirectoryAccess {
    /// Google Workspace.
    pub google: GoogleAccess,
    /// Microsoft Entra ID.
    pub entra: crate::entra::EntraAccess,
}

impl DirectoryAccess {
    /// From the server settings, with empty token caches.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        metrics: crate::metrics::Metrics,
    ) -> DirectoryAccess {
        DirectoryAccess {
            google: GoogleAccess::from_settings(settings, metrics.clone()),
            entra: crate::entra::EntraAccess::from_settings(settings, metrics),
        }
    }
}

/// The sync engine's reader of the configured directory (`crate::provider`); 409
/// `not_configured` when no directory is set up. A new provider adds its arm here.
pub fn provider_for(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
    access: &DirectoryAccess,
) -> Result<Box<dyn crate::provider::DirectoryProvider>> {
    match row.provider {
        Provider::GoogleWorkspace => Ok(Box::new(client_for(row, cipher, &access.google)?)),
        Provider::MicrosoftEntra => Ok(Box::new(graph_client_for(row, cipher, &access.entra)?)),
        Provider::None => Err(not_configured()),
    }
}

fn not_configured() -> crate::Error {
    crate::Error::conflict(
        "not_configured",
        "no directory is configured: PUT /api/v1/directory with a provider first",
    )
}

fn not_google() -> crate::Error {
    crate::Error::conflict(
        "not_configured",
        "the directory provider is not google_workspace: PUT /api/v1/directory first",
    )
}

/// A Microsoft Graph client for the stored configuration; 409 `not_configured` when the
/// directory is not set up for Microsoft Entra ID.
pub fn graph_client_for(
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
    entra: &crate::entra::EntraAccess,
) -> Result<crate::entra::GraphClient> {
    crate::entra::GraphClient::new(entra_config(row, cipher)?, entra)
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

/// Tests the connection to the configured directory with the stored settings (Google: key,
/// token, users, groups, the admin log; Entra: credential, token, users, groups). A failed test
/// queues `directory.test_failed` notifications with the result; the caller wakes the notifier.
/// 409 `not_configured` when there is nothing to test.
#[tracing::instrument(skip_all)]
pub async fn test_connection(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    access: &DirectoryAccess,
) -> Result<ConnectionTest> {
    let row = config_row(db).await?;
    let test = match row.provider {
        Provider::GoogleWorkspace => test_google(db, &row, cipher, &access.google).await?,
        Provider::MicrosoftEntra => {
            let steps = graph_client_for(&row, cipher, &access.entra)?
                .test_connection()
                .await;
            // The steps stop at the first failure: the test passed when every step ran and
            // passed.
            let ok = steps.len() == crate::entra::STEPS.len() && steps.iter().all(|s| s.ok);
            ConnectionTest { ok, steps }
        }
        Provider::None => return Err(not_configured()),
    };
    if !test.ok {
        let body = serde_json::to_value(&test).unwrap_or_default();
        crate::notifications::test_failed(db, body).await;
    }
    Ok(test)
}

async fn test_google(
    db: &DatabaseConnection,
    row: &directory_config::Model,
    cipher: &crate::secrets::Cipher,
    google: &GoogleAccess,
) -> Result<ConnectionTest> {
    let client = client_for(row, cipher, google)?;
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
    Ok(ConnectionTest {
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
    })
}

/// A group of the configured directory, as listed for choosing `sync_groups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// The directory's id of the group (what `sync_groups` may name).
    pub id: String,
    /// Its address; `None` for a group without one (an Entra security group).
    pub email: Option<String>,
    /// Display name.
    pub name: String,
    /// Direct members, when the directory's listing says (Google's does; Graph's does not,
    /// and counting would cost a request per group).
    pub direct_members_count: Option<u64>,
}

/// Every group of the configured directory, live (for choosing `sync_groups`).
#[tracing::instrument(skip_all)]
pub async fn list_groups(
    db: &DatabaseConnection,
    cipher: &crate::secrets::Cipher,
    access: &DirectoryAccess,
) -> Result<Vec<ListedGroup>> {
    let row = config_row(db).await?;
    match row.provider {
        Provider::GoogleWorkspace => {
            let groups = client_for(&row, cipher, &access.google)?
                .list_groups()
                .await?;
            Ok(groups
                .into_iter()
                .map(|g| ListedGroup {
                    id: g.id,
                    email: Some(g.email),
                    name: g.name,
                    direct_members_count: Some(g.direct_members_count),
                })
                .collect())
        }
        Provider::MicrosoftEntra => {
            let groups = graph_client_for(&row, cipher, &access.entra)?
                .list_groups()
                .await?;
            Ok(groups
                .into_iter()
                .map(|g| ListedGroup {
                    id: g.id,
                    email: g.email,
                    name: g.name,
                    direct_members_count: None,
                })
                .collect())
        }
        Provider::None => Err(not_configured()),
    }
}
