//! What can go wrong talking to Google, phrased as instructions for the administrator.

use std::time::Duration;

/// An error from the token endpoint or the Directory API. `Display` is a message for the
/// administrator (what happened and what to do); [`GoogleError::code`] is a stable identifier.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GoogleError {
    /// 401 `unauthorized_client`: domain-wide delegation is missing or lacks a scope.
    #[error(
        "Google refused to issue an access token (unauthorized_client): grant domain-wide delegation to client id {client_id} for scopes {scopes} \
         (Admin console → Security → Access and data control → API controls → Domain-wide delegation; enter the numeric client id, not the e-mail). \
         A new grant can take up to 24 hours to apply"
    )]
    UnauthorizedClient {
        /// The numeric client id to grant.
        client_id: String,
        /// The scopes to grant, comma-separated.
        scopes: String,
    },
    /// 400 `invalid_grant` "Invalid email or User ID": the impersonated admin does not exist.
    #[error(
        "admin_email {admin_email} does not exist in Google Workspace (invalid_grant: Invalid email or User ID): set admin_email to the address of an existing super administrator"
    )]
    AdminNotFound {
        /// The configured admin.
        admin_email: String,
    },
    /// 400 `invalid_grant` about `iat`/`exp`: this server's clock is off.
    #[error("Google rejected the token request because of the time (invalid_grant: {description}): check this server's clock (NTP)")]
    ClockSkew {
        /// Google's description.
        description: String,
    },
    /// 400 `invalid_grant` "Invalid JWT Signature." or an unknown account: the key is not valid.
    #[error(
        "Google does not accept the service-account key {private_key_id} (invalid_grant: {description}): the key or its service account was deleted or disabled; \
         create a new JSON key and upload it"
    )]
    InvalidKey {
        /// The key's id.
        private_key_id: String,
        /// Google's description.
        description: String,
    },
    /// Another `invalid_grant`.
    #[error("Google refused the token request (invalid_grant: {description})")]
    InvalidGrant {
        /// Google's description.
        description: String,
    },
    /// The key's `token_uri` is neither Google's token endpoint nor `DIRSYNC_GOOGLE_TOKEN_URL`:
    /// nothing is sent to it.
    #[error(
        "the key file's token_uri {token_uri} is not one of Google's token endpoints ({google}) nor the server setting \
         DIRSYNC_GOOGLE_TOKEN_URL ({configured}); nothing was sent to it. Upload the key file exactly as Google produced it"
    )]
    TokenUriNotAllowed {
        /// The key file's `token_uri`.
        token_uri: String,
        /// Google's endpoints, comma-separated.
        google: String,
        /// `DIRSYNC_GOOGLE_TOKEN_URL`.
        configured: String,
    },
    /// Any other token endpoint error (`invalid_scope`, retries exhausted, ...).
    #[error("Google's token endpoint answered {status} {error}: {description}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// 403 `forbidden`: the impersonated user is not an administrator.
    #[error(
        "admin_email {admin_email} is not a Workspace administrator (Google answered 403 Not Authorized to access this resource/api): \
         use the address of a super administrator, and check that domain-wide delegation is complete"
    )]
    NotAdmin {
        /// The configured admin.
        admin_email: String,
    },
    /// 403 `insufficientPermissions`: a needed scope is not in the token.
    #[error("the access token lacks a needed scope ({message}): grant domain-wide delegation for scopes {scopes}")]
    InsufficientScopes {
        /// The scopes dirsync needs.
        scopes: String,
        /// Google's message.
        message: String,
    },
    /// 404 `Domain not found.`: wrong customer id or domain (or admin of another account).
    #[error("Google answered 404 Domain not found for {account}: check customer_id / domain (and that admin_email belongs to that account)")]
    DomainNotFound {
        /// `customer my_customer` or `domain example.com`.
        account: String,
    },
    /// 404 on a named resource (e.g. a group that does not exist).
    #[error("{what} was not found in Google Workspace ({message})")]
    NotFound {
        /// What was asked for, e.g. `group staff@example.com`.
        what: String,
        /// Google's message.
        message: String,
    },
    /// 401 again after refreshing the token once.
    #[error("Google rejected a fresh access token ({message}); check the service account and delegation")]
    Unauthenticated {
        /// Google's message.
        message: String,
    },
    /// 429 or a 403 rate-limit reason, still after every attempt.
    #[error("Google's rate limit persisted on {endpoint} after {attempts} attempts ({reason}): try again later, or raise the Admin SDK quota")]
    RateLimited {
        /// Endpoint, e.g. `users.list`.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Google's reason.
        reason: String,
    },
    /// 5xx, still after every attempt.
    #[error("Google is unavailable: {endpoint} answered {status} after {attempts} attempts; try again later")]
    Unavailable {
        /// Endpoint.
        endpoint: &'static str,
        /// Last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Connection failures, still after every attempt.
    #[error("could not reach Google ({endpoint}) after {attempts} attempts: {message}; check network access and the configured Google URLs")]
    Unreachable {
        /// Endpoint.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The transport error.
        message: String,
    },
    /// No answer within the total request timeout, still after every attempt.
    #[error("Google did not answer {endpoint} within {timeout:?} ({attempts} attempts); try again later")]
    Timeout {
        /// Endpoint.
        endpoint: &'static str,
        /// The per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// Any other Directory API error (400 and others): not retried.
    #[error("Google answered {status} {reason} on {endpoint}: {message}")]
    Api {
        /// Endpoint.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// Google's reason.
        reason: String,
        /// Google's message.
        message: String,
    },
    /// A body that is not the expected JSON (e.g. cut off).
    #[error(
        "Google sent a malformed response on {endpoint} ({detail}); the listing is incomplete"
    )]
    MalformedResponse {
        /// Endpoint.
        endpoint: &'static str,
        /// The parse error.
        detail: String,
    },
    /// Google sent a page token it had already sent: following it would loop.
    #[error("Google repeated a page token while listing {endpoint}; stopped to avoid looping, the listing is incomplete")]
    PageTokenLoop {
        /// Endpoint.
        endpoint: &'static str,
    },
    /// More pages than the configured bound.
    #[error("listing {endpoint} went past {max_pages} pages; stopped, the listing is incomplete")]
    TooManyPages {
        /// Endpoint.
        endpoint: &'static str,
        /// The bound.
        max_pages: usize,
    },
    /// The client configuration is unusable (e.g. a bad base URL).
    #[error("invalid Google client configuration: {0}")]
    Config(String),
    /// Signing the JWT failed.
    #[error("could not sign the token request: {0}")]
    Signing(String),
}

impl GoogleError {
    /// A stable snake_case identifier of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            GoogleError::UnauthorizedClient { .. } => "unauthorized_client",
            GoogleError::AdminNotFound { .. } => "admin_not_found",
            GoogleError::ClockSkew { .. } => "clock_skew",
            GoogleError::InvalidKey { .. } => "invalid_key",
            GoogleError::InvalidGrant { .. } => "invalid_grant",
            GoogleError::TokenUriNotAllowed { .. } => "token_uri_not_allowed",
            GoogleError::TokenEndpoint { .. } => "token_error",
            GoogleError::NotAdmin { .. } => "admin_not_authorized",
            GoogleError::InsufficientScopes { .. } => "insufficient_scopes",
            GoogleError::DomainNotFound { .. } => "domain_not_found",
            GoogleError::NotFound { .. } => "not_found",
            GoogleError::Unauthenticated { .. } => "unauthenticated",
            GoogleError::RateLimited { .. } => "rate_limited",
            GoogleError::Unavailable { .. } => "google_unavailable",
            GoogleError::Unreachable { .. } => "google_unreachable",
            GoogleError::Timeout { .. } => "google_timeout",
            GoogleError::Api { .. } => "google_api_error",
            GoogleError::MalformedResponse { .. } => "malformed_response",
            GoogleError::PageTokenLoop { .. } => "page_token_loop",
            GoogleError::TooManyPages { .. } => "too_many_pages",
            GoogleError::Config(_) => "invalid_google_config",
            GoogleError::Signing(_) => "jwt_signing_failed",
        }
    }

    /// Whether the problem is in the configuration (key, delegation, admin, account) rather than
    /// a passing failure of Google or the network.
    pub fn is_configuration_problem(&self) -> bool {
        matches!(
            self,
            GoogleError::UnauthorizedClient { .. }
                | GoogleError::AdminNotFound { .. }
                | GoogleError::ClockSkew { .. }
                | GoogleError::InvalidKey { .. }
                | GoogleError::InvalidGrant { .. }
                | GoogleError::TokenUriNotAllowed { .. }
                | GoogleError::NotAdmin { .. }
                | GoogleError::InsufficientScopes { .. }
                | GoogleError::DomainNotFound { .. }
                | GoogleError::Config(_)
        )
    }
}

/// Where a Google failure leaves this module: an upstream error keeping Google's code and the
/// administrator's instructions.
impl From<GoogleError> for crate::Error {
    fn from(e: GoogleError) -> Self {
        crate::Error::upstream(e.code(), e.to_string())
    }
}
