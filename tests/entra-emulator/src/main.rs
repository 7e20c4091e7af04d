//! `entra-emulator`: the emulator as a process, for the fidelity test, demos and Docker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dirsync_entra_emulator::{Directory, Emulator, EmulatorOptions};

/// A local Microsoft Entra ID: token endpoint, Graph v1.0 reads, control API under /_emulator.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ENTRA_EMULATOR_LISTEN", default_value = "127.0.0.1:8464")]
    listen: SocketAddr,
    /// URL clients reach the emulator at (discovery and next links use it).
    #[arg(long, env = "ENTRA_EMULATOR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve plain HTTP instead of HTTPS (MSAL needs HTTPS; Graph clients on loopback do not).
    #[arg(long, env = "ENTRA_EMULATOR_PLAIN_HTTP")]
    plain_http: bool,
    /// Write the generated CA certificate (PEM) here.
    #[arg(long, env = "ENTRA_EMULATOR_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Further names for the server certificate (comma-separated), e.g. a Docker service name.
    #[arg(long, env = "ENTRA_EMULATOR_TLS_NAMES", value_delimiter = ',')]
    tls_names: Vec<String>,
    /// Generated users.
    #[arg(long, env = "ENTRA_EMULATOR_USERS", default_value_t = 100)]
    users: usize,
    /// Generated groups.
    #[arg(long, env = "ENTRA_EMULATOR_GROUPS", default_value_t = 20)]
    groups: usize,
    /// Generator seed.
    #[arg(long, env = "ENTRA_EMULATOR_SEED", default_value_t = 1)]
    seed: u64,
    /// Load this JSON fixture instead of generating.
    #[arg(long, env = "ENTRA_EMULATOR_FIXTURE")]
    fixture: Option<PathBuf>,
    /// Write the directory as a fixture here, then serve.
    #[arg(long)]
    dump_fixture: Option<PathBuf>,
    /// Delay before every answer.
    #[arg(long, env = "ENTRA_EMULATOR_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// At most this many Graph requests a second (429 + Retry-After beyond).
    #[arg(long, env = "ENTRA_EMULATOR_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Write the emulator's app credentials (tenant, client id, secret, certificate and key) as
    /// JSON here (mode 0600).
    #[arg(long, env = "ENTRA_EMULATOR_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// Redirect URIs registered on the emulator's app, for sign-in (comma-separated).
    #[arg(long, env = "ENTRA_EMULATOR_REDIRECT_URIS", value_delimiter = ',')]
    redirect_uri: Vec<String>,
    /// actix worker threads.
    #[arg(long, env = "ENTRA_EMULATOR_WORKERS", default_value_t = 2)]
    workers: usize,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let directory = match &args.fixture {
        Some(p) => Directory::from_json(
            &std::fs::read_to_string(p)
                .with_context(|| format!("while reading {}", p.display()))?,
        )?,
        None => Directory::generate(args.users, args.groups, args.seed),
    };
    if let Some(p) = &args.dump_fixture {
        std::fs::write(p, directory.to_json())
            .with_context(|| format!("while writing {}", p.display()))?;
    }
    let emu = Emulator::start(EmulatorOptions {
        directory,
        latency: Duration::from_millis(args.latency_ms),
        workers: args.workers,
        listen: args.listen,
        https: !args.plain_http,
        ca_file: args.ca_file.clone(),
        tls_names: args.tls_names.clone(),
        public_url: args.public_url.clone(),
        ..Default::default()
    })
    .await?;
    let control = emu.control();
    control.set_rate_limit(args.rate_limit, 1);
    let creds = control.default_app();
    for uri in &args.redirect_uri {
        control.add_redirect_uri(&creds.client_id, uri)?;
    }
    if let Some(p) = &args.credentials_file {
        write_private(p, &serde_json::to_string_pretty(&creds)?)
            .with_context(|| format!("while writing {}", p.display()))?;
    }
    eprintln!(
        "entra-emulator on {} (tenant {}, client id {})",
        emu.base_url(),
        creds.tenant_id,
        creds.client_id
    );
    wait_for_signal().await?;
    emu.stop().await;
    Ok(())
}

fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(text.as_bytes())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
