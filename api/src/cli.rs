//! The `dirsync` command: `serve` (the default), `openapi`, `api-key`, and the commands that
//! talk to a running server over HTTP (`sync`, `users export`, `healthcheck`), plus `completions`
//! and `man` generated from these definitions.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, Parser, Subcommand};
use dirsync_core::{auth, paging::PageRequest, settings::Settings};
use secrecy::ExposeSecret;
use uuid::Uuid;

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
    /// DIRSYNC_TOKEN (an operator key is enough).
    ///
    /// Exit codes: 0 succeeded (without --wait: queued); 1 failed, or --timeout passed; 2 usage
    /// error; 3 blocked by the deletion limit; 4 cancelled; 5 server unreachable (or 502-504),
    /// or token refused.
    Sync(crate::sync_cli::SyncArgs),
    /// Exit 0 when the server's /ready answers 200, 1 otherwise (for container health checks).
    Healthcheck(crate::sync_cli::HealthcheckArgs),
    /// Users, through a running server's HTTP API.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Print a shell completion script, e.g. `dirsync completions bash > /etc/bash_completion.d/dirsync`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `dirsync man > /usr/local/share/man/man1/dirsync.1`.
    Man,
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Print every user with its addresses and privileges, as CSV or JSON (a reader key is
    /// enough; the token comes from DIRSYNC_TOKEN).
    Export(crate::export_cli::ExportArgs),
}

/// `--role`: the names of [`auth::Role`] as clap's possible values (listed in `--help` and in
/// shell completions, strongest first), so that the CLI has no mirror of the enum to keep true.
fn role_parser() -> impl TypedValueParser<Value = auth::Role> {
    let values = auth::Role::ALL
        .iter()
        .rev()
        .map(|r| PossibleValue::new(r.as_str()).help(role_help(*r)));
    PossibleValuesParser::new(values).try_map(|name: String| auth::Role::parse(&name))
}

/// What each role may do, for `--help` (a `match`: a new role does not compile without one).
fn role_help(role: auth::Role) -> &'static str {
    match role {
        auth::Role::Admin => "Everything",
        auth::Role::Operator => "Read configuration, run and read sync jobs, read users",
        auth::Role::Reader => "Read users, privileges, lookup",
    }
}

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// The role it grants.
        #[arg(long, value_parser = role_parser())]
        role: auth::Role,
    },
    /// List the keys, newest first (never the keys themselves).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a key; it stops working at once.
    Revoke {
        /// The key's id (`dirsync api-key list` shows it).
        id: Uuid,
    },
}

/// Opens the database named by the settings, logging to stderr (stdout is the command's).
async fn open_database(
    config: Option<&std::path::Path>,
) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let settings = Settings::load(config)?;
    telemetry::init(
        settings.log_format,
        std::io::stderr().is_terminal(),
        std::io::stderr,
    );
    dirsync_core::db::connect_and_migrate(&settings).await
}

/// Ends the process with `code` when it is not 0. The exit codes of the client commands are
/// their interface (cron and CI branch on them); `main` only knows success or an error.
fn exit_with(code: u8) -> anyhow::Result<()> {
    if code != 0 {
        std::io::stdout().flush().ok();
        std::process::exit(i32::from(code));
    }
    Ok(())
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
        Command::Sync(args) => exit_with(crate::sync_cli::run(args).await),
        Command::Users(UsersCommand::Export(args)) => exit_with(crate::export_cli::run(args).await),
        Command::Healthcheck(args) => {
            let server = match args.server {
                Some(s) => s,
                None => crate::sync_cli::local_server_url(&Settings::load(cli.config.as_deref())?)?,
            };
            exit_with(crate::sync_cli::healthcheck(&server).await)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "dirsync",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .context("while writing the manual page"),
        Command::ApiKey(ApiKeyCommand::List { json }) => {
            let db = open_database(cli.config.as_deref()).await?;
            let mut cursor: Option<String> = None;
            if !json {
                println!(
                    "{:<36}  {:<8}  {:<14}  {:<20}  name",
                    "id", "role", "prefix", "last used"
                );
            }
            loop {
                let page =
                    PageRequest::parse(Some(dirsync_core::paging::MAX_LIMIT), cursor.as_deref())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                let keys = auth::list_api_keys(&db, page)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                for k in &keys.items {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "id": k.id, "name": k.name, "role": k.role.as_str(),
                                "prefix": k.prefix, "created_by": k.created_by,
                                "created_at": k.created_at, "last_used_at": k.last_used_at,
                            })
                        );
                    } else {
                        let used = k
                            .last_used_at
                            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_else(|| "never".into());
                        println!(
                            "{:<36}  {:<8}  {:<14}  {:<20}  {}",
                            k.id,
                            k.role.as_str(),
                            k.prefix,
                            used,
                            k.name
                        );
                    }
                }
                match keys.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => return Ok(()),
                }
            }
        }
        Command::ApiKey(ApiKeyCommand::Revoke { id }) => {
            let db = open_database(cli.config.as_deref()).await?;
            let info = auth::delete_api_key(&db, id, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("API key {id}: {e}"))?;
            eprintln!(
                "revoked API key {:?} ({}) with role {}",
                info.name,
                info.id,
                info.role.as_str()
            );
            Ok(())
        }
        Command::ApiKey(ApiKeyCommand::Create { name, role }) => {
            let db = open_database(cli.config.as_deref()).await?;
            let (info, key) = auth::create_api_key(&db, &name, role, "cli")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every environment variable a command-line argument reads, through the whole tree.
    fn clap_env_names(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(name) = arg.get_env() {
                out.push(name.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            clap_env_names(sub, out);
        }
    }

    /// `DIRSYNC_*` names that the sources pass to `env::var` or clap's `env =` directly.
    fn names_in_sources(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names_in_sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for marker in ["env::var(\"", "env::var_os(\"", "env = \""] {
                    for (i, _) in text.match_indices(marker) {
                        let rest = &text[i + marker.len()..];
                        let name = &rest[..rest.find('"').unwrap()];
                        if name.starts_with("DIRSYNC_") {
                            out.push(name.to_string());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_setting_the_code_reads_is_in_the_readme_settings_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let table: String = readme
            .lines()
            .filter(|l| l.starts_with("| `"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut settings = Settings::variables_read();
        clap_env_names(&Cli::command(), &mut settings);
        settings.sort();
        settings.dedup();
        assert!(settings.contains(&"DIRSYNC_SECRET_KEY_FILE".to_string()));
        assert!(settings.contains(&"DIRSYNC_TOKEN".to_string()));
        let missing: Vec<&String> = settings
            .iter()
            // `https_proxy` is read as well as `HTTPS_PROXY`; the table names the latter.
            .filter(|n| !table.contains(&format!("`{}`", n.to_ascii_uppercase())))
            .collect();
        assert!(
            missing.is_empty(),
            "not in README's settings table: {missing:?}"
        );

        // Names read directly rather than through the loader (test knobs, say) must at least
        // be documented somewhere in the README.
        let mut direct = Vec::new();
        for dir in ["api/src", "core/src"] {
            names_in_sources(&root.join(dir), &mut direct);
        }
        assert!(direct.contains(&"DIRSYNC_SERVER".to_string()), "{direct:?}");
        let undocumented: Vec<&String> = direct
            .iter()
            .filter(|n| !readme.contains(&format!("`{n}`")))
            .collect();
        assert!(
            undocumented.is_empty(),
            "read from the environment but not in README: {undocumented:?}"
        );
    }
}
