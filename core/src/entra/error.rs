//! What can go wrong talking to Microsoft, phrased as instructions for the administrator.
//!
//! The token endpoint's failures are told apart by their AADSTS code (`error_codes`), never by
//! the description text (reference §1); Graph's by status and `error.code` (§4). No message
//! ever holds the client secret, the client assertion or an access token.

use std::time::Duration;

/// An error from the token endpoint or Microsoft Graph. `Display` is a message for the
/// administrator (what happened and what to do); [`EntraError::code`] is a stable identifier.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EntraError {
    /// The stored credential does not parse (a certificate or private key that is not PEM).
    #[error("the app registration's credential cannot be used: {0}; upload the certificate and its private key again (PEM) with PUT /api/v1/directory/entra-credential")]
    InvalidCredential(String),
    /// The client configuration is unusable (a bad URL, an empty client id or tenant).
    #[error("invalid Microsoft Entra ID configuration: {0}")]
    Config(String),
    /// AADSTS7000215: the secret is not one of the app's.
    #[error(
        "Microsoft Entra ID refused the client secret of application {client_id} (AADSTS7000215, invalid client secret): \
         upload the secret's Value, not its Secret ID (Microsoft Entra admin center → App registrations → the app → \
         Certificates & secrets), with PUT /api/v1/directory/entra-credential"
    )]
    InvalidClientSecret {
        /// The app's client id.
        client_id: String,
    },
    /// AADSTS7000222: the secret has expired.
    #[error(
        "the client secret of application {client_id} has expired (AADSTS7000222): create a new client secret \
         (Microsoft Entra admin center → App registrations → the app → Certificates & secrets → New client secret) \
         and upload its Value with PUT /api/v1/directory/entra-credential, or switch to a certificate, which Microsoft recommends"
    )]
    ClientSecretExpired {
        /// The app's client id.
        client_id: String,
    },
    /// AADSTS700016: no such app in that tenant.
    #[error(
        "no application with client id {client_id} exists in tenant {tenant} (AADSTS700016): set client_id to the \
         Application (client) ID shown on the app registration's Overview page, and check that tenant_id is the tenant \
         the app is registered in"
    )]
    UnknownApplication {
        /// The configured client id.
        client_id: String,
        /// The configured tenant.
        tenant: String,
    },
    /// AADSTS90002: no such tenant.
    #[error(
        "Microsoft Entra ID does not know the tenant {tenant} (AADSTS90002): set tenant_id to the Directory (tenant) ID \
         shown on the app registration's Overview page, or to one of the tenant's verified domains"
    )]
    UnknownTenant {
        /// The configured tenant.
        tenant: String,
    },
    /// AADSTS700027: the assertion's certificate is not on the app, or its signature does not
    /// verify with it.
    #[error(
        "the certificate dirsync signs with (SHA-256 thumbprint {thumbprint}) is not registered on application {client_id}, \
         or the private key is not the certificate's (AADSTS700027): upload the certificate under Microsoft Entra admin center → \
         App registrations → the app → Certificates & secrets → Certificates, and upload that certificate's own private key to dirsync"
    )]
    CertificateNotRegistered {
        /// The app's client id.
        client_id: String,
        /// Hex SHA-256 of the certificate (what the portal's thumbprint column is not: that
        /// one is SHA-1; the certificate is the same).
        thumbprint: String,
    },
    /// AADSTS700024: the assertion is outside its validity window, so this server's clock is off.
    #[error("Microsoft Entra ID rejected the client assertion's time (AADSTS700024: {description}): check this server's clock (NTP)")]
    ClockSkew {
        /// Microsoft's description (first line).
        description: String,
    },
    /// AADSTS7000112: the app's service principal is disabled.
    #[error(
        "application {client_id} is disabled in the tenant (AADSTS7000112): enable it (Microsoft Entra admin center → \
         Enterprise applications → the app → Properties → Enabled for users to sign-in)"
    )]
    ApplicationDisabled {
        /// The app's client id.
        client_id: String,
    },
    /// Any other token endpoint error.
    #[error("Microsoft Entra ID's token endpoint answered {status} {error} (AADSTS{aadsts}): {description}")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// The first AADSTS code (0 when there was none).
        aadsts: u32,
        /// Microsoft's description (first line).
        description: String,
    },
    /// Graph 403 `Authorization_RequestDenied`: an application permission lacks admin consent.
    #[error(
        "Microsoft Graph denied reading {what} (403 Authorization_RequestDenied): application {client_id} lacks the \
         application permission {permission}. Add it (Microsoft Entra admin center → App registrations → the app → \
         API permissions → Add a permission → Microsoft Graph → Application permissions → {permission}), then grant admin \
         consent for the tenant"
    )]
    MissingPermission {
        /// `User.Read.All` or `GroupMember.Read.All`.
        permission: &'static str,
        /// What was being read (`users`, `groups`, `the members of group …`).
        what: String,
        /// The app's client id.
        client_id: String,
    },
    /// Graph 404 on a named object.
    #[error("{what} was not found in Microsoft Entra ID ({message})")]
    NotFound {
        /// What was asked for.
        what: String,
        /// Graph's message.
        message: String,
    },
    /// Graph 401 again after a fresh token.
    #[error("Microsoft Graph rejected a fresh access token ({message}); check the app registration and try again")]
    Unauthenticated {
        /// Graph's message.
        message: String,
    },
    /// 429, still after every attempt.
    #[error("Microsoft's throttling persisted on {endpoint} after {attempts} attempts ({code}); try again later")]
    RateLimited {
        /// Endpoint, e.g. `users.list`.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Graph's `error.code`.
        code: String,
    },
    /// 5xx, still after every attempt.
    #[error("Microsoft is unavailable: {endpoint} answered {status} after {attempts} attempts; try again later")]
    Unavailable {
        /// Endpoint.
        endpoint: &'static str,
        /// Last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Connection failures, still after every attempt.
    #[error("could not reach Microsoft ({endpoint}) after {attempts} attempts: {message}; check network access and DIRSYNC_MICROSOFT_LOGIN_URL / DIRSYNC_MICROSOFT_GRAPH_URL")]
    Unreachable {
        /// Endpoint.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The transport error.
        message: String,
    },
    /// No answer within the request timeout, still after every attempt.
    #[error("Microsoft did not answer {endpoint} within {timeout:?} ({attempts} attempts); try again later")]
    Timeout {
        /// Endpoint.
        endpoint: &'static str,
        /// The per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// Any other Graph error (400 and others): not retried.
    #[error("Microsoft Graph answered {status} {code} on {endpoint}: {message}")]
    Api {
        /// Endpoint.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// Graph's `error.code`.
        code: String,
        /// Graph's message.
        message: String,
    },
    /// A body that is not the expected JSON (or a user without the fields every user has).
    #[error(
        "Microsoft sent a malformed response on {endpoint} ({detail}); the listing is incomplete"
    )]
    MalformedResponse {
        /// Endpoint.
        endpoint: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// An `@odata.nextLink` pointing outside the configured Graph URL: never followed, since
    /// the request would carry the access token there.
    #[error("Microsoft Graph's next page link on {endpoint} points outside DIRSYNC_MICROSOFT_GRAPH_URL ({graph_url}); it was not followed and the listing is incomplete")]
    NextLinkNotAllowed {
        /// Endpoint.
        endpoint: &'static str,
        /// The configured Graph URL.
        graph_url: String,
    },
    /// The same next link twice: following it would loop.
    #[error("Microsoft Graph repeated a next page link while listing {endpoint}; stopped to avoid looping, the listing is incomplete")]
    PageLinkLoop {
        /// Endpoint.
        endpoint: &'static str,
    },
    /// More pages than the bound.
    #[error("listing {endpoint} went past {max_pages} pages; stopped, the listing is incomplete")]
    TooManyPages {
        /// Endpoint.
        endpoint: &'static str,
        /// The bound.
        max_pages: usize,
    },
    /// Signing the client assertion failed.
    #[error("could not sign the client assertion: {0}")]
    Signing(String),
}

impl EntraError {
    /// A stable snake_case identifier of the variant.
    pub fn code(&self) -> &'static str {
        match self {
            EntraError::InvalidCredential(_) => "invalid_entra_credential",
            EntraError::Config(_) => "invalid_entra_config",
            EntraError::InvalidClientSecret { .. } => "invalid_client_secret",
            EntraError::ClientSecretExpired { .. } => "client_secret_expired",
            EntraError::UnknownApplication { .. } => "unknown_application",
            EntraError::UnknownTenant { .. } => "unknown_tenant",
            EntraError::CertificateNotRegistered { .. } => "certificate_not_registered",
            EntraError::ClockSkew { .. } => "clock_skew",
            EntraError::ApplicationDisabled { .. } => "application_disabled",
            EntraError::TokenEndpoint { .. } => "entra_token_error",
            EntraError::MissingPermission { .. } => "missing_permission",
            EntraError::NotFound { .. } => "not_found",
            EntraError::Unauthenticated { .. } => "unauthenticated",
            EntraError::RateLimited { .. } => "rate_limited",
            EntraError::Unavailable { .. } => "entra_unavailable",
            EntraError::Unreachable { .. } => "entra_unreachable",
            EntraError::Timeout { .. } => "entra_timeout",
            EntraError::Api { .. } => "graph_api_error",
            EntraError::MalformedResponse { .. } => "malformed_response",
            EntraError::NextLinkNotAllowed { .. } => "next_link_not_allowed",
            EntraError::PageLinkLoop { .. } => "page_token_loop",
            EntraError::TooManyPages { .. } => "too_many_pages",
            EntraError::Signing(_) => "jwt_signing_failed",
        }
    }
}

/// Where a Microsoft failure leaves this module: an upstream error keeping the code and the
/// administrator's instructions.
impl From<EntraError> for crate::Error {
    fn from(e: EntraError) -> Self {
        crate::Error::upstream(e.code(), e.to_string())
    }
}

/// A transport failure as an [`EntraError`], with reqwest's causes (its top-level message is
/// generic) but never the request (the URL holds no secret; the body does, and is not shown).
pub(crate) fn transport_error(
    endpoint: &'static str,
    attempts: u32,
    timeout: Duration,
    e: &reqwest::Error,
) -> EntraError {
    if e.is_timeout() {
        return EntraError::Timeout {
            endpoint,
            timeout,
            attempts,
        };
    }
    let message = crate::retry::failure_words(e);
    EntraError::Unreachable {
        endpoint,
        attempts,
        message,
    }
}
