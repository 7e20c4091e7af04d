//! Incremental sync (product.md §8): between full syncs, read only what changed, and hand the
//! planner the whole directory — the snapshot of the last applied sync (`snapshot.rs`) brought up
//! to date — so that the plan is the one a full sync would make, under the same rules and
//! safeguards.
//!
//! How a directory tells what changed is its provider's
//! ([`DirectoryProvider::read_changes`]; Google follows its admin log and re-reads what it names,
//! `google/incremental.rs`). What every provider keeps: a user leaves only on the directory's own
//! word (a re-read that says it does not exist, or memberships that no longer reach a sync
//! group), never on a change feed's; and whenever the feed cannot be trusted for a window, the
//! job runs as a full sync instead and says why ([`Outcome::Fallback`]).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};

use super::snapshot::{ScopeKey, Snapshot, State};
use crate::jobs::{JobControl, Progress};
use crate::provider::DirectoryProvider;
use crate::Result;

/// What an incremental read ends with.
#[derive(Debug)]
pub enum Outcome {
    /// The directory, brought up to date.
    Ready(Box<Incremental>),
    /// Run a full sync instead, for this reason.
    Fallback {
        /// Why, for the job's `fallback_reason`.
        reason: String,
        /// When the directory's change feed (Google's admin log) itself could not be read:
        /// `false`, with the reason for `incremental.available`. `None`: it was readable (or
        /// not read).
        events_unreadable: Option<String>,
    },
}

/// An incremental job's read: the planner's input is the snapshot's users (in scope, by id)
/// and `in_scope`, as a full fetch would give them.
#[derive(Debug)]
pub struct Incremental {
    /// The directory brought up to date; stored once applied.
    pub snapshot: Snapshot,
    /// Ids of the users in scope of the sync groups, `None` for everyone.
    pub in_scope: Option<HashSet<String>>,
    /// The state to store once applied (cursor, newest event, applied activities).
    pub state: State,
}

/// What a provider's incremental read starts from: the last applied sync, read under the
/// current configuration.
#[derive(Debug)]
pub struct Since<'a> {
    /// The stored state (cursor, applied activities).
    pub state: &'a State,
    /// Changes up to here are in the snapshot.
    pub cursor: DateTime<Utc>,
    /// The directory as the last applied sync read it.
    pub snapshot: Snapshot,
    /// The configuration's scope key (the snapshot's own).
    pub key: &'a ScopeKey,
    /// How far before the cursor to read again, for a change feed's lag.
    pub overlap: Duration,
}

/// A full sync instead, for `reason`.
pub(crate) fn fallback(reason: impl Into<String>) -> Result<Outcome> {
    Ok(Outcome::Fallback {
        reason: reason.into(),
        events_unreadable: None,
    })
}

/// Reads what changed since the cursor of `state` into `snapshot` (the directory the last
/// applied sync read, [`super::snapshot::load_snapshot`]), through the configured directory's
/// provider. The caller has checked the job's kind.
pub async fn read(
    provider: &dyn DirectoryProvider,
    state: &State,
    snapshot: Option<Snapshot>,
    key: &ScopeKey,
    overlap: Duration,
    progress: &mut Progress,
    ctl: &JobControl,
) -> Result<Outcome> {
    let (Some(cursor), Some(snapshot)) = (state.cursor, snapshot) else {
        return fallback(
            "no full sync has been applied yet: an incremental job needs the directory as a full \
             sync read it and the time it began",
        );
    };
    if snapshot.scope_key != *key {
        return fallback(
            "customer_id, domain or sync_groups changed since the last full sync: the stored \
             directory belongs to the old configuration",
        );
    }
    let since = Since {
        state,
        cursor,
        snapshot,
        key,
        overlap,
    };
    provider.read_changes(since, progress, ctl).await
}
