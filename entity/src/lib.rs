//! SeaORM entities of dirsync's database. The schema itself comes from `dirsync-migration`;
//! these types are never serialized to API clients.
#![forbid(unsafe_code)]

pub mod users;
pub mod user_emails;
pub mod archive_folders;
pub mod user_privileges;
pub mod folder_access;
pub mod directory_config;
pub mod oidc_config;
pub mod sync_jobs;
pub mod sync_changes;
pub mod directory_groups;
pub mod group_memberships;
pub mod api_keys;
pub mod sessions;
pub mod auth_tests;
pub mod login_attempts;
pub mod audit_events;
