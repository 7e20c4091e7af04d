//! The one directory configuration (row id 1). JSON lists are stored as text; `sa_private_key` and `entra_secret` are encrypted.

use sea_orm::entity::prelude::*;

use crate::values::{EntraCredentialKind, Provider};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_config")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub provider: Provider,
    pub admin_email: Option<String>,
    pub customer_id: Option<String>,
    pub domain: Option<String>,
    pub sync_groups: String,
    pub auto_delete_users: bool,
    pub deletion_limit: Option<i32>,
    pub schedule_minutes: Option<i32>,
    pub default_privileges: String,
    pub default_folder_access: String,
    pub sa_client_email: Option<String>,
    pub sa_private_key_id: Option<String>,
    pub sa_client_id: Option<String>,
    pub sa_project_id: Option<String>,
    pub sa_token_uri: Option<String>,
    pub sa_private_key: Option<String>,
    pub updated_at: DateTimeUtc,
    /// Seconds between scheduled incremental jobs; `None`: none are scheduled.
    pub incremental_seconds: Option<i32>,
    /// Hours between scheduled full syncs while incremental jobs run.
    pub full_sync_hours: i32,
    /// How far before the cursor an incremental job reads the admin log (its lag).
    pub event_overlap_minutes: i32,
    /// Entra: the tenant (its GUID, or a verified domain).
    pub tenant_id: Option<String>,
    /// Entra: the app registration's application (client) id.
    pub entra_client_id: Option<String>,
    /// Entra: whether guests (`userType: Guest`) are in scope.
    pub include_guests: bool,
    /// Entra: which credential is stored; `None`: none yet.
    pub entra_credential_kind: Option<EntraCredentialKind>,
    /// Entra: the client secret, or the certificate's private key (PEM), encrypted.
    pub entra_secret: Option<String>,
    /// Entra: the certificate (PEM; public).
    pub entra_certificate_pem: Option<String>,
    /// Entra: the certificate's SHA-1 thumbprint (hex, upper case), as the Entra admin center
    /// shows it.
    pub entra_thumbprint: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
