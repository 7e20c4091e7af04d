//! Google's incremental read (product.md §8, issue 15): between full syncs, follow the admin log
//! and re-read only what it names. The engine's side (what the read ends with, and the checks
//! before any provider's read) is `sync/incremental.rs`.
//!
//! The log says *what to look at*, never *what is true*. An incremental job reads the events
//! since the cursor (less the overlap window, the log's lag), skips those already applied, and
//! re-reads from the Directory API every user and group they name: each named address
//! (`users.get`, which answers for a primary address or an alias), the users the snapshot knew
//! under that address (by id: a rename or an alias move leaves the old holder to look at), the
//! members of each named group of the sync groups' graph, and the users that graph newly
//! reaches (walked as a full sync walks them, `sync::scope::MemberWalk`). It then hands the
//! planner the whole directory — the snapshot (`sync/snapshot.rs`) with those re-reads in it —
//! so that the plan is the one a full sync would make, under the same rules and safeguards.
//!
//! A user leaves only on the Directory API's word: `users.get` by id answers 404, or the
//! re-read memberships no longer reach a sync group. Whenever the log cannot be trusted for a
//! window, the job runs as a full sync instead and says why ([`Outcome::Fallback`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Duration, Utc};

use super::activity::{self, Activity, ActivityKey};
use super::provider::{edge, nested_group_addresses};
use super::{DirectoryClient, GoogleError};
use crate::jobs::{JobControl, Phase, Progress};
use crate::sync::incremental::{self, fallback, GroupAddress, Incremental, Outcome, Since};
use crate::sync::plan::RemoteUser;
use crate::sync::snapshot::{self, Edge, Snapshot, State};
use crate::users::AddressKey;
use crate::Result;

/// How far back Google's admin log can be read.
pub const RETENTION: Duration = Duration::days(180);

/// Reads what the admin log names since the cursor into the snapshot (the directory the last
/// applied sync read, [`snapshot::load_snapshot`]).
pub(crate) async fn read(
    client: &DirectoryClient,
    since: Since<'_>,
    progress: &mut Progress,
    ctl: &JobControl,
) -> Result<Outcome> {
    let Since {
        state,
        cursor,
        snapshot: mut snap,
        key,
        overlap,
    } = since;
    let now = Utc::now();
    let start = cursor - overlap;
    // A day of margin: a window that reaches past what Google serves fails outright.
    if start < now - RETENTION + Duration::days(1) {
        return fallback(format!(
            "the cursor ({}) is older than the {} days the admin log keeps",
            cursor.to_rfc3339(),
            RETENTION.num_days()
        ));
    }

    progress.phase = Some(Phase::ReadingEvents);
    ctl.progress(progress, true).await;
    let mut activities: Vec<Activity> = Vec::new();
    let mut pages = client.activities(start, now);
    loop {
        match pages.next_page().await {
            Ok(Some(page)) => {
                progress.pages += 1;
                activities.extend(page);
            }
            Ok(None) => break,
            Err(e) => return Ok(unreadable(e)),
        }
        if ctl.should_stop() {
            return fallback("stopped");
        }
    }
    if !pages.is_complete() {
        return fallback("the admin log's listing ended before its last page");
    }

    // Events before the last full read are in the snapshot already.
    let covered = snap.full_read_at - snapshot::COVERED_MARGIN;
    let applied: HashSet<ActivityKey> = state.applied.iter().cloned().collect();
    let touched = activity::touched(activities.iter().filter(|a| a.id.time >= covered), &applied);
    if let Some(reason) = touched.fallback {
        return fallback(reason);
    }

    let roots: BTreeSet<String> = match &snap.graph {
        None => BTreeSet::new(),
        Some(g) => g
            .roots
            .iter()
            .filter_map(|id| g.nodes.get(id).map(|n| n.email.clone()))
            .chain(key.sync_groups.iter().cloned())
            .collect(),
    };
    if let Some(g) = touched.group_changes.iter().find(|g| roots.contains(*g)) {
        return fallback(format!(
            "the sync group {g} was created, renamed or deleted: only a full sync resolves \
             sync_groups again"
        ));
    }
    if let Some(g) = &snap.graph {
        if g.nodes.values().any(|n| n.email.is_empty()) {
            return fallback("a group in scope has no known address to follow in the admin log");
        }
    }

    let group_addresses: HashSet<&str> = touched.groups.iter().map(String::as_str).collect();
    let addresses: Vec<String> = touched
        .addresses
        .iter()
        .filter(|a| !group_addresses.contains(a.as_str()))
        .cloned()
        .collect();
    // The users the snapshot knew under a named address (re-read by id: a rename or an alias
    // move leaves the old holder to look at), and those of them named by a deletion.
    let holders = Holders::of(&snap.users, &addresses, &touched.deleted_users);

    // Which groups of the graph the events name (membership events may name a nested group
    // as the member: its own members are unchanged, but its parent's listing shows it).
    // And the groups that held a user a deletion may name: Google drops it from them without
    // an event.
    let deleted = &holders.deleted;
    let named_groups: Vec<String> = match &snap.graph {
        None => Vec::new(),
        Some(g) => g
            .nodes
            .iter()
            .filter(|(_, n)| {
                touched.groups.contains(&n.email)
                    || n.members
                        .iter()
                        .any(|e| matches!(e, Edge::User(u) if deleted.contains(u)))
            })
            .map(|(id, _)| id.clone())
            .collect(),
    };

    // Too many to re-read: a full sync is cheaper.
    let floor = full_sync_floor(&snap);
    let estimate = (addresses.len() + 2 * named_groups.len()) as u64;
    if estimate > floor {
        return fallback(format!(
            "the admin log names {estimate} objects to re-read, more Directory calls than a full \
             sync makes ({floor})"
        ));
    }

    // Groups: their members again; renamed ones, their address again; groups they newly reach,
    // walked as a full sync walks them.
    let mut in_scope = None;
    let was_everyone = snap.graph.as_ref().is_none_or(|g| g.reach().everyone);
    if let Some(graph) = &mut snap.graph {
        progress.phase = Some(Phase::FetchingMembers);
        ctl.progress(progress, true).await;
        let mut member_email: HashMap<String, String> = HashMap::new();
        for id in &named_groups {
            let email = graph.nodes[id].email.clone();
            let listing = client.list_members(id).await;
            let members = match listing {
                Ok(m) => m,
                Err(GoogleError::NotFound { .. }) => {
                    if graph.roots.contains(id) {
                        return fallback(format!("the sync group {email} no longer exists"));
                    }
                    // Deleted: Google drops it from every group it was a member of.
                    graph.nodes.remove(id);
                    for n in graph.nodes.values_mut() {
                        n.members.retain(|e| *e != Edge::Group(id.clone()));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            progress.members += members.len() as u64;
            member_email.extend(nested_group_addresses(&members));
            let node = graph.nodes.get_mut(id).expect("named group");
            node.members = members.iter().filter_map(edge).collect();
            if touched.group_changes.contains(&email) {
                match client.get_group(id).await? {
                    Some(g) => node.email = g.email.to_lowercase(),
                    None => {
                        graph.nodes.remove(id);
                    }
                }
            }
        }
        match incremental::walk_new_groups(
            client,
            graph,
            member_email,
            GroupAddress::Required,
            was_everyone,
            progress,
        )
        .await?
        {
            Ok(scope) => in_scope = scope,
            Err(reason) => return fallback(reason),
        }
    }

    // Users: each named address, the users the snapshot knew under it, and the users the
    // graph newly reaches.
    progress.phase = Some(Phase::FetchingUsers);
    ctl.progress(progress, true).await;
    let mut found: BTreeMap<String, RemoteUser> = BTreeMap::new();
    let by_address = incremental::reread_users(client, addresses.iter().cloned()).await?;
    for u in by_address.into_iter().flatten() {
        found.insert(u.id.as_str().to_owned(), u);
    }
    let mut by_id: BTreeSet<String> = holders
        .named
        .into_iter()
        .filter(|id| !found.contains_key(id))
        .collect();
    by_id.extend(incremental::newly_in_scope(
        &snap,
        in_scope.as_ref(),
        &found,
    ));
    let ids: Vec<String> = by_id.into_iter().collect();
    let reread = incremental::reread_users(client, ids.iter().cloned()).await?;
    let mut gone: HashSet<String> = HashSet::new();
    for (id, user) in ids.into_iter().zip(reread) {
        match user {
            Some(u) => {
                found.insert(u.id.as_str().to_owned(), u);
            }
            None => {
                gone.insert(id);
            }
        }
    }
    progress.users += found.len() as u64;
    ctl.progress(progress, true).await;

    // Google drops a deleted user from every group; the graph follows.
    let in_scope = incremental::patch_users(&mut snap, found, &gone, in_scope);

    let newest = activities
        .iter()
        .filter(|a| touched.new.contains(&a.key()))
        .map(|a| a.id.time)
        .max();
    let cursor = newest.map_or(cursor, |n| n.max(cursor));
    let keep_from = cursor - overlap;
    let mut applied: Vec<ActivityKey> = state
        .applied
        .iter()
        .chain(touched.new.iter())
        .filter(|k| k.time >= keep_from)
        .cloned()
        .collect();
    applied.sort();
    applied.dedup();
    Ok(Outcome::Ready(Box::new(Incremental {
        snapshot: snap,
        in_scope,
        state: State {
            cursor: Some(cursor),
            newest_event_at: newest.max(state.newest_event_at),
            applied,
            ..State::default()
        },
    })))
}

/// The fewest Directory calls a full sync of the snapshot's directory makes: the user pages
/// (500 a page), and with sync groups the group pages (200 a page) and one listing per group
/// in scope.
pub fn full_sync_floor(snap: &Snapshot) -> u64 {
    incremental::full_sync_floor(snap, 500, 200)
}

/// The snapshot's users known under some addresses, by id.
struct Holders {
    /// Holding a named address.
    named: BTreeSet<String>,
    /// Who a deletion in the window may name: the holders of an address it named and, when the
    /// window deletes anyone, every holder of a named address. A deletion names the user by its
    /// address at the time, which a rename earlier in the window (a swap) may have taken from
    /// another user of the snapshot (found by the property test: a swap, a deletion, then an
    /// undeletion kept the undeleted user in its old group).
    deleted: HashSet<String>,
}

impl Holders {
    /// One pass over the snapshot's users (each address keyed once), skipped when nothing is
    /// named.
    fn of(users: &[RemoteUser], named: &[String], deleted: &BTreeSet<String>) -> Holders {
        let mut holders = Holders {
            named: BTreeSet::new(),
            deleted: HashSet::new(),
        };
        if named.is_empty() && deleted.is_empty() {
            return holders;
        }
        let named: HashSet<&str> = named.iter().map(String::as_str).collect();
        for u in users {
            for a in &u.addresses {
                let key = AddressKey::new(a);
                if named.contains(key.as_str()) {
                    holders.named.insert(u.id.as_str().to_owned());
                }
                if deleted.contains(key.as_str()) {
                    holders.deleted.insert(u.id.as_str().to_owned());
                }
            }
        }
        if !deleted.is_empty() {
            holders.deleted.extend(holders.named.iter().cloned());
        }
        holders
    }
}

/// A log that cannot be read: a full sync instead, and `incremental.available` false with the
/// reason (a token without the audit scope is named with the scope to grant).
fn unreadable(e: GoogleError) -> Outcome {
    let reason = format!("the admin log could not be read: {e}");
    Outcome::Fallback {
        events_unreadable: Some(reason.clone()),
        reason,
    }
}
