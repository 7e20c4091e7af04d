//! The sync engine: fetch the directory, plan against the local users, apply in one transaction.
//! Every rule of product.md §3 lives here; `jobs` runs it as a queued, leased job.

pub mod apply;
pub mod fetch;
pub mod local;
pub mod plan;
pub mod runner;

pub use plan::{plan, Change, ChangeKind, Fields, Plan, Rules, Summary};
