//! What can go wrong, in every part of `core`: the one error type. Each error has a stable
//! snake_case `code` that callers may match on, a message for people (what went wrong and what
//! to do) and optional machine-readable details; [`Error::public`] is how it is shown. Its
//! [`ErrorKind`] says what sort of failure it is, and the `api` crate maps each kind to one HTTP
//! status, in one place (`api/src/error.rs`).

use sea_orm::{DbErr, SqlErr};
use serde_json::Value;

/// A domain error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is well-formed but its content breaks a rule (422).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// The request itself is unusable, e.g. an unknown or reused sign-in `state` (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The named thing does not exist (404 `not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with the current state, including a feature that is not configured
    /// yet (`not_configured`): the installation's state, not a server fault (409).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    /// No credentials, or credentials that are not valid (401; `unauthorized` for tokens,
    /// `invalid_credentials` for passwords, the ID-token checks for sign-in).
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// Valid credentials that may not do this (403; `forbidden` for roles, `user_disabled` and
    /// the like for sign-in).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
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
    Upstream { code: &'static str, message: String },
    /// A database error: logged with an error id, never shown to callers (500), or 503
    /// `database_unavailable` when the database cannot be reached.
    #[error("database error: {0}")]
    Db(#[source] DbErr),
    /// Anything else unexpected: logged with an error id, never shown to callers (500).
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// What sort of failure an error is: all that the HTTP layer needs to pick a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is unusable (400).
    BadRequest,
    /// No or bad credentials (401).
    Unauthenticated,
    /// Not allowed (403).
    Forbidden,
    /// No such thing (404).
    NotFound,
    /// Clashes with the current state (409).
    Conflict,
    /// Breaks a rule (422).
    Invalid,
    /// Too many requests (429).
    RateLimited,
    /// A fault of this server: only an error id is shown (500).
    Internal,
    /// Google refused or failed (502).
    Upstream,
    /// Cannot serve now: the database is unreachable or a stored setting does not decode (503).
    Unavailable,
}

/// An error as callers see it: never with database text or internals.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicError {
    /// What sort of failure.
    pub kind: ErrorKind,
    /// Stable snake_case code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Machine-readable details, when there are any.
    pub details: Option<Value>,
    /// When to try again, for a rate limit or an unreachable database.
    pub retry_after_secs: Option<u64>,
}

/// `Retry-After` of a `database_unavailable`: long enough not to hammer a database that is
/// coming back, short enough that a restart is barely noticed.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 2;

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

    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 401 with a code and message.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    /// A 403 with a code and message.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A 502 with a code and message.
    pub fn upstream(code: &'static str, message: impl Into<String>) -> Self {
        Error::Upstream {
            code,
            message: message.into(),
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

    /// What sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::BadRequest { .. } => ErrorKind::BadRequest,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            Error::Forbidden { .. } => ErrorKind::Forbidden,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::StoredDataInvalid { .. } => ErrorKind::Unavailable,
            Error::Upstream { .. } => ErrorKind::Upstream,
            Error::Db(db) if crate::db::is_unavailable(db) => ErrorKind::Unavailable,
            Error::Db(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable code callers see (and metrics count).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { code, .. }
            | Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Unauthenticated { code, .. }
            | Error::Forbidden { code, .. }
            | Error::Upstream { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::RateLimited { .. } => "rate_limited",
            Error::StoredDataInvalid { .. } => "stored_data_invalid",
            Error::Db(db) if crate::db::is_unavailable(db) => "database_unavailable",
            Error::Db(_) | Error::Internal(_) => "internal_error",
        }
    }

    /// The error as callers are shown it, wherever that is (an HTTP answer, a failed job). A
    /// fault of this server is logged here under a fresh error id, and only the id is shown: the
    /// details of a database or internal error are for the log, never for callers.
    pub fn public(self) -> PublicError {
        let kind = self.kind();
        let code = self.code();
        let shown = |message: String, details: Option<Value>| PublicError {
            kind,
            code,
            message,
            details,
            retry_after_secs: None,
        };
        match self {
            Error::Invalid {
                message, details, ..
            }
            | Error::Conflict {
                message, details, ..
            } => shown(message, details),
            Error::BadRequest { message, .. }
            | Error::Unauthenticated { message, .. }
            | Error::Forbidden { message, .. }
            | Error::Upstream { message, .. } => shown(message, None),
            e @ Error::NotFound(_) => shown(e.to_string(), None),
            e @ Error::RateLimited { retry_after_secs } => PublicError {
                retry_after_secs: Some(retry_after_secs),
                ..shown(e.to_string(), None)
            },
            Error::StoredDataInvalid { column, message } => {
                shown(message, Some(serde_json::json!({ "column": column })))
            }
            Error::Db(db) if kind == ErrorKind::Unavailable => {
                tracing::warn!(error = %db, "database unavailable");
                PublicError {
                    retry_after_secs: Some(DATABASE_RETRY_AFTER_SECS),
                    ..shown("the database cannot be reached; retry shortly".into(), None)
                }
            }
            e @ (Error::Db(_) | Error::Internal(_)) => {
                let id = uuid::Uuid::new_v4();
                tracing::error!(error_id = %id, error = %e, "internal error");
                shown(
                    format!("internal error; quote error id {id} to the administrator"),
                    Some(serde_json::json!({ "error_id": id })),
                )
            }
        }
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
