//! Scope (product.md §3.1): with `sync_groups` empty every user of the account is in scope;
//! otherwise the members of those groups, directly or through nested groups (followed once each,
//! so cycles end; a `CUSTOMER` member means everyone). A listed group that does not exist fails
//! the job with `unknown_group`: it never means "nobody".

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::plan::{RemoteState, RemoteUser};
use super::snapshot::{Edge, Graph, Node};
use crate::jobs::{JobControl, Phase, Progress};
use crate::provider::{DirectoryProvider, GroupMembers};

/// Member listings run this many at a time: Google's per-user quota allows it, and with
/// thousands of groups the fetch is bound by round trips, not bandwidth.
const MEMBER_CONCURRENCY: usize = 8;

/// One group's members (every page), as its provider listed them.
pub type Listing = crate::Result<GroupMembers>;

/// The members of some groups and, once each, of every group nested in them (so cycles end),
/// [`MEMBER_CONCURRENCY`] listings at a time, through any provider. A work queue rather than
/// level by level: a nested group found in one listing is listed as soon as a slot is free, not
/// after the slowest listing of its level. Public so that the benchmark's paging floor walks the
/// same way.
pub struct MemberWalk<'a> {
    provider: &'a dyn DirectoryProvider,
    queue: VecDeque<String>,
    visited: HashSet<String>,
    in_flight: FuturesUnordered<BoxFuture<'a, Listing>>,
}

impl<'a> MemberWalk<'a> {
    /// A walk from these group ids.
    pub fn new(provider: &'a dyn DirectoryProvider, groups: Vec<String>) -> MemberWalk<'a> {
        MemberWalk::skipping(provider, groups, HashSet::new())
    }

    /// A walk from these group ids that does not list the groups in `known` (an incremental
    /// job knows their members already).
    pub fn skipping(
        provider: &'a dyn DirectoryProvider,
        groups: Vec<String>,
        mut known: HashSet<String>,
    ) -> MemberWalk<'a> {
        known.extend(groups.iter().cloned());
        MemberWalk {
            provider,
            visited: known,
            queue: groups.into(),
            in_flight: FuturesUnordered::new(),
        }
    }

    /// The next listing to finish, its nested groups queued; `None` when every reachable group
    /// has been listed.
    pub async fn next(&mut self) -> Option<Listing> {
        while self.in_flight.len() < MEMBER_CONCURRENCY {
            let Some(gid) = self.queue.pop_front() else {
                break;
            };
            let provider = self.provider;
            self.in_flight
                .push(Box::pin(async move { provider.group_members(&gid).await }));
        }
        let listing = self.in_flight.next().await?;
        if let Ok(listing) = &listing {
            let nested = listing.members.iter().filter_map(|e| match e {
                Edge::Group(g) => Some(g),
                _ => None,
            });
            for g in nested {
                if self.visited.insert(g.clone()) {
                    self.queue.push_back(g.clone());
                }
            }
        }
        Some(listing)
    }

    /// Groups reached so far, the starting ones included.
    pub fn groups_reached(&self) -> usize {
        self.visited.len()
    }
}

impl RemoteState {
    pub(super) fn contains(&self, id: &str) -> bool {
        self.in_scope.as_ref().is_none_or(|s| s.contains(id))
    }
}

/// What a full fetch read: the directory, and how its scope was reached.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Users and who is in scope.
    pub remote: RemoteState,
    /// The sync groups' membership graph; `None` without sync groups.
    pub graph: Option<Graph>,
    /// Groups in the account (0 without sync groups: they are not listed).
    pub account_groups: u64,
}

/// The scope of the fetched `users`: the groups (every page, to resolve the configured
/// addresses) and their members. Returns early (with nothing) when the job should stop; the
/// caller checks [`JobControl::should_stop`] before using the result.
pub async fn scope(
    provider: &dyn DirectoryProvider,
    users: Vec<RemoteUser>,
    sync_groups: &[String],
    progress: &mut Progress,
    ctl: &JobControl,
) -> crate::Result<Fetched> {
    if sync_groups.is_empty() {
        return Ok(Fetched {
            remote: RemoteState {
                users,
                in_scope: None,
            },
            graph: None,
            account_groups: 0,
        });
    }

    progress.phase = Some(Phase::FetchingGroups);
    ctl.progress(progress, true).await;
    // Groups by address (lower-cased) and by id: `sync_groups` may name either (Entra's
    // `sync_groups` take group ids; Google's ids work too). A group without an address (an
    // Entra security group) is known by its id alone.
    let mut by_email: HashMap<String, String> = HashMap::new();
    let mut email_of: HashMap<String, String> = HashMap::new();
    let mut by_id: HashMap<String, String> = HashMap::new();
    let mut account_groups = 0u64;
    let mut groups = provider.group_pages();
    while let Some(page) = groups.next_page().await? {
        progress.pages += 1;
        progress.groups += page.len() as u64;
        account_groups += page.len() as u64;
        for g in page {
            let email = g.email.to_lowercase();
            if !email.is_empty() {
                by_email.insert(email.clone(), g.id.clone());
                email_of.insert(g.id.clone(), email);
            }
            by_id.insert(g.id.to_lowercase(), g.id);
        }
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(Fetched::default());
        }
    }
    let mut frontier = Vec::new();
    for g in sync_groups {
        let key = g.to_lowercase();
        match by_email.get(&key).or_else(|| by_id.get(&key)) {
            Some(id) => frontier.push(id.clone()),
            None => {
                return Err(crate::Error::conflict(
                    "unknown_group",
                    format!(
                        "the sync group {g} does not exist in {}; fix sync_groups (an unknown \
                         group never means \"nobody\")",
                        provider.directory_name()
                    ),
                ))
            }
        }
    }

    progress.phase = Some(Phase::FetchingMembers);
    ctl.progress(progress, true).await;
    let mut graph = Graph {
        roots: frontier.clone(),
        nodes: Default::default(),
    };
    // A nested group created after the group listing is named by its parent's member entry.
    let mut member_email: HashMap<String, String> = HashMap::new();
    let mut walk = MemberWalk::new(provider, frontier);
    while let Some(listing) = walk.next().await {
        let GroupMembers {
            group: gid,
            members,
            group_addresses,
            listed,
            pages,
        } = listing?;
        progress.pages += pages;
        progress.members += listed;
        member_email.extend(group_addresses);
        // Nested groups are followed by the walk; the graph keeps every edge, so that an
        // incremental job can change one group's members and compute the scope again. A group
        // known by no address (neither listed nor named by its parent) cannot be matched to
        // a change feed that names groups by address (Google's admin log): `email` stays
        // empty, and Google's incremental job runs as a full sync (`google/incremental.rs`).
        let email = match email_of.get(&gid) {
            Some(e) => e.clone(),
            None => member_email.get(&gid).cloned().unwrap_or_default(),
        };
        let node = Node { email, members };
        graph.nodes.insert(gid, node);
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(Fetched::default());
        }
    }
    // A member the user listing did not yield is not in the directory as dirsync sees it: an
    // Entra guest while `include_guests` is off, a Google member from outside the account.
    // Its edge goes, so that the scope holds only listed users and no incremental job reads
    // each such member again as "newly in scope". A user created while this read ran is not
    // lost: its creation comes after the change marker (or cursor) taken before the read, so
    // the next incremental job reads it.
    let listed: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    graph.retain_users(|u| listed.contains(u));
    let reach = graph.reach();
    Ok(Fetched {
        remote: RemoteState {
            users,
            in_scope: (!reach.everyone).then_some(reach.users),
        },
        graph: Some(graph),
        account_groups,
    })
}
