//! SeaORM entities of dirsync's database. The schema itself comes from `dirsync-migration`;
//! the models are never serialized to API clients. The values their columns store ([`values`]:
//! enums stored by name, JSON in text columns) are the domain's own, shared by the core and the
//! API.
#![forbid(unsafe_code)]

pub mod api_keys;
pub mod archive_folders;
pub mod audit_events;
pub mod auth_tests;
pub mod directory_config;
pub mod directory_state;
pub mod folder_access;
pub mod login_attempts;
pub mod notification_deliveries;
pub mod notification_endpoints;
pub mod oidc_config;
pub mod sessions;
pub mod sync_changes;
pub mod sync_jobs;
pub mod user_emails;
pub mod user_privileges;
pub mod users;
pub mod values;

pub use values::{
    Access, AuditDetails, AuthMethod, AuthTestStatus, ChangeKind, DeliveryStatus, EmailKind,
    EventType, Fields, JobKind, JobStatus, JsonText, Phase, Privilege, Provider, Role, StoredJson,
    Summary, Trigger, Undecodable, UnknownName,
};
