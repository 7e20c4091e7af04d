//! How dirsync reaches other servers — Google's APIs, the OpenID discovery document, and the
//! `dirsync` commands reaching a dirsync server: which certificate authorities it trusts and
//! which proxy it goes through. Every outbound HTTP client starts from [`Outbound::client_builder`],
//! so that a setting here holds for all of them.
//!
//! Trusted: Mozilla's roots compiled in (webpki-roots), the operating system's store
//! (`/etc/ssl/certs`, or what `SSL_CERT_FILE`/`SSL_CERT_DIR` name), and `DIRSYNC_CA_FILE`. An
//! internal CA or a TLS-inspecting proxy's CA is therefore trusted once it is in the system's
//! store or in that file.
//!
//! Proxies come from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (lower-case spellings win, as
//! with curl). They are read once, with the other settings, rather than by reqwest from the
//! process environment at each client build: the values are then checked at start, and a test can
//! give one server a proxy without touching the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

/// Outbound trust and proxy settings.
#[derive(Clone, Default)]
pub struct Outbound {
    /// `DIRSYNC_CA_FILE`: a PEM file of CA certificates trusted besides the built-in roots and
    /// the operating system's store.
    pub ca_file: Option<PathBuf>,
    /// The certificates read from `ca_file`.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Proxy for `https://` URLs (`HTTPS_PROXY`).
    pub https_proxy: Option<String>,
    /// Proxy for `http://` URLs (`HTTP_PROXY`).
    pub http_proxy: Option<String>,
    /// Hosts and domains reached without a proxy (`NO_PROXY`: comma-separated names, `.domain`
    /// suffixes, IP addresses or CIDR blocks, `*` for all).
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("ca_file", &self.ca_file)
            .field("extra_roots", &self.extra_roots.len())
            .field("https_proxy", &self.https_proxy.as_deref().map(redact))
            .field("http_proxy", &self.http_proxy.as_deref().map(redact))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A proxy URL without its password (`http://user:secret@proxy` is a common spelling).
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<not a URL>".into(),
    }
}

impl Outbound {
    /// Reads `DIRSYNC_CA_FILE`, `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` through `env`
    /// (lower-case proxy variables first), loading and checking the CA file and proxy URLs.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Outbound> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let either = |name: &str| var(&name.to_ascii_lowercase()).or_else(|| var(name));
        let mut out = Outbound {
            ca_file: None,
            extra_roots: Vec::new(),
            https_proxy: either("HTTPS_PROXY"),
            http_proxy: either("HTTP_PROXY"),
            no_proxy: either("NO_PROXY"),
        };
        if let Some(path) = var("DIRSYNC_CA_FILE") {
            out.set_ca_file(Path::new(&path))?;
        }
        // Checked at start rather than at the first Google call.
        if let Some(p) = &out.https_proxy {
            reqwest::Proxy::https(p.as_str()).context("HTTPS_PROXY is not a proxy URL")?;
        }
        if let Some(p) = &out.http_proxy {
            reqwest::Proxy::http(p.as_str()).context("HTTP_PROXY is not a proxy URL")?;
        }
        out.client_builder()
            .build()
            .context("while building an HTTP client with these CA and proxy settings")?;
        Ok(out)
    }

    /// Trusts the CA certificates of a PEM file (besides the built-in and system roots).
    pub fn set_ca_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let pem = std::fs::read(path)
            .with_context(|| format!("while reading DIRSYNC_CA_FILE {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!(
                "DIRSYNC_CA_FILE {} is not a PEM file of certificates",
                path.display()
            )
        })?;
        anyhow::ensure!(
            !certs.is_empty(),
            "DIRSYNC_CA_FILE {} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
        self.ca_file = Some(path.to_path_buf());
        self.extra_roots = certs;
        Ok(())
    }

    /// A client builder that trusts and proxies as configured; callers add their timeouts,
    /// redirect policy and user agent.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        // `no_proxy()` first: reqwest would otherwise read the process environment itself.
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(false);
        for cert in system_roots().iter().chain(&self.extra_roots) {
            b = b.add_root_certificate(cert.clone());
        }
        let no_proxy = || {
            self.no_proxy
                .as_deref()
                .and_then(reqwest::NoProxy::from_string)
        };
        // A proxy URL that does not parse is refused by `from_env`; here it is left out rather
        // than panicking.
        if let Some(p) = &self.https_proxy {
            if let Ok(p) = reqwest::Proxy::https(p.as_str()) {
                b = b.proxy(p.no_proxy(no_proxy()));
            }
        }
        if let Some(p) = &self.http_proxy {
            if let Ok(p) = reqwest::Proxy::http(p.as_str()) {
                b = b.proxy(p.no_proxy(no_proxy()));
            }
        }
        b
    }
}

/// The operating system's CA store, read once per process. reqwest's own
/// `tls_built_in_native_certs` reads and parses the whole store at every client build — a fixed
/// cost each sync, token refresh and delivery paid again (BENCHMARKS.md, run E). A certificate
/// added to the store later is trusted after a restart, like a changed setting. A store that
/// cannot be read in part is logged and the rest used, as reqwest does.
fn system_roots() -> &'static [reqwest::Certificate] {
    static ROOTS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "part of the system's CA store could not be read");
        }
        found
            .certs
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn lower_case_proxy_variables_win_and_blank_ones_are_unset() {
        let o = Outbound::from_env(env(&[
            ("HTTPS_PROXY", "http://upper.example:3128"),
            ("https_proxy", "http://lower.example:3128"),
            ("HTTP_PROXY", "http://upper.example:3128"),
            ("NO_PROXY", " "),
        ]))
        .unwrap();
        assert_eq!(o.https_proxy.as_deref(), Some("http://lower.example:3128"));
        assert_eq!(o.http_proxy.as_deref(), Some("http://upper.example:3128"));
        assert_eq!(o.no_proxy, None);
    }

    #[test]
    fn a_proxy_password_is_not_shown_in_debug_output() {
        let o = Outbound::from_env(env(&[("HTTPS_PROXY", "http://me:s3cret@proxy:3128")])).unwrap();
        let shown = format!("{o:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("me:redacted@proxy:3128"), "{shown}");
    }

    #[test]
    fn a_proxy_url_that_does_not_parse_is_refused_at_start() {
        let err = Outbound::from_env(env(&[("HTTPS_PROXY", "http://[bad")])).unwrap_err();
        assert!(format!("{err:#}").contains("HTTPS_PROXY"), "{err:#}");
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err =
            Outbound::from_env(env(&[("DIRSYNC_CA_FILE", empty.to_str().unwrap())])).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err:#}");
        let missing = dir.path().join("missing.pem");
        let err =
            Outbound::from_env(env(&[("DIRSYNC_CA_FILE", missing.to_str().unwrap())])).unwrap_err();
        assert!(err.to_string().contains("DIRSYNC_CA_FILE"), "{err:#}");
    }
}
