//! The one JSON error shape, for every failure: domain errors, actix-web's own (unknown route,
//! wrong method, malformed or oversized JSON, wrong content type) and anything else.
//!
//! `{"error": {"code": "snake_case", "message": "...", "details": ...}}`

use actix_web::{
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{header, StatusCode},
    HttpRequest, HttpResponse, ResponseError,
};
use dirsync_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code to match on.
    #[schema(value_type = crate::openapi::ErrorCode)]
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// Machine-readable details, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// A response error that renders as the JSON error shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The body for a status with no more specific error, e.g. one produced by actix-web itself.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "the request is malformed"),
            401 => (
                "unauthorized",
                "send Authorization: Bearer <API key or session token>",
            ),
            403 => ("forbidden", "this caller may not do this"),
            404 => (
                "not_found",
                "no such resource; see /swagger-ui/ for the API",
            ),
            405 => ("method_not_allowed", "this path does not take this method"),
            408 => ("request_timeout", "the request took too long to arrive"),
            413 => ("payload_too_large", "the request body is too large"),
            415 => (
                "unsupported_media_type",
                "send the body as application/json",
            ),
            429 => ("rate_limited", "too many requests; slow down"),
            _ if status.is_server_error() => ("internal_error", "internal error"),
            _ => ("error", "the request failed"),
        };
        ApiError::new(status, code, message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        resp.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.clone(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid {
                code,
                message,
                details,
            } => ApiError {
                details,
                ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            },
            Error::BadRequest { code, message } => {
                ApiError::new(StatusCode::BAD_REQUEST, code, message)
            }
            Error::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            Error::Conflict {
                code,
                message,
                details,
            } => ApiError {
                details,
                ..ApiError::new(StatusCode::CONFLICT, code, message)
            },
            Error::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m),
            Error::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            Error::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests; retry after {retry_after_secs} s"),
                )
            },
            Error::Upstream { code, message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, message)
            }
            Error::Db(db) if dirsync_core::db::is_unavailable(&db) => {
                tracing::warn!(error = %db, "database unavailable");
                ApiError {
                    retry_after: Some(DATABASE_RETRY_AFTER_SECS),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_unavailable",
                        "the database cannot be reached; retry shortly",
                    )
                }
            }
            Error::StoredDataInvalid { column, message } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stored_data_invalid",
                message,
            )
            .with_details(serde_json::json!({ "column": column })),
            e @ (Error::Db(_) | Error::Internal(_)) => internal(&e),
        }
    }
}

/// `Retry-After` of a 503 `database_unavailable`: long enough not to hammer a database that is
/// coming back, short enough that a restart is barely noticed.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// Logs the cause under a fresh error id and returns a 500 carrying only that id.
pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %cause, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        format!("internal error; quote error id {id} to the administrator"),
    )
    .with_details(serde_json::json!({ "error_id": id }))
}

/// Maps actix-web's JSON body errors: syntax → 400, wrong fields → 422, size → 413, type → 415.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the JSON body does not fit this endpoint: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the request body could not be read: {other}"),
        ),
    };
    api.into()
}

/// Maps query-string errors to 400.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("the query string is not valid here: {err}"),
    )
    .into()
}

/// Maps path-parameter errors (e.g. an id that is not a UUID) to 404: no such resource exists.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such resource ({err})"),
    )
    .into()
}
