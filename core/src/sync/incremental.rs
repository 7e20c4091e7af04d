//! Incremental sync (product.md §8): between full syncs, read only what changed, and hand the
//! planner the whole directory — the snapshot of the last applied sync (`snapshot.rs`) brought up
//! to date — so that the plan is the one a full sync would make, under the same rules and
//! safeguards.
//!
//! How a directory tells what changed is its provider's
//! ([`DirectoryProvider::read_changes`]; Google follows its admin log and re-reads what it names,
//! `google/incremental.rs`; Entra follows its delta links, `entra/delta.rs`). What they share is
//! here: walking the groups a change newly nests ([`walk_new_groups`]), re-reading users
//! ([`reread_users`], [`newly_in_scope`]), patching the snapshot ([`patch_users`]), and the
//! "cheaper to read everything" bound ([`full_sync_floor`]). What every provider keeps: a user leaves only on the directory's own
//! word (a re-read that says it does not exist, or memberships that no longer reach a sync
//! group), never on a change feed's; and whenever the feed cannot be trusted for a window, the
//! job runs as a full sync instead and says why ([`Outcome::Fallback`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::plan::RemoteUser;
use super::scope::MemberWalk;
use super::snapshot::{Edge, Graph, Node, ScopeKey, Snapshot, State};
use crate::jobs::{JobControl, Progress};
use crate::provider::DirectoryProvider;
use crate::Result;

/// Re-reads run this many at a time, as member listings do.
const CONCURRENCY: usize = 8;

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

/// The fewest requests a full sync of the snapshot's directory makes: the user pages, and with
/// sync groups the group pages and one member listing per group in scope, at the provider's
/// page sizes. An incremental job that would re-read more than this runs as a full sync.
pub fn full_sync_floor(snap: &Snapshot, users_per_page: u64, groups_per_page: u64) -> u64 {
    let users = snap.account_users.div_ceil(users_per_page).max(1);
    match &snap.graph {
        None => users,
        Some(g) => {
            users + snap.account_groups.div_ceil(groups_per_page).max(1) + g.nodes.len() as u64
        }
    }
}

/// Whether a group newly reached must be known by an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupAddress {
    /// The change feed names groups by address (Google's admin log): a group whose address
    /// is unknown could not be followed, so the job runs as a full sync.
    Required,
    /// Groups are followed by id (Entra's delta): an unknown address stays empty, as in a
    /// full read.
    Optional,
}

/// The graph brought up to date: who it puts in scope, or why a full sync must run instead.
pub(crate) type Rescoped = std::result::Result<Option<HashSet<String>>, String>;

/// After a provider has re-listed the changed groups of `graph`: lists the groups their
/// members now reach that the graph has no node for (groups newly nested), and the groups
/// those reach, as a full sync walks them (`MemberWalk`); drops the groups no longer reached;
/// and computes the scope. `member_email` holds the nested groups' addresses the re-listings
/// named; `was_everyone`, whether the graph reached everyone before the changes.
pub(crate) async fn walk_new_groups(
    provider: &dyn DirectoryProvider,
    graph: &mut Graph,
    mut member_email: HashMap<String, String>,
    address: GroupAddress,
    was_everyone: bool,
    progress: &mut Progress,
) -> Result<Rescoped> {
    let known: HashSet<String> = graph.nodes.keys().cloned().collect();
    let new_groups: Vec<String> = graph
        .nodes
        .values()
        .flat_map(|n| n.members.iter())
        .filter_map(|e| match e {
            Edge::Group(g) if !known.contains(g) => Some(g.clone()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut walk = MemberWalk::skipping(provider, new_groups, known);
    while let Some(listing) = walk.next().await {
        let listing = listing?;
        progress.members += listing.listed;
        member_email.extend(listing.group_addresses);
        let email = match (member_email.get(&listing.group), address) {
            (Some(e), _) => e.clone(),
            (None, GroupAddress::Optional) => String::new(),
            (None, GroupAddress::Required) => {
                return Ok(Err("a group newly in scope has no known address".into()))
            }
        };
        let node = Node {
            email,
            members: listing.members,
        };
        graph.nodes.insert(listing.group, node);
    }
    graph.prune();
    let reach = graph.reach();
    if reach.everyone && !was_everyone {
        return Ok(Err(
            "a sync group now reaches everyone in the account (a CUSTOMER member): only a \
             full sync lists them all"
                .into(),
        ));
    }
    Ok(Ok((!reach.everyone).then_some(reach.users)))
}

/// The users with these keys (ids; Google also takes addresses) as the directory has them
/// now, [`CONCURRENCY`] at a time, in the keys' order; `None` where the directory says there
/// is no such user.
pub(crate) async fn reread_users(
    provider: &dyn DirectoryProvider,
    keys: impl Iterator<Item = String>,
) -> Result<Vec<Option<RemoteUser>>> {
    stream::iter(keys)
        .map(|k| async move { provider.user_by_id(&k).await })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// The users the scope reaches that neither the snapshot nor the re-reads so far hold: they
/// joined the scope through a membership change, and are read by id.
pub(crate) fn newly_in_scope(
    snap: &Snapshot,
    in_scope: Option<&HashSet<String>>,
    found: &BTreeMap<String, RemoteUser>,
) -> Vec<String> {
    let Some(scope) = in_scope else {
        return Vec::new();
    };
    let known: HashSet<&str> = snap.users.iter().map(|u| u.id.as_str()).collect();
    scope
        .iter()
        .filter(|id| !known.contains(id.as_str()) && !found.contains_key(*id))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Brings the snapshot's users up to date: the users re-read (`found`) replace their old
/// selves, those the directory says do not exist (`gone`) leave it and every group of the
/// graph (a deleted user is no longer listed as a member), and only the users in scope stay.
/// Returns the scope, computed again when someone left the graph.
pub(crate) fn patch_users(
    snap: &mut Snapshot,
    found: BTreeMap<String, RemoteUser>,
    gone: &HashSet<String>,
    mut in_scope: Option<HashSet<String>>,
) -> Option<HashSet<String>> {
    if let Some(graph) = &mut snap.graph {
        if !gone.is_empty() {
            graph.retain_users(|u| !gone.contains(u));
            let reach = graph.reach();
            in_scope = (!reach.everyone).then_some(reach.users);
        }
    }
    let mut users: BTreeMap<String, RemoteUser> = std::mem::take(&mut snap.users)
        .into_iter()
        .map(|u| (u.id.as_str().to_owned(), u))
        .collect();
    for id in gone {
        users.remove(id);
    }
    users.extend(found);
    if let Some(scope) = &in_scope {
        users.retain(|id, _| scope.contains(id));
    }
    snap.users = users.into_values().collect();
    in_scope
}
