//! Google's error bodies: the Directory API's `{"error":{"code","message","errors":[..]}}` and the
//! OAuth token endpoint's `{"error","error_description"}`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// Default reason and message for a Directory API status.
pub(crate) fn default_reason(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("badRequest", "Bad Request"),
        401 => ("authError", "Invalid Credentials"),
        403 => ("forbidden", "Not Authorized to access this resource/api"),
        404 => ("notFound", "Resource Not Found"),
        409 => ("duplicate", "Entity already exists."),
        412 => ("conditionNotMet", "Precondition Failed"),
        429 => ("rateLimitExceeded", "Rate Limit Exceeded"),
        500 => ("internalError", "Internal error encountered."),
        502 => ("backendError", "Bad Gateway"),
        503 => ("backendError", "The service is currently unavailable."),
        504 => ("backendError", "Deadline exceeded."),
        _ => ("unknown", "Error"),
    }
}

fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// A Directory API error response.
pub(crate) fn api_error(status: u16, reason: &str, message: &str) -> HttpResponse {
    let mut item = json!({"message": message, "domain": "global", "reason": reason});
    if status == 401 {
        item["location"] = json!("Authorization");
        item["locationType"] = json!("header");
    }
    let top_message = if status == 401 {
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    } else {
        message
    };
    let body = json!({"error": {
        "code": status,
        "message": top_message,
        "errors": [item],
        "status": status_name(status),
    }});
    let mut resp = HttpResponse::build(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    if status == 401 {
        resp.insert_header((
            "WWW-Authenticate",
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ));
    }
    resp.content_type("application/json; charset=UTF-8")
        .body(body.to_string())
}

/// A Directory API error with the default reason and message for `status`.
pub(crate) fn api_error_default(status: u16) -> HttpResponse {
    let (reason, message) = default_reason(status);
    api_error(status, reason, message)
}

/// A Directory API error as a value (handlers return `Result<HttpResponse, ApiError>`).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.reason, self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        api_error(self.status, self.reason, &self.message)
    }
}

fn err(status: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        reason,
        message: message.into(),
    }
}

pub(crate) fn not_found(what: &str) -> ApiError {
    err(404, "notFound", format!("Resource Not Found: {what}"))
}

pub(crate) fn domain_not_found() -> ApiError {
    err(404, "notFound", "Domain not found.")
}

pub(crate) fn bad_request(message: &str) -> ApiError {
    err(400, "badRequest", message)
}

pub(crate) fn invalid(message: &str) -> ApiError {
    err(400, "invalid", message)
}

pub(crate) fn invalid_parameter(message: &str) -> ApiError {
    err(400, "invalidParameter", message)
}

pub(crate) fn forbidden() -> ApiError {
    err(
        403,
        "forbidden",
        "Not Authorized to access this resource/api",
    )
}

pub(crate) fn insufficient_scopes() -> ApiError {
    err(
        403,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
    )
}

pub(crate) fn unauthenticated() -> ApiError {
    err(401, "authError", "Invalid Credentials")
}

/// An OAuth token endpoint error.
pub(crate) fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .insert_header((
            "Cache-Control",
            "no-cache, no-store, max-age=0, must-revalidate",
        ))
        .content_type("application/json; charset=utf-8")
        .body(json!({"error": error, "error_description": description}).to_string())
}

/// Default OAuth `error` and description for a status (fault injection).
pub(crate) fn oauth_default(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("invalid_grant", "Bad Request"),
        401 => (
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        ),
        403 => ("access_denied", "Access denied."),
        408 => ("temporarily_unavailable", "Request timed out."),
        429 => ("rate_limit_exceeded", "Rate limit exceeded."),
        500 => ("internal_failure", "Backend Error"),
        503 => ("temporarily_unavailable", "The service is currently unavailable."),
        _ => ("server_error", "Server error."),
    }
}

pub(crate) const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";
pub(crate) const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
