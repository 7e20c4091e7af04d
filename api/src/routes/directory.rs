//! The directory configuration: which directory to read (a Google Workspace account or a
//! Microsoft Entra tenant), with which credential, and the sync rules.

use actix_web::{get, post, put, web};
use dirsync_core::directory::Provider;
use dirsync_core::{directory, google::ServiceAccountKey};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Admin, Auth, Operator};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_config)
        .service(put_config)
        .service(upload_service_account)
        .service(upload_entra_credential)
        .service(test_connection)
        .service(list_groups);
}

/// The editable directory settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "google_workspace", "admin_email": "admin@example.com", "customer_id": "my_customer", "domain": null, "sync_groups": ["staff@example.com"], "auto_delete_users": false, "deletion_limit": null, "schedule_minutes": 60}))]
pub struct DirectorySettings {
    /// `google_workspace`, `microsoft_entra` or `none`. A change while directory users exist is
    /// refused (409 `provider_switch_blocked`); an allowed change clears the other providers'
    /// credentials and the incremental state.
    pub provider: Provider,
    /// The Workspace administrator to impersonate (domain-wide delegation). Required for
    /// `google_workspace`; refused with `microsoft_entra`.
    #[serde(default)]
    pub admin_email: Option<String>,
    /// `my_customer` (the admin's own account, the default) or a customer id; not with `domain`.
    /// Google Workspace only.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Read only this domain of the account; not with `customer_id`. Google Workspace only.
    #[serde(default)]
    pub domain: Option<String>,
    /// The Entra tenant: its Directory (tenant) ID (a GUID) or one of its verified domains
    /// (`contoso.onmicrosoft.com`). Required for `microsoft_entra`; refused with other providers.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The Entra app registration's Application (client) ID (a GUID). Required for
    /// `microsoft_entra`; refused with other providers.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Sync Entra guests (`userType: Guest`) too (default false). `true` is refused with other
    /// providers.
    #[serde(default)]
    pub include_guests: bool,
    /// Groups whose members (nested groups followed) are synced, by address (for
    /// `microsoft_entra` also by group id, a GUID); empty = every user.
    #[serde(default)]
    pub sync_groups: Vec<String>,
    /// Delete directory users that left the directory or the sync groups (default false: report
    /// them).
    #[serde(default)]
    pub auto_delete_users: bool,
    /// Most deletions a run may make unconfirmed; null = 10 % of directory users, at least 5.
    #[serde(default, deserialize_with = "crate::integer::json_opt")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub deletion_limit: Option<u32>,
    /// Run a sync every N minutes (1 to 10080); null = no schedule.
    #[serde(default, deserialize_with = "crate::integer::json_opt")]
    #[schema(minimum = 1, maximum = 10080)]
    pub schedule_minutes: Option<u32>,
    /// Run an incremental sync every N seconds (10 to 86400), following Google's admin log;
    /// null = off (the default). Needs the audit scope
    /// `https://www.googleapis.com/auth/admin.reports.audit.readonly` in the domain-wide
    /// delegation.
    #[serde(default, deserialize_with = "crate::integer::json_opt")]
    #[schema(minimum = 10, maximum = 86400)]
    pub incremental_seconds: Option<u32>,
    /// While incremental sync is on, run a full sync every N hours as the safety net (1 to 720,
    /// default 24).
    #[serde(
        default = "default_full_sync_hours",
        deserialize_with = "crate::integer::json"
    )]
    #[schema(minimum = 1, maximum = 720, default = 24)]
    pub full_sync_hours: u32,
    /// Minutes of the admin log read again before the cursor, for the log's lag (0 to 1440,
    /// default 10).
    #[serde(
        default = "default_event_overlap_minutes",
        deserialize_with = "crate::integer::json"
    )]
    #[schema(minimum = 0, maximum = 1440, default = 10)]
    pub event_overlap_minutes: u32,
}

fn default_full_sync_hours() -> u32 {
    24
}

fn default_event_overlap_minutes() -> u32 {
    10
}

/// Read the directory configuration.
///
/// The directory configuration, with the uploaded Google service account (never its key) and
/// the uploaded Entra credential (its kind and a certificate's thumbprint; never the secret or
/// the key). `provider` says which directory is read.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "directory", operation_id = "get_directory", responses((status = 200, description = "The directory configuration", body = directory::DirectoryView)))]
#[get("/directory")]
async fn get_config(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<directory::DirectoryView>, ApiError> {
    Ok(web::Json(directory::get(&state.db).await?))
}

/// Replace the directory settings.
///
/// Replaces the directory settings. The credential is uploaded separately
/// (`PUT /api/v1/directory/service-account` for Google,
/// `PUT /api/v1/directory/entra-credential` for Entra). Google's fields and Entra's apply to
/// their own provider only: a request that mixes them is a 422 naming the field. Changing
/// `provider` while directory users exist is a 409 `provider_switch_blocked` (delete those users
/// first, or keep the provider); an allowed change clears the credentials of the other providers
/// and the incremental state, so the new directory starts with a full sync.
///
/// Role: admin.
#[utoipa::path(tag = "directory", operation_id = "put_directory", request_body = DirectorySettings,
    responses((status = 200, description = "The saved configuration", body = directory::DirectoryView),
        (status = 409, description = "A provider switch while directory users exist (`provider_switch_blocked`) or a sync job is active (`sync_in_progress`)", body = crate::error::ErrorBody)))]
#[put("/directory")]
async fn put_config(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<DirectorySettings>,
) -> Result<web::Json<directory::DirectoryView>, ApiError> {
    let b = body.into_inner();
    let settings = directory::DirectorySettings {
        provider: b.provider,
        admin_email: b.admin_email,
        customer_id: b.customer_id,
        domain: b.domain,
        tenant_id: b.tenant_id,
        client_id: b.client_id,
        include_guests: b.include_guests,
        sync_groups: b.sync_groups,
        auto_delete_users: b.auto_delete_users,
        deletion_limit: b.deletion_limit,
        schedule_minutes: b.schedule_minutes,
        incremental_seconds: b.incremental_seconds,
        full_sync_hours: b.full_sync_hours,
        event_overlap_minutes: b.event_overlap_minutes,
    };
    let (before, after) = directory::update(&state.db, &caller.actor(), settings).await?;
    // A token obtained on behalf of another admin is not kept around.
    if before
        .as_ref()
        .and_then(|b| b.settings.admin_email.as_ref())
        != after.settings.admin_email.as_ref()
    {
        state.directory.google.tokens.clear();
    }
    Ok(web::Json(after))
}

/// Largest key file accepted (Google's are about 2.4 KB).
const KEY_FILE_LIMIT: usize = 64 * 1024;

/// Upload the service-account key.
///
/// Uploads the service-account key file exactly as Google Cloud produced it (the JSON file,
/// as the request body). `client_email` and `private_key_id` are read from it; the private key
/// is stored encrypted and never shown again. A file that is not a service-account key is a 422
/// naming the field that is wrong; a `token_uri` that is not Google's token endpoint (nor the
/// server setting `DIRSYNC_GOOGLE_TOKEN_URL`) is a 422 `token_uri_not_allowed`.
///
/// Role: admin.
#[utoipa::path(tag = "directory", operation_id = "put_service_account",
    request_body(content = Object, description = "The service-account key file (JSON)", content_type = "application/json"),
    responses((status = 200, description = "The configuration with the new service account", body = directory::DirectoryView)))]
#[put("/directory/service-account")]
async fn upload_service_account(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<web::Json<directory::DirectoryView>, ApiError> {
    if body.len() > KEY_FILE_LIMIT {
        return Err(ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("a key file is at most {KEY_FILE_LIMIT} bytes"),
        ));
    }
    let key = ServiceAccountKey::parse(&body)?;
    let (_, after) = directory::set_service_account(
        &state.db,
        &state.cipher,
        &key,
        &state.directory.google.token_url,
        &caller.actor(),
    )
    .await?;
    // Tokens of the previous key are not used again.
    state.directory.google.tokens.clear();
    Ok(web::Json(after))
}

/// The Entra app credential: a client secret, or a certificate with its private key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"certificate_pem": "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n", "private_key_pem": "-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----\n"}))]
pub struct EntraCredentialBody {
    /// The client secret's Value (Certificates & secrets in the app registration). Not with
    /// `certificate_pem`.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub client_secret: Option<SecretString>,
    /// The certificate registered on the app (PEM, RSA, not expired). With `private_key_pem`.
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// The certificate's private key (PEM, PKCS#8 or PKCS#1 RSA, unencrypted). With
    /// `certificate_pem`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub private_key_pem: Option<SecretString>,
}

/// Upload the Entra app's credential.
///
/// Stores the credential dirsync signs in to Microsoft Entra ID with, replacing any before:
/// `{"client_secret": "..."}`, or `{"certificate_pem": "...", "private_key_pem": "..."}`
/// (Microsoft's recommendation: no shared secret). Exactly one form (422
/// `invalid_entra_credential` otherwise). A certificate is checked first: X.509 RSA of 2048 bits
/// or more (`invalid_certificate`), not expired (`certificate_expired`), its private key in
/// PKCS#8 or PKCS#1 PEM without a passphrase (`invalid_private_key`) and matching it
/// (`certificate_key_mismatch`). PKCS#12 (`.pfx`) files are not read: convert them to PEM
/// (`openssl pkcs12 -in app.pfx -nodes`). The secret and the key are stored encrypted and never
/// shown again; `entra_credential` shows the kind and a certificate's SHA-1 thumbprint, as the
/// Entra admin center does. Like the service-account key, it may be uploaded before `provider`
/// is set to `microsoft_entra`.
///
/// Role: admin.
#[utoipa::path(tag = "directory", operation_id = "put_entra_credential",
    request_body = EntraCredentialBody,
    responses((status = 200, description = "The configuration with the new credential", body = directory::DirectoryView)))]
#[put("/directory/entra-credential")]
async fn upload_entra_credential(
    caller: Auth<Admin>,
    state: web::Data<AppState>,
    body: web::Json<EntraCredentialBody>,
) -> Result<web::Json<directory::DirectoryView>, ApiError> {
    let b = body.into_inner();
    let upload = directory::EntraCredentialUpload::from_fields(
        b.client_secret,
        b.certificate_pem,
        b.private_key_pem,
    )?;
    let (_, after) =
        directory::set_entra_credential(&state.db, &state.cipher, upload, &caller.actor()).await?;
    // Tokens of the replaced credential are not kept around.
    state.directory.entra.tokens.clear();
    Ok(web::Json(after))
}

/// Test the connection to the directory.
///
/// Tests the connection to the configured directory with the stored settings. Google Workspace:
/// key parsed, access token obtained (domain-wide delegation), users readable, groups readable,
/// and the admin log (`events_readable`). Microsoft Entra ID: `credential_parsed`,
/// `token_obtained`, `users_readable` (`User.Read.All`), `groups_readable`
/// (`GroupMember.Read.All`). A failing step says what to fix.
///
/// Role: operator (or admin).
#[utoipa::path(tag = "directory", operation_id = "test_directory_connection",
    responses((status = 200, description = "The steps run and what each found (a failed step is a 200 too)", body = directory::ConnectionTest),
        (status = 409, description = "No service account or directory settings yet (`not_configured`)", body = crate::error::ErrorBody)))]
#[post("/directory/test")]
async fn test_connection(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<directory::ConnectionTest>, ApiError> {
    let test = directory::test_connection(&state.db, &state.cipher, &state.directory).await?;
    if !test.ok {
        // The core queued the notifications; deliver them now rather than at the next poll.
        state.notifier.wake();
    }
    Ok(web::Json(test))
}

/// A group of the configured directory (Google Workspace or Microsoft Entra ID).
#[derive(Debug, Serialize, ToSchema)]
pub struct GoogleGroup {
    /// The directory's id of the group (`sync_groups` takes it, or the address).
    pub id: String,
    /// Address (what `sync_groups` takes); null for a Microsoft Entra group without one (a
    /// security group: name it by id). Always set for Google.
    pub email: Option<String>,
    /// Name.
    pub name: String,
    /// Direct members (nested ones not counted); null for Microsoft Entra ID, whose group
    /// listing does not say (counting would cost a request per group). Always set for Google.
    pub direct_members_count: Option<u64>,
}

/// List the directory's groups.
///
/// Every group of the account, live from the configured directory (Google Workspace or
/// Microsoft Entra ID), for choosing `sync_groups`. Answered in one page (`next_cursor` is
/// always null).
///
/// Role: operator (or admin).
#[utoipa::path(tag = "directory", operation_id = "list_directory_groups",
    responses((status = 200, description = "Every group, in one page", body = super::Paged<GoogleGroup>),
        (status = 409, description = "No service account or directory settings yet (`not_configured`)", body = crate::error::ErrorBody),
        (status = 502, description = "The directory refused or failed (`code` names why: `unauthorized_client`, `admin_not_found`, `missing_permission`, …)", body = crate::error::ErrorBody)))]
#[get("/directory/groups")]
async fn list_groups(
    _caller: Auth<Operator>,
    state: web::Data<AppState>,
) -> Result<web::Json<super::Paged<GoogleGroup>>, ApiError> {
    let groups = directory::list_groups(&state.db, &state.cipher, &state.directory).await?;
    Ok(web::Json(super::Paged {
        items: groups
            .into_iter()
            .map(|g| GoogleGroup {
                id: g.id,
                email: g.email,
                name: g.name,
                direct_members_count: g.direct_members_count,
            })
            .collect(),
        next_cursor: None,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dirsync_core::directory::{DirectorySettings, DirectoryView, Provider, ServiceAccountInfo};
    use utoipa::openapi::{schema::Schema, RefOr};
    use utoipa::PartialSchema;

    /// `DirectoryView`'s schema is built by hand from the settings' derived one: it must name
    /// every field serde writes, and no other.
    #[test]
    fn the_directory_schema_names_every_field_of_the_view() {
        let view = DirectoryView {
            settings: DirectorySettings {
                provider: Provider::GoogleWorkspace,
                admin_email: Some("admin@example.com".into()),
                customer_id: Some("my_customer".into()),
                domain: None,
                tenant_id: None,
                client_id: None,
                include_guests: false,
                sync_groups: vec![],
                auto_delete_users: false,
                deletion_limit: None,
                schedule_minutes: None,
                incremental_seconds: None,
                full_sync_hours: 24,
                event_overlap_minutes: 10,
            },
            service_account: Some(ServiceAccountInfo {
                client_email: "sa@example.iam.gserviceaccount.com".into(),
                private_key_id: "k".into(),
                client_id: None,
                project_id: None,
            }),
            entra_credential: Some(dirsync_core::directory::EntraCredentialInfo {
                kind: dirsync_core::directory::EntraCredentialKind::Certificate,
                thumbprint: Some("AB".into()),
            }),
            incremental: dirsync_core::directory::IncrementalStatus {
                cursor: None,
                last_job_id: None,
                available: false,
                reason: None,
            },
        };
        let serde_json::Value::Object(wire) = serde_json::to_value(&view).unwrap() else {
            panic!("a view serializes to an object");
        };
        let RefOr::T(Schema::Object(schema)) = DirectoryView::schema() else {
            panic!("the schema is an object");
        };
        let wire: BTreeSet<&String> = wire.keys().collect();
        let documented: BTreeSet<&String> = schema.properties.keys().collect();
        assert_eq!(wire, documented);
    }
}
