//! The authorization-code flow: `/oidc/login` starts it, `/oidc/signin` finishes it.

use chrono::{DateTime, Utc};
use dirsync_entity::{users, AuthMethod};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::binding::BrowserBinding;
use super::config::{self, ActiveConfig};
use super::id_token::{self, Expected, IdClaims, Issuer};
use super::idp::{microsoft_issuer, Idp, Rules, SignInProviders};
use super::user::{self, SessionUser};
use super::{attempts, auth_test, safe_return_to};
use crate::secrets::Cipher;

/// What `/oidc/login` was asked.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    /// Where to go after signing in (kept only when it is a path on this server).
    pub return_to: Option<String>,
    /// The address to sign in as, passed on to the provider.
    pub login_hint: Option<String>,
    /// The client starting the sign-in, whose open attempts are capped (`None`: not capped).
    pub client: Option<attempts::AttemptClient>,
}

/// What the provider's redirect brought to `/oidc/signin`.
#[derive(Clone, Default)]
pub struct Callback {
    /// The attempt's state.
    pub state: Option<SecretString>,
    /// The authorization code.
    pub code: Option<SecretString>,
    /// The provider's `error` (e.g. `access_denied`) instead of a code.
    pub error: Option<String>,
    /// The provider's explanation of `error`, as sent (it is cleaned before it is shown).
    pub error_description: Option<String>,
    /// The issuer that sent the browser back (RFC 9207), when the provider says.
    pub iss: Option<String>,
    /// The binding cookie of the browser that brought the callback.
    pub browser: Option<BrowserBinding>,
}

/// A session issued.
#[derive(Debug)]
pub struct SignedIn {
    /// The session token (`dss_…`), shown once.
    pub token: SecretString,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who signed in.
    pub user: SessionUser,
    /// The path to return to, when one was asked for (and is on this server).
    pub return_to: Option<String>,
}

/// How a callback ended.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// A user signed in.
    SignedIn(SignedIn),
    /// A test authentication finished (successfully or not); no session was created.
    TestFinished(auth_test::AuthTestView),
}

fn clean_hint(hint: Option<String>) -> Option<String> {
    hint.map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.len() <= 254 && h.chars().all(|c| c.is_ascii_graphic()))
}

/// What an attempt is for.
pub(crate) enum Purpose<'a> {
    /// A sign-in, which only the browser that started it may complete.
    SignIn(&'a BrowserBinding),
    /// An administrator's auth test: its link is opened by the tested user's browser, not the
    /// administrator's, and creates no session, so it is not bound to a browser.
    AuthTest(Uuid),
}

/// Longest provider text (`error_description`, `iss`) repeated in a message or the log.
const DESCRIPTION_MAX: usize = 200;

/// Provider text fit to show and log: RFC 6749 allows only printable ASCII in
/// `error_description`, so anything else becomes `?` (a control character could forge a log
/// line; markup may stay, the HTML page escapes it), and it is cut at [`DESCRIPTION_MAX`]
/// characters.
fn clean_description(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(DESCRIPTION_MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > DESCRIPTION_MAX {
        out.push_str("...");
    }
    out.trim().to_string()
}

/// Builds the provider's authorization URL for a new attempt.
pub(crate) async fn authorization_url<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    idp: &Idp,
    cfg: &ActiveConfig,
    request: LoginRequest,
    purpose: Purpose<'_>,
) -> Result<String, crate::Error> {
    let discovery = idp.provider.discovery().await?;
    let mut url = url::Url::parse(&discovery.authorization_endpoint).map_err(|_| {
        crate::Error::upstream(
            idp.kind().unavailable_code(),
            format!(
                "{}'s discovery document names no usable authorization endpoint",
                idp.kind().name()
            ),
        )
    })?;
    // A tenant whose id cannot be learnt could not be checked on the way back: refused before
    // the browser is sent anywhere.
    if let Rules::Microsoft { tenant } = &idp.rules {
        idp.tenant_guid(tenant).await?;
    }
    let return_to = request
        .return_to
        .as_deref()
        .and_then(safe_return_to)
        .map(str::to_string);
    let hint = clean_hint(request.login_hint);
    let (auth_test_id, binding) = match purpose {
        Purpose::SignIn(binding) => (None, Some(binding)),
        Purpose::AuthTest(id) => (Some(id), None),
    };
    let attempt = attempts::create(
        db,
        cipher,
        return_to,
        hint.clone(),
        auth_test_id,
        request.client,
        binding,
    )
    .await?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &cfg.client_id)
            .append_pair("redirect_uri", &cfg.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", attempt.state.expose_secret())
            .append_pair("nonce", attempt.nonce.expose_secret())
            .append_pair("code_challenge", &attempt.code_challenge)
            .append_pair("code_challenge_method", "S256");
        // `hd` only steers Google's account chooser; the claim is what is enforced.
        if let (Rules::Google, [domain]) = (&idp.rules, cfg.allowed_domains.as_slice()) {
            q.append_pair("hd", domain);
        }
        match &hint {
            Some(h) => q.append_pair("login_hint", h),
            None => q.append_pair("prompt", "select_account"),
        };
    }
    Ok(url.to_string())
}

/// Starts a sign-in with the directory's provider: stores the attempt and returns the URL at
/// the provider to send the browser to. Only the browser holding `browser` (its cookie) can
/// finish it.
#[tracing::instrument(skip_all)]
pub async fn start_login<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    providers: &SignInProviders,
    request: LoginRequest,
    browser: &BrowserBinding,
) -> Result<String, crate::Error> {
    let cfg = config::active(db, cipher).await?;
    let idp = providers.current(db).await?;
    authorization_url(db, cipher, &idp, &cfg, request, Purpose::SignIn(browser)).await
}

/// Finishes a sign-in: consumes the attempt, exchanges the code, validates the ID token, finds
/// the user (Google's `sub`, Microsoft's `oid` = `directory_id`), and issues a session — or,
/// for a test authentication, records the result.
#[tracing::instrument(skip_all)]
pub async fn finish_login<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    providers: &SignInProviders,
    callback: Callback,
) -> Result<CallbackOutcome, crate::Error> {
    let state = callback
        .state
        .clone()
        .filter(|s| !s.expose_secret().is_empty())
        .ok_or_else(|| {
            crate::Error::bad_request(
                "invalid_state",
                "the sign-in callback has no state; start the sign-in again",
            )
        })?;
    let attempt = attempts::consume(db, cipher, &state).await?;
    let tested = match attempt.auth_test_id {
        Some(id) => Some((id, auth_test::tested_directory_id(db, id).await?)),
        None => None,
    };
    // Consumed either way: a callback brought to the wrong browser is an attacker's, or lost.
    let bound = callback
        .browser
        .as_ref()
        .is_some_and(|b| b.owns(state.expose_secret()));
    if tested.is_none() && !bound {
        tracing::info!(
            "sign-in refused: the callback came to another browser than the one that started it"
        );
        return Err(crate::Error::bad_request(
            "browser_mismatch",
            "this sign-in was not started in this browser (or its sign-in cookie was lost); \
             start the sign-in again here",
        ));
    }
    let result = match providers.current(db).await {
        Ok(idp) => complete(
            db,
            cipher,
            &idp,
            &attempt,
            &callback,
            tested.as_ref().map(|(_, id)| id.as_deref()),
        )
        .await
        .map(|(user, cfg)| (user, cfg, idp.kind())),
        Err(e) => Err(e),
    };
    if let Some((test_id, _)) = tested {
        let result = match result {
            Err(e)
                if matches!(
                    e.kind(),
                    crate::ErrorKind::Internal | crate::ErrorKind::Unavailable
                ) =>
            {
                return Err(e)
            }
            Ok((user, _, _)) => Ok(user.id),
            Err(refused) => Err(refused),
        };
        let view = auth_test::record(db, test_id, result).await?;
        tracing::info!(test_id = %test_id, status = %view.status, "test authentication finished");
        return Ok(CallbackOutcome::TestFinished(view));
    }
    let (user, cfg, kind) = result.inspect_err(|e| {
        tracing::info!(code = e.code(), "sign-in refused");
    })?;
    let (token, expires_at) = crate::auth::create_session(db, user.id, cfg.session_ttl).await?;
    tracing::info!(user_id = %user.id, provider = kind.name(), "signed in");
    Ok(CallbackOutcome::SignedIn(SignedIn {
        token,
        expires_at,
        user: user::view(db, user.id).await?,
        return_to: attempt.return_to,
    }))
}

/// Everything after the attempt: code exchange, ID token, the user's checks. `tested_id` is
/// the directory id an auth test expects (`Some(None)`: a user who has none any more).
async fn complete<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    idp: &Idp,
    attempt: &attempts::Consumed,
    callback: &Callback,
    tested_id: Option<Option<&str>>,
) -> Result<(users::Model, ActiveConfig), crate::Error> {
    let name = idp.kind().name();
    // RFC 9207: a provider that names itself must be the one this sign-in went to, or the
    // response was mixed up with another provider's (checked before anything else is believed).
    if let Some(iss) = &callback.iss {
        let expected = idp.expected_issuer().await?;
        if *iss != expected {
            return Err(crate::Error::bad_request("issuer_mismatch",
                format!(
                    "the sign-in response names the issuer {:?}, not {expected:?}; start the sign-in again",
                    clean_description(iss)
                ),
            ));
        }
    }
    if let Some(error) = &callback.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let description = callback
            .error_description
            .as_deref()
            .map(clean_description)
            .filter(|d| !d.is_empty());
        tracing::info!(
            provider = name,
            error = %error,
            description = description.as_deref().unwrap_or(""),
            "the provider ended the sign-in with an error"
        );
        let said = description.map_or(String::new(), |d| format!(": {d}"));
        return Err(crate::Error::unauthenticated(idp.kind().error_code(),
            format!("{name} ended the sign-in with {error:?}{said} (e.g. it was cancelled); start the sign-in again"),
        ));
    }
    let code = callback
        .code
        .as_ref()
        .filter(|c| !c.expose_secret().is_empty())
        .ok_or_else(|| {
            crate::Error::bad_request(
                "missing_code",
                "the sign-in callback has no code; start the sign-in again",
            )
        })?;
    let cfg = config::active(db, cipher).await?;
    // Learnt before the code is spent: a tenant that cannot be resolved fails the same way
    // whatever the code.
    let tenant_guid = match &idp.rules {
        Rules::Google => None,
        Rules::Microsoft { tenant } => Some(idp.tenant_guid(tenant).await?),
    };
    let tokens = idp
        .provider
        .exchange_code(
            code.expose_secret(),
            &attempt.verifier,
            &cfg.client_id,
            &cfg.client_secret,
            &cfg.redirect_uri,
        )
        .await?;
    let tenant_issuer = tenant_guid.as_deref().map(microsoft_issuer);
    let issuer = match (&tenant_guid, &tenant_issuer) {
        (Some(tenant), Some(iss)) => Issuer::Tenant { iss, tenant },
        _ => Issuer::Google,
    };
    let claims = id_token::verify(
        &idp.provider,
        &tokens.id_token,
        Expected {
            issuer,
            client_id: &cfg.client_id,
            nonce: attempt.nonce.expose_secret(),
            access_token: tokens.access_token.as_deref(),
        },
    )
    .await?;
    let user = match &idp.rules {
        Rules::Google => google_user(db, &cfg, &claims, tested_id).await?,
        Rules::Microsoft { .. } => microsoft_user(db, &cfg, &claims, tested_id).await?,
    };
    user::check_may_sign_in(db, &user).await?;
    Ok((user, cfg))
}

fn forbidden(code: &'static str, message: String) -> crate::Error {
    crate::Error::forbidden(code, message)
}

/// The directory user whose `directory_id` is `id` (never a local user).
async fn directory_user<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<users::Model>, crate::Error> {
    Ok(users::Entity::find()
        .filter(users::Column::DirectoryId.eq(id))
        .filter(users::Column::AuthMethod.eq(AuthMethod::Directory))
        .one(db)
        .await?)
}

/// Google's rules: the account is `sub` (= the Directory API id), its Workspace domain is the
/// `hd` claim, and Google must have verified its address.
async fn google_user<C: ConnectionTrait>(
    db: &C,
    cfg: &ActiveConfig,
    claims: &IdClaims,
    tested_sub: Option<Option<&str>>,
) -> Result<users::Model, crate::Error> {
    let forbidden = |code, message: String| crate::Error::forbidden(code, message);
    let who = claims.email.clone().unwrap_or_else(|| claims.sub.clone());
    // An auth test expects the tested user's account; a user with none (deleted, or turned
    // local since the test started) is matched by no account.
    if let Some(expected) = tested_sub {
        if expected != Some(claims.sub.as_str()) {
            return Err(forbidden(
                "wrong_account",
                format!("the Google account chosen ({who}) is not the tested user's"),
            ));
        }
    }
    if !cfg.allowed_domains.is_empty() {
        let hd = claims.hd.as_deref().map(str::to_ascii_lowercase);
        if !hd.as_ref().is_some_and(|d| cfg.allowed_domains.contains(d)) {
            return Err(forbidden(
                "domain_not_allowed",
                match hd {
                    Some(d) => format!("the Google account {who} belongs to {d}, which may not sign in here"),
                    None => format!("the Google account {who} belongs to no Google Workspace domain allowed here"),
                },
            ));
        }
    }
    if !claims.email_verified {
        return Err(forbidden(
            "email_not_verified",
            format!("Google has not verified the address of {who}"),
        ));
    }
    directory_user(db, &claims.sub).await?.ok_or_else(|| {
        forbidden(
            "user_not_found",
            format!("no dirsync user has the Google account {who}; an administrator synchronizes the directory first"),
        )
    })
}

/// Microsoft's rules: the account is `oid` (= the Graph object id, the same for every
/// application; `sub` is pairwise per application and never used), in the configured tenant
/// (`tid`, checked with the ID token); Entra has no `hd` claim, so `allowed_domains` apply to
/// the matched user's UPN (its `user_name`).
async fn microsoft_user<C: ConnectionTrait>(
    db: &C,
    cfg: &ActiveConfig,
    claims: &IdClaims,
    tested_oid: Option<Option<&str>>,
) -> Result<users::Model, crate::Error> {
    let oid = claims.oid.as_deref().ok_or_else(|| {
        crate::Error::unauthenticated(
            "missing_claim",
            "Microsoft's ID token was refused: it names no user object (oid; the sign-in asks \
             for the profile scope); start the sign-in again",
        )
    })?;
    let who = claims
        .username
        .clone()
        .or_else(|| claims.email.clone())
        .unwrap_or_else(|| oid.to_string());
    if let Some(expected) = tested_oid {
        if expected != Some(oid) {
            return Err(forbidden(
                "wrong_account",
                format!("the Microsoft account chosen ({who}) is not the tested user's"),
            ));
        }
    }
    let user = directory_user(db, oid).await?.ok_or_else(|| {
        forbidden(
            "user_not_found",
            format!("no dirsync user has the Microsoft account {who}; an administrator synchronizes the directory first"),
        )
    })?;
    if !cfg.allowed_domains.is_empty() {
        let domain = user
            .user_name
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase());
        if !domain
            .as_ref()
            .is_some_and(|d| cfg.allowed_domains.contains(d))
        {
            return Err(forbidden(
                "domain_not_allowed",
                format!(
                    "the Microsoft account {} belongs to {}, which may not sign in here",
                    user.user_name,
                    domain.as_deref().unwrap_or("no domain")
                ),
            ));
        }
    }
    Ok(user)
}
