//! The directory provider seam (issue 16): what the sync engine reads from a directory, in the
//! engine's own terms, and nothing about which directory answers.
//!
//! The engine (`sync/`) keeps every rule of product.md §3: it pages through the users and
//! refuses a listing that ended before its last page (rule 6, complete fetch only), resolves
//! `sync_groups` against the listed groups (an address no group has is `unknown_group`: rule 1),
//! walks their membership once per group so that nested groups and cycles end
//! (`sync::scope::MemberWalk`), computes the scope from that graph (`snapshot::Graph::reach`),
//! plans, applies and keeps the snapshot. A provider only lists and re-reads.
//!
//! # What a new provider writes
//!
//! One module of its own (Google's is `google/`: the client, and `google/provider.rs` for this
//! seam), and one arm in `directory::provider_for` that builds it from the stored configuration.
//! No file of `sync/` changes. The module implements [`DirectoryProvider`]:
//!
//! - [`DirectoryProvider::user_pages`]: every user of the account, page by page, each as a
//!   [`RemoteUser`]: the directory's stable id (never an address or a name, which change), the
//!   display name, every address with the primary first, and whether the account is disabled.
//!   The pager says whether the listing reached its last page.
//! - [`DirectoryProvider::group_pages`]: every group, with its id and address, page by page.
//! - [`DirectoryProvider::group_members`]: one group's direct members as [`Edge`]s (a user, a
//!   nested group, everyone in the account), with the nested groups' addresses; members the
//!   scope does not follow (outside addresses) are counted, not returned.
//! - [`DirectoryProvider::user_by_id`]: one user again by id; `None` only when the directory
//!   itself says that user does not exist (that is how a user leaves between full syncs).
//! - [`DirectoryProvider::read_changes`]: what changed since the last applied sync, brought into
//!   the snapshot it read, or the reason to run a full sync instead (Google follows its admin
//!   log: `google/incremental.rs`; Entra its delta links: `entra/delta.rs`). The re-reads and
//!   the patching of the snapshot that every provider needs are in `sync/incremental.rs`.
//! - [`DirectoryProvider::change_marker`] (optional): where to read changes from later, taken
//!   before each full read and stored with its snapshot (Entra's delta links).
//!
//! Failures are [`crate::Error`]s with the provider's own codes and instructions for the
//! administrator (Google's are `GoogleError::code`), as the jobs show them.
//!
//! Not behind the seam yet: the connection test's steps, the live group listing for choosing
//! `sync_groups`, and sign-in, which `directory.rs` and `oidc/` still ask of Google directly.
//!
//! A trait rather than an enum of providers: each provider's reads stay in its module, the
//! engine holds a `&dyn DirectoryProvider` and never matches on which one it has, and a test can
//! run the engine's rules over a provider of fixed data (the tests below). With an enum every
//! method would be a `match` that each new provider edits.

use async_trait::async_trait;

use crate::jobs::{JobControl, Progress};
use crate::sync::incremental::{Outcome, Since};
use crate::sync::plan::RemoteUser;
use crate::sync::snapshot::Edge;
use crate::Result;

/// A listing read one page at a time, so that the engine reports progress per page, stops
/// between pages when the job is cancelled, and keeps memory flat.
#[async_trait]
pub trait Pager<T>: Send {
    /// The next page, or `None` once the listing is over (complete, or after an error).
    async fn next_page(&mut self) -> Result<Option<Vec<T>>>;

    /// Whether the last page was received: only then may a sync plan departures.
    fn is_complete(&self) -> bool;
}

/// A group as the engine resolves `sync_groups` against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The directory's id of the group.
    pub id: String,
    /// Its address (matched without regard to case).
    pub email: String,
}

/// One group's direct members, every page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    /// The group's id.
    pub group: String,
    /// The members the scope follows, in the directory's order.
    pub members: Vec<Edge>,
    /// The nested groups among them that the listing names by address: (id, lower-cased
    /// address). A group created after the group listing is known by this alone.
    pub group_addresses: Vec<(String, String)>,
    /// Members listed, those the scope does not follow included (the job's progress counts
    /// them).
    pub listed: u64,
    /// Pages the listing took.
    pub pages: u64,
}

/// A directory the sync engine reads: see the module's documentation for what each method
/// must do.
#[async_trait]
pub trait DirectoryProvider: Send + Sync {
    /// The directory's name in messages to the administrator ("Google Workspace").
    fn directory_name(&self) -> &'static str;

    /// Every user of the account, page by page.
    fn user_pages(&self) -> Box<dyn Pager<RemoteUser> + '_>;

    /// Every group of the account, page by page.
    fn group_pages(&self) -> Box<dyn Pager<DirectoryGroup> + '_>;

    /// The direct members of the group with this id (every page).
    async fn group_members(&self, group_id: &str) -> Result<GroupMembers>;

    /// The user with this id as the directory has it now; `None` when the directory says it
    /// does not exist.
    async fn user_by_id(&self, id: &str) -> Result<Option<RemoteUser>>;

    /// Where this directory's changes can be read from later, obtained just before a full
    /// read begins, so that nothing changed during the read is missed (a change the read saw
    /// too is read again by the next incremental job, which is harmless): an opaque text that
    /// the engine stores with the full sync's snapshot (`directory_state.delta_links`, not
    /// when the run is a dry run) and hands back in [`Since::state`]. `None`, the default, for
    /// a directory whose changes are found by time (Google's admin log: the cursor is the
    /// engine's own clock). Entra answers with its delta links "from now".
    ///
    /// A failure here does not fail the full sync: the next incremental job finds no marker
    /// and runs as a full sync, saying why.
    async fn change_marker(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// An incremental job's read: what changed since `since` (the last applied sync's snapshot
    /// and state, whose configuration is the current one), or why a full sync must run
    /// instead. The caller has checked the job's kind and that a full sync was applied.
    async fn read_changes(
        &self,
        since: Since<'_>,
        progress: &mut Progress,
        ctl: &JobControl,
    ) -> Result<Outcome>;
}

#[cfg(test)]
mod tests {
    //! The engine's full read, scope and planning over a second provider of fixed data: if a
    //! rule of §3 leaked into Google's side of the seam, these would see it missing.

    use std::collections::{HashMap, HashSet, VecDeque};

    use super::*;
    use crate::sync::plan::{plan, ChangeKind, DirectoryId, LocalState, Rules};
    use crate::sync::{fetch, incremental};

    /// A directory held in memory: users and groups, each listing in pages of two.
    struct Fixed {
        users: Vec<RemoteUser>,
        groups: Vec<DirectoryGroup>,
        members: HashMap<String, Vec<Edge>>,
        /// Whether the user listing reaches its last page.
        users_complete: bool,
    }

    struct FixedPages<T> {
        pages: VecDeque<Vec<T>>,
        complete: bool,
    }

    #[async_trait]
    impl<T: Send + Sync> Pager<T> for FixedPages<T> {
        async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
            Ok(self.pages.pop_front())
        }

        fn is_complete(&self) -> bool {
            self.pages.is_empty() && self.complete
        }
    }

    fn pages<T: Clone>(items: &[T], complete: bool) -> FixedPages<T> {
        FixedPages {
            pages: items.chunks(2).map(<[T]>::to_vec).collect(),
            complete,
        }
    }

    #[async_trait]
    impl DirectoryProvider for Fixed {
        fn directory_name(&self) -> &'static str {
            "the fixed directory"
        }

        fn user_pages(&self) -> Box<dyn Pager<RemoteUser> + '_> {
            Box::new(pages(&self.users, self.users_complete))
        }

        fn group_pages(&self) -> Box<dyn Pager<DirectoryGroup> + '_> {
            Box::new(pages(&self.groups, true))
        }

        async fn group_members(&self, group_id: &str) -> Result<GroupMembers> {
            let members = self.members.get(group_id).cloned().unwrap_or_default();
            let group_addresses = members
                .iter()
                .filter_map(|e| match e {
                    Edge::Group(g) => self
                        .groups
                        .iter()
                        .find(|x| x.id == *g)
                        .map(|x| (g.clone(), x.email.to_lowercase())),
                    _ => None,
                })
                .collect();
            Ok(GroupMembers {
                group: group_id.to_owned(),
                listed: members.len() as u64,
                members,
                group_addresses,
                pages: 1,
            })
        }

        async fn user_by_id(&self, id: &str) -> Result<Option<RemoteUser>> {
            Ok(self.users.iter().find(|u| u.id.as_str() == id).cloned())
        }

        async fn read_changes(
            &self,
            _since: Since<'_>,
            _progress: &mut Progress,
            _ctl: &JobControl,
        ) -> Result<Outcome> {
            incremental::fallback("the fixed directory keeps no changes")
        }
    }

    fn user(id: &str, email: &str, disabled: bool) -> RemoteUser {
        RemoteUser {
            user_name: None,
            id: DirectoryId::new(id.into()),
            primary_email: email.into(),
            full_name: format!("User {id}"),
            addresses: vec![email.into()],
            disabled,
        }
    }

    fn group(id: &str, email: &str) -> DirectoryGroup {
        DirectoryGroup {
            id: id.into(),
            email: email.into(),
        }
    }

    /// `staff` holds Ada and the nested `team`, which holds Bob, the disabled Dan and `staff`
    /// again (a cycle); `other` holds Eve, outside the sync groups.
    fn directory() -> Fixed {
        let u = |id: &str| Edge::User(id.into());
        let g = |id: &str| Edge::Group(id.into());
        Fixed {
            users: vec![
                user("1", "ada@example.com", false),
                user("2", "bob@example.com", false),
                user("3", "eve@example.com", false),
                user("4", "dan@example.com", true),
            ],
            groups: vec![
                group("g1", "Staff@example.com"),
                group("g2", "team@example.com"),
                group("g3", "other@example.com"),
            ],
            members: HashMap::from([
                ("g1".to_string(), vec![u("1"), g("g2")]),
                ("g2".to_string(), vec![u("2"), u("4"), g("g1")]),
                ("g3".to_string(), vec![u("3")]),
            ]),
            users_complete: true,
        }
    }

    async fn control() -> JobControl {
        // Progress is written to a table this database lacks: a logged warning, no failure.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        JobControl::for_tests(db)
    }

    #[tokio::test]
    async fn the_engine_reads_scopes_and_plans_through_any_provider() {
        let dir = directory();
        let ctl = control().await;
        let mut progress = Progress::default();
        let groups = ["staff@example.com".to_string()];
        let fetched = fetch::fetch(&dir, &groups, &mut progress, &ctl)
            .await
            .unwrap();

        let in_scope = fetched.remote.in_scope.clone().expect("sync groups scope");
        let expected: HashSet<String> = ["1", "2", "4"].map(String::from).into();
        assert_eq!(
            in_scope, expected,
            "nested groups followed, the cycle ended"
        );
        assert_eq!(fetched.remote.users.len(), 4, "every user is read");
        assert_eq!(fetched.account_groups, 3);
        let graph = fetched.graph.as_ref().expect("a graph");
        assert_eq!(graph.roots, ["g1"]);
        let listed: Vec<&str> = graph.nodes.keys().map(String::as_str).collect();
        assert_eq!(listed, ["g1", "g2"], "only reachable groups are listed");
        assert_eq!(graph.nodes["g2"].email, "team@example.com");
        assert_eq!((progress.users, progress.groups), (4, 3));
        assert_eq!(progress.members, 5);
        // Users: 2 pages; groups: 2 pages; members: one page per reached group.
        assert_eq!(progress.pages, 6);

        let the_plan = plan(
            &fetched.remote,
            &LocalState { users: Vec::new() },
            Rules {
                auto_delete_users: false,
            },
        );
        let mut created: Vec<(&str, ChangeKind)> = the_plan
            .changes
            .iter()
            .map(|c| (c.user_name.as_str(), c.kind))
            .collect();
        created.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            created,
            [
                ("ada@example.com", ChangeKind::Create),
                ("bob@example.com", ChangeKind::Create),
                ("dan@example.com", ChangeKind::Create),
            ]
        );
        assert!(
            the_plan.creates.iter().any(|u| u.disabled),
            "Dan stays disabled"
        );
    }

    /// `sync_groups` may name a group by id (Entra's security groups have no address) as well
    /// as by address, in any case; groups without an address still count in the account.
    #[tokio::test]
    async fn a_sync_group_is_found_by_id_or_address_and_groups_without_one_count() {
        let mut dir = directory();
        dir.groups.push(group("9F3C-SEC", ""));
        dir.groups.push(group("g5", ""));
        dir.members
            .insert("9F3C-SEC".into(), vec![Edge::User("3".into())]);
        let ctl = control().await;
        let groups = ["9f3c-sec".to_string(), "STAFF@example.com".to_string()];
        let fetched = fetch::fetch(&dir, &groups, &mut Progress::default(), &ctl)
            .await
            .unwrap();
        let in_scope = fetched.remote.in_scope.clone().expect("sync groups scope");
        let expected: HashSet<String> = ["1", "2", "3", "4"].map(String::from).into();
        assert_eq!(in_scope, expected);
        assert_eq!(fetched.account_groups, 5);
        let graph = fetched.graph.expect("a graph");
        assert_eq!(graph.roots, ["9F3C-SEC", "g1"]);
        assert_eq!(graph.nodes["9F3C-SEC"].email, "");
    }

    #[tokio::test]
    async fn an_unknown_sync_group_or_an_incomplete_listing_fails_whatever_the_provider() {
        let ctl = control().await;
        let unknown = ["nobody@example.com".to_string()];
        let err = fetch::fetch(&directory(), &unknown, &mut Progress::default(), &ctl)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unknown_group");
        assert!(
            err.to_string()
                .contains("does not exist in the fixed directory"),
            "{err}"
        );

        let cut_short = Fixed {
            users_complete: false,
            ..directory()
        };
        let err = fetch::fetch(&cut_short, &[], &mut Progress::default(), &ctl)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "incomplete_fetch");
    }
}
