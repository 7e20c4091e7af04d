//! Departures (product.md §3.4, §3.5): directory users that no in-scope Google user matched.

use super::matching::Planner;
use super::plan::{Change, ChangeKind, Fields, Plan};

/// What a run does with a directory user that no in-scope Google user matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Departure {
    /// Deleted (its folder kept when it holds messages): `auto_delete_users` is on and it does
    /// not hold `admin`.
    Leaves,
    /// Reported and left alone: `auto_delete_users` is off.
    OutOfScope,
    /// Kept: it holds `admin`, which a sync never deletes.
    KeptAdmin,
}

impl Planner<'_> {
    /// The one "is leaving" rule (§3.4, §3.5): a directory user that no in-scope Google user
    /// matched is deleted when `auto_delete_users` is on, unless it holds `admin`. `None` for a
    /// local user (never touched) and for a matched one. Settling (`matching.rs`), the conflict
    /// messages and the departures all ask this one question.
    pub(super) fn departure(&self, i: usize) -> Option<Departure> {
        let u = &self.users[i];
        if !u.directory || self.matched[i].is_some() {
            None
        } else if !self.rules.auto_delete_users {
            Some(Departure::OutOfScope)
        } else if u.is_admin {
            Some(Departure::KeptAdmin)
        } else {
            Some(Departure::Leaves)
        }
    }

    /// True when local user `i` is deleted by this run: it frees its name and addresses for
    /// this same run.
    pub(super) fn leaves(&self, i: usize) -> bool {
        self.departure(i) == Some(Departure::Leaves)
    }

    /// Phase 6: directory users no longer in scope (§3.4, §3.5).
    pub(super) fn departures(&self, out: &mut Plan) {
        for (i, u) in self.users.iter().enumerate() {
            let Some(departure) = self.departure(i) else {
                continue;
            };
            let change = |kind, reason: &str| Change {
                kind,
                user_name: u.user_name.clone(),
                directory_id: u.directory_id.clone().map(String::from),
                fields: Fields::new(),
                reason: Some(reason.to_string()),
            };
            match departure {
                Departure::Leaves => {
                    out.changes.push(change(
                        ChangeKind::Delete,
                        "no longer in Google or in the sync groups",
                    ));
                    out.summary.deleted += 1;
                    out.deletes.push(u.id);
                    // The folder itself is kept or deleted by the apply
                    // (`crate::users::delete_users`, the rule shared with deletions by hand);
                    // the plan reports what that will do.
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
                }
                Departure::OutOfScope => {
                    out.changes.push(change(
                        ChangeKind::OutOfScope,
                        "no longer in Google or in the sync groups; left alone because auto_delete_users is off",
                    ));
                    out.summary.out_of_scope += 1;
                }
                Departure::KeptAdmin => {
                    out.changes.push(change(
                        ChangeKind::KeptAdmin,
                        "no longer in scope, but holds the admin privilege: never deleted by a sync",
                    ));
                    out.summary.kept_admin += 1;
                }
            }
        }
    }
}
