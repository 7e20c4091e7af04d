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
//!   log: `google/incremental.rs`).
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

