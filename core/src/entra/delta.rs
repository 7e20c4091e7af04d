//! Entra's incremental read (issue 16 item 4; wire facts: reference §3, "Delta queries"): between
//! full syncs, follow Graph's delta links and re-read only what they name. The engine's side
//! (what the read ends with, the checks before any provider's read, and the re-reads every
//! provider shares) is `sync/incremental.rs`.
//!
//! Change tracking begins with each full sync: before it reads, [`change_marker`] asks
//! `/users/delta` and `/groups/delta` for links "from now" (`$deltatoken=latest`, no
//! enumeration), and the engine stores them with the full sync's snapshot
//! (`directory_state.delta_links`). An incremental job follows them page by page
//! (`@odata.nextLink` to the next `@odata.deltaLink`, only within the configured Graph URL) and
//! collects the ids of the users that changed or were removed, and of the groups of the sync
//! groups' graph whose members changed (`members@delta`) or that were removed. Like Google's
//! admin log, the delta says *what to look at*, never *what is true*: the job then re-lists the
//! members of each changed group (and walks the groups newly nested, as a full sync does),
//! re-reads each changed user by id (a 404 is the only way a user leaves), and asks which
//! groups a changed user outside the scope is a member of (`memberOf`: a restored user gets
//! its memberships back without any membership change in the delta). The planner gets the
//! whole directory — the snapshot with those re-reads in it — so the plan is a full sync's.
//!
//! A full sync runs instead, with the reason on the job, when no links are stored (the last
//! full sync predates this, or could not begin tracking), when Graph no longer knows them
//! (400/410 `syncStateNotFound`, `resyncRequired`, 410 Gone), when a round ends without a delta
//! link, when a sync group was deleted or its address changed, when `include_guests` or the
//! Graph URL changed since the links were taken, and when re-reading would take more requests
//! than a full sync. Any other failure fails the job; it never deletes anyone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Utc;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use url::Url;

use super::client::{GraphClient, GraphPages, GROUP_MEMBER_READ_ALL, USER_READ_ALL};
use super::model::USER_SELECT;
use super::provider::list_members;
use super::EntraError;
use crate::jobs::{JobControl, Phase, Progress};
use crate::sync::incremental::{self, fallback, GroupAddress, Incremental, Outcome, Since};
use crate::sync::plan::RemoteUser;
use crate::sync::snapshot::{Edge, State};
use crate::Result;

/// The group properties tracked: the address (a sync group's may change) and the membership.
pub(crate) const GROUP_DELTA_SELECT: &str = "mail,members";

/// Graph's page sizes in a full sync (users and groups), for the "cheaper to read everything"
/// bound.
const PAGE: u64 = 999;

/// `memberOf` listings run this many at a time, as member listings do.
const CONCURRENCY: usize = 8;

/// Why an incremental job runs as a full sync when no delta links are stored.
pub const NO_DELTA_LINKS: &str = "no delta links are stored: the last full sync predates \
     incremental sync from Microsoft Entra ID, or could not begin change tracking; this full \
     sync begins it";

/// How to repair a `directory_state.delta_links` that does not decode.
const REPAIR: &str = "run a full sync, which stores new delta links";

/// What `directory_state.delta_links` holds for Entra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeltaLinks {
    /// Where the users' changes are read from next.
    users: String,
    /// Where the groups' changes are read from next.
    groups: String,
    /// Whether guests were in scope when the links were taken: the snapshot holds guests only
    /// if so.
    include_guests: bool,
}

/// The two delta listings.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Users => "users.delta",
            Kind::Groups => "groups.delta",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Kind::Users => USER_READ_ALL,
            Kind::Groups => GROUP_MEMBER_READ_ALL,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Users => "the users' changes",
            Kind::Groups => "the groups' changes",
        }
    }

    /// `GET {graph}/v1.0/{users|groups}/delta?$select=…&$deltatoken=latest`: a link to the
    /// changes from now on, without enumerating anything.
    fn latest(self, client: &GraphClient) -> Url {
        let (segment, select) = match self {
            Kind::Users => ("users", USER_SELECT),
            Kind::Groups => ("groups", GROUP_DELTA_SELECT),
        };
        let mut url = client.url(&[segment, "delta"]);
        url.query_pairs_mut()
            .append_pair("$select", select)
            .append_pair("$deltatoken", "latest");
        url
    }
}

/// A user entry of a delta page: only which user, and whether it was removed (`@removed`,
/// soft-deleted or deleted for good). The rest is re-read.
#[derive(Debug, Deserialize)]
struct DeltaUser {
    id: String,
    #[serde(rename = "@removed", default)]
    removed: Option<IgnoredAny>,
}

/// A group entry of a delta page.
#[derive(Debug, Deserialize)]
struct DeltaGroup {
    id: String,
    #[serde(default)]
    mail: Option<String>,
    #[serde(rename = "members@delta", default)]
    members: Option<Vec<IgnoredAny>>,
    #[serde(rename = "@removed", default)]
    removed: Option<IgnoredAny>,
}

/// What following one delta link ended with.
enum Followed<T> {
    /// Every change of the round, and where the next round starts.
    Changes { entries: Vec<T>, next: String },
    /// Run a full sync instead, for this reason.
    Fallback(String),
}

/// Follows a delta round from `start` to its delta link, page by page.
async fn follow<T: DeserializeOwned>(
    client: &GraphClient,
    kind: Kind,
    start: Url,
    mut progress: Option<&mut Progress>,
    ctl: Option<&JobControl>,
) -> Result<Followed<T>> {
    let mut pages: GraphPages<'_, T> = GraphPages::new(
        client,
        kind.endpoint(),
        kind.permission(),
        start,
        kind.what().to_string(),
    );
    let mut entries = Vec::new();
    loop {
        match pages.next_page().await {
            Ok(Some(page)) => {
                entries.extend(page);
                if let Some(p) = progress.as_deref_mut() {
                    p.pages += 1;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return match expired(&e) {
                    Some(reason) => Ok(Followed::Fallback(reason)),
                    None => Err(e.into()),
                }
            }
        }
        if ctl.is_some_and(JobControl::should_stop) {
            return Ok(Followed::Fallback("stopped".into()));
        }
    }
    let Some(link) = pages.delta_link() else {
        return Ok(Followed::Fallback(format!(
            "Microsoft Graph's listing of {} ended without a delta link, before its last page",
            kind.what()
        )));
    };
    // The next job follows it with the access token: the same rule as every next link.
    if !Url::parse(link).is_ok_and(|u| client.link_allowed(&u)) {
        return Err(EntraError::NextLinkNotAllowed {
            endpoint: kind.endpoint(),
            graph_url: client.url(&[]).to_string(),
        }
        .into());
    }
    Ok(Followed::Changes {
        entries,
        next: link.to_string(),
    })
}

/// Graph's answers meaning "this delta link is no longer valid; start over" (reference §3):
/// `syncStateNotFound` (announced as 400), `resyncRequired`, and 410 Gone. The reason for the
/// job's `fallback_reason`.
fn expired(e: &EntraError) -> Option<String> {
    let EntraError::Api {
        status,
        code,
        message,
        ..
    } = e
    else {
        return None;
    };
    let reset = *status == 410
        || code.eq_ignore_ascii_case("syncStateNotFound")
        || code.eq_ignore_ascii_case("resyncRequired");
    reset.then(|| {
        format!(
            "Microsoft Graph no longer accepts the stored delta link ({status} {code}: {message}); \
             delta links expire after 7 days without use, and Microsoft may reset them"
        )
    })
}

/// The delta links "from now" for users and groups, as the text to store: taken before a full
/// read (`DirectoryProvider::change_marker`).
pub(crate) async fn change_marker(client: &GraphClient) -> Result<String> {
    let mut links = Vec::new();
    for kind in [Kind::Users, Kind::Groups] {
        match follow::<IgnoredAny>(client, kind, kind.latest(client), None, None).await? {
            Followed::Changes { next, .. } => links.push(next),
            Followed::Fallback(reason) => {
                return Err(crate::Error::from(EntraError::MalformedResponse {
                    endpoint: kind.endpoint(),
                    detail: reason,
                }))
            }
        }
    }
    let groups = links.pop().expect("two links");
    let users = links.pop().expect("two links");
    let links = DeltaLinks {
        users,
        groups,
        include_guests: client.config.include_guests,
    };
    Ok(serde_json::to_string(&links).expect("links serialize"))
}

/// What changed about a group of the graph, over every entry of the round (a large group's
/// membership comes on several pages: merged, not replaced).
#[derive(Debug, Default)]
struct GroupChange {
    removed: bool,
    mail: Option<String>,
    members_changed: bool,
}

/// Follows the stored delta links and brings the snapshot (the directory the last applied
/// sync read) up to date.
pub(crate) async fn read(
    client: &GraphClient,
    since: Since<'_>,
    progress: &mut Progress,
    ctl: &JobControl,
) -> Result<Outcome> {
    let Since {
        state,
        snapshot: mut snap,
        ..
    } = since;
    let Some(text) = state.change_marker.as_deref() else {
        return fallback(NO_DELTA_LINKS);
    };
    let links: DeltaLinks = serde_json::from_str(text).map_err(|_| {
        crate::stored::invalid(
            "directory_state.delta_links",
            "Microsoft Graph's delta links (JSON)",
            REPAIR,
        )
    })?;
    if links.include_guests != client.config.include_guests {
        return fallback(
            "include_guests changed since the last full sync: the stored directory was read \
             with the old setting",
        );
    }
    let allowed = |l: &str| Url::parse(l).ok().filter(|u| client.link_allowed(u));
    let (Some(users_link), Some(groups_link)) = (allowed(&links.users), allowed(&links.groups))
    else {
        return fallback(
            "the stored delta links are not under DIRSYNC_MICROSOFT_GRAPH_URL (changed since \
             the last full sync)",
        );
    };
    // Every change up to here is in what follows.
    let began = Utc::now();

    progress.phase = Some(Phase::ReadingEvents);
    ctl.progress(progress, true).await;
    let (user_entries, users_next) =
        match follow::<DeltaUser>(client, Kind::Users, users_link, Some(progress), Some(ctl))
            .await?
        {
            Followed::Changes { entries, next } => (entries, next),
            Followed::Fallback(reason) => return fallback(reason),
        };
    // Without sync groups no group matters: the groups' link is kept as it was (a scope
    // configured later makes the next job a full sync anyway).
    let (group_entries, groups_next) = match &snap.graph {
        None => (Vec::new(), links.groups.clone()),
        Some(_) => {
            match follow::<DeltaGroup>(client, Kind::Groups, groups_link, Some(progress), Some(ctl))
                .await?
            {
                Followed::Changes { entries, next } => (entries, next),
                Followed::Fallback(reason) => return fallback(reason),
            }
        }
    };

    // The last word on each user wins: replays and repeats are harmless.
    let mut changed: BTreeMap<String, bool> = BTreeMap::new();
    for u in user_entries {
        let removed = u.removed.is_some();
        changed.insert(u.id, removed);
    }
    let mut group_changes: BTreeMap<String, GroupChange> = BTreeMap::new();
    for g in group_entries {
        let c = group_changes.entry(g.id).or_default();
        c.removed = g.removed.is_some();
        if !c.removed {
            c.mail = Some(g.mail.unwrap_or_default().trim().to_lowercase());
        }
        c.members_changed |= g.members.is_some_and(|m| !m.is_empty());
    }

    // Groups: a sync group deleted or given another address is resolved again only by a full
    // sync; a nested group deleted leaves its parents; the others' members are listed again.
    let mut relist: Vec<String> = Vec::new();
    if let Some(graph) = &mut snap.graph {
        for (id, c) in &group_changes {
            let Some(node) = graph.nodes.get_mut(id) else {
                continue;
            };
            let root = graph.roots.contains(id);
            let label = if node.email.is_empty() {
                id.clone()
            } else {
                node.email.clone()
            };
            if c.removed {
                if root {
                    return fallback(format!(
                        "the sync group {label} was deleted: only a full sync resolves \
                         sync_groups again"
                    ));
                }
                graph.nodes.remove(id);
                for n in graph.nodes.values_mut() {
                    n.members.retain(|e| *e != Edge::Group(id.clone()));
                }
                continue;
            }
            if let Some(mail) = &c.mail {
                if *mail != node.email {
                    if root {
                        return fallback(format!(
                            "the sync group {label} was renamed (its address is now {}): only \
                             a full sync resolves sync_groups again",
                            if mail.is_empty() { "none" } else { mail }
                        ));
                    }
                    node.email = mail.clone();
                }
            }
            if c.members_changed {
                relist.push(id.clone());
            }
        }
    }

    // Too many to re-read: a full sync is cheaper.
    let floor = incremental::full_sync_floor(&snap, PAGE, PAGE);
    let estimate = (changed.len() + relist.len()) as u64;
    if estimate > floor {
        return fallback(format!(
            "the delta links name {estimate} objects to re-read, more Graph requests than a \
             full sync makes ({floor})"
        ));
    }

    let mut in_scope = None;
    let mut gone: HashSet<String> = HashSet::new();
    let was_everyone = snap.graph.as_ref().is_none_or(|g| g.reach().everyone);
    if let Some(graph) = &mut snap.graph {
        progress.phase = Some(Phase::FetchingMembers);
        ctl.progress(progress, true).await;
        let mut member_email: HashMap<String, String> = HashMap::new();
        for id in &relist {
            if !graph.nodes.contains_key(id) {
                continue;
            }
            let listing = match list_members(client, id).await {
                Ok(l) => l,
                Err(EntraError::NotFound { .. }) => {
                    if graph.roots.contains(id) {
                        return fallback(format!(
                            "the sync group {id} no longer exists: only a full sync resolves \
                             sync_groups again"
                        ));
                    }
                    graph.nodes.remove(id);
                    for n in graph.nodes.values_mut() {
                        n.members.retain(|e| *e != Edge::Group(id.clone()));
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            progress.members += listing.listed;
            progress.pages += listing.pages;
            member_email.extend(listing.group_addresses);
            graph.nodes.get_mut(id).expect("listed group").members = listing.members;
            if ctl.should_stop() {
                return fallback("stopped");
            }
        }
        match incremental::walk_new_groups(
            client,
            graph,
            member_email,
            GroupAddress::Optional,
            was_everyone,
            progress,
        )
        .await?
        {
            Ok(scope) => in_scope = scope,
            Err(reason) => return fallback(reason),
        }

        // Changed users the graph does not reach: which groups are they members of? A user
        // restored from the deleted users is back in its groups without any membership change
        // in the groups' delta.
        if let Some(scope) = &in_scope {
            let outside: Vec<String> = changed
                .iter()
                .filter(|(id, removed)| !**removed && !scope.contains(*id))
                .map(|(id, _)| id.clone())
                .collect();
            let groups: Vec<Option<Vec<String>>> = stream::iter(outside.iter().cloned())
                .map(|id| async move { member_of(client, &id).await })
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
            let mut joined = false;
            for (id, groups) in outside.into_iter().zip(groups) {
                let Some(groups) = groups else {
                    gone.insert(id);
                    continue;
                };
                for g in groups {
                    if let Some(node) = graph.nodes.get_mut(&g) {
                        let edge = Edge::User(id.clone());
                        if !node.members.contains(&edge) {
                            node.members.push(edge);
                            joined = true;
                        }
                    }
                }
            }
            if joined {
                let reach = graph.reach();
                in_scope = (!reach.everyone).then_some(reach.users);
            }
        }
    }

    // Users: each changed one the scope reaches (a removed one too: it leaves only when Graph
    // says it does not exist), and the users newly in scope.
    progress.phase = Some(Phase::FetchingUsers);
    ctl.progress(progress, true).await;
    let reached = |id: &str| in_scope.as_ref().is_none_or(|s| s.contains(id));
    let mut ids: BTreeSet<String> = changed
        .keys()
        .filter(|id| reached(id) && !gone.contains(*id))
        .cloned()
        .collect();
    ids.extend(incremental::newly_in_scope(
        &snap,
        in_scope.as_ref(),
        &BTreeMap::new(),
    ));
    let ids: Vec<String> = ids.into_iter().collect();
    let reread = incremental::reread_users(client, ids.iter().cloned()).await?;
    let mut found: BTreeMap<String, RemoteUser> = BTreeMap::new();
    for (id, user) in ids.into_iter().zip(reread) {
        match user {
            Some(u) => {
                found.insert(u.id.as_str().to_owned(), u);
            }
            None => {
                gone.insert(id);
            }
        }
    }
    progress.users += found.len() as u64;
    ctl.progress(progress, true).await;
    let in_scope = incremental::patch_users(&mut snap, found, &gone, in_scope);

    let links = DeltaLinks {
        users: users_next,
        groups: groups_next,
        include_guests: links.include_guests,
    };
    Ok(Outcome::Ready(Box::new(Incremental {
        snapshot: snap,
        in_scope,
        state: State {
            cursor: Some(began),
            newest_event_at: Some(began),
            change_marker: Some(serde_json::to_string(&links).expect("links serialize")),
            ..State::default()
        },
    })))
}

/// `GET /users/{id}/memberOf`: the ids of the groups the user is a direct member of; `None`
/// when Graph says the user does not exist.
async fn member_of(client: &GraphClient, id: &str) -> Result<Option<Vec<String>>> {
    #[derive(Deserialize)]
    struct Object {
        id: String,
    }
    let mut url = client.url(&["users", id, "memberOf"]);
    url.query_pairs_mut()
        .append_pair("$select", "id")
        .append_pair("$top", "999");
    let mut pages: GraphPages<'_, Object> = GraphPages::new(
        client,
        "memberOf.list",
        GROUP_MEMBER_READ_ALL,
        url,
        format!("the groups of user {id}"),
    );
    let mut out = Vec::new();
    loop {
        match pages.next_page().await {
            Ok(Some(page)) => out.extend(page.into_iter().map(|o| o.id)),
            Ok(None) => break,
            Err(EntraError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(out))
}
