//! The one JSON error shape, for every failure: domain errors, actix-web's own (unknown route,
//! wrong method, malformed or oversized JSON, wrong content type) and anything else.
//!
//! `{"error": {"code": "snake_case", "message": "...", "details": ...}}`

use actix_web::{
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{header, StatusCode},
    HttpRequest, HttpResponse, ResponseError,
};
use dirsync_core::{Error, ErrorKind};
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

    /// What went wrong and what to do, for people (without the code).
    pub fn message(&self) -> &str {
        &self.message
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

/// The one mapping of a domain error to an HTTP status (product.md §5): every [`Error`] answered
/// by this server gets its status here, whether as the JSON error shape or as the sign-in
/// flow's HTML page.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let shown = e.public();
        ApiError {
            status: status_of(shown.kind),
            code: shown.code.to_string(),
            message: shown.message,
            details: shown.details,
            retry_after: shown.retry_after_secs,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: Error) -> (u16, String) {
        let api = ApiError::from(e);
        (api.status_code().as_u16(), api.code)
    }

    /// The statuses of product.md §5, one per kind of error, with the codes callers match on.
    #[test]
    fn every_error_maps_to_its_documented_status_and_code() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::bad_request("invalid_state", "m"),
                400,
                "invalid_state",
            ),
            (
                Error::unauthenticated("unauthorized", "m"),
                401,
                "unauthorized",
            ),
            (
                Error::unauthenticated("invalid_credentials", "m"),
                401,
                "invalid_credentials",
            ),
            (Error::forbidden("forbidden", "m"), 403, "forbidden"),
            (Error::forbidden("user_disabled", "m"), 403, "user_disabled"),
            (Error::NotFound("user"), 404, "not_found"),
            (
                Error::conflict("sync_in_progress", "m"),
                409,
                "sync_in_progress",
            ),
            // Sign in with Google not configured: 409 like the directory's, not 503.
            (
                Error::conflict("not_configured", "m"),
                409,
                "not_configured",
            ),
            (
                Error::invalid("invalid_key_file", "m"),
                422,
                "invalid_key_file",
            ),
            (
                Error::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "rate_limited",
            ),
            (
                Error::Internal(anyhow::anyhow!("secret cause")),
                500,
                "internal_error",
            ),
            (
                Error::Db(sea_orm::DbErr::Custom("x".into())),
                500,
                "internal_error",
            ),
            (
                Error::upstream("unauthorized_client", "m"),
                502,
                "unauthorized_client",
            ),
            (
                Error::StoredDataInvalid {
                    column: "t.c",
                    message: "m".into(),
                },
                503,
                "stored_data_invalid",
            ),
            (
                Error::Db(sea_orm::DbErr::ConnectionAcquire(
                    sea_orm::error::ConnAcquireErr::Timeout,
                )),
                503,
                "database_unavailable",
            ),
        ];
        let mut kinds = std::collections::HashSet::new();
        for (e, status, code) in cases {
            kinds.insert(e.kind());
            assert_eq!(e.code(), code, "{e:?}");
            assert_eq!(answer(e), (status, code.to_string()), "{code}");
        }
        assert_eq!(kinds.len(), 10, "every kind is covered: {kinds:?}");
    }

    #[test]
    fn faults_show_only_an_error_id_and_limits_say_when_to_retry() {
        let api = ApiError::from(Error::Internal(anyhow::anyhow!("secret cause")));
        assert!(!api.message.contains("secret cause"), "{}", api.message);
        assert!(api.details.as_ref().unwrap()["error_id"].is_string());
        let api = ApiError::from(Error::RateLimited {
            retry_after_secs: 3,
        });
        assert_eq!(api.retry_after, Some(3));
        let api = ApiError::from(Error::Db(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        )));
        assert_eq!(
            api.retry_after,
            Some(dirsync_core::error::DATABASE_RETRY_AFTER_SECS)
        );
    }
}
