//! dirsync's domain: settings, storage, secrets, callers' authentication, the Google client,
//! the sync engine, sign-in and privileges. Nothing here knows about HTTP frameworks: the `api`
//! crate translates requests into calls of this crate.
#![forbid(unsafe_code)]

pub mod access_token;
pub mod audit;
pub mod auth;
pub mod db;
pub mod directory;
pub mod entra;
pub mod error;
pub mod folders;
pub mod google;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod notifications;
pub mod oidc;
pub mod outbound;
pub mod paging;
pub mod password;
pub mod privileges;
pub mod provider;
pub mod rate_limit;
pub mod retry;
pub mod secrets;
pub mod settings;
pub mod stored;
pub mod sync;
pub mod users;

pub use error::{Error, ErrorKind, PublicError, Result};
