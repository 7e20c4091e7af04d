//! Extractors that prove who the caller is and that it holds a role. A handler that takes
//! `Auth<Admin>` cannot run for anyone else: the rule sits in the handler's signature.

use std::{future::Future, marker::PhantomData, pin::Pin};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
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
        let token = bearer_token(req)
            .map(str::to_owned)
            .or_else(|| crate::routes::signin::session_cookie(req));
        let open_body = hold_body_until_authorized(payload);
        let req = req.clone();
        Box::pin(async move {
            let state = state.expect("AppState is registered");
            let token = token.ok_or_else(|| {
                ApiError::from(Error::Unauthenticated(
                    "send Authorization: Bearer <API key or session token>".into(),
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
