//! Sign in with Google or Microsoft (OpenID Connect, product §4 and §8): the directory's
//! provider signs its users in. Local passwords are [`crate::password`]; the checks every
//! sign-in makes and the session answer are [`user`], shared with it.
//!
//! - [`config`]: the one OIDC configuration (client id, encrypted client secret, redirect URI
//!   checked as Google checks it, allowed domains, session lifetime), for either provider.
//! - [`SignInProviders`]: which provider a sign-in goes to (the directory's: Google, or the
//!   Entra tenant's own discovery document), and the rules that differ between them.
//! - [`OidcProvider`]: one provider's discovery document and JWKS, cached by
//!   `Cache-Control: max-age`, the JWKS refetched on an unknown `kid` at most once per
//!   cooldown, stale keys used while the provider is unreachable; and the code exchange.
//! - [`start_login`] / [`finish_login`]: the authorization-code flow with `state` (stored
//!   hashed, single use, 10 minutes, bound to the browser that started it: [`BrowserBinding`]),
//!   `nonce` and PKCE `S256` (stored encrypted), RFC 9207's `iss`, ID-token validation, the
//!   user found by its directory id (Google's `sub`; Microsoft's `oid`, in the configured
//!   tenant), and a session.
//! - [`auth_test`]: an administrator's test of one user's sign-in, which records why it would
//!   fail and never creates a session.
//!
//! Every refusal is a [`crate::Error`] with a stable code and a message for people, never with
//! tokens or internals: 400 for an unusable request (state, code), 401 for credentials that fail
//! (password, ID token), 403 for a user who may not sign in, 409 `not_configured`, 502 when
//! the provider refuses or fails.

mod attempts;
pub mod auth_test;
mod binding;
pub mod config;
mod flow;
mod id_token;
mod idp;
mod provider;
mod redirect_uri;
pub(crate) mod user;

pub use attempts::AttemptClient;
pub use binding::BrowserBinding;
pub use flow::{finish_login, start_login, Callback, CallbackOutcome, LoginRequest, SignedIn};
pub use id_token::IdClaims;
pub use idp::{microsoft_issuer, SignInProviders};
pub use provider::{Discovery, IdpKind, OidcProvider};
pub use redirect_uri::check_redirect_uri;
pub use user::SessionUser;

/// How long a login attempt (state, nonce, verifier) waits for the provider's callback.
pub const ATTEMPT_TTL_MINUTES: i64 = 10;

/// 409 `not_configured`: like the directory's, this is the installation's state, not a server
/// fault (so not a 503).
pub(crate) fn not_configured() -> crate::Error {
    crate::Error::conflict(
        "not_configured",
        "Sign-in with the directory's provider (Google or Microsoft) is not configured: an \
         administrator sets it up with PUT /api/v1/auth/oidc",
    )
}

/// A random URL-safe string of `bytes` random bytes.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// A path on this server that a sign-in may return to: it starts with one `/` (not `//`), and
/// holds no backslash, control character or scheme. Anything else is ignored (the caller falls
/// back to `/`), so that a sign-in link cannot send a user off-site.
pub fn safe_return_to(candidate: &str) -> Option<&str> {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && candidate.len() <= 2048
        && !candidate.chars().any(|c| c.is_control() || c.is_whitespace())
        // A scheme or authority in disguise, e.g. `/%2F%2Fevil.com` decoded by a later hop.
        && !candidate.to_ascii_lowercase().starts_with("/%2f")
        && !candidate.to_ascii_lowercase().starts_with("/%5c");
    ok.then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn only_same_origin_paths_are_returned_to() {
        for good in ["/", "/swagger-ui/", "/a/b?c=d#e"] {
            assert_eq!(safe_return_to(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/%2F%2Fevil.example",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
