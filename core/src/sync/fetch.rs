//! Fetching what a sync needs from Google with the fewest calls: every user (500 a page), then
//! the scope (`scope.rs`: with sync groups, the groups and the members of just the groups
//! reachable from them).

use super::plan::RemoteUser;
use super::scope::{self, Fetched};
use crate::google::{DirectoryClient, User};
use crate::jobs::{JobControl, Progress};

/// The engine's view of a Google user; a full listing and a re-read by `users.get` give the
/// same.
pub(crate) fn to_remote(u: User) -> RemoteUser {
    let disabled = u.is_disabled();
    let addresses = u.all_addresses();
    RemoteUser {
        id: super::plan::DirectoryId::new(u.id),
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
) -> crate::Result<Fetched> {
    let mut users = Vec::new();
    let mut pages = client.users();
    while let Some(page) = pages.next_page().await? {
        progress.pages += 1;
        progress.users += page.len() as u64;
        users.extend(page.into_iter().map(to_remote));
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(Fetched::default());
        }
    }
    if !pages.is_complete() {
        return Err(super::safeguards::incomplete_fetch());
    }
    scope::scope(client, users, sync_groups, progress, ctl).await
}
