//! The Microsoft side (`bench --provider entra`): the Entra emulator with a generated tenant,
//! the scope the benchmark syncs, the lower bound of Graph calls for it, and the paging floor —
//! dirsync's own Graph client merely paging through what a sync needs.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use dirsync_core::entra::{Credential, EntraAccess, EntraConfig, GraphClient, TokenCache};
use dirsync_core::provider::DirectoryProvider;
use dirsync_core::sync::scope::MemberWalk;
use dirsync_entra_emulator::{
    AppCredentials, Directory, Emulator, EmulatorOptions, Endpoint, UserType,
};

use crate::google::{LowerBound, SCOPE_EVERY, SEED};

/// Graph's largest page for `users`, `groups` and `members` (microsoft-entra.md): what dirsync
/// asks for.
const PAGE: usize = 999;

/// The emulator and what the benchmark derived from its tenant.
pub struct Entra {
    /// The running emulator (plain HTTP on loopback).
    pub emu: Emulator,
    /// The app registration dirsync and the floor sign in as (client secret).
    pub app: AppCredentials,
    /// Users in the tenant, guests included.
    pub users: usize,
    /// Groups in the tenant.
    pub groups: usize,
    /// The sync groups, by object id (Entra's security groups have no address): every tenth
    /// group.
    pub sync_groups: Vec<String>,
    /// The call bound for that scope.
    pub bound: LowerBound,
}

impl Entra {
    /// Generates the tenant and starts the emulator (no latency yet).
    pub async fn start(users: usize, groups: usize) -> anyhow::Result<Entra> {
        let dir =
            tokio::task::spawn_blocking(move || Directory::generate(users, groups, SEED)).await?;
        let sync_groups: Vec<String> = dir
            .groups()
            .step_by(SCOPE_EVERY)
            .map(|g| g.id.clone())
            .collect();
        let bound = lower_bound(&dir, &sync_groups)?;
        let (users, groups) = (dir.users().count(), dir.groups().count());
        let emu = Emulator::start(EmulatorOptions::with_directory(dir))
            .await
            .context("while starting the Entra emulator")?;
        let app = emu.control().default_app();
        Ok(Entra {
            emu,
            app,
            users,
            groups,
            sync_groups,
            bound,
        })
    }

    /// (Graph requests, token requests) since the last reset.
    pub fn counts(&self) -> (usize, usize) {
        let c = self.emu.control();
        let graph = Endpoint::ALL
            .iter()
            .filter(|e| e.is_graph() && **e != Endpoint::Other)
            .map(|e| c.request_count(*e))
            .sum();
        (graph, c.request_count(Endpoint::Token))
    }

    /// Delta pages (`/users/delta`, `/groups/delta`) since the last reset: what an incremental
    /// job reads before it re-reads anything.
    pub fn delta_pages(&self) -> usize {
        let c = self.emu.control();
        c.request_count(Endpoint::UsersDelta) + c.request_count(Endpoint::GroupsDelta)
    }

    /// The requests since the last reset by endpoint, for the log: `users_delta 1, …`.
    pub fn breakdown(&self) -> String {
        let c = self.emu.control();
        Endpoint::ALL
            .iter()
            .map(|e| (e.name(), c.request_count(*e)))
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| format!("{e} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Disables these users (by UPN): one change each in `/users/delta`.
    pub fn disable(&self, upns: &[String]) -> anyhow::Result<()> {
        self.emu.control().with_directory(|d| {
            upns.iter()
                .try_for_each(|u| d.set_account_enabled(u, false))
        })
    }

    /// The paging floor: a fresh client and token cache (so it fetches a token, as the first
    /// job of a fresh server does) takes the two delta links "from now" that every full sync
    /// stores, lists every user and every group, then the members of every group reachable from
    /// the sync groups with the engine's own walk — and does nothing else with what it reads.
    /// (users listed, groups listed, all done) since the start.
    pub async fn floor_phases(&self) -> anyhow::Result<(Duration, Duration, Duration)> {
        let base = self.emu.base_url();
        let access = EntraAccess {
            login_url: base.clone(),
            graph_url: base,
            metrics: dirsync_core::metrics::Metrics::new(),
            outbound: dirsync_core::outbound::Outbound::default(),
            tokens: TokenCache::new(),
        };
        let config = EntraConfig {
            tenant_id: self.app.tenant_id.clone(),
            client_id: self.app.client_id.clone(),
            credential: Credential::ClientSecret(self.app.client_secret.clone().into()),
            include_guests: false,
        };
        let client = GraphClient::new(config, &access)?;
        let provider: &dyn DirectoryProvider = &client;
        let t0 = Instant::now();
        provider
            .change_marker()
            .await?
            .context("Graph gave no delta links")?;
        let mut users = 0;
        let mut pages = provider.user_pages();
        while let Some(page) = pages.next_page().await? {
            users += page.len();
        }
        ensure!(pages.is_complete(), "the user listing was incomplete");
        let users_done = t0.elapsed();
        let mut groups = 0;
        let mut pages = provider.group_pages();
        while let Some(page) = pages.next_page().await? {
            groups += page.len();
        }
        let groups_done = t0.elapsed();
        let mut walk = MemberWalk::new(provider, self.sync_groups.clone());
        while let Some(listing) = walk.next().await {
            listing?;
        }
        let elapsed = t0.elapsed();
        ensure!(
            users == self.bound.listed_users
                && groups == self.groups
                && walk.groups_reached() == self.bound.reachable_groups,
            "the floor saw {users} users, {groups} groups and reached {}; expected {}, {} and {}",
            walk.groups_reached(),
            self.bound.listed_users,
            self.groups,
            self.bound.reachable_groups
        );
        Ok((users_done, groups_done, elapsed))
    }
}

/// Computes the lower bound of Graph requests from the emulator's own tenant: ⌈users/999⌉ +
/// ⌈groups/999⌉ + Σ max(1, ⌈direct members/999⌉) over the groups reachable from the sync
/// groups, + the two `$deltatoken=latest` requests of a full sync's delta links.
fn lower_bound(d: &Directory, sync_groups: &[String]) -> anyhow::Result<LowerBound> {
    let mut queue: VecDeque<String> = sync_groups.iter().cloned().collect();
    let mut visited: HashSet<String> = queue.iter().cloned().collect();
    let mut in_scope: HashSet<&str> = HashSet::new();
    let mut member_pages = 0;
    while let Some(gid) = queue.pop_front() {
        let g = d.group(&gid).context("a reachable group is missing")?;
        member_pages += g.members.len().div_ceil(PAGE).max(1);
        for m in &g.members {
            // By id, users first: a lookup of a group by a key that is not a group id scans
            // every group's address.
            if let Some(u) = d.user(m) {
                // Guests are out of scope unless `include_guests` (off here).
                if u.user_type != UserType::Guest {
                    in_scope.insert(&u.id);
                }
            } else if d.group(m).is_some() && visited.insert(m.clone()) {
                queue.push_back(m.clone());
            }
        }
    }
    let users = d.users().count();
    Ok(LowerBound {
        users_pages: users.div_ceil(PAGE).max(1),
        groups_pages: d.groups().count().div_ceil(PAGE).max(1),
        member_pages,
        change_marker: 2,
        reachable_groups: visited.len(),
        in_scope_users: in_scope.len(),
        listed_users: d.users().filter(|u| u.user_type != UserType::Guest).count(),
    })
}
