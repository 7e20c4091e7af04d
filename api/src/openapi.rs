//! The OpenAPI document. Paths come from the routes themselves (utoipa-actix-web); this module
//! adds what applies to all of them: the servers, the tags, the bearer scheme, and the error
//! responses each operation can answer, all in the one error shape whose `code` is an enum of
//! [`ERROR_CODES`].

use utoipa::{
    openapi::{
        header::HeaderBuilder,
        path::Operation,
        schema::{ObjectBuilder, Schema, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, OpenApi as Doc, RefOr, Response, ResponseBuilder,
    },
    OpenApi, PartialSchema, ToSchema,
};

use crate::error::ErrorBody;

/// Every `code` an error body can carry. The schema's `ErrorCode` enum is this list, so a client
/// generated from the document knows them all; `every_error_code_in_the_sources_is_documented`
/// fails when code produces one that is missing here.
pub const ERROR_CODES: &[&str] = &[
    // Any route: actix-web's own refusals and the request's shape (api/src/error.rs).
    "bad_request",
    "malformed_json",
    "invalid_body",
    "invalid_query",
    "unauthorized",
    "forbidden",
    "cross_origin_request",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "payload_too_large",
    "unsupported_media_type",
    "rate_limited",
    "internal_error",
    "database_unavailable",
    "database_unreachable",
    "stored_data_invalid",
    "error",
    // Paging, users, privileges, folders, keys.
    "invalid_limit",
    "invalid_cursor",
    "invalid_q",
    "missing_email",
    "invalid_email",
    "duplicate_email",
    "invalid_user_name",
    "invalid_full_name",
    "invalid_password",
    "user_name_taken",
    "email_taken",
    "address_taken_meanwhile",
    "managed_by_directory",
    "unknown_privilege",
    "unknown_access",
    "unknown_folder",
    "duplicate_folder",
    "invalid_message_count",
    "invalid_name",
    // Directory, sync jobs, notifications.
    "invalid_directory_settings",
    "invalid_key_file",
    "token_uri_not_allowed",
    "not_configured",
    "provider_switch_blocked",
    "invalid_entra_credential",
    "invalid_certificate",
    "invalid_private_key",
    "certificate_expired",
    "certificate_key_mismatch",
    "invalid_confirm_deletions",
    "invalid_wait",
    "sync_in_progress",
    "job_finished",
    "invalid_notification_endpoint",
    "too_many_notification_endpoints",
    // A sync job's failure (in the job's `error`, the same shape): a sync group that does not
    // exist, a directory read as empty, an address two directory users claim.
    "unknown_group",
    "empty_directory",
    "address_clash",
    // Google, when the directory is read live (502).
    "unauthorized_client",
    "admin_not_found",
    "clock_skew",
    "invalid_key",
    "invalid_grant",
    "token_error",
    "admin_not_authorized",
    "insufficient_scopes",
    "domain_not_found",
    "unauthenticated",
    "google_unavailable",
    "google_unreachable",
    "google_timeout",
    "google_api_error",
    "malformed_response",
    "page_token_loop",
    "too_many_pages",
    "invalid_google_config",
    "jwt_signing_failed",
    // Microsoft Entra ID, when the directory is read live (502; the connection test's codes).
    "invalid_entra_config",
    "invalid_client_secret",
    "client_secret_expired",
    "unknown_application",
    "unknown_tenant",
    "certificate_not_registered",
    "application_disabled",
    "entra_token_error",
    "missing_permission",
    "entra_unavailable",
    "entra_unreachable",
    "entra_timeout",
    "graph_api_error",
    "next_link_not_allowed",
    // Signing in, sessions, test authentications.
    "invalid_oidc_settings",
    "invalid_redirect_uri",
    "invalid_credentials",
    "not_a_session",
    "not_a_directory_user",
    "not_synced",
    "invalid_state",
    "browser_mismatch",
    "issuer_mismatch",
    "missing_code",
    "google_error",
    "code_rejected",
    "code_exchange_failed",
    "client_rejected",
    "client_auth_unsupported",
    "redirect_uri_mismatch",
    "user_not_found",
    "wrong_account",
    "user_disabled",
    "login_not_allowed",
    "domain_not_allowed",
    "email_not_verified",
    "unknown_kid",
    "bad_signature",
    "malformed_id_token",
    "missing_claim",
    "wrong_issuer",
    "wrong_audience",
    "wrong_azp",
    "untrusted_audience",
    "unsupported_alg",
    "expired",
    "issued_in_future",
    "nonce_mismatch",
    "at_hash_mismatch",
];

/// The schema of an error body's `code`: the enum of [`ERROR_CODES`].
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable snake_case code to match on; new codes may be added in later versions.",
            ))
            .enum_values(Some(ERROR_CODES.iter().copied()))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// The document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dirsync",
        description = "Keeps a mail-archiving server's users in step with Google Workspace and \
            lets them sign in with Google.\n\nAuthenticate with `Authorization: Bearer <token>`: \
            an API key (roles `admin`, `operator`, `reader`) or a session token. Every error has \
            the shape `{\"error\": {\"code\", \"message\", \"details\"}}`, `code` being one of \
            the `ErrorCode` enum. Lists are paged with `limit` and `cursor`, answered with \
            `items` and `next_cursor`. Integer fields also take integral numbers such as `50.0`.",
        license(name = "Apache-2.0")
    ),
    servers((url = "/", description = "This server (the document is served by the API it describes)")),
    tags(
        (name = "directory", description = "Which directory to read (a Google Workspace account or a Microsoft Entra tenant), with which credential, and the sync rules (product.md §1, §2, §8)."),
        (name = "sync", description = "Sync jobs: dry runs and real runs, their progress, and the changes they planned or applied (§3)."),
        (name = "users", description = "Users of the archive server: local users managed here, directory users kept in step with Google."),
        (name = "privileges", description = "What each user may do on the archive server, and what users created by synchronization receive."),
        (name = "archive-folders", description = "One archive folder per user; the archive server reports their message counts."),
        (name = "sign-in", description = "Sign in with Google (OpenID Connect), local password sign-in, sessions, and test authentications (§4)."),
        (name = "api-keys", description = "Keys for other services and scripts, each with a role (`admin`, `operator`, `reader`)."),
        (name = "audit", description = "Who changed which setting, privilege, user or key, and when."),
        (name = "notifications", description = "Webhook endpoints told about failed, blocked and succeeded syncs, and the log of deliveries."),
        (name = "probes", description = "Health, readiness and Prometheus metrics, for load balancers and monitoring; no token needed."),
    ),
    security(("bearer" = [])),
    components(schemas(ErrorBody, ErrorCode))
)]
pub struct ApiDoc;

/// The error responses operations share, by status: the name they have under
/// `components.responses` and what they mean.
const ERROR_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Malformed request: the body is not JSON (`malformed_json`), the query string does not \
         parse (`invalid_query`), or the request cannot be served as sent",
    ),
    (
        "401",
        "Unauthorized",
        "No or invalid bearer token (`unauthorized`), or a failed sign-in",
    ),
    (
        "403",
        "Forbidden",
        "The caller's role does not allow this (`forbidden`), or a cross-origin write \
         (`cross_origin_request`)",
    ),
    ("404", "NotFound", "No such resource (`not_found`)"),
    (
        "409",
        "Conflict",
        "The request conflicts with the installation's state: something not configured yet \
         (`not_configured`), a job already running, a name or address taken",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the endpoint reads (64 KiB; `payload_too_large`)",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `application/json` (`unsupported_media_type`)",
    ),
    (
        "422",
        "UnprocessableEntity",
        "The request is well formed but not valid: `invalid_body` (the JSON does not fit the \
         schema) or a rule of the field named in `details` (`invalid_*`, `unknown_*`, …)",
    ),
];

/// Adds what every operation shares: the bearer scheme and the error responses. Applied after
/// the routes have added their paths. Which errors an operation documents follows from what it
/// takes: a JSON body can be malformed, too large, of the wrong type or invalid (400, 413, 415,
/// 422); a query string can fail to parse or hold an invalid value (400, 422); a path id can name
/// nothing (404); a token can be missing, or its role too low (401, 403); and every authenticated
/// request or sign-in start is rate limited (429). Statuses particular to one operation (409, a
/// 422 without a body) are in its own annotation; `default` covers 5xx.
pub fn apply_common(doc: &mut Doc) {
    {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`dsk_…`) or a session token (`dss_…`)"))
                    .build(),
            ),
        );
        // The one JSON error shape, as the body of every error response.
        let error_body = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build()
        };
        let error = |description: &str| -> Response {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", error_body())
                .build()
        };
        for (_, name, description) in ERROR_RESPONSES {
            components
                .responses
                .insert((*name).into(), error(description).into());
        }
        // Defined once and referred to from every operation that can answer it.
        components.responses.insert(
            "RateLimited".into(),
            ResponseBuilder::new()
                .description(
                    "Rate limited (`rate_limited`; per key or session, per client address for \
                     sign-in starts and failed authentication); retry after `Retry-After` seconds",
                )
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::Integer))
                        .description(Some("Seconds to wait"))
                        .build(),
                )
                .content("application/json", error_body())
                .into(),
        );
        let shared = |status: &str| -> RefOr<Response> {
            let name = ERROR_RESPONSES
                .iter()
                .find(|(s, _, _)| *s == status)
                .map_or("RateLimited", |(_, name, _)| name);
            RefOr::Ref(utoipa::openapi::Ref::from_response_name(name))
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            // Sign-in starts are limited per client address although they need no token.
            let signin = crate::limits::SIGNIN_ROUTES.contains(&path.as_str());
            // The browser flow answers errors as a small HTML page unless JSON is asked for.
            let browser = path.starts_with("/oidc/");
            let ops: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                use utoipa::openapi::path::ParameterIn;
                // An operation with `security(())` is public: it never answers 401/403.
                let public = op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                let params = op.parameters.as_deref().unwrap_or_default();
                let takes = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
                let mut statuses = Vec::new();
                if op.request_body.is_some() {
                    statuses.extend(["400", "413", "415", "422"]);
                }
                if takes(ParameterIn::Query) {
                    statuses.extend(["400", "422"]);
                }
                if takes(ParameterIn::Path) {
                    statuses.push("404");
                }
                if !public {
                    statuses.extend(["401", "403"]);
                }
                if !public || signin {
                    statuses.push("429");
                }
                let responses = &mut op.responses.responses;
                for status in statuses {
                    responses.entry(status.into()).or_insert_with(|| {
                        // Inline where text/html is added below: a shared response is shared.
                        match (browser, ERROR_RESPONSES.iter().find(|(s, ..)| *s == status)) {
                            (true, Some((_, _, description))) => error(description).into(),
                            _ => shared(status),
                        }
                    });
                }
                responses.entry("default".into()).or_insert_with(|| {
                    error("Any other error (5xx: `internal_error` with an error id, `database_unavailable`, a Google failure), in the one error shape").into()
                });
                if browser {
                    for (status, response) in responses.iter_mut() {
                        let failure = status == "default" || status.starts_with(['4', '5']);
                        if let (true, RefOr::T(r)) = (failure, response) {
                            r.content.entry("text/html".into()).or_insert_with(|| {
                                ContentBuilder::new()
                                    .schema(Some(
                                        utoipa::openapi::ObjectBuilder::new()
                                            .schema_type(utoipa::openapi::schema::Type::String),
                                    ))
                                    .build()
                            });
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::ERROR_CODES;

    /// Where an error's code is written in the sources, and how many arguments come before it.
    const PRODUCERS: &[(&str, usize)] = &[
        ("Error::invalid(", 0),
        ("Error::conflict(", 0),
        ("ApiError::new(", 1),
        ("SigninError::new(", 1),
        ("rejected(", 0),
        ("forbidden(", 0),
        ("code: \"", 0),
    ];

    /// The string literal that is argument `skip` of the call whose arguments start at `rest`.
    fn literal_argument(rest: &str, skip: usize) -> Option<&str> {
        let mut depth = 0usize;
        let mut commas = 0usize;
        for (i, c) in rest.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => return None,
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => commas += 1,
                '"' if depth == 0 && commas == skip => {
                    let text = &rest[i + 1..];
                    return text.find('"').map(|end| &text[..end]);
                }
                _ => {}
            }
        }
        None
    }

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Codes found where errors are made in `core/src` and `api/src`: the constructors above,
    /// Google's and Microsoft's error codes (`GoogleError::code`, `EntraError::code`), and
    /// actix-web's statuses (`for_status`).
    fn codes_in_sources() -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        sources(&root.join("core/src"), &mut files);
        sources(&root.join("api/src"), &mut files);
        let snake = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let mut found = BTreeSet::new();
        for file in files {
            if file.ends_with("openapi.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (marker, skip) in PRODUCERS {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let code = if marker.ends_with('"') {
                        rest.split('"').next()
                    } else {
                        literal_argument(rest, *skip)
                    };
                    found.extend(code.filter(|c| snake(c)).map(str::to_string));
                }
            }
            for line in text.lines() {
                let line = line.trim();
                let google = (line.starts_with("GoogleError::")
                    || line.starts_with("EntraError::"))
                    && line.contains("=> \"");
                let status =
                    line.starts_with(|c: char| c.is_ascii_digit()) && line.contains("=> (\"");
                if google || status {
                    let code = line.split('"').nth(1).unwrap_or_default();
                    if snake(code) {
                        found.insert(code.to_string());
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_error_code_in_the_sources_is_documented() {
        let found = codes_in_sources();
        // Field names given as `code: "..."` elsewhere are not error codes.
        let not_codes = ["field", "rule"];
        let missing: Vec<_> = found
            .iter()
            .filter(|c| !ERROR_CODES.contains(&c.as_str()) && !not_codes.contains(&c.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "error codes used in code but missing from ERROR_CODES (the documented enum): {missing:?}"
        );
        // The scan must keep finding the codes: if the way errors are written changes, update
        // PRODUCERS rather than let this test pass on nothing.
        assert!(
            found.len() >= 60,
            "only {} codes found: {found:?}",
            found.len()
        );
    }

    #[test]
    fn error_codes_are_listed_once() {
        let unique: BTreeSet<_> = ERROR_CODES.iter().collect();
        assert_eq!(unique.len(), ERROR_CODES.len());
    }

    #[test]
    fn every_operation_has_a_summary_a_description_and_described_responses() {
        let doc = crate::openapi_document();
        let mut count = 0;
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                count += 1;
                let summary = op.summary.as_deref().unwrap_or_default();
                assert!(
                    !summary.is_empty() && !summary.contains('\n') && summary.len() <= 80,
                    "{path}: summary {summary:?} is not one short line"
                );
                let description = op.description.as_deref().unwrap_or_default();
                assert!(!description.is_empty(), "{path}: no description");
                for (status, response) in &op.responses.responses {
                    if let utoipa::openapi::RefOr::T(r) = response {
                        assert!(!r.description.is_empty(), "{path} {status}: no description");
                    }
                }
            }
        }
        assert!(count >= 40, "only {count} operations");
    }
}
