//! Google Workspace: the service-account key, access tokens through domain-wide delegation, and
//! a read-only Directory API client (users, groups, members) with paging, partial responses,
//! gzip, retries and timeouts as `shared/reference/google-apis.md` describes.
//!
//! The client is the sync engine's Google provider (`crate::provider::DirectoryProvider`,
//! implemented in `provider.rs`); its incremental read follows the admin log
//! (`incremental.rs`).
//!
//! Nothing here knows the Google emulator: base URLs come from configuration (the token URL
//! from the key file, accepted only when it is Google's or the configured one).
//!
//! ```no_run
//! # async fn demo(key_file: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use dirsync_core::google::{Account, ClientConfig, DirectoryClient, ServiceAccountKey};
//! let key = ServiceAccountKey::parse(key_file)?;
//! let config = ClientConfig::new(key, "https://admin.googleapis.com", "admin@example.com", Account::default());
//! let client = DirectoryClient::new(config)?;
//! let mut pages = client.users();
//! while let Some(page) = pages.next_page().await? {
//!     println!("{} users", page.len()); // report progress per page
//! }
//! assert!(pages.is_complete()); // the last page had no nextPageToken
//! # Ok(()) }
//! ```

pub mod activity;
mod client;
mod diagnose;
mod error;
mod guard;
pub mod incremental;
mod key;
mod model;
mod provider;
mod token;

#[cfg(test)]
mod fuzz_tests;

pub use client::{Account, ClientConfig, DirectoryClient, Hook, Pages, RetryPolicy};
pub use diagnose::{test_connection, ConnectionReport, Step};
pub use error::GoogleError;
pub use guard::{token_uri_allowed, GOOGLE_TOKEN_URL, GOOGLE_TOKEN_URLS};
pub use key::ServiceAccountKey;
pub use model::{Group, Listed, Member, MemberType, User};
pub use token::TokenCache;

/// The scopes dirsync asks for (product §2): read-only users, groups and members.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];
