//! Fetching what a sync needs from Google with the fewest calls: every user (500 a page); with
//! sync groups, the groups (200 a page, to resolve the configured addresses) and the members of
//! just the groups reachable from them (nested groups followed once each, so cycles end).

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::plan::{RemoteState, RemoteUser};
use crate::google::{DirectoryClient, GoogleError, Member, MemberType, User};
use crate::jobs::{JobControl, JobError, Progress};

/// Member listings run this many at a time: Google's per-user quota allows it, and with
/// thousands of groups the fetch is bound by round trips, not bandwidth. Public so that the
/// benchmark's paging floor uses the same number.
pub const MEMBER_CONCURRENCY: usize = 8;

impl From<GoogleError> for JobError {
    fn from(e: GoogleError) -> Self {
        JobError::new(e.code(), e.to_string())
    }
}

fn to_remote(u: User) -> RemoteUser {
    let disabled = u.is_disabled();
    let addresses = u.all_addresses();
    RemoteUser {
        id: u.id,
        full_name: if u.full_name.is_empty() {
            format!("{} {}", u.given_name, u.family_name)
                .trim()
                .to_string()
        } else {
            u.full_name
        },
        primary_email: u.primary_email,
        addresses,
        disabled,
    }
}

/// Fetches users and the scope. Returns early (with what it has) when the job should stop;
/// the caller checks [`JobControl::should_stop`] before using the result.
pub async fn fetch(
    client: &DirectoryClient,
    sync_groups: &[String],
    progress: &mut Progress,
    ctl: &JobControl,
) -> Result<RemoteState, JobError> {
    let mut users = Vec::new();
    let mut pages = client.users();
    while let Some(page) = pages.next_page().await? {
        progress.pages += 1;
        progress.users += page.len() as u64;
        users.extend(page.into_iter().map(to_remote));
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(RemoteState::default());
        }
    }
    if !pages.is_complete() {
        return Err(JobError::new(
            "incomplete_fetch",
            "the user listing ended before its last page; nothing was changed",
        ));
    }
    if sync_groups.is_empty() {
        return Ok(RemoteState {
            users,
            in_scope: None,
        });
    }

    progress.phase = Some("fetching_groups".into());
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
                return Err(JobError::new(
                    "unknown_group",
                    format!(
                        "the sync group {g} does not exist in Google Workspace; fix sync_groups \
                         (an unknown group never means \"nobody\")"
                    ),
                ))
            }
        }
    }

    progress.phase = Some("fetching_members".into());
    ctl.progress(progress, true).await;
    let mut visited: HashSet<String> = frontier.iter().cloned().collect();
    let mut queue: VecDeque<String> = frontier.into();
    let mut in_scope: HashSet<String> = HashSet::new();
    let mut everyone = false;
    let list = |gid: String| async move {
        let mut pages = client.members(&gid);
        let mut members = Vec::new();
        while let Some(page) = pages.next_page().await? {
            members.extend(page);
        }
        Ok::<_, GoogleError>((members, pages.pages_fetched() as u64))
    };
    // A work queue rather than level by level: a nested group found in one listing is fetched
    // as soon as a slot is free, instead of after the slowest listing of its level.
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < MEMBER_CONCURRENCY {
            match queue.pop_front() {
                Some(gid) => in_flight.push(list(gid)),
                None => break,
            }
        }
        let Some(result) = in_flight.next().await else {
            break;
        };
        let (members, page_count): (Vec<Member>, u64) = result?;
        progress.pages += page_count;
        progress.members += members.len() as u64;
        for m in members {
            match m.kind {
                MemberType::User => {
                    in_scope.insert(m.id);
                }
                MemberType::Group => {
                    if visited.insert(m.id.clone()) {
                        queue.push_back(m.id);
                    }
                }
                MemberType::Customer => everyone = true,
                MemberType::External | MemberType::Other => {}
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
