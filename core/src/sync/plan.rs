//! Planning: what a sync would change, computed from the fetched directory and the local users
//! alone. Pure (no I/O), so that every rule of product.md §3 can be tested directly and a dry run
//! is exactly the plan a real run would apply.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::matching::Planner;

/// Google's stable id of a user (`users.directory_id`, the `sub` of its Google sign-in): what
/// links a local user to its Google user. A type of its own so that it cannot be mixed up with
/// the names and addresses the planner also matches on; on the wire and in the database it is
/// the text Google gave.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DirectoryId(String);

impl DirectoryId {
    /// The id Google gave.
    pub fn new(id: String) -> DirectoryId {
        DirectoryId(id)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DirectoryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<DirectoryId> for String {
    fn from(id: DirectoryId) -> String {
        id.0
    }
}

impl From<DirectoryId> for sea_orm::Value {
    fn from(id: DirectoryId) -> sea_orm::Value {
        id.0.into()
    }
}

/// A directory user as the engine needs it (and as the snapshot of `snapshot.rs` keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUser {
    /// The directory's stable id of the user (Google's user id, Entra's object id).
    pub id: DirectoryId,
    /// The user name when it is not the primary address (Entra: the UPN). `None`: the
    /// primary address is the user name (Google). Absent from snapshots written before Entra
    /// existed, which were all Google's: `None` is what they mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Primary address (the user name too, lower-cased, unless `user_name` is set).
    pub primary_email: String,
    /// Display name.
    pub full_name: String,
    /// Every address, primary first, aliases and non-editable aliases after it.
    pub addresses: Vec<String>,
    /// Suspended or archived in Google; `accountEnabled: false` in Entra.
    pub disabled: bool,
}

impl RemoteUser {
    /// The user name this user gets (before lower-casing): `user_name`, else the primary
    /// address.
    pub fn name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.primary_email)
    }
}

/// The fetched directory: all users, and the ids in scope (`None`: everyone is in scope).
#[derive(Debug, Clone, Default)]
pub struct RemoteState {
    /// Every user of the account.
    pub users: Vec<RemoteUser>,
    /// Ids of the users in scope of `sync_groups`, or `None` when no groups are configured.
    pub in_scope: Option<HashSet<String>>,
}

/// A local user as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    /// Row id.
    pub id: Uuid,
    /// User name as stored.
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// `directory` (true) or `local` (false).
    pub directory: bool,
    /// Google id, when linked.
    pub directory_id: Option<DirectoryId>,
    /// Disabled.
    pub disabled: bool,
    /// Addresses, primary first.
    pub addresses: Vec<String>,
    /// Holds the `admin` privilege (never deleted by a sync).
    pub is_admin: bool,
    /// Messages in the user's own archive folder.
    pub folder_messages: i64,
}

/// The configuration rules that shape a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Delete directory users that left the scope (otherwise report them).
    pub auto_delete_users: bool,
}

/// Kinds of change, as stored (`sync_changes.kind`) and reported.
pub use dirsync_entity::ChangeKind;

/// One reported change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What kind.
    pub kind: ChangeKind,
    /// The user's name (the new one for a rename).
    pub user_name: String,
    /// The Google id, when known.
    pub directory_id: Option<String>,
    /// Changed fields: name → `[old, new]`.
    pub fields: Fields,
    /// Why, for conflicts and kept or skipped users.
    pub reason: Option<String>,
}

/// A change's fields (stored in `sync_changes.fields` as the JSON text they hold) and the
/// counts per change kind (`sync_jobs.summary`): declared in `dirsync-entity`, which stores them.
pub use dirsync_entity::{Fields, Summary};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// New row id.
    pub id: Uuid,
    /// Lower-cased primary address.
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// Google id.
    pub directory_id: DirectoryId,
    /// Addresses, primary first.
    pub addresses: Vec<String>,
    /// Suspended or archived.
    pub disabled: bool,
}

/// The new state of an existing user.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    /// Row id.
    pub id: Uuid,
    /// The user name changes (case-insensitively): the apply moves it in two steps, so that
    /// renames that chain or swap never meet the unique index half-way.
    pub renamed: bool,
    /// User name (maybe renamed).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// Google id (set on adoption).
    pub directory_id: DirectoryId,
    /// Disabled.
    pub disabled: bool,
    /// New addresses when they changed.
    pub addresses: Option<Vec<String>>,
}

/// What a sync will do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Reported changes, in a stable order.
    pub changes: Vec<Change>,
    /// Users to create.
    pub creates: Vec<NewUser>,
    /// Users to update.
    pub updates: Vec<UserUpdate>,
    /// Users to delete.
    pub deletes: Vec<Uuid>,
    /// Counts.
    pub summary: Summary,
}

impl Plan {
    /// True when applying would write nothing.
    pub fn writes_nothing(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.deletes.is_empty()
    }
}

/// Computes the plan. Deterministic for the same inputs. The phases and the rules of who may
/// take which name and address live in `matching.rs`, who leaves in `departures.rs`.
pub fn plan(remote: &RemoteState, local: &LocalState, rules: Rules) -> Plan {
    let mut planner = Planner::index(remote, local, rules);
    let unmatched = planner.match_by_directory_id();
    planner.match_by_name(unmatched);
    planner.settle();
    let mut out = Plan::default();
    planner.changes(&mut out);
    planner.departures(&mut out);
    out.summary.conflicts = out
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Conflict)
        .count() as u64;
    out
}

/// The local users a plan is computed against.
#[derive(Debug, Clone, Default)]
pub struct LocalState {
    /// Every user, local and directory.
    pub users: Vec<LocalUser>,
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
