//! dirsync's end-to-end suite: the real server on port 0, a fresh database per test (SQLite, or
//! PostgreSQL when `DIRSYNC_TEST_PG_URL` is set), HTTP only. One binary to keep link time down.

mod address_moves;
mod audit;
mod changes;
mod cli;
mod directory;
mod entra_config;
mod folders;
mod foundation;
mod hardening;
mod incremental;
mod instances;
mod jobs;
mod metrics;
mod notifications;
mod oidc_tokens;
mod outbound;
mod privileges;
mod process;
mod roles;
mod secrets;
mod signin;
mod sync;
mod trust_google;
mod trust_limits;
mod trust_signin;
mod users;
