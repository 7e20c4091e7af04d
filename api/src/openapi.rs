//! The OpenAPI document. Paths come from the routes themselves (utoipa-actix-web); this module
//! adds what applies to all of them: the bearer scheme and the error responses.

use utoipa::{
    openapi::{
        header::HeaderBuilder,
        path::Operation,
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, OpenApi as Doc, RefOr, Response, ResponseBuilder,
    },
    OpenApi, ToSchema,
};

use crate::error::ErrorBody;

/// The document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dirsync",
        description = "Keeps a mail-archiving server's users in step with Google Workspace and \
            lets them sign in with Google.\n\nAuthenticate with `Authorization: Bearer <token>`: \
            an API key (roles `admin`, `operator`, `reader`) or a session token. Every error has \
            the shape `{\"error\": {\"code\", \"message\", \"details\"}}`. Lists are paged with \
            `limit` and `cursor`, answered with `items` and `next_cursor`.",
        license(name = "Apache-2.0")
    ),
    security(("bearer" = [])),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// Adds what every operation shares: the bearer scheme and the error responses. Applied after
/// the routes have added their paths.
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
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", error_body())
                .into()
        };
        // Defined once and referred to from every operation that can answer it.
        components.responses.insert(
            "RateLimited".into(),
            ResponseBuilder::new()
                .description(
                    "Rate limited (per key or session, per client address for sign-in starts \
                     and failed authentication); retry after `Retry-After` seconds",
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
        let rate_limited = || RefOr::Ref(utoipa::openapi::Ref::from_response_name("RateLimited"));
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
                // An operation with `security(())` is public: it never answers 401/403.
                let public = op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                let responses = &mut op.responses.responses;
                if !public {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| error("No or invalid bearer token"));
                    responses
                        .entry("403".into())
                        .or_insert_with(|| error("The caller's role does not allow this"));
                }
                if !public || signin {
                    responses.entry("429".into()).or_insert_with(rate_limited);
                }
                responses
                    .entry("default".into())
                    .or_insert_with(|| error("Any other error, in the one error shape"));
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
