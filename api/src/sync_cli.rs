//! `dirsync sync`: start a sync job through the HTTP API, follow it, print its summary, and
//! exit non-zero unless it succeeded — so a CI step fails when the sync does.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

/// Options of `dirsync sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The server's base URL, e.g. https://dirsync.example.com
    #[arg(long, env = "DIRSYNC_SERVER")]
    pub server: String,
    /// Plan only: report what a sync would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait for the job to end, showing its progress.
    #[arg(long)]
    pub wait: bool,
    /// Let a run blocked by the deletion limit go through (must equal the planned deletions).
    #[arg(long)]
    pub confirm_deletions: Option<u32>,
    /// API key or session token (operator or admin).
    #[arg(long, env = "DIRSYNC_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Runs the command.
pub async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let base = args.server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()?;
    let resp = http
        .post(format!("{base}/api/v1/sync-jobs"))
        .bearer_auth(&args.token)
        .json(&json!({
            "dry_run": args.dry_run,
            "confirm_deletions": args.confirm_deletions,
            "trigger": "cli",
        }))
        .send()
        .await
        .with_context(|| format!("while contacting {base}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "the server refused the sync ({status}): {}",
            body["error"]["message"].as_str().unwrap_or("no details")
        );
    }
    let id = body["id"]
        .as_str()
        .context("the answer has no job id")?
        .to_string();
    println!(
        "sync job {id} queued{}",
        if args.dry_run { " (dry run)" } else { "" }
    );
    if !args.wait {
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let job = loop {
        let job: Value = http
            .get(format!("{base}/api/v1/sync-jobs/{id}"))
            .bearer_auth(&args.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let status = job["status"].as_str().unwrap_or("unknown");
        if !matches!(status, "queued" | "running") {
            if tty {
                eprintln!();
            }
            break job;
        }
        let line = progress_line(&job);
        if tty {
            eprint!("\r{line:<100}");
            std::io::stderr().flush().ok();
        } else if line != last_line {
            eprintln!("{line}");
        }
        last_line = line;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    print_summary(&job);
    match job["status"].as_str() {
        Some("succeeded") => Ok(()),
        Some(other) => bail!(
            "the sync job {other}: {}",
            job["error"]["message"].as_str().unwrap_or("no details")
        ),
        None => bail!("the job has no status"),
    }
}

fn progress_line(job: &Value) -> String {
    let p = &job["progress"];
    let phase = p["phase"].as_str().unwrap_or("queued");
    const PHASES: [&str; 5] = [
        "fetching_users",
        "fetching_groups",
        "fetching_members",
        "planning",
        "applying",
    ];
    let done = PHASES.iter().position(|x| *x == phase).map_or(0, |i| i + 1);
    let bar: String = (0..PHASES.len())
        .map(|i| if i < done { '#' } else { '-' })
        .collect();
    format!(
        "[{bar}] {phase:<16} users {} groups {} members {} pages {}",
        p["users"], p["groups"], p["members"], p["pages"]
    )
}

fn print_summary(job: &Value) {
    println!(
        "sync job {} {}",
        job["id"].as_str().unwrap_or("?"),
        job["status"].as_str().unwrap_or("?")
    );
    if let Some(summary) = job["summary"].as_object() {
        let parts: Vec<String> = summary.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("summary: {}", parts.join(", "));
    }
    if let Some(n) = job["planned_deletions"].as_u64() {
        println!("planned deletions: {n}");
    }
}
