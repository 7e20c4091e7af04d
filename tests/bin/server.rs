//! The `dirsync` command, built inside the test package so that end-to-end tests can start it as
//! a separate process (`CARGO_BIN_EXE_dirsync-test-server`): for the CLI, crash and
//! multi-instance tests. The same code as `api/src/main.rs`.
#![forbid(unsafe_code)]

use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    dirsync_api::cli::run(dirsync_api::cli::Cli::parse()).await
}
