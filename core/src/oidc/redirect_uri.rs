//! The redirect URI rules Google enforces for web clients (google-apis.md §6), checked when an
//! administrator saves the configuration, so that a URI Google would refuse is refused here with
//! the rule it breaks rather than later by Google with "redirect_uri_mismatch".
//!
//! The rules are checked on the text as typed: Google matches it exactly, and a URL parser would
//! quietly normalise away some of what Google refuses (`/a/../oidc/signin`, `:443`).

use crate::Error;

/// The path dirsync serves the callback on.
pub const CALLBACK_PATH: &str = "/oidc/signin";

fn broken(rule: &'static str, message: impl Into<String>) -> Error {
    Error::invalid(
        "invalid_redirect_uri",
        format!("redirect_uri: {}", message.into()),
    )
    .with_details(serde_json::json!({ "field": "redirect_uri", "rule": rule }))
}

/// Checks a redirect URI; the error's `details.rule` names the rule broken: `required`,
/// `non_printable`, `wildcard`, `query`, `fragment`, `path_traversal`, `not_a_url`, `scheme`,
/// `userinfo`, `ip_host`, `host`, `public_suffix`, `https_required`, `default_port`, `path`.
pub fn check_redirect_uri(raw: &str) -> Result<(), Error> {
    if raw.is_empty() {
        return Err(broken("required", "is required"));
    }
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || !c.is_ascii())
        || raw.to_ascii_lowercase().contains("%00")
    {
        return Err(broken(
            "non_printable",
            "must not contain spaces, non-printable or non-ASCII characters, or an encoded NUL (%00); write international host names in their xn-- form",
        ));
    }
    if raw.contains('*') {
        return Err(broken("wildcard", "must not contain wildcards (*)"));
    }
    if raw.contains('?') {
        return Err(broken("query", "must not have a query (?...)"));
    }
    if raw.contains('#') {
        return Err(broken("fragment", "must not have a fragment (#...)"));
    }
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| {
        broken(
            "not_a_url",
            "is not an absolute URL (https://host/oidc/signin)",
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let lower_path = path.to_ascii_lowercase();
    if rest.contains('\\')
        || lower_path.contains("%2e")
        || lower_path.contains("%2f")
        || lower_path.contains("%5c")
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
    {
        return Err(broken(
            "path_traversal",
            "must not contain path traversal (/.., /., backslashes or their %-encoded forms)",
        ));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| broken("not_a_url", format!("is not a valid URL ({e})")))?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(broken("scheme", "must use https (or http for localhost)"));
    }
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err(broken(
            "userinfo",
            "must not contain a user name or password (user@host)",
        ));
    }
    let loopback = match url.host() {
        None => return Err(broken("host", "has no host")),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => true,
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => true,
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(broken(
                "ip_host",
                "must name a host, not an IP address (only loopback addresses are allowed)",
            ))
        }
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => true,
        Some(url::Host::Domain(d)) => {
            check_public_host(d)?;
            false
        }
    };
    if url.scheme() == "http" && !loopback {
        return Err(broken(
            "https_required",
            "must use https (http is allowed only for localhost and loopback addresses)",
        ));
    }
    let default_port = if url.scheme() == "https" {
        ":443"
    } else {
        ":80"
    };
    if authority.ends_with(default_port) {
        return Err(broken(
            "default_port",
            format!("leave out the default port {}", &default_port[1..]),
        ));
    }
    if path != CALLBACK_PATH {
        return Err(broken(
            "path",
            format!("the path must be {CALLBACK_PATH}, which dirsync serves (found {path:?})"),
        ));
    }
    Ok(())
}

/// A fully qualified host whose top-level domain is on the Public Suffix List.
fn check_public_host(host: &str) -> Result<(), Error> {
    let host = host.to_ascii_lowercase();
    if host.ends_with('.') || host.starts_with('.') || host.contains("..") {
        return Err(broken(
            "host",
            "the host must be a fully qualified name without a leading or trailing dot",
        ));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    let tld_known = psl::suffix(tld.as_bytes()).is_some_and(|s| s.is_known());
    if labels.len() < 2 || !tld_known || psl::domain(host.as_bytes()).is_none() {
        return Err(broken(
            "public_suffix",
            format!(
                "the host {host:?} must be a fully qualified name under a top-level domain on the Public Suffix List (e.g. dirsync.example.com)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(uri: &str) -> Option<String> {
        match check_redirect_uri(uri) {
            Ok(()) => None,
            Err(Error::Invalid { details, .. }) => {
                Some(details.unwrap()["rule"].as_str().unwrap().to_string())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn accepts_what_google_accepts() {
        for ok in [
            "https://dirsync.example.com/oidc/signin",
            "https://dirsync.example.com:8462/oidc/signin",
            "https://archive.example.co.uk/oidc/signin",
            "https://xn--bcher-kva.de/oidc/signin",
            "http://localhost:8462/oidc/signin",
            "http://127.0.0.1:8462/oidc/signin",
            "http://[::1]:8462/oidc/signin",
            "https://LOCALHOST/oidc/signin",
        ] {
            assert_eq!(rule(ok), None, "{ok}");
        }
    }

    #[test]
    fn names_the_rule_broken() {
        for (bad, expected) in [
            ("", "required"),
            ("https://dirsync.example.com/oidc/signin ", "non_printable"),
            ("https://dirsync.example.com/oidc/sign\tin", "non_printable"),
            (
                "https://dirsync.example.com/oidc/signin%00",
                "non_printable",
            ),
            ("https://bücher.example/oidc/signin", "non_printable"),
            ("https://*.example.com/oidc/signin", "wildcard"),
            ("https://dirsync.example.com/oidc/signin?x=1", "query"),
            ("https://dirsync.example.com/oidc/signin?", "query"),
            ("https://dirsync.example.com/oidc/signin#top", "fragment"),
            (
                "https://dirsync.example.com/x/../oidc/signin",
                "path_traversal",
            ),
            (
                "https://dirsync.example.com/x/%2e%2e/oidc/signin",
                "path_traversal",
            ),
            (
                "https://dirsync.example.com/oidc%2fsignin",
                "path_traversal",
            ),
            (
                "https://dirsync.example.com/./oidc/signin",
                "path_traversal",
            ),
            (
                "https://dirsync.example.com\\oidc\\signin",
                "path_traversal",
            ),
            ("dirsync.example.com/oidc/signin", "not_a_url"),
            ("ftp://dirsync.example.com/oidc/signin", "scheme"),
            (
                "https://user:pw@dirsync.example.com/oidc/signin",
                "userinfo",
            ),
            ("https://user@dirsync.example.com/oidc/signin", "userinfo"),
            ("https://10.1.2.3/oidc/signin", "ip_host"),
            ("https://[2001:db8::1]/oidc/signin", "ip_host"),
            ("https://dirsync.example.com./oidc/signin", "host"),
            ("https://dirsync/oidc/signin", "public_suffix"),
            ("https://dirsync.corp.internal/oidc/signin", "public_suffix"),
            (
                "https://dirsync.example.notatld/oidc/signin",
                "public_suffix",
            ),
            ("https://com/oidc/signin", "public_suffix"),
            ("http://dirsync.example.com/oidc/signin", "https_required"),
            (
                "https://dirsync.example.com:443/oidc/signin",
                "default_port",
            ),
            ("http://localhost:80/oidc/signin", "default_port"),
            ("https://dirsync.example.com/oidc/signin/", "path"),
            ("https://dirsync.example.com/", "path"),
            ("https://dirsync.example.com", "path"),
            ("https://dirsync.example.com/OIDC/signin", "path"),
        ] {
            assert_eq!(rule(bad).as_deref(), Some(expected), "{bad:?}");
        }
    }
}
