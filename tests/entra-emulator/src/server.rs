//! The actix-web application: routes, and what every endpoint does before its own work
//! (counting, latency, Graph's rate limit, injected failures).

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{web, App, HttpRequest, HttpResponse};

use crate::graph::{default_error, graph_error, RequestIds};
use crate::state::{Endpoint, State};
use crate::{control_api, graph, token};

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
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
        .app_data(web::JsonConfig::default().limit(64 * 1024 * 1024))
        // Graph and the sign-in service live on different hosts at Microsoft; here one listener
        // serves both, their paths do not overlap.
        .service(web::scope("/v1.0").configure(graph::routes))
        .service(web::scope("/_emulator").configure(control_api::routes))
        .configure(token::routes)
        .default_service(web::to(unknown_route))
}

async fn unknown_route(state: web::Data<State>, req: HttpRequest) -> HttpResponse {
    if let Some(resp) = preamble(&state, &req, Endpoint::Other).await {
        return resp;
    }
    let ids = RequestIds::of(&req);
    graph_error(
        400,
        "BadRequest",
        &format!(
            "Resource not found for the segment '{}'.",
            req.path().rsplit('/').next().unwrap_or("")
        ),
        &ids,
    )
}

/// Counts the request, waits the latency, applies the rate cap (Graph only) and injected
/// failures. `Some` is the response to send instead of the endpoint's.
pub(crate) async fn preamble(
    state: &State,
    req: &HttpRequest,
    endpoint: Endpoint,
) -> Option<HttpResponse> {
    state.count(endpoint);
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let ids = RequestIds::of(req);
    if endpoint.is_graph() {
        if let Some(secs) = state.over_rate_limit() {
            let (code, message) = default_error(429);
            let mut r = graph_error(429, code, message, &ids);
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            return Some(r);
        }
    }
    let spec = state.take_fail(endpoint)?;
    let mut resp = if endpoint.is_graph() {
        let (code, message) = default_error(spec.status);
        graph_error(
            spec.status,
            spec.code.as_deref().unwrap_or(code),
            message,
            &ids,
        )
    } else {
        token::injected(spec.status, spec.code.as_deref())
    };
    if let Some(secs) = spec.retry_after_secs {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    Some(resp)
}
