//! Safeguards (product.md §3.6): deletions only from a complete fetch, no plan from an empty
//! directory, and a limit on deletions that a run may pass only when confirmed. The runner
//! (`runner.rs`) calls these at its steps; the fetch (`fetch.rs`) refuses an incomplete listing.

use super::plan::RemoteState;
use crate::jobs::JobErrorBody;

/// A user listing that ended before its last page: the users missing from it would be planned
/// as leaving.
pub(super) fn incomplete_fetch() -> crate::Error {
    crate::Error::upstream(
        "incomplete_fetch",
        "the user listing ended before its last page; nothing was changed",
    )
}

/// Refuses a fetch with nobody in scope while `directory_users` exist here.
pub fn check_not_empty(remote: &RemoteState, directory_users: usize) -> crate::Result<()> {
    // Nobody in scope while directory users exist is far likelier a broken fetch or an
    // emptied group than everyone leaving at once: refuse, rather than plan their removal.
    let in_scope = match &remote.in_scope {
        None => remote.users.len(),
        Some(ids) => remote
            .users
            .iter()
            .filter(|u| ids.contains(u.id.as_str()))
            .count(),
    };
    if in_scope == 0 && directory_users > 0 {
        return Err(crate::Error::conflict(
            "empty_directory",
            format!(
                "Google returned no users in scope while {directory_users} directory users exist \
                 here; refusing to treat that as everyone leaving. Check customer_id/domain, \
                 admin_email and sync_groups"
            ),
        ));
    }
    Ok(())
}

/// Blocks a plan of more `deletions` than the limit in force ([`deletion_limit`]) unless the run
/// confirms exactly that count: the job then ends `blocked`, keeping its plan.
pub fn check_deletions(
    deletions: u64,
    configured: Option<u32>,
    directory_users: usize,
    confirm_deletions: Option<u64>,
) -> Result<(), JobErrorBody> {
    let limit = deletion_limit(configured, directory_users);
    let confirmed = confirm_deletions == Some(deletions);
    if deletions > limit && !confirmed {
        return Err(JobErrorBody::new(
            "deletion_limit_exceeded",
            format!(
                "the plan deletes {deletions} users, more than the limit of {limit}; nothing was \
                 written. Review the changes, then run again with confirm_deletions={deletions}"
            ),
        ));
    }
    Ok(())
}

/// The deletion limit in force: the configured number, else 10 % of the directory users but at
/// least 5 (product.md §3.6).
pub fn deletion_limit(configured: Option<u32>, directory_users: usize) -> u64 {
    configured
        .map(u64::from)
        .unwrap_or_else(|| ((directory_users as u64) * 10).div_ceil(100).max(5))
}
