//! The actix-web application: routes, and what every Google endpoint does before its own work
//! (counting, latency, quota, injected failures).

use actix_web::middleware::Compress;
use actix_web::{web, App, HttpResponse};

use crate::errors::{api_error, api_error_default};
use crate::state::{Endpoint, RateLimitStyle, State};
use crate::{control_api, directory_api, oauth, oidc, reports_api};

/// Registers every route. The OpenID Connect code exchange shares `/token` (see
/// [`crate::oauth`]).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/token", web::post().to(oauth::token))
        // Older key files say https://accounts.google.com/o/oauth2/token.
        .route("/o/oauth2/token", web::post().to(oauth::token))
        .configure(oidc::routes)
        .service(web::scope("/admin/directory/v1").configure(directory_api::routes))
        .service(web::scope("/admin/reports/v1").configure(reports_api::routes))
        .service(web::scope("/_emulator").configure(control_api::routes))
        .default_service(web::to(unknown_route));
}

pub(crate) fn app(
    state: web::Data<State>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let counter = state.clone();
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
        .app_data(web::JsonConfig::default().limit(64 * 1024 * 1024))
        .wrap(Compress::default())
        // Google compresses only for clients that send `Accept-Encoding: gzip` and a User-Agent
        // containing "gzip"; count such requests so tests can check a client does both.
        .wrap_fn(move |req, srv| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("gzip"))
            };
            if req.path().starts_with("/admin/")
                && header("accept-encoding")
                && header("user-agent")
            {
                counter
                    .gzip_requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            actix_web::dev::Service::call(srv, req)
        })
        .configure(routes)
}

async fn unknown_route(state: web::Data<State>) -> HttpResponse {
    if let Some(resp) = preamble(&state, Endpoint::Other).await {
        return resp;
    }
    api_error(404, "notFound", "Not Found")
}

/// Counts the request, applies latency, the quota cap and injected failures. `Some` is the
/// response to send instead of doing the endpoint's work.
pub(crate) async fn preamble(state: &State, endpoint: Endpoint) -> Option<HttpResponse> {
    state.count(endpoint);
    let latency = state.latency(endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if endpoint.is_directory() {
        if let Some(retry_after_secs) = state.over_quota() {
            let mut r = api_error(
                429,
                "rateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com' for consumer 'project_number:000000000000'.",
            );
            r.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_secs),
            );
            return Some(r);
        }
        if let Some(style) = state.over_rate_limit() {
            return Some(match style {
                RateLimitStyle::Forbidden403 => api_error(
                    403,
                    "userRateLimitExceeded",
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com' for consumer 'project_number:000000000000'.",
                ),
                RateLimitStyle::TooMany429 { retry_after_secs } => {
                    let mut r = api_error(429, "rateLimitExceeded", "Rate Limit Exceeded");
                    r.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from(retry_after_secs),
                    );
                    r
                }
            });
        }
    }
    let spec = state.take_fail(endpoint)?;
    let mut resp = if endpoint == Endpoint::Token {
        oauth::injected(spec.status, spec.reason.as_deref(), spec.message.as_deref())
    } else if spec.reason.is_some() || spec.message.is_some() {
        let (r, m) = crate::errors::default_reason(spec.status);
        api_error(
            spec.status,
            spec.reason.as_deref().unwrap_or(r),
            spec.message.as_deref().unwrap_or(m),
        )
    } else {
        api_error_default(spec.status)
    };
    if let Some(secs) = spec.retry_after_secs {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(secs),
        );
    }
    Some(resp)
}
