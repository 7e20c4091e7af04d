//! The `dirsync` command: `serve` (the default), `openapi`, `api-key create`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dirsync_core::{audit, auth, settings::Settings};
use secrecy::ExposeSecret;

use crate::{telemetry, Application};

/// dirsync keeps a mail archive's users in step with Google Workspace.
#[derive(Debug, Parser)]
#[command(name = "dirsync", version)]
pub struct Cli {
    /// A TOML settings file; `DIRSYNC_*` environment variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the OpenAPI document as YAML (what `openapi.yaml` holds).
    Openapi,
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Start a sync job on a running server (for CI scripts and cron); the token comes from
    /// DIRSYNC_TOKEN. Exits non-zero when the job fails, is blocked or cancelled.
    Sync(crate::sync_cli::SyncArgs),
}

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// admin, operator or reader.
        #[arg(long)]
        role: String,
    },
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            let yaml = crate::openapi_document()
                .to_yaml()
                .context("while rendering the OpenAPI document")?;
            print!("{yaml}");
            Ok(())
        }
        Command::Serve => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(
                settings.log_format,
                std::io::stdout().is_terminal(),
                std::io::stdout,
            );
            let app = Application::build(settings).await?;
            app.run_until_stopped().await
        }
        Command::Sync(args) => crate::sync_cli::run(args).await,
        Command::ApiKey(ApiKeyCommand::Create { name, role }) => {
            let settings = Settings::load(cli.config.as_deref())?;
            telemetry::init(
                settings.log_format,
                std::io::stderr().is_terminal(),
                std::io::stderr,
            );
            let role = auth::Role::parse(&role).map_err(|e| anyhow::anyhow!("{e}"))?;
            let db = dirsync_core::db::connect_and_migrate(&settings).await?;
            let (info, key) = auth::create_api_key(&db, &name, role, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            audit::record(
                &db,
                "cli",
                "api_key.create",
                "api_key",
                Some(info.id.to_string()),
                serde_json::json!({"name": info.name, "role": info.role}),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", key.expose_secret());
            eprintln!(
                "created API key {:?} ({}) with role {}; it is shown only this once",
                info.name,
                info.id,
                info.role.as_str()
            );
            Ok(())
        }
    }
}
