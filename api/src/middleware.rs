//! Cross-cutting request handling: a request id and tracing span per request, request metrics,
//! and the guarantee that every error leaves in the one JSON shape — also those produced by
//! actix-web itself or by middleware, which know nothing of it.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method, StatusCode},
    middleware::Next,
    web, HttpRequest, HttpResponse, ResponseError,
};
use tracing::Instrument;

use crate::error::ApiError;

/// Answers slower than this are logged at info even when they are routine reads.
const SLOW: f64 = 1.0;

/// Header carrying the request id, echoed back to the caller.
pub const REQUEST_ID: &str = "x-request-id";

/// Wraps every request: see the module doc.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // The path only: query strings may carry OAuth codes and states, which are not logged.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path()
    );
    let started = Instant::now();
    let res = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();
    let status = res.status();
    let mut res = if status.is_client_error() || status.is_server_error() {
        ensure_json_error(res)
    } else {
        res
    };
    if let Ok(v) = header::HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static(REQUEST_ID), v);
    }
    secure_headers(&mut res);

    // The pattern of the route that answered — one of the server's, never the caller's text —
    // or one fixed name for everything else.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(state) = res
        .request()
        .app_data::<web::Data<crate::state::AppState>>()
    {
        state.metrics.http_request(
            res.request().method().as_str(),
            &route,
            status.as_u16(),
            elapsed,
        );
    }
    // Every request is counted in /metrics. The log gets, at info, those worth reading: writes,
    // failures and slow answers. Successful reads are debug: a mail server routing by lookup
    // asks thousands of times a second, and a line for each would drown the rest (and cost a
    // tenth of a lookup's CPU). `RUST_LOG=info,dirsync_api::middleware=debug` logs them all.
    let read = matches!(*res.request().method(), Method::GET | Method::HEAD);
    let routine = read && (status.is_success() || status.is_redirection()) && elapsed < SLOW;
    span.in_scope(|| {
        let elapsed_ms = (elapsed * 1000.0) as u64;
        if routine {
            tracing::debug!(status = status.as_u16(), elapsed_ms, "request finished");
        } else {
            tracing::info!(status = status.as_u16(), elapsed_ms, "request finished");
        }
    });
    Ok(res)
}

/// Headers every response gets: no sniffing; no caching of API and sign-in answers (they carry
/// tokens or private data); HSTS when this server speaks TLS; a content security policy on
/// Swagger UI.
fn secure_headers(res: &mut ServiceResponse<BoxBody>) {
    // A handle on the request (reference-counted), so that its path can be read while the
    // headers are changed. The routed path: `/%61pi/v1/me` is `/api/v1/me`, and as private.
    let req = res.request().clone();
    let path = crate::limits::routed_path(&req);
    let tls = req
        .app_data::<web::Data<crate::state::AppState>>()
        .is_some_and(|s| s.settings.tls_cert.is_some());
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if (path.starts_with("/api/") || path.starts_with("/oidc/"))
        && !h.contains_key(header::CACHE_CONTROL)
    {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    if path.starts_with("/swagger-ui") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            ),
        );
    }
}

fn ensure_json_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // Sign-in failures shown to browsers are deliberate HTML pages (routes::signin).
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json {
        return res;
    }
    let status = res.status();
    let (req, old) = res.into_parts();
    let mut new = ApiError::for_status(status).error_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = old.headers().get(&name) {
            new.headers_mut().insert(name, v.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// The paths and methods the API serves, from the OpenAPI document, to tell a wrong method
/// (405 with `Allow`) from an unknown path (404).
#[derive(Clone, Default)]
pub struct RouteTable(Arc<Vec<(Vec<String>, Vec<Method>)>>);

impl RouteTable {
    /// Builds the table from the document's paths.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = Vec::new();
        for (path, item) in &doc.paths.paths {
            let segments = path.split('/').map(str::to_owned).collect();
            let mut methods = Vec::new();
            for (m, op) in [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ] {
                if op.is_some() {
                    methods.push(m);
                }
            }
            routes.push((segments, methods));
        }
        RouteTable(Arc::new(routes))
    }

    /// The methods served at `path`. Where templates overlap, the one with the most literal
    /// segments wins: `/api/v1/users/lookup` serves GET only, whatever `/api/v1/users/{id}` does.
    fn methods_for(&self, path: &str) -> Option<Vec<Method>> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut found: Option<(usize, Vec<Method>)> = None;
        for (segments, methods) in self.0.iter() {
            let matches = segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| (s.starts_with('{') && !p.is_empty()) || s == p);
            if !matches {
                continue;
            }
            let literal = segments.iter().filter(|s| !s.starts_with('{')).count();
            match &mut found {
                Some((best, _)) if *best > literal => {}
                Some((best, found)) if *best == literal => found.extend(methods.iter().cloned()),
                _ => found = Some((literal, methods.clone())),
            }
        }
        found.map(|(_, methods)| methods)
    }
}

/// The answer for anything no route took: 405 when the path exists with other methods, else 404.
pub async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    match table.methods_for(crate::limits::routed_path(&req)) {
        Some(methods) if !methods.contains(req.method()) => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut resp = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed here; allowed: {allow}", req.method()),
            )
            .error_response();
            if let Ok(v) = header::HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            resp
        }
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route {} {}; see /swagger-ui/ for the API",
                req.method(),
                req.path()
            ),
        )
        .error_response(),
    }
}
