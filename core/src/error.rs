//! What can go wrong in the domain. The `api` crate maps each variant to one HTTP status and the
//! one JSON error body, in one place.

use sea_orm::{DbErr, SqlErr};
use serde_json::Value;

/// A domain error. `code` fields are stable snake_case identifiers that callers may match on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is well-formed but its content breaks a rule (422).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// The request itself is malformed (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The named thing does not exist (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with the current state (409).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the needed role (403).
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests (429).
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A stored setting does not decode (a damaged row, or one written by another version):
    /// whatever depends on it is refused rather than run on an empty or default value (503).
    #[error("{message}")]
    StoredDataInvalid {
        /// `table.column` of the setting.
        column: &'static str,
        /// What is wrong and how to repair it.
        message: String,
    },
    /// An upstream service (Google) refused or failed (502).
    #[error("{message}")]
    Upstream { code: String, message: String },
    /// A database error: logged with an error id, never shown to callers (500).
    #[error("database error: {0}")]
    Db(#[source] DbErr),
    /// Anything else unexpected: logged with an error id, never shown to callers (500).
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<DbErr> for Error {
    /// A typed column whose stored text does not decode is [`Error::StoredDataInvalid`] naming
    /// the column, like a setting that does not decode; any other database error is a 500.
    fn from(e: DbErr) -> Self {
        match dirsync_entity::Undecodable::of(&e) {
            Some(u) => crate::stored::undecodable(u),
            None => Error::Db(e),
        }
    }
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 422 with a code and message.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A 409 with a code and message.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds machine-readable details to an `Invalid` or `Conflict` error.
    pub fn with_details(mut self, value: Value) -> Self {
        match &mut self {
            Error::Invalid { details, .. } | Error::Conflict { details, .. } => {
                *details = Some(value)
            }
            _ => {}
        }
        self
    }
}

/// Turns unique-constraint violations into a chosen error, so that a clash found by the database
/// (the only place that can find it without races) reaches the caller as a 409.
pub trait DbResultExt<T> {
    /// Maps a unique-constraint violation to `f()`; other database errors pass through.
    fn on_unique_violation(self, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, DbErr> {
    fn on_unique_violation(self, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => f(),
            _ => Error::Db(e),
        })
    }
}

impl<T> DbResultExt<T> for Result<T> {
    fn on_unique_violation(self, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e {
            Error::Db(db) if matches!(db.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                f()
            }
            other => other,
        })
    }
}
