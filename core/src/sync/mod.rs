//! The sync engine: fetch the directory, plan against the local users, apply in one transaction.
//! `jobs` runs it as a queued, leased job.
//!
//! Where each rule of product.md §3 lives (keep this table true when a rule moves):
//!
//! | rule | home |
//! |---|---|
//! | 1 scope (sync groups, nesting, `unknown_group`) | `fetch.rs` |
//! | 2 create | `matching.rs` (`Planner::changes`), written by `apply.rs` |
//! | 3 match and update (directory id, adoption, local users not taken over) | `matching.rs` |
//! | 3 addresses that move between users (renames onto freed names, chains, swaps, alias moves; conflicts that name the holder) | `matching.rs` (`Planner::settle`), write order in `apply.rs` (`check`, the two-step rename) |
//! | 4 out of scope, the one "is leaving" rule | `matching.rs` (`Planner::leaves`, `Planner::departures`) |
//! | 5 delete, kept folders, `kept_admin` | `matching.rs` (`departures`), folder rule in `crate::users::delete_users` |
//! | 6 safeguards (complete fetch, `empty_directory`, deletion limit) | `fetch.rs`, `runner.rs`, `plan.rs` (`deletion_limit`) |
//! | 7 dry run | `runner.rs` |
//! | 8 apply in one transaction | `runner.rs`, `apply.rs` |
//! | 9 one job at a time, leases | `crate::jobs` |
//! | 10 idempotent (unchanged users write nothing) | `matching.rs` (`Planner::update`) |
//! | 11 schedule | `crate::jobs` (`run_scheduler`) |

pub mod apply;
mod departures;
pub mod fetch;
pub mod local;
mod matching;
pub mod plan;
pub mod runner;
pub mod safeguards;
pub mod schedule;
pub mod scope;

pub use plan::{plan, Change, ChangeKind, Fields, Plan, Rules, Summary};
