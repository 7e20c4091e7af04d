//! `dirsync sync` and `dirsync healthcheck`: talk to a running server over its HTTP API, for CI
//! scripts, cron and container health checks. `dirsync sync` exits with a code per outcome
//! ([`exit`]) so that a script can branch on it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;
use dirsync_core::jobs::{Job, JobErrorBody, Kind, Phase, Progress, Status as JobStatus};
use dirsync_core::outbound::Outbound;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Exit codes of `dirsync sync` (product.md §8).
pub mod exit {
    /// The job succeeded (or, without `--wait`, was queued).
    pub const SUCCEEDED: u8 = 0;
    /// The job failed, `--timeout` passed before it ended, or the server answered an error
    /// that none of the codes below names.
    pub const FAILED: u8 = 1;
    /// The command line, or the request it makes, is not valid (clap uses 2 for this as well).
    pub const USAGE: u8 = 2;
    /// The deletion limit blocked the job; rerun with `--confirm-deletions N`.
    pub const BLOCKED: u8 = 3;
    /// The job was cancelled.
    pub const CANCELLED: u8 = 4;
    /// The server could not be reached or is unavailable (502, 503, 504), or it refused the
    /// token (401, 403).
    pub const UNREACHABLE: u8 = 5;
}

/// Where the server is and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL, e.g. https://dirsync.example.com
    #[arg(long, env = "DIRSYNC_SERVER", value_parser = parse_server)]
    pub server: reqwest::Url,
    /// API key or session token.
    #[arg(long, env = "DIRSYNC_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Options of `dirsync sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Plan only: report what a sync would change.
    #[arg(long)]
    pub dry_run: bool,
    /// `full` reads the whole directory; `incremental` only what Google's admin log names
    /// since the last sync (it runs as a full sync, saying why, when the log cannot be trusted).
    #[arg(long, default_value = "full", value_parser = kind_parser())]
    pub kind: Kind,
    /// Wait for the job to end, showing its progress on stderr; the exit code tells how it
    /// ended.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: stop waiting after this many seconds (exit 1; the job goes on).
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub timeout: Option<u64>,
    /// Print the job as the API returns it, as JSON on stdout: the final one with --wait, the
    /// created one without.
    #[arg(long)]
    pub json: bool,
    /// Let a run blocked by the deletion limit go through (must equal the planned deletions).
    #[arg(long)]
    pub confirm_deletions: Option<u32>,
}

/// Options of `dirsync healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's base URL; default: the address this configuration listens on (loopback
    /// for 0.0.0.0 or ::), over HTTPS when it has a certificate.
    #[arg(long, value_parser = parse_server)]
    pub server: Option<reqwest::Url>,
}

fn parse_server(s: &str) -> Result<reqwest::Url, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(format!(
            "{s:?} is not an http(s) URL like https://dirsync.example.com"
        )),
    }
}

/// How a job's final state ends this command: 0 when it succeeded (or still runs, when the
/// command did not wait), then one code per way of not succeeding.
fn exit_code(status: JobStatus) -> u8 {
    match status {
        JobStatus::Succeeded | JobStatus::Queued | JobStatus::Running => exit::SUCCEEDED,
        JobStatus::Failed => exit::FAILED,
        JobStatus::Blocked => exit::BLOCKED,
        JobStatus::Cancelled => exit::CANCELLED,
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    // The API's error body has the `{"code", "message"}` of a job's error (and `details`,
    // which this command does not show).
    error: JobErrorBody,
}

/// The job kinds, from the one list that names them.
fn kind_parser() -> impl clap::builder::TypedValueParser<Value = Kind> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    clap::builder::PossibleValuesParser::new(names).try_map(|name: String| Kind::parse(&name))
}

#[derive(Serialize)]
struct StartJob {
    dry_run: bool,
    kind: Kind,
    confirm_deletions: Option<u32>,
    trigger: &'static str,
}

/// Why a request to the server did not give what was asked, with the exit code it means.
#[derive(Debug)]
pub enum RemoteError {
    /// No answer (connection, TLS, timeout), 502 to 504, or a token refused: exit 5.
    Unreachable(String),
    /// The server found the request invalid (400, 422): exit 2.
    Invalid(String),
    /// Anything else: exit 1.
    Other(String),
}

impl RemoteError {
    /// The exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            RemoteError::Unreachable(_) => exit::UNREACHABLE,
            RemoteError::Invalid(_) => exit::USAGE,
            RemoteError::Other(_) => exit::FAILED,
        }
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Unreachable(m) | RemoteError::Invalid(m) | RemoteError::Other(m) => {
                f.write_str(m)
            }
        }
    }
}

/// A dirsync server reached over HTTP with a bearer token.
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// Most times a request answered 429 is repeated (after its `Retry-After`).
const MAX_RATE_LIMITED: u32 = 10;

impl Remote {
    /// A client for `args.server`, trusting and proxying as the environment says
    /// (`DIRSYNC_CA_FILE`, `HTTPS_PROXY`, `NO_PROXY`).
    pub fn new(args: &ServerArgs) -> Result<Remote, RemoteError> {
        let http = outbound_from_env()?
            .client_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(90))
            .user_agent(concat!("dirsync-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Other(format!("HTTP client: {e}")))?;
        Ok(Remote {
            http,
            base: args.server.as_str().trim_end_matches('/').to_string(),
            token: args.token.clone(),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request (repeating it after a 429), returns the body of a 2xx answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<String, RemoteError> {
        let url = format!("{}{path}", self.base);
        let mut rate_limited = 0;
        loop {
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token);
            if let Some(b) = &body {
                rb = rb
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| {
                RemoteError::Unreachable(format!("cannot reach {}: {}", self.base, chain(&e)))
            })?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let text = resp.text().await.map_err(|e| {
                RemoteError::Unreachable(format!("reading the answer of {url}: {}", chain(&e)))
            })?;
            if status.is_success() {
                return Ok(text);
            }
            if status.as_u16() == 429 && rate_limited < MAX_RATE_LIMITED {
                rate_limited += 1;
                tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 60)))
                    .await;
                continue;
            }
            let detail = serde_json::from_str::<ErrorEnvelope>(&text)
                .map(|e| format!("{} ({})", e.error.message, e.error.code))
                .unwrap_or_else(|_| "no details".into());
            let msg = format!("{method} {path}: the server answered {status}: {detail}");
            return Err(match status.as_u16() {
                401 | 403 => RemoteError::Unreachable(format!("the token was refused: {msg}")),
                // A proxy or load balancer in front with no healthy server behind it, or the
                // server without its database: for a script, the server is not there.
                502..=504 => RemoteError::Unreachable(format!("the server is unavailable: {msg}")),
                400 | 422 => RemoteError::Invalid(msg),
                _ => RemoteError::Other(msg),
            });
        }
    }

    /// GET, decoding the answer; returns it with its raw text.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<(T, String), RemoteError> {
        let text = self.send(reqwest::Method::GET, path, None).await?;
        Ok((decode(path, &text)?, text))
    }

    /// POST JSON, decoding the answer; returns it with its raw text.
    pub async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(T, String), RemoteError> {
        let body = serde_json::to_vec(body).expect("request bodies serialise");
        let text = self.send(reqwest::Method::POST, path, Some(body)).await?;
        Ok((decode(path, &text)?, text))
    }
}

fn decode<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, RemoteError> {
    serde_json::from_str(text).map_err(|e| {
        RemoteError::Other(format!(
            "the answer to {path} is not what this dirsync expects ({e}); is the server the same version?"
        ))
    })
}

/// An error with its causes (reqwest's own message hides why a connection failed).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The CLI's trust and proxy settings, from the same variables as the server's.
fn outbound_from_env() -> Result<Outbound, RemoteError> {
    Outbound::from_env(|name| std::env::var(name).ok())
        .map_err(|e| RemoteError::Invalid(format!("{e:#}")))
}

/// Runs `dirsync sync`; returns the exit code.
pub async fn run(args: SyncArgs) -> u8 {
    match sync(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dirsync sync: {e}");
            e.exit_code()
        }
    }
}

async fn sync(args: &SyncArgs) -> Result<u8, RemoteError> {
    let remote = Remote::new(&args.server)?;
    let (created, created_text): (Job, String) = remote
        .post(
            "/api/v1/sync-jobs",
            &StartJob {
                dry_run: args.dry_run,
                kind: args.kind,
                confirm_deletions: args.confirm_deletions,
                trigger: "cli",
            },
        )
        .await?;
    // With --json, stdout carries the JSON alone; the human lines go to stderr.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "sync job {} queued{}",
        created.id,
        if args.dry_run { " (dry run)" } else { "" }
    ));
    if !args.wait {
        if args.json {
            println!("{}", created_text.trim_end());
        }
        return Ok(exit::SUCCEEDED);
    }
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let path = format!("/api/v1/sync-jobs/{}", created.id);
    let (job, text) = loop {
        let (job, text): (Job, String) = remote.get(&path).await?;
        if !matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            if tty {
                eprintln!();
            }
            break (job, text);
        }
        let line = progress_line(&job.progress);
        if tty {
            eprint!("\r{line:<100}");
            std::io::stderr().flush().ok();
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        let mut pause = Duration::from_millis(500);
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if tty {
                    eprintln!();
                }
                eprintln!(
                    "dirsync sync: job {} still {} after {} s (--timeout); it goes on on the server",
                    job.id,
                    job.status.as_str(),
                    args.timeout.unwrap_or(0)
                );
                if args.json {
                    println!("{}", text.trim_end());
                }
                return Ok(exit::FAILED);
            }
            pause = pause.min(left);
        }
        tokio::time::sleep(pause).await;
    };
    if args.json {
        println!("{}", text.trim_end());
    }
    if let Some(why) = &job.fallback_reason {
        say(format!("ran as a full sync: {why}"));
    }
    for line in summary_lines(&job) {
        say(line);
    }
    if let Some(e) = &job.error {
        eprintln!(
            "dirsync sync: the sync job {}: {} ({})",
            job.status.as_str(),
            e.message,
            e.code
        );
    }
    Ok(exit_code(job.status))
}

fn progress_line(p: &Progress) -> String {
    let phase = p.phase.map_or("queued", Phase::as_str);
    // Phases run in declaration order: the bar fills up to the current one.
    let done = p
        .phase
        .and_then(|x| Phase::ALL.iter().position(|y| *y == x))
        .map_or(0, |i| i + 1);
    let bar: String = (0..Phase::ALL.len())
        .map(|i| if i < done { '#' } else { '-' })
        .collect();
    format!(
        "[{bar}] {phase:<16} users {} groups {} members {} pages {}",
        p.users, p.groups, p.members, p.pages
    )
}

fn summary_lines(job: &Job) -> Vec<String> {
    let mut lines = vec![format!("sync job {} {}", job.id, job.status.as_str())];
    if let Some(s) = &job.summary {
        lines.push(format!(
            "summary: created {}, updated {}, deleted {}, disabled {}, enabled {}, unchanged {}, \
             conflicts {}, folders_kept {}, kept_admin {}, out_of_scope {}",
            s.created,
            s.updated,
            s.deleted,
            s.disabled,
            s.enabled,
            s.unchanged,
            s.conflicts,
            s.folders_kept,
            s.kept_admin,
            s.out_of_scope
        ));
    }
    if let Some(n) = job.planned_deletions {
        lines.push(format!("planned deletions: {n}"));
    }
    lines
}

/// Runs `dirsync healthcheck` against `server`; returns the exit code: 0 when `/ready` answers
/// 200, 1 otherwise.
pub async fn healthcheck(server: &reqwest::Url) -> u8 {
    let url = format!("{}/ready", server.as_str().trim_end_matches('/'));
    let client = match outbound_from_env().and_then(|o| {
        o.client_builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| RemoteError::Other(e.to_string()))
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dirsync healthcheck: {e}");
            return 1;
        }
    };
    match client.get(&url).send().await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            println!("ready ({url})");
            0
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<ErrorEnvelope>(&body)
                .map(|e| format!("{} ({})", e.error.message, e.error.code))
                .unwrap_or_default();
            eprintln!("dirsync healthcheck: {url} answered {status} {detail}");
            1
        }
        Err(e) => {
            eprintln!("dirsync healthcheck: cannot reach {url}: {}", chain(&e));
            1
        }
    }
}

/// The URL at which a server started with these settings answers on this host.
pub fn local_server_url(
    settings: &dirsync_core::settings::Settings,
) -> anyhow::Result<reqwest::Url> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let addr: SocketAddr = settings.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "cannot tell where the server listens ({:?}): pass --server",
            settings.listen
        )
    })?;
    let ip = match addr.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if settings.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}", SocketAddr::new(ip, addr.port()));
    Ok(reqwest::Url::parse(&url)?)
}
