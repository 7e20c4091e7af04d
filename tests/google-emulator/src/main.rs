//! `google-emulator`: runs the Google emulator as a standalone server.
//!
//! ```text
//! google-emulator --listen 127.0.0.1:8463 --users 1000 --groups 100 --seed 7 --key-file sa.json
//! google-emulator --fixture directory.json --latency-ms 50 --print-key
//! ```

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions};

/// A local Google emulator: OAuth token endpoint, Directory API and OpenID Connect (see the
/// crate docs).
#[derive(Parser, Debug)]
#[command(name = "google-emulator", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8463", env = "GOOGLE_EMULATOR_LISTEN")]
    listen: SocketAddr,
    /// URL clients use to reach the emulator (written into the key file's token_uri).
    #[arg(long, env = "GOOGLE_EMULATOR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Generate this many users (the admin included).
    #[arg(long, default_value_t = 100, env = "GOOGLE_EMULATOR_USERS")]
    users: usize,
    /// Generate this many groups.
    #[arg(long, default_value_t = 10, env = "GOOGLE_EMULATOR_GROUPS")]
    groups: usize,
    /// Seed of the generated directory.
    #[arg(long, default_value_t = 1, env = "GOOGLE_EMULATOR_SEED")]
    seed: u64,
    /// Load the directory from a JSON fixture instead of generating one.
    #[arg(long, env = "GOOGLE_EMULATOR_FIXTURE", conflicts_with_all = ["users", "groups", "seed"])]
    fixture: Option<PathBuf>,
    /// Latency added to every Google request, in milliseconds.
    #[arg(long, default_value_t = 0, env = "GOOGLE_EMULATOR_LATENCY_MS")]
    latency_ms: u64,
    /// Google's per-minute quota on Directory and Reports requests (429 with Retry-After
    /// beyond it); off when absent.
    #[arg(long, env = "GOOGLE_EMULATOR_QUOTA_PER_MINUTE")]
    quota_per_minute: Option<u32>,
    /// Seconds an admin activity stays invisible to activities.list (Google's log lags).
    #[arg(long, default_value_t = 0, env = "GOOGLE_EMULATOR_EVENT_LAG_SECONDS")]
    event_lag_seconds: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 1, env = "GOOGLE_EMULATOR_WORKERS")]
    workers: usize,
    /// Write the service-account key file here (mode 0600).
    #[arg(long, env = "GOOGLE_EMULATOR_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Print the service-account key file on stdout.
    #[arg(long)]
    print_key: bool,
    /// Write the directory as a JSON fixture here, then keep serving.
    #[arg(long)]
    dump_fixture: Option<PathBuf>,
    /// Register an OAuth client for Sign in with Google (with --oauth-client-secret and
    /// --oauth-redirect-uri).
    #[arg(long, env = "GOOGLE_EMULATOR_OAUTH_CLIENT_ID", requires_all = ["oauth_client_secret", "oauth_redirect_uri"])]
    oauth_client_id: Option<String>,
    /// The OAuth client's secret.
    #[arg(long, env = "GOOGLE_EMULATOR_OAUTH_CLIENT_SECRET")]
    oauth_client_secret: Option<String>,
    /// An authorized redirect URI of the OAuth client (repeat for several).
    #[arg(
        long,
        env = "GOOGLE_EMULATOR_OAUTH_REDIRECT_URI",
        value_delimiter = ','
    )]
    oauth_redirect_uri: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let directory = match &args.fixture {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading {}", path.display()))?;
            Directory::from_json(&text)
                .with_context(|| format!("while loading {}", path.display()))?
        }
        None => Directory::generate(args.users, args.groups, args.seed),
    };
    if let Some(path) = &args.dump_fixture {
        std::fs::write(path, directory.to_json())
            .with_context(|| format!("while writing {}", path.display()))?;
    }
    let summary = format!(
        "{} users, {} groups, {} memberships on {} (customer {})",
        directory.user_count(),
        directory.group_count(),
        directory.member_count(),
        directory.domain(),
        directory.customer_id()
    );
    let emu = Emulator::start(EmulatorOptions {
        directory,
        latency: Duration::from_millis(args.latency_ms),
        workers: args.workers,
        listen: args.listen,
        public_url: args.public_url.clone(),
        ..Default::default()
    })
    .await
    .context("while starting the emulator")?;
    emu.control().set_quota_per_minute(args.quota_per_minute);
    emu.control()
        .set_event_lag(Duration::from_secs(args.event_lag_seconds));
    if let Some(path) = &args.key_file {
        write_private(path, &emu.service_account_key_json())
            .with_context(|| format!("while writing the key file {}", path.display()))?;
        eprintln!(
            "google-emulator: service-account key written to {}",
            path.display()
        );
    }
    if let (Some(id), Some(secret)) = (&args.oauth_client_id, &args.oauth_client_secret) {
        let uris: Vec<&str> = args.oauth_redirect_uri.iter().map(String::as_str).collect();
        emu.control().add_oauth_client(id, secret, &uris);
        eprintln!(
            "google-emulator: OAuth client {id} registered for {}",
            uris.join(", ")
        );
    }
    if args.print_key {
        println!("{}", emu.service_account_key_json());
    }
    let sa = emu.service_account();
    eprintln!("google-emulator: {summary}");
    eprintln!(
        "google-emulator: service account {} (client id {}), delegation granted for the read-only Directory scopes and the admin audit log",
        sa.client_email, sa.client_id
    );
    eprintln!(
        "google-emulator: listening on {} (token endpoint {}, OpenID discovery {}, control API {}/_emulator)",
        emu.base_url(),
        emu.token_uri(),
        emu.discovery_url(),
        emu.base_url()
    );
    wait_for_shutdown().await;
    eprintln!("google-emulator: stopping");
    emu.stop().await;
    Ok(())
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its mode on open: tighten it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_bytes())
}
