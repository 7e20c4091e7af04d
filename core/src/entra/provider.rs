//! Microsoft Entra ID as the sync engine's directory provider (`crate::provider`): Graph's
//! listings in the engine's terms.

use async_trait::async_trait;

use super::client::{GraphClient, GraphPages};
use super::model::{to_remote, WireGroup, WireUser};
use super::EntraError;
use crate::jobs::{JobControl, Progress};
use crate::provider::{DirectoryGroup, DirectoryProvider, GroupMembers, Pager};
use crate::sync::incremental::{Outcome, Since};
use crate::sync::plan::RemoteUser;
use crate::Result;

/// `GET /users`, 999 a page, each user converted as it arrives. Guests (`userType: Guest`)
/// are left out unless the configuration includes them: an excluded guest is simply not in
/// the directory as dirsync sees it, so a guest synced before `include_guests` was turned off
/// is treated like any user who left the directory (product.md §3: kept, or deleted when
/// `auto_delete_users` is on).
struct UserPages<'c> {
    pages: GraphPages<'c, WireUser>,
    include_guests: bool,
}

#[async_trait]
impl Pager<RemoteUser> for UserPages<'_> {
    async fn next_page(&mut self) -> Result<Option<Vec<RemoteUser>>> {
        let Some(page) = self.pages.next_page().await? else {
            return Ok(None);
        };
        let users = page
            .into_iter()
            .filter(|u| self.include_guests || !u.is_guest())
            .map(to_remote)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Some(users))
    }

    fn is_complete(&self) -> bool {
        self.pages.is_complete()
    }
}

/// `GET /groups`, 999 a page: each group's id, and its address lower-cased (empty for a group
/// without one, which `sync_groups` cannot then name by address).
struct GroupPages<'c>(GraphPages<'c, WireGroup>);

#[async_trait]
impl Pager<DirectoryGroup> for GroupPages<'_> {
    async fn next_page(&mut self) -> Result<Option<Vec<DirectoryGroup>>> {
        let page = self.0.next_page().await?;
        Ok(page.map(|groups| {
            groups
                .into_iter()
                .map(|g| DirectoryGroup {
                    id: g.id,
                    email: g.mail.unwrap_or_default().trim().to_lowercase(),
                })
                .collect()
        }))
    }

    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
}

/// The provider is the Graph client itself: everything it reads comes through it.
#[async_trait]
impl DirectoryProvider for GraphClient {
    fn directory_name(&self) -> &'static str {
        "Microsoft Entra ID"
    }

    fn user_pages(&self) -> Box<dyn Pager<RemoteUser> + '_> {
        Box::new(UserPages {
            pages: self.users(),
            include_guests: self.config.include_guests,
        })
    }

    fn group_pages(&self) -> Box<dyn Pager<DirectoryGroup> + '_> {
        Box::new(GroupPages(self.groups()))
    }

    /// `GET /groups/{id}/members` (999 a page): users and nested groups are followed; devices,
    /// service principals and contacts are counted, not followed. A group that does not exist
    /// fails with `not_found`.
    async fn group_members(&self, group_id: &str) -> Result<GroupMembers> {
        Ok(list_members(self, group_id).await?)
    }

    /// `GET /users/{id}`: `None` when Graph answers 404, and for a guest while guests are out
    /// of scope (not in the directory as dirsync sees it, as in the listing).
    async fn user_by_id(&self, id: &str) -> Result<Option<RemoteUser>> {
        match self.get_user(id).await? {
            Some(u) if self.config.include_guests || !u.is_guest() => Ok(Some(to_remote(u)?)),
            _ => Ok(None),
        }
    }

    /// Entra's delta links "from now" (`entra/delta.rs`).
    async fn change_marker(&self) -> Result<Option<String>> {
        super::delta::change_marker(self).await.map(Some)
    }

    /// Follows the stored delta links and re-reads what they name (`entra/delta.rs`).
    async fn read_changes(
        &self,
        since: Since<'_>,
        progress: &mut Progress,
        ctl: &JobControl,
    ) -> Result<Outcome> {
        super::delta::read(self, since, progress, ctl).await
    }
}

/// A group's direct members, every page, in the engine's terms; [`EntraError::NotFound`] when
/// the group does not exist (an incremental read tells that apart).
pub(crate) async fn list_members(
    client: &GraphClient,
    group_id: &str,
) -> std::result::Result<GroupMembers, EntraError> {
    let mut pages = client.members(group_id);
    let mut out = GroupMembers {
        group: group_id.to_owned(),
        ..GroupMembers::default()
    };
    while let Some(page) = pages.next_page().await? {
        out.listed += page.len() as u64;
        for m in &page {
            out.members.extend(m.edge());
            out.group_addresses.extend(m.group_address());
        }
    }
    out.pages = pages.pages_fetched() as u64;
    Ok(out)
}
