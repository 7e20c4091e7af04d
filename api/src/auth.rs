//! Extractors that prove who the caller is and that it holds a role. A handler that takes
//! `Auth<Admin>` cannot run for anyone else: the rule sits in the handler's signature.

use std::{future::Future, marker::PhantomData, pin::Pin};

use actix_web::{
    dev::Payload,
    http::{header, Method, StatusCode},
    web, FromRequest, HttpMessage, HttpRequest,
};
use dirsync_core::auth::{authenticate, Principal, Role};
use dirsync_core::Error;
use futures_util::{stream, StreamExt};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::state::AppState;

/// A role requirement, as a type.
pub trait RoleRule {
    /// The least role that passes; `None` lets any authenticated caller through.
    const NEEDS: Option<Role>;
}

/// Needs the admin role.
pub struct Admin;
/// Needs operator or admin.
pub struct Operator;
/// Needs reader, operator or admin.
pub struct Reader;
/// Any authenticated caller, including a signed-in user without a role.
pub struct Anyone;

impl RoleRule for Admin {
    const NEEDS: Option<Role> = Some(Role::Admin);
}
impl RoleRule for Operator {
    const NEEDS: Option<Role> = Some(Role::Operator);
}
impl RoleRule for Reader {
    const NEEDS: Option<Role> = Some(Role::Reader);
}
impl RoleRule for Anyone {
    const NEEDS: Option<Role> = None;
}

/// The authenticated caller, proven to satisfy `R`.
pub struct Auth<R: RoleRule> {
    /// Who is calling.
    pub principal: Principal,
    _rule: PhantomData<R>,
}

impl<R: RoleRule> Auth<R> {
    /// How the caller is named in the audit trail.
    pub fn actor(&self) -> String {
        self.principal.actor()
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<R: RoleRule + 'static> FromRequest for Auth<R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        // Browsers signed in with Google send the session cookie instead of a header.
        let bearer = bearer_token(req).map(str::to_owned);
        let from_cookie = bearer.is_none();
        let token = bearer.or_else(|| crate::routes::signin::session_cookie(req));
        let refused = match &state {
            Some(s) if from_cookie && token.is_some() && !is_safe(req.method()) => {
                foreign_origin(req, &s.settings.cors_origins)
            }
            _ => None,
        };
        let open_body = hold_body_until_authorized(payload);
        let req = req.clone();
        Box::pin(async move {
            let state = state.expect("AppState is registered");
            if let Some(refused) = refused {
                return Err(refused);
            }
            let token = token.ok_or_else(|| {
                ApiError::from(Error::unauthenticated(
                    "unauthorized",
                    "send Authorization: Bearer <API key or session token>",
                ))
            })?;
            let principal = authenticate(
                &state.db,
                state.settings.bootstrap_admin_key.as_ref(),
                &token,
            )
            .await?;
            // The credential is genuine (whatever the role): limits::guard lets it past a
            // client's spent failure allowance from now on.
            req.extensions_mut().insert(crate::limits::Authenticated);
            if let Some(needed) = R::NEEDS {
                principal.require(needed)?;
            }
            if let Some(open) = open_body {
                let _ = open.send(());
            }
            Ok(Auth {
                principal,
                _rule: PhantomData,
            })
        })
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Refuses a write authenticated by the session cookie that a page of another origin made the
/// browser send. SameSite=Lax keeps the cookie off cross-site requests, but a sibling
/// subdomain is the same site; the browser's `Origin` (or, without it, `Sec-Fetch-Site`) says
/// who made the request. The server's own origin and `DIRSYNC_CORS_ORIGINS` may write; a
/// request with neither header (not from a browser page) is let through. Bearer tokens are
/// never sent by a browser on its own, so their callers are not concerned.
fn foreign_origin(req: &HttpRequest, cors_origins: &[String]) -> Option<ApiError> {
    let headers = req.headers();
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("?"));
    let refused = match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("");
            !(is_own_origin(req, origin) || cors_origins.iter().any(|o| o == origin))
        }
        // Without `Origin`, only the browser's own word that the page is this origin's.
        None => site.is_some_and(|s| s != "same-origin" && s != "none"),
    };
    if !refused {
        return None;
    }
    let shown = |v: &str| v.chars().take(200).collect::<String>();
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| shown(&String::from_utf8_lossy(v.as_bytes())));
    tracing::info!(
        origin = origin.as_deref().unwrap_or(""),
        sec_fetch_site = site.unwrap_or(""),
        "refused a cookie-authenticated write from another origin"
    );
    Some(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin_request",
            "a page of another origin may not make changes with this server's session cookie; \
             send Authorization: Bearer <token>, or add the page's origin to DIRSYNC_CORS_ORIGINS",
        )
        .with_details(serde_json::json!({
            "origin": origin,
            "sec_fetch_site": site.map(shown),
        })),
    )
}

/// Whether `origin` (`scheme://host[:port]`) is this server as the browser sees it. The host is
/// the one the request was sent to (`Host`, or a proxy's `X-Forwarded-Host`/`Forwarded`), so
/// it is right behind any name. An `https` origin is also accepted for a plain-HTTP request,
/// which is what a TLS-terminating proxy in front looks like.
fn is_own_origin(req: &HttpRequest, origin: &str) -> bool {
    let info = req.connection_info();
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    let ours = info.scheme().to_ascii_lowercase();
    if scheme != ours && !(scheme == "https" && ours == "http") {
        return false;
    }
    let without_default_port = |authority: &str, scheme: &str| {
        let a = authority.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        a.strip_suffix(default).map(str::to_owned).unwrap_or(a)
    };
    !authority.is_empty()
        && without_default_port(authority, &scheme) == without_default_port(info.host(), &ours)
}

/// Holds the request body back until the caller is proven to hold the role.
///
/// actix-web polls a handler's extractors together and answers with the first that fails.
/// Authentication waits for the database while a small body has usually arrived already, so
/// without this a caller lacking the role who sent a body that does not fit got 422 (learning
/// the body's rules) instead of 403. `Auth` comes first in every handler, so it takes the
/// payload before `web::Json` does and hands on a stream that yields nothing until `open` is
/// sent; when authorization fails, the handler never runs and the body is never read.
fn hold_body_until_authorized(payload: &mut Payload) -> Option<oneshot::Sender<()>> {
    if matches!(payload, Payload::None) {
        return None;
    }
    let (open, opened) = oneshot::channel::<()>();
    let body = payload.take();
    let held = stream::once(async move { opened.await.ok().map(|()| body) })
        .filter_map(std::future::ready)
        .flatten();
    *payload = Payload::Stream {
        payload: Box::pin(held),
    };
    Some(open)
}
