//! Google Workspace as the sync engine's directory provider (`crate::provider`): the Directory
//! API's listings in the engine's terms, and the admin log's incremental read
//! (`incremental.rs`).

use async_trait::async_trait;

use super::{DirectoryClient, Group, Member, MemberType, Pages, User};
use crate::jobs::{JobControl, Progress};
use crate::provider::{DirectoryGroup, DirectoryProvider, GroupMembers, Pager};
use crate::sync::incremental::{Outcome, Since};
use crate::sync::plan::{DirectoryId, RemoteUser};
use crate::sync::snapshot::Edge;
use crate::Result;

/// The engine's view of a Google user; a full listing and a re-read by `users.get` give the
/// same.
pub(crate) fn to_remote(u: User) -> RemoteUser {
    let disabled = u.is_disabled();
    let addresses = u.all_addresses();
    RemoteUser {
        user_name: None,
        id: DirectoryId::new(u.id),
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

/// The edge of a listed member; `None` for those scope ignores (outside addresses, kinds this
/// client does not know).
pub(crate) fn edge(m: &Member) -> Option<Edge> {
    match m.kind {
        MemberType::User => Some(Edge::User(m.id.clone())),
        MemberType::Group => Some(Edge::Group(m.id.clone())),
        MemberType::Customer => Some(Edge::Customer),
        MemberType::External | MemberType::Other => None,
    }
}

/// The nested groups among `members` that carry an address: (id, lower-cased address).
pub(crate) fn nested_group_addresses(
    members: &[Member],
) -> impl Iterator<Item = (String, String)> + '_ {
    members.iter().filter_map(|m| match (m.kind, &m.email) {
        (MemberType::Group, Some(email)) => Some((m.id.clone(), email.to_lowercase())),
        _ => None,
    })
}

/// `users.list`, 500 a page, each user converted as it arrives.
struct UserPages<'c>(Pages<'c, User>);

#[async_trait]
impl Pager<RemoteUser> for UserPages<'_> {
    async fn next_page(&mut self) -> Result<Option<Vec<RemoteUser>>> {
        let page = self.0.next_page().await?;
        Ok(page.map(|users| users.into_iter().map(to_remote).collect()))
    }

    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
}

/// `groups.list`, 200 a page.
struct GroupPages<'c>(Pages<'c, Group>);

#[async_trait]
impl Pager<DirectoryGroup> for GroupPages<'_> {
    async fn next_page(&mut self) -> Result<Option<Vec<DirectoryGroup>>> {
        let page = self.0.next_page().await?;
        Ok(page.map(|groups| {
            groups
                .into_iter()
                .map(|g| DirectoryGroup {
                    id: g.id,
                    email: g.email,
                })
                .collect()
        }))
    }

    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
}

/// The provider is the Directory API client itself: everything it reads comes through it.
#[async_trait]
impl DirectoryProvider for DirectoryClient {
    fn directory_name(&self) -> &'static str {
        "Google Workspace"
    }

    fn user_pages(&self) -> Box<dyn Pager<RemoteUser> + '_> {
        Box::new(UserPages(self.users()))
    }

    fn group_pages(&self) -> Box<dyn Pager<DirectoryGroup> + '_> {
        Box::new(GroupPages(self.groups()))
    }

    /// `members.list` (200 a page); a group that does not exist fails with `not_found`.
    async fn group_members(&self, group_id: &str) -> Result<GroupMembers> {
        let mut pages = self.members(group_id);
        let mut members = Vec::new();
        while let Some(page) = pages.next_page().await? {
            members.extend(page);
        }
        Ok(GroupMembers {
            group: group_id.to_owned(),
            members: members.iter().filter_map(edge).collect(),
            group_addresses: nested_group_addresses(&members).collect(),
            listed: members.len() as u64,
            pages: pages.pages_fetched() as u64,
        })
    }

    /// `users.get`: `None` when Google answers 404.
    async fn user_by_id(&self, id: &str) -> Result<Option<RemoteUser>> {
        Ok(self.get_user(id).await?.map(to_remote))
    }

    async fn read_changes(
        &self,
        since: Since<'_>,
        progress: &mut Progress,
        ctl: &JobControl,
    ) -> Result<Outcome> {
        super::incremental::read(self, since, progress, ctl).await
    }
}
