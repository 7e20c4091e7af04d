//! The Google side: the emulator with a generated directory, the scope the benchmark syncs, the
//! lower bound of Google calls for it, and the paging floor — the same client merely paging
//! through what a sync needs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use dirsync_core::google::{Account, ClientConfig, DirectoryClient, ServiceAccountKey};
use dirsync_core::sync::scope::MemberWalk;
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, Endpoint};

/// Seed of the generated directories.
pub const SEED: u64 = 7;
/// The generated directory's super admin, impersonated by the service account.
pub const ADMIN: &str = "admin@example.com";
/// One sync group out of this many groups.
pub const SCOPE_EVERY: usize = 10;

/// The least number of directory requests a sync of this scope can make (google-apis.md and
/// microsoft-entra.md paging).
#[derive(Debug, Clone, Copy, Default)]
pub struct LowerBound {
    /// ⌈users / 500⌉.
    pub users_pages: usize,
    /// ⌈groups / 200⌉.
    pub groups_pages: usize,
    /// Σ over groups reachable from the sync groups of max(1, ⌈members / 200⌉).
    pub member_pages: usize,
    /// Requests a full sync makes to note where the next incremental job starts: none for
    /// Google (the admin log is read from a time), two for Entra (the delta links of users and
    /// groups).
    pub change_marker: usize,
    /// Groups reachable from the sync groups (themselves included).
    pub reachable_groups: usize,
    /// Users in scope.
    pub in_scope_users: usize,
    /// Users the listing yields (Entra's guests are left out unless configured).
    pub listed_users: usize,
}

impl LowerBound {
    /// All directory requests (the token request not included).
    pub fn total(&self) -> usize {
        self.users_pages + self.groups_pages + self.member_pages + self.change_marker
    }
}

/// The emulator and what the benchmark derived from its directory.
pub struct Google {
    /// The running emulator.
    pub emu: Emulator,
    /// Users in the directory.
    pub users: usize,
    /// Groups in the directory.
    pub groups: usize,
    /// The sync groups: every tenth group (never the `CUSTOMER` group `everyone@`).
    pub sync_groups: Vec<String>,
    /// The call bound for that scope.
    pub bound: LowerBound,
}

impl Google {
    /// Generates the directory and starts the emulator (no latency yet).
    pub async fn start(users: usize, groups: usize) -> anyhow::Result<Google> {
        let dir =
            tokio::task::spawn_blocking(move || Directory::generate(users, groups, SEED)).await?;
        let sync_groups = every_nth_group(&dir, SCOPE_EVERY);
        let bound = lower_bound(&dir, &sync_groups)?;
        let (users, groups) = (dir.user_count(), dir.group_count());
        let emu = Emulator::start(EmulatorOptions::with_directory(dir))
            .await
            .context("while starting the Google emulator")?;
        Ok(Google {
            emu,
            users,
            groups,
            sync_groups,
            bound,
        })
    }

    /// Sets the latency of every Google request.
    pub fn set_latency(&self, d: Duration) {
        self.emu.control().set_latency(d);
    }

    /// Zeroes the request counts.
    pub fn reset_counts(&self) {
        self.emu.control().reset_counts();
    }

    /// (Directory requests, token requests) since the last reset.
    pub fn counts(&self) -> (usize, usize) {
        let c = self.emu.control();
        let token = c.request_count(Endpoint::Token);
        let other = c.request_count(Endpoint::Other);
        (c.request_count(Endpoint::Any) - token - other, token)
    }

    /// The paging floor: a fresh client (so it fetches a token, as every sync job does) lists
    /// every user, every group, then the members of every group reachable from the sync groups
    /// with the engine's member concurrency — and does nothing else with what it reads.
    /// (users listed, groups listed, all done) since the start.
    pub async fn floor_phases(&self) -> anyhow::Result<(Duration, Duration, Duration)> {
        self.floor_phases_of(&self.sync_groups, &self.bound).await
    }

    /// Another scope than the benchmark's own: one sync group out of `every` groups, and its
    /// call bound.
    pub fn scope(&self, every: usize) -> anyhow::Result<(Vec<String>, LowerBound)> {
        self.emu.control().with_directory(|d| {
            let groups = every_nth_group(d, every);
            let bound = lower_bound(d, &groups)?;
            Ok((groups, bound))
        })
    }

    /// [`Google::floor_phases`] of the scope of `sync_groups`, whose call bound is `bound`.
    pub async fn floor_phases_of(
        &self,
        sync_groups: &[String],
        bound: &LowerBound,
    ) -> anyhow::Result<(Duration, Duration, Duration)> {
        let key = ServiceAccountKey::parse(self.emu.service_account_key_json().as_bytes())
            .context("the emulator's key file")?;
        let mut config = ClientConfig::new(key, self.emu.base_url(), ADMIN, Account::default());
        // The emulator's key file names the emulator's token endpoint.
        config.token_url = self.emu.token_uri();
        let client = DirectoryClient::new(config)?;
        let t0 = Instant::now();
        let mut users = 0;
        let mut pages = client.users();
        while let Some(page) = pages.next_page().await? {
            users += page.len();
        }
        ensure!(pages.is_complete(), "the user listing was incomplete");
        let users_done = t0.elapsed();
        let mut by_email: HashMap<String, String> = HashMap::new();
        let mut pages = client.groups();
        while let Some(page) = pages.next_page().await? {
            by_email.extend(page.into_iter().map(|g| (g.email.to_lowercase(), g.id)));
        }
        let groups_done = t0.elapsed();
        let start: Vec<String> = sync_groups
            .iter()
            .map(|e| by_email.get(e).cloned().context("a sync group is missing"))
            .collect::<anyhow::Result<_>>()?;
        // The engine's own walk (same concurrency, same order), reading and discarding.
        let mut walk = MemberWalk::new(&client, start);
        while let Some(listing) = walk.next().await {
            listing?;
        }
        let elapsed = t0.elapsed();
        ensure!(
            users == self.users && walk.groups_reached() == bound.reachable_groups,
            "the floor saw {users} users and {} groups, expected {} and {}",
            walk.groups_reached(),
            self.users,
            bound.reachable_groups
        );
        Ok((users_done, groups_done, elapsed))
    }
}

/// One group out of `every` (never the `CUSTOMER` group `everyone@`, which would put everyone
/// in scope), by address.
fn every_nth_group(d: &Directory, every: usize) -> Vec<String> {
    d.groups()
        .filter(|g| g.email != "everyone@example.com")
        .step_by(every)
        .map(|g| g.email.clone())
        .collect()
}

/// Computes the lower bound of Directory requests from the emulator's own directory.
fn lower_bound(d: &Directory, sync_groups: &[String]) -> anyhow::Result<LowerBound> {
    let mut queue: VecDeque<String> = sync_groups
        .iter()
        .map(|e| {
            d.group(e)
                .map(|g| g.id.clone())
                .context("unknown sync group")
        })
        .collect::<anyhow::Result<_>>()?;
    let mut visited: HashSet<String> = queue.iter().cloned().collect();
    let mut in_scope: HashSet<&str> = HashSet::new();
    let mut member_pages = 0;
    while let Some(gid) = queue.pop_front() {
        let g = d.group(&gid).context("a nested group is missing")?;
        member_pages += g.members.len().div_ceil(200).max(1);
        for m in g.members.values() {
            match m.member_type() {
                dirsync_google_emulator::MemberType::Group if visited.insert(m.id.clone()) => {
                    queue.push_back(m.id.clone());
                }
                dirsync_google_emulator::MemberType::User => {
                    in_scope.insert(&m.id);
                }
                _ => {}
            }
        }
    }
    Ok(LowerBound {
        users_pages: d.user_count().div_ceil(500).max(1),
        groups_pages: d.group_count().div_ceil(200).max(1),
        member_pages,
        change_marker: 0,
        reachable_groups: visited.len(),
        in_scope_users: in_scope.len(),
        listed_users: d.user_count(),
    })
}
