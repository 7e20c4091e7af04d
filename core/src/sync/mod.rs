//! The sync engine: fetch the directory, plan against the local users, apply in one transaction.
//! `jobs` runs it as a queued, leased job.
//!
//! The engine reads the directory only through `crate::provider::DirectoryProvider` (the seam of
//! issue 16), which `crate::directory::provider_for` builds from the configuration: Google
//! Workspace's is `crate::google` (`google/provider.rs`). A new provider writes its own module
//! and an arm of `provider_for`; nothing here changes, and no rule below moves.
//!
//! Where each rule of product.md §3 lives (keep this table true when a rule moves):
//!
//! | rule | home |
//! |---|---|
//! | 1 scope (sync groups, nesting, `unknown_group`) | `scope.rs` (the member walk, `MemberWalk`, over any provider), the graph's reach in `snapshot.rs` |
//! | 2 create | `matching.rs` (`Planner::changes`), written by `apply.rs` |
//! | 3 match and update (directory id, adoption, local users not taken over) | `matching.rs` |
//! | 3 addresses that move between users (renames onto freed names, chains, swaps, alias moves; conflicts that name the holder) | `matching.rs` (`Planner::settle`), write order in `apply.rs` (`check`, the two-step rename) |
//! | 4 out of scope, the one "is leaving" predicate | `departures.rs` (`Planner::departure`, `Planner::departures`) |
//! | 5 delete, kept folders, `kept_admin` | `departures.rs`; the folder rule itself is `crate::users::delete_users` (`users/delete.rs`), shared with deleting a user by hand |
//! | 6 safeguards (complete fetch, `empty_directory`, deletion limit) | `safeguards.rs`, called by `fetch.rs` (a provider's pager says whether its listing reached the last page) and `runner.rs` |
//! | 7 dry run | `runner.rs` |
//! | 8 apply in one transaction | `runner.rs`, `apply.rs` |
//! | 9 one job at a time, leases | `crate::jobs` (`jobs/store.rs`: the unique active slot; `jobs/worker.rs`: lease and heartbeat) |
//! | 10 idempotent (unchanged users write nothing) | `matching.rs` (`Planner::update`) |
//! | 11 schedule (full, and incremental with `incremental_seconds`) | `schedule.rs` |
//! | incremental sync (product.md §8): read what changed into the last sync's directory, or fall back to a full read | `incremental.rs` (the outcome, the checks before any provider's read); the directory a sync read, `snapshot.rs`; the choice between them, `runner.rs`; Google's read (follow the admin log, re-read what it names) is `google/incremental.rs` |
//!
//! `plan_tests.rs` holds a property per rule the planner and the safeguards keep (1–6, 10); the
//! end-to-end suite tests the others.

pub mod apply;
mod departures;
pub mod fetch;
pub mod incremental;
pub mod local;
mod matching;
pub mod plan;
pub mod runner;
pub mod safeguards;
pub mod schedule;
pub mod scope;
pub mod snapshot;

pub use plan::{plan, Change, ChangeKind, Fields, Plan, Rules, Summary};
