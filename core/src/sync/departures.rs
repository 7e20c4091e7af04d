//! Departures (product.md §3.4, §3.5): directory users that no in-scope Google user matched.

use super::matching::Planner;
use super::plan::{Change, ChangeKind, Fields, Plan};

impl Planner<'_> {
    /// The one "is leaving" rule (§3.4, §3.5): a directory user that no in-scope Google user
    /// matched is deleted when `auto_delete_users` is on, unless it holds `admin`. A leaving
    /// user frees its name and addresses for this same run.
    pub(super) fn leaves(&self, i: usize) -> bool {
        let u = &self.users[i];
        u.directory && self.matched[i].is_none() && self.rules.auto_delete_users && !u.is_admin
    }

    /// Phase 6: directory users no longer in scope (§3.4, §3.5).
    pub(super) fn departures(&self, out: &mut Plan) {
        for (i, u) in self.users.iter().enumerate() {
            if !u.directory || self.matched[i].is_some() {
                continue;
            }
            let change = |kind, reason: &str| Change {
                kind,
                user_name: u.user_name.clone(),
                directory_id: u.directory_id.clone(),
                fields: Fields::new(),
                reason: Some(reason.to_string()),
            };
            if self.leaves(i) {
                out.changes.push(change(
                    ChangeKind::Delete,
                    "no longer in Google or in the sync groups",
                ));
                out.summary.deleted += 1;
                out.deletes.push(u.id);
                if u.folder_messages > 0 {
                    out.changes.push(change(
                        ChangeKind::FolderKept,
                        &format!(
                            "the archive folder holds {} messages; kept, detached from the user",
                            u.folder_messages
                        ),
                    ));
                    out.summary.folders_kept += 1;
                }
            } else if !self.rules.auto_delete_users {
                out.changes.push(change(
                    ChangeKind::OutOfScope,
                    "no longer in Google or in the sync groups; left alone because auto_delete_users is off",
                ));
                out.summary.out_of_scope += 1;
            } else {
                out.changes.push(change(
                    ChangeKind::KeptAdmin,
                    "no longer in scope, but holds the admin privilege: never deleted by a sync",
                ));
                out.summary.kept_admin += 1;
            }
        }
    }
}
