//! The `dirsync` binary.
#![forbid(unsafe_code)]

use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    dirsync_api::cli::run(dirsync_api::cli::Cli::parse()).await
}
