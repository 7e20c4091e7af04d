//! The full read of a sync, through the configured directory's provider (`crate::provider`):
//! every user, page by page, refused unless the listing reached its last page; then the scope
//! (`scope.rs`: with sync groups, the groups and the members of just the groups reachable from
//! them).

use super::scope::{self, Fetched};
use crate::jobs::{JobControl, Progress};
use crate::provider::DirectoryProvider;

/// Fetches users and the scope. Returns early (with what it has) when the job should stop;
/// the caller checks [`JobControl::should_stop`] before using the result.
pub async fn fetch(
    provider: &dyn DirectoryProvider,
    sync_groups: &[String],
    progress: &mut Progress,
    ctl: &JobControl,
) -> crate::Result<Fetched> {
    let mut users = Vec::new();
    let mut pages = provider.user_pages();
    while let Some(page) = pages.next_page().await? {
        progress.pages += 1;
        progress.users += page.len() as u64;
        users.extend(page);
        ctl.progress(progress, false).await;
        if ctl.should_stop() {
            return Ok(Fetched::default());
        }
    }
    if !pages.is_complete() {
        return Err(super::safeguards::incomplete_fetch());
    }
    scope::scope(provider, users, sync_groups, progress, ctl).await
}
