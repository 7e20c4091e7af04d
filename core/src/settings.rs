//! Server settings, built in layers: defaults, then a TOML file (`--config`), then `DIRSYNC_*`
//! environment variables. Built once at start and passed down; nothing else reads the environment.
//!
//! The secrets (`DIRSYNC_SECRET_KEY`, `DIRSYNC_BOOTSTRAP_ADMIN_KEY`, `DIRSYNC_DATABASE_URL`, which
//! may carry a password) can instead be read from a file named by the same variable with `_FILE`
//! appended, the convention of Docker and Kubernetes secrets and of systemd credentials: a
//! value in the environment is visible in `/proc/<pid>/environ` and `docker inspect`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

use crate::net::Cidr;
use crate::outbound::Outbound;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything the server needs to know at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Database URL; `None` means SQLite at `<data_dir>/dirsync.db`.
    pub database_url: Option<String>,
    /// How long a request waits for a pooled database connection before it answers 503
    /// `database_unavailable`: short, so that callers and load balancers learn at once that the
    /// database is gone instead of piling up requests.
    pub database_acquire_timeout_seconds: u64,
    /// Where the SQLite database and the generated secret key live.
    pub data_dir: PathBuf,
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS itself.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// 32 bytes, base64: the key that encrypts secrets at rest.
    pub secret_key: Option<SecretString>,
    /// Accepted as an admin API key when set (at least 32 characters).
    pub bootstrap_admin_key: Option<SecretString>,
    /// Base URL of Google's Directory API (the client appends `/admin/directory/v1/...`).
    pub google_directory_url: String,
    /// Google's OpenID Connect discovery document.
    pub google_discovery_url: String,
    /// A token endpoint accepted in an uploaded key file's `token_uri` besides Google's own two
    /// (the emulator's, in tests and demos). Nothing else is ever sent a signed assertion.
    pub google_token_url: String,
    /// Microsoft's sign-in service (`DIRSYNC_MICROSOFT_LOGIN_URL`): the Entra token endpoint
    /// is `{this}/{tenant}/oauth2/v2.0/token`, the OpenID configuration
    /// `{this}/{tenant}/v2.0/.well-known/openid-configuration`. Only this host is sent the
    /// app's credential.
    pub microsoft_login_url: String,
    /// Microsoft Graph (`DIRSYNC_MICROSOFT_GRAPH_URL`): reads go to `{this}/v1.0/...`.
    pub microsoft_graph_url: String,
    /// Log format.
    pub log_format: LogFormat,
    /// HTTP worker threads (`None`: one per core).
    pub workers: Option<usize>,
    /// How long a sync job's lease lasts without a heartbeat before another instance may take
    /// the job over.
    pub job_lease_seconds: u64,
    /// API requests one key or session may make per minute on one instance (0: no limit).
    pub rate_limit_api_per_minute: u32,
    /// Sign-in starts (`/oidc/login`, `/api/v1/auth/login`) one client address may make per
    /// minute on one instance (0: no limit).
    pub rate_limit_signin_per_minute: u32,
    /// Failed authentications (401 on `/api/…`: no, unknown or expired token, wrong password)
    /// one client address may make per minute on one instance before it gets 429 without its
    /// token being looked up (0: no limit).
    pub rate_limit_auth_failures_per_minute: u32,
    /// Sign-in attempts (`/oidc/login`) one client address may have open — started, neither
    /// finished nor expired — at once (0: no cap).
    pub signin_open_attempts_per_client: u32,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers name the client; empty: none, and
    /// the client is the peer address.
    pub trusted_proxies: Vec<Cidr>,
    /// Origins allowed to call the API from a browser (CORS); empty: CORS is off.
    pub cors_origins: Vec<String>,
    /// The waits between a webhook delivery's attempts (default
    /// [`crate::notifications::delivery::RETRY_DELAYS`]). A test-only knob, read from neither
    /// the file nor the environment: the tests shorten it to see retries in seconds.
    pub notification_retry_delays: Vec<std::time::Duration>,
    /// Certificate authorities and proxies for outbound requests (Google, OpenID discovery).
    pub outbound: Outbound,
    /// This machine's name (`HOSTNAME`; `dirsync` when unset): it starts the lease owner of the
    /// sync jobs this instance runs, so that a take-over's log names the instance that died.
    pub host_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: None,
            database_acquire_timeout_seconds: 5,
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8462".into(),
            tls_cert: None,
            tls_key: None,
            secret_key: None,
            bootstrap_admin_key: None,
            google_directory_url: "https://admin.googleapis.com".into(),
            google_discovery_url: "https://accounts.google.com/.well-known/openid-configuration"
                .into(),
            google_token_url: crate::google::GOOGLE_TOKEN_URL.into(),
            microsoft_login_url: "https://login.microsoftonline.com".into(),
            microsoft_graph_url: "https://graph.microsoft.com".into(),
            log_format: LogFormat::Text,
            workers: None,
            job_lease_seconds: 30,
            rate_limit_api_per_minute: 6000,
            rate_limit_signin_per_minute: 30,
            rate_limit_auth_failures_per_minute: 60,
            signin_open_attempts_per_client: 30,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            notification_retry_delays: crate::notifications::delivery::RETRY_DELAYS.to_vec(),
            outbound: Outbound::default(),
            host_name: "dirsync".into(),
        }
    }
}

/// The TOML file: every key optional, same names as the environment variables without the
/// `DIRSYNC_` prefix, in lower case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    database_acquire_timeout_seconds: Option<u64>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    secret_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    bootstrap_admin_key: Option<String>,
    bootstrap_admin_key_file: Option<PathBuf>,
    google_directory_url: Option<String>,
    google_discovery_url: Option<String>,
    google_token_url: Option<String>,
    microsoft_login_url: Option<String>,
    microsoft_graph_url: Option<String>,
    log_format: Option<LogFormat>,
    workers: Option<usize>,
    job_lease_seconds: Option<u64>,
    rate_limit_api_per_minute: Option<u32>,
    rate_limit_signin_per_minute: Option<u32>,
    rate_limit_auth_failures_per_minute: Option<u32>,
    signin_open_attempts_per_client: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    cors_origins: Option<Vec<String>>,
    ca_file: Option<PathBuf>,
}

impl Settings {
    /// Loads defaults, then `config_file` if given, then the process environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Settings> {
        Self::load_from(config_file, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`], with the environment given as a function (for tests).
    pub fn load_from(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading the config file {}", path.display()))?;
            let f: FileSettings = toml::from_str(&text)
                .with_context(|| format!("while parsing the config file {}", path.display()))?;
            s.apply(f)
                .with_context(|| format!("in the config file {}", path.display()))?;
        }
        let var = |name: &str| env(&format!("DIRSYNC_{name}")).filter(|v| !v.is_empty());
        let log_format = match var("LOG_FORMAT").as_deref() {
            None => None,
            Some("text") => Some(LogFormat::Text),
            Some("json") => Some(LogFormat::Json),
            Some(other) => anyhow::bail!("DIRSYNC_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let parse_num = |name: &str| -> anyhow::Result<Option<u64>> {
            var(name)
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("DIRSYNC_{name} must be a number"))
                })
                .transpose()
        };
        s.apply(FileSettings {
            database_url: var("DATABASE_URL"),
            database_url_file: var("DATABASE_URL_FILE").map(PathBuf::from),
            database_acquire_timeout_seconds: parse_num("DATABASE_ACQUIRE_TIMEOUT_SECONDS")?,
            data_dir: var("DATA_DIR").map(PathBuf::from),
            listen: var("LISTEN"),
            tls_cert: var("TLS_CERT").map(PathBuf::from),
            tls_key: var("TLS_KEY").map(PathBuf::from),
            secret_key: var("SECRET_KEY"),
            secret_key_file: var("SECRET_KEY_FILE").map(PathBuf::from),
            bootstrap_admin_key: var("BOOTSTRAP_ADMIN_KEY"),
            bootstrap_admin_key_file: var("BOOTSTRAP_ADMIN_KEY_FILE").map(PathBuf::from),
            google_directory_url: var("GOOGLE_DIRECTORY_URL"),
            google_discovery_url: var("GOOGLE_DISCOVERY_URL"),
            google_token_url: var("GOOGLE_TOKEN_URL"),
            microsoft_login_url: var("MICROSOFT_LOGIN_URL"),
            microsoft_graph_url: var("MICROSOFT_GRAPH_URL"),
            log_format,
            workers: parse_num("WORKERS")?.map(|n| n as usize),
            job_lease_seconds: parse_num("JOB_LEASE_SECONDS")?,
            rate_limit_api_per_minute: parse_num("RATE_LIMIT_API_PER_MINUTE")?.map(|n| n as u32),
            rate_limit_signin_per_minute: parse_num("RATE_LIMIT_SIGNIN_PER_MINUTE")?
                .map(|n| n as u32),
            rate_limit_auth_failures_per_minute: parse_num("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE")?
                .map(|n| n as u32),
            signin_open_attempts_per_client: parse_num("SIGNIN_OPEN_ATTEMPTS_PER_CLIENT")?
                .map(|n| n as u32),
            trusted_proxies: var("TRUSTED_PROXIES").map(|v| comma_list(&v)),
            cors_origins: var("CORS_ORIGINS").map(|v| comma_list(&v)),
            // Read with the proxy variables just below.
            ca_file: None,
        })?;
        // The proxies come from the environment only (the usual variables, which every other
        // program on the host reads too); `DIRSYNC_CA_FILE` overrides the file's `ca_file`.
        let env_outbound = Outbound::from_env(&env)?;
        if env_outbound.ca_file.is_some() {
            s.outbound.ca_file = env_outbound.ca_file;
            s.outbound.extra_roots = env_outbound.extra_roots;
        }
        s.outbound.https_proxy = env_outbound.https_proxy;
        s.outbound.http_proxy = env_outbound.http_proxy;
        s.outbound.no_proxy = env_outbound.no_proxy;
        // Set by the shell, Docker and Kubernetes (the container or pod name), not by dirsync's
        // own variables: read as every program on the host reads it.
        if let Some(host) = env("HOSTNAME").filter(|h| !h.is_empty()) {
            s.host_name = host;
        }
        s.validate()?;
        Ok(s)
    }

    /// Every environment variable the loader reads (each asked for once, even when unset):
    /// the list the settings reference in README must cover.
    pub fn variables_read() -> Vec<String> {
        let seen = std::sync::Mutex::new(Vec::<String>::new());
        // With nothing set, loading succeeds on the defaults and asks for every name.
        let _ = Settings::load_from(None, |name| {
            seen.lock().expect("not poisoned").push(name.to_string());
            None
        });
        let mut names = seen.into_inner().expect("not poisoned");
        names.sort();
        names.dedup();
        names
    }

    fn apply(&mut self, f: FileSettings) -> anyhow::Result<()> {
        macro_rules! set {
            ($($field:ident),*) => {$( if let Some(v) = f.$field { self.$field = v.into(); } )*};
        }
        set!(
            database_acquire_timeout_seconds,
            data_dir,
            listen,
            google_directory_url,
            google_discovery_url,
            google_token_url,
            microsoft_login_url,
            microsoft_graph_url,
            log_format,
            job_lease_seconds,
            rate_limit_api_per_minute,
            rate_limit_signin_per_minute,
            rate_limit_auth_failures_per_minute,
            signin_open_attempts_per_client,
            cors_origins
        );
        if let Some(list) = f.trusted_proxies {
            self.trusted_proxies = list
                .iter()
                .map(|c| c.parse::<Cidr>())
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("DIRSYNC_TRUSTED_PROXIES: {e}"))?;
        }
        if let Some(url) = value_or_file(f.database_url, f.database_url_file, "DATABASE_URL")? {
            self.database_url = Some(url);
        }
        if f.tls_cert.is_some() {
            self.tls_cert = f.tls_cert;
        }
        if f.tls_key.is_some() {
            self.tls_key = f.tls_key;
        }
        if f.workers.is_some() {
            self.workers = f.workers;
        }
        if let Some(k) = value_or_file(f.secret_key, f.secret_key_file, "SECRET_KEY")? {
            self.secret_key = Some(k.into());
        }
        if let Some(k) = value_or_file(
            f.bootstrap_admin_key,
            f.bootstrap_admin_key_file,
            "BOOTSTRAP_ADMIN_KEY",
        )? {
            self.bootstrap_admin_key = Some(k.into());
        }
        if let Some(path) = f.ca_file {
            self.outbound.set_ca_file(&path)?;
        }
        Ok(())
    }
}

/// A secret given either directly or as a file to read (`<NAME>_FILE`), never both: with both,
/// which one wins would be a guess. The file's trailing line break is not part of the secret
/// (`echo secret > file` writes one).
fn value_or_file(
    value: Option<String>,
    file: Option<PathBuf>,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let lower = name.to_ascii_lowercase();
    match (value, file) {
        (Some(_), Some(_)) => anyhow::bail!(
            "DIRSYNC_{name} and DIRSYNC_{name}_FILE ({lower} and {lower}_file in the config \
             file) are both set: set only one"
        ),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("while reading DIRSYNC_{name}_FILE {}", path.display()))?;
            let v = text.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(
                !v.is_empty(),
                "DIRSYNC_{name}_FILE {} is empty",
                path.display()
            );
            Ok(Some(v.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// The items of a comma-separated variable, trimmed, empty ones left out.
fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

impl Settings {
    /// Checks rules that span fields, with messages that say what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        use secrecy::ExposeSecret;
        if let Some(k) = &self.bootstrap_admin_key {
            anyhow::ensure!(
                k.expose_secret().chars().count() >= 32,
                "DIRSYNC_BOOTSTRAP_ADMIN_KEY must be at least 32 characters long"
            );
        }
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "DIRSYNC_TLS_CERT and DIRSYNC_TLS_KEY must be set together"
        );
        for (name, value) in [
            ("DIRSYNC_GOOGLE_TOKEN_URL", &self.google_token_url),
            ("DIRSYNC_MICROSOFT_LOGIN_URL", &self.microsoft_login_url),
            ("DIRSYNC_MICROSOFT_GRAPH_URL", &self.microsoft_graph_url),
        ] {
            match url::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {}
                _ => anyhow::bail!("{name} must be an http(s) URL, not {value:?}"),
            }
        }
        anyhow::ensure!(
            self.database_acquire_timeout_seconds >= 1,
            "database_acquire_timeout_seconds must be at least 1"
        );
        anyhow::ensure!(
            self.job_lease_seconds >= 2,
            "job_lease_seconds must be at least 2"
        );
        Ok(())
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("dirsync.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dirsync.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/x\"\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), |k| {
            (k == "DIRSYNC_LISTEN").then(|| "127.0.0.1:1".to_string())
        })
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:1");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/x"));
        assert_eq!(s.google_directory_url, "https://admin.googleapis.com");
    }

    #[test]
    fn the_host_name_is_hostname_and_dirsync_when_it_is_unset_or_empty() {
        let with = |v: &str| {
            let v = v.to_string();
            Settings::load_from(None, move |k| (k == "HOSTNAME").then(|| v.clone()))
                .unwrap()
                .host_name
        };
        assert_eq!(with("node-7"), "node-7");
        assert_eq!(with(""), "dirsync");
        assert_eq!(
            Settings::load_from(None, |_| None).unwrap().host_name,
            "dirsync"
        );
    }

    #[test]
    fn short_bootstrap_key_is_refused() {
        let err = Settings::load_from(None, |k| {
            (k == "DIRSYNC_BOOTSTRAP_ADMIN_KEY").then(|| "short".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("at least 32"));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dirsync.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Settings::load_from(Some(&file), |_| None).is_err());
    }

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn secrets_are_read_from_files_without_the_trailing_line_break() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_string()
        };
        let admin = "a".repeat(40);
        let s = Settings::load_from(
            None,
            env_of(vec![
                ("DIRSYNC_SECRET_KEY_FILE", write("key", "c2VjcmV0\n")),
                (
                    "DIRSYNC_BOOTSTRAP_ADMIN_KEY_FILE",
                    write("admin", &format!("{admin}\r\n")),
                ),
                (
                    "DIRSYNC_DATABASE_URL_FILE",
                    write("db", "postgres://u:p w@db/dirsync"),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.secret_key.unwrap().expose_secret(), "c2VjcmV0");
        assert_eq!(s.bootstrap_admin_key.unwrap().expose_secret(), admin);
        assert_eq!(s.database_url.unwrap(), "postgres://u:p w@db/dirsync");

        // The config file's key names a file the same way, and the environment still wins.
        let toml = dir.path().join("dirsync.toml");
        std::fs::write(
            &toml,
            format!(
                "database_url_file = {:?}\n",
                write("db2", "sqlite:///from-file\n")
            ),
        )
        .unwrap();
        let s = Settings::load_from(Some(&toml), |_| None).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("sqlite:///from-file"));
        let s = Settings::load_from(
            Some(&toml),
            env_of(vec![("DIRSYNC_DATABASE_URL", "sqlite:///from-env".into())]),
        )
        .unwrap();
        assert_eq!(s.database_url.as_deref(), Some("sqlite:///from-env"));
    }

    #[test]
    fn a_secret_set_both_directly_and_as_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "x".repeat(40)).unwrap();
        let path = file.to_str().unwrap().to_string();
        for name in ["SECRET_KEY", "BOOTSTRAP_ADMIN_KEY", "DATABASE_URL"] {
            let direct: &'static str = format!("DIRSYNC_{name}").leak();
            let from_file: &'static str = format!("DIRSYNC_{name}_FILE").leak();
            let err = Settings::load_from(
                None,
                env_of(vec![(direct, "x".repeat(40)), (from_file, path.clone())]),
            )
            .unwrap_err();
            assert!(
                err.to_string()
                    .contains(&format!("{direct} and {from_file}")),
                "{err:#}"
            );
        }
        let toml = dir.path().join("dirsync.toml");
        std::fs::write(
            &toml,
            format!("secret_key = \"c2VjcmV0\"\nsecret_key_file = {path:?}\n"),
        )
        .unwrap();
        let err = Settings::load_from(Some(&toml), |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("both set"), "{err:#}");
    }

    #[test]
    fn a_secret_file_that_is_missing_or_empty_is_an_error_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let err = Settings::load_from(
            None,
            env_of(vec![(
                "DIRSYNC_SECRET_KEY_FILE",
                empty.to_str().unwrap().into(),
            )]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err:#}");
        let missing = dir.path().join("missing");
        let err = Settings::load_from(
            None,
            env_of(vec![(
                "DIRSYNC_DATABASE_URL_FILE",
                missing.to_str().unwrap().into(),
            )]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("DIRSYNC_DATABASE_URL_FILE"),
            "{err:#}"
        );
    }

    #[test]
    fn the_example_config_file_loads_and_names_every_setting() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/dirsync.toml"
        ));
        let s = Settings::load_from(Some(path), |_| None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8462");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/dirsync"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.trusted_proxies.len(), 2);
        // Every setting is in the example, set or commented out, so that it can serve as the
        // reference of the file's keys.
        let text = std::fs::read_to_string(path).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start_matches(['#', ' ']).split_once(" = "))
            .map(|(k, _)| k)
            .collect();
        let names = Settings::variables_read();
        assert!(
            names.contains(&"DIRSYNC_CORS_ORIGINS".to_string()),
            "{names:?}"
        );
        for name in names {
            if let Some(key) = name.strip_prefix("DIRSYNC_") {
                let key = key.to_ascii_lowercase();
                assert!(
                    keys.contains(&key.as_str()),
                    "{key} is not in deploy/dirsync.toml"
                );
            }
        }
    }

    #[test]
    fn trusted_proxies_are_cidr_blocks() {
        let s = Settings::load_from(None, |k| {
            (k == "DIRSYNC_TRUSTED_PROXIES").then(|| "10.0.0.0/8, 2001:db8::/32,192.0.2.7".into())
        })
        .unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(|c| c.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
        assert!(Settings::default().trusted_proxies.is_empty());
        let err = Settings::load_from(None, |k| {
            (k == "DIRSYNC_TRUSTED_PROXIES").then(|| "10.0.0.0/8,proxy.example".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("DIRSYNC_TRUSTED_PROXIES"), "{err}");
    }
}
