//! Which token endpoints may receive a signed assertion. The key file is uploaded by an
//! administrator, but its `token_uri` decides where the server POSTs: left open, it is a
//! server-side request forgery (any internal URL, its answer echoed back). Only Google's own token
//! endpoints are accepted, and the one the server's operator names in `DIRSYNC_GOOGLE_TOKEN_URL`
//! (the emulator's, in tests and demos) — checked at upload and again before every token request,
//! since a stored key may predate the setting.

use url::Url;

/// Google's token endpoint, and the default of `DIRSYNC_GOOGLE_TOKEN_URL`.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// Google's token endpoints: the current one and the one older key files name.
pub const GOOGLE_TOKEN_URLS: [&str; 2] = [
    GOOGLE_TOKEN_URL,
    "https://accounts.google.com/o/oauth2/token",
];

/// The parts compared: scheme, host, port (the scheme's default when omitted) and path. Query,
/// fragment and userinfo are not compared, so a URL carrying any of them is refused outright
/// rather than matched loosely.
fn parts(u: &str) -> Option<(String, String, u16, String)> {
    let url = Url::parse(u.trim()).ok()?;
    if !matches!(url.scheme(), "https" | "http")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
        url.path().to_string(),
    ))
}

/// Whether `token_uri` is one of Google's token endpoints or equals `configured`
/// (`DIRSYNC_GOOGLE_TOKEN_URL`), compared by scheme, host, port and path.
pub fn token_uri_allowed(token_uri: &str, configured: &str) -> bool {
    let Some(wanted) = parts(token_uri) else {
        return false;
    };
    GOOGLE_TOKEN_URLS
        .iter()
        .copied()
        .chain(std::iter::once(configured))
        .filter_map(parts)
        .any(|allowed| allowed == wanted)
}

/// The refusal of a `token_uri`, naming the setting that would allow it.
pub(crate) fn not_allowed(token_uri: &str, configured: &str) -> super::GoogleError {
    super::GoogleError::TokenUriNotAllowed {
        token_uri: token_uri.to_string(),
        google: GOOGLE_TOKEN_URLS.join(", "),
        configured: configured.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_google_and_the_configured_endpoint_are_allowed() {
        let emu = "http://127.0.0.1:8463/token";
        for ok in [
            "https://oauth2.googleapis.com/token",
            "https://OAUTH2.googleapis.com:443/token",
            "https://accounts.google.com/o/oauth2/token",
            "http://127.0.0.1:8463/token",
        ] {
            assert!(token_uri_allowed(ok, emu), "{ok}");
        }
        for bad in [
            "http://oauth2.googleapis.com/token",
            "https://oauth2.googleapis.com:8443/token",
            "https://oauth2.googleapis.com/token/",
            "https://oauth2.googleapis.com/token?x=1",
            "https://user@oauth2.googleapis.com/token",
            "https://oauth2.googleapis.com.evil.example/token",
            "http://127.0.0.1:8464/token",
            "http://127.0.0.1:8463/admin",
            "http://169.254.169.254/computeMetadata/v1/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!token_uri_allowed(bad, emu), "{bad}");
        }
    }
}
