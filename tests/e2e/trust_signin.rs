//! Trust round (issue 12), sessions and sign-in: a session that outlives its right, sign-in CSRF,
//! cookie-authenticated writes from other origins, who is a directory user, and OIDC interop.
