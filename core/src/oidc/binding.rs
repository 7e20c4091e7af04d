//! Binding a sign-in to the browser that started it, against sign-in CSRF: without it, the
//! callback URL (`/oidc/signin?state&code`) that an attacker obtains for its own Google account
//! signs in whoever opens it, so the attacker can plant its session in a victim's browser.
//!
//! `/oidc/login` gives the browser a random binding (a short-lived HttpOnly cookie, reused while
//! it lasts so that two sign-ins started in two tabs both work) and makes the attempt's `state`
//! carry a tag of it: `state = r "." SHA-256(binding ":" r)`. The callback must bring the same
//! cookie, whose tag must match. Nothing more is stored: the state is already stored (hashed)
//! and single use, and the tag cannot be made for a binding one does not know — the cookie is
//! HttpOnly and, over HTTPS, `__Host-` prefixed, so a sibling subdomain cannot plant its own.
//!
//! Auth-test links stay unbound by design: the admin creates the link and the tested user's
//! browser opens it, and it creates no session.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::random_token;

/// Random bytes in a binding (43 characters of URL-safe base64).
const BYTES: usize = 32;

/// The secret a browser holds (in a cookie) for the sign-ins it started.
#[derive(Clone)]
pub struct BrowserBinding(SecretString);

impl std::fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserBinding([redacted])")
    }
}

impl BrowserBinding {
    /// A new random binding.
    pub fn generate() -> BrowserBinding {
        BrowserBinding(random_token(BYTES).into())
    }

    /// The binding a cookie holds, if it has the shape of one (anything else is ignored).
    pub fn from_cookie(value: &str) -> Option<BrowserBinding> {
        let ok = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| BrowserBinding(value.to_string().into()))
    }

    /// The cookie value.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn tag(&self, random: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.expose().as_bytes());
        h.update(b":");
        h.update(random.as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }

    /// A fresh `state` that only this binding can complete.
    pub(crate) fn new_state(&self) -> String {
        let random = random_token(BYTES);
        let tag = self.tag(&random);
        format!("{random}.{tag}")
    }

    /// Whether `state` was made for this binding.
    pub(crate) fn owns(&self, state: &str) -> bool {
        let Some((random, tag)) = state.split_once('.') else {
            return false;
        };
        bool::from(self.tag(random).as_bytes().ct_eq(tag.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_belongs_to_the_binding_that_made_it_only() {
        let mine = BrowserBinding::generate();
        let theirs = BrowserBinding::generate();
        let state = mine.new_state();
        assert!(mine.owns(&state));
        assert!(!theirs.owns(&state));
        assert!(!mine.owns(&random_token(32)), "an unbound state");
        assert!(!mine.owns(&format!("{}.", random_token(32))));
        let cookie = BrowserBinding::from_cookie(mine.expose()).unwrap();
        assert!(cookie.owns(&state));
        for bad in ["", "short", &format!("{}=", mine.expose()), &"é".repeat(43)] {
            assert!(BrowserBinding::from_cookie(bad).is_none(), "{bad:?}");
        }
    }
}
