//! Scope (product.md §3.1): with `sync_groups` empty every user of the account is in scope;
//! otherwise the members of those groups, directly or through nested groups (followed once each,
//! so cycles end; a `CUSTOMER` member means everyone). A listed group that does not exist fails
//! the job with `unknown_group`: it never means "nobody".

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::plan::{RemoteState, RemoteUser};
use crate::google::{DirectoryClient, GoogleError, Member, MemberType};
use crate::jobs::{JobControl, Phase, Progress};

/// Member listings run this many at a time: Google's per-user quota allows it, and with
/// thousands of groups the fetch is bound by round trips, not bandwidth.
const MEMBER_CONCURRENCY: usize = 8;

/// One group's members (every page) and the number of pages it took.
type Listing = Result<(Vec<Member>, u64), GoogleError>;

/// The members of some groups and, once each, of every group nested in them (so cycles end),
/// [`MEMBER_CONCURRENCY`] listings at a time. A work queue rather than level by level: a nested
/// group found in one listing is listed as soon as a slot is free, not after the slowest
/// listing of its level. Public so that the benchmark's paging floor walks the same way.
pub struct MemberWalk<'a> {
    client: &'a DirectoryClient,
    queue: VecDeque<String>,
    visited: HashSet<String>,
    in_flight: FuturesUnordered<BoxFuture<'a, Listing>>,
}

impl<'a> MemberWalk<'a> {
    /// A walk from these group ids.
    pub fn new(client: &'a DirectoryClient, groups: Vec<String>) -> MemberWalk<'a> {
        MemberWalk {
            client,
            visited: groups.iter().cloned().collect(),
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
            let client = self.client;
            self.in_flight.push(Box::pin(async move {
                let mut pages = client.members(&gid);
                let mut members = Vec::new();
                while let Some(page) = pages.next_page().await? {
                    members.extend(page);
                }
                Ok((members, pages.pages_fetched() as u64))
            }));
        }
        let listing = self.in_flight.next().await?;
        if let Ok((members, _)) = &listing {
            for m in members {
                if m.kind == MemberType::Group && self.visited.insert(m.id.clone()) {
                    self.queue.push_back(m.id.clone());
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

/// The scope of the fetched `users`: the groups (200 a page, to resolve the configured
/// addresses) and their members. Returns early (with nothing) when the job should stop; the
/// caller checks [`JobControl::should_stop`] before using the result.
pub async fn scope(
    client: &DirectoryClient,
    users: Vec<RemoteUser>,
    sync_groups: &[String],
    progress: &mut Progress,
    ctl: &JobControl,
) -> crate::Result<RemoteState> {
    if sync_groups.is_empty() {
        return Ok(RemoteState {
            users,
            in_scope: None,
        });
    }

    progress.phase = Some(Phase::FetchingGroups);
    ctl.progress(progress, true).await;
    let mut by_email: HashMap<String, String> = HashMap::new();
    let mut groups = client.groups();
    while let Some(page) = groups.next_page().await? {
        progress.pages += 1;
        progress.groups += page.len() as u64;
        for g in page {
            by_email.insert(g.email.to_lowercase(), g.id);
        }
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(RemoteState::default());
        }
    }
    let mut frontier = Vec::new();
    for g in sync_groups {
        match by_email.get(&g.to_lowercase()) {
            Some(id) => frontier.push(id.clone()),
            None => {
                return Err(crate::Error::conflict(
                    "unknown_group",
                    format!(
                        "the sync group {g} does not exist in Google Workspace; fix sync_groups \
                         (an unknown group never means \"nobody\")"
                    ),
                ))
            }
        }
    }

    progress.phase = Some(Phase::FetchingMembers);
    ctl.progress(progress, true).await;
    let mut in_scope: HashSet<String> = HashSet::new();
    let mut everyone = false;
    let mut walk = MemberWalk::new(client, frontier);
    while let Some(listing) = walk.next().await {
        let (members, page_count) = listing?;
        progress.pages += page_count;
        progress.members += members.len() as u64;
        for m in members {
            match m.kind {
                MemberType::User => {
                    in_scope.insert(m.id);
                }
                MemberType::Customer => everyone = true,
                // Nested groups are followed by the walk.
                MemberType::Group | MemberType::External | MemberType::Other => {}
            }
        }
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(RemoteState::default());
        }
    }
    Ok(RemoteState {
        users,
        in_scope: (!everyone).then_some(in_scope),
    })
}
