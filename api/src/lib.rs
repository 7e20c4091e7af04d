//! dirsync's HTTP layer: handlers, the OpenAPI document, Swagger UI, authentication extractors,
//! the one error shape, and the `dirsync` command.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod error;
pub mod export_cli;
pub mod integer;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod sync_cli;
pub mod telemetry;

pub use startup::{openapi_document, Application};
