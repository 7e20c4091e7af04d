//! Random valid directory changes for the sync property tests (`address_moves.rs`,
//! `incremental.rs`): one generator, one way of making a change as the directory's own admin
//! console would (or not at all when it would refuse it), so that only valid directories arise,
//! and one way of running such a property. The changes are made through [`Tenant`], which
//! Google Workspace's and Microsoft Entra ID's emulated directories implement, so one property
//! body runs against either provider.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use dirsync_entra_emulator as entra;
use dirsync_google_emulator as google;
use google::{MemberType, Role};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per property: `DIRSYNC_PROPTEST_CASES`, 10 by default.
fn cases() -> u32 {
    std::env::var("DIRSYNC_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// Runs `case` on scenarios drawn from `strategy`, each on a two-thread runtime. A failure is
/// shrunk and printed; the minimal sequence becomes a named test.
pub(crate) fn check<S, F, Fut>(strategy: S, case: F)
where
    S: Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), TestCaseError>>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, |s| rt.block_on(case(s))) {
        panic!("{e}");
    }
}

/// Addresses few enough that changes land on addresses just freed.
const POOL: usize = 10;

/// The `n`th address of the pool.
pub(crate) fn pool(n: u8) -> String {
    format!("p{}@example.com", n as usize % POOL)
}

/// One change an administrator makes in the directory. Indices pick among the users (or groups) at
/// the time the change is made.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Create { slot: u8, group: u8 },
    Delete { user: u8 },
    Undelete { which: u8 },
    Rename { user: u8, slot: u8 },
    Swap { a: u8, b: u8 },
    AddAlias { user: u8, slot: u8 },
    RemoveAlias { user: u8, which: u8 },
    MoveAlias { from: u8, to: u8, which: u8 },
    Suspend { user: u8 },
    Archive { user: u8 },
    SetName { user: u8, n: u8 },
    Regroup { user: u8, group: u8 },
    Nest { child: u8, parent: u8 },
    Unnest { child: u8, parent: u8 },
}

/// Changes to users and their addresses and groups; with `groups_too`, also undeletions,
/// archiving, and nesting groups in one another (cycles included).
pub(crate) fn op(groups_too: bool) -> BoxedStrategy<Op> {
    let b = || any::<u8>();
    let users = prop_oneof![
        (b(), b()).prop_map(|(slot, group)| Op::Create { slot, group }),
        b().prop_map(|user| Op::Delete { user }),
        (b(), b()).prop_map(|(user, slot)| Op::Rename { user, slot }),
        (b(), b()).prop_map(|(a, b)| Op::Swap { a, b }),
        (b(), b()).prop_map(|(user, slot)| Op::AddAlias { user, slot }),
        (b(), b()).prop_map(|(user, which)| Op::RemoveAlias { user, which }),
        (b(), b(), b()).prop_map(|(from, to, which)| Op::MoveAlias { from, to, which }),
        b().prop_map(|user| Op::Suspend { user }),
        (b(), b()).prop_map(|(user, n)| Op::SetName { user, n }),
        (b(), b()).prop_map(|(user, group)| Op::Regroup { user, group }),
    ];
    if !groups_too {
        return users.boxed();
    }
    prop_oneof![
        10 => users,
        1 => b().prop_map(|which| Op::Undelete { which }),
        1 => b().prop_map(|user| Op::Archive { user }),
        1 => (b(), b()).prop_map(|(child, parent)| Op::Nest { child, parent }),
        1 => (b(), b()).prop_map(|(child, parent)| Op::Unnest { child, parent }),
    ]
    .boxed()
}

/// What dirsync should hold for a directory user (and what it holds, read back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Synced {
    pub user_name: String,
    pub addresses: BTreeSet<String>,
    pub disabled: bool,
    pub full_name: String,
}

type Made = anyhow::Result<()>;

/// A directory as its admin console changes it. Users are named by a key of the provider's
/// (Google: the primary address; Entra: the object id); groups by address.
pub(crate) trait Tenant: Clone {
    /// The users an operation may touch (everyone but Google's delegated administrator), in a
    /// stable order.
    fn user_keys(&self) -> Vec<String>;
    /// Whether anyone holds `address` (as an address, or Entra's sign-in name).
    fn is_taken(&self, address: &str) -> bool;
    fn create(&mut self, address: &str, n: u8) -> anyhow::Result<String>;
    fn delete(&mut self, user: &str) -> Made;
    fn deleted(&self) -> Vec<String>;
    fn undelete(&mut self, user: &str) -> Made;
    /// Gives a user a new primary address (and Entra's UPN with it).
    fn rename(&mut self, user: &str, new: &str) -> Made;
    /// Swaps two users' primary addresses.
    fn swap(&mut self, a: &str, b: &str) -> Made;
    fn aliases(&self, user: &str) -> Vec<String>;
    fn add_alias(&mut self, user: &str, alias: &str) -> Made;
    fn remove_alias(&mut self, user: &str, alias: &str) -> Made;
    fn toggle_disabled(&mut self, user: &str) -> Made;
    /// Google's archived state; Entra has none.
    fn toggle_archived(&mut self, user: &str) -> Made;
    fn set_name(&mut self, user: &str, n: u8) -> Made;
    fn join(&mut self, group: &str, member: &str) -> Made;
    fn leave(&mut self, group: &str, member: &str) -> Made;
    fn nest(&mut self, parent: &str, child: &str) -> Made;
    /// Whether `member` belongs to `group`, directly or through nested groups.
    fn contains(&self, group: &str, member: &str) -> bool;
    /// The users in scope (members of `group`, nested groups followed; everyone when `None`)
    /// as dirsync should hold them, by directory id.
    fn in_scope(&self, group: Option<&str>) -> BTreeMap<String, Synced>;
}

fn pick<T: Tenant>(d: &T, i: u8) -> Option<String> {
    let users = d.user_keys();
    (!users.is_empty()).then(|| users[i as usize % users.len()].clone())
}

/// Makes one change as the directory would, or not at all when it would refuse it. `groups`
/// are the groups users move between (`None`: no group); the first is the sync group, the
/// others may be nested in it and in each other.
pub(crate) fn apply_op<T: Tenant>(d: &mut T, op: &Op, groups: &[Option<&str>]) {
    let mut work = d.clone();
    if apply_op_to(&mut work, op, groups).is_ok() {
        *d = work;
    }
}

fn apply_op_to<T: Tenant>(d: &mut T, op: &Op, groups: &[Option<&str>]) -> Made {
    let none = || anyhow::anyhow!("no user");
    let group = |i: u8| groups[i as usize % groups.len()];
    let named: Vec<&str> = groups.iter().flatten().copied().collect();
    // A group that may be nested: any but the sync group; a parent: any.
    let child = |i: u8| {
        named
            .get(1 + i as usize % (named.len() - 1).max(1))
            .copied()
    };
    let parent = |i: u8| named[i as usize % named.len()];
    match *op {
        Op::Create { slot, group: g } => {
            let user = d.create(&pool(slot), slot)?;
            if let Some(g) = group(g) {
                d.join(g, &user)?;
            }
        }
        Op::Delete { user } => d.delete(&pick(d, user).ok_or_else(none)?)?,
        Op::Undelete { which } => {
            let ids = d.deleted();
            if ids.is_empty() {
                anyhow::bail!("nobody to undelete");
            }
            d.undelete(&ids[which as usize % ids.len()])?;
        }
        Op::Rename { user, slot } => {
            let user = pick(d, user).ok_or_else(none)?;
            let new = pool(slot);
            // Making one of its own aliases primary is a different change.
            if d.is_taken(&new) {
                anyhow::bail!("{new} is in use");
            }
            d.rename(&user, &new)?;
        }
        Op::Swap { a, b } => {
            let (a, b) = (pick(d, a).ok_or_else(none)?, pick(d, b).ok_or_else(none)?);
            if a == b {
                anyhow::bail!("a swap needs two users");
            }
            d.swap(&a, &b)?;
        }
        Op::AddAlias { user, slot } => {
            let alias = pool(slot);
            if d.is_taken(&alias) {
                anyhow::bail!("{alias} is in use");
            }
            d.add_alias(&pick(d, user).ok_or_else(none)?, &alias)?
        }
        Op::RemoveAlias { user, which } => {
            let u = pick(d, user).ok_or_else(none)?;
            let alias = nth_alias(d, &u, which)?;
            d.remove_alias(&u, &alias)?;
        }
        Op::MoveAlias { from, to, which } => {
            let (from, to) = (
                pick(d, from).ok_or_else(none)?,
                pick(d, to).ok_or_else(none)?,
            );
            let alias = nth_alias(d, &from, which)?;
            d.remove_alias(&from, &alias)?;
            d.add_alias(&to, &alias)?;
        }
        Op::Suspend { user } => d.toggle_disabled(&pick(d, user).ok_or_else(none)?)?,
        Op::Archive { user } => d.toggle_archived(&pick(d, user).ok_or_else(none)?)?,
        Op::SetName { user, n } => d.set_name(&pick(d, user).ok_or_else(none)?, n)?,
        Op::Regroup { user, group: g } => {
            let u = pick(d, user).ok_or_else(none)?;
            for g in &named {
                let _ = d.leave(g, &u);
            }
            if let Some(g) = group(g) {
                d.join(g, &u)?;
            }
        }
        Op::Nest {
            child: c,
            parent: p,
        } => {
            let (c, p) = (child(c).ok_or_else(none)?, parent(p));
            if c == p || d.contains(p, c) {
                anyhow::bail!("already nested");
            }
            d.nest(p, c)?;
        }
        Op::Unnest {
            child: c,
            parent: p,
        } => {
            d.leave(parent(p), child(c).ok_or_else(none)?)?;
        }
    }
    Ok(())
}

fn nth_alias<T: Tenant>(d: &T, user: &str, which: u8) -> anyhow::Result<String> {
    let aliases = d.aliases(user);
    if aliases.is_empty() {
        anyhow::bail!("{user} has no alias");
    }
    Ok(aliases[which as usize % aliases.len()].clone())
}

/// Google Workspace, as its Admin console changes it (the emulator's rules: an address held
/// as a primary or an alias cannot be given to another until it is removed).
impl Tenant for google::Directory {
    fn user_keys(&self) -> Vec<String> {
        self.users()
            .filter(|u| !u.is_admin)
            .map(|u| u.primary_email.clone())
            .collect()
    }

    fn is_taken(&self, address: &str) -> bool {
        self.user(address).is_some()
    }

    fn create(&mut self, address: &str, n: u8) -> anyhow::Result<String> {
        self.add_user(address, "New", &n.to_string())?;
        Ok(address.to_string())
    }

    fn delete(&mut self, user: &str) -> Made {
        self.delete_user(user)
    }

    fn deleted(&self) -> Vec<String> {
        self.deleted_users_by_id().keys().cloned().collect()
    }

    fn undelete(&mut self, user: &str) -> Made {
        self.undelete_user(user)
    }

    fn rename(&mut self, user: &str, new: &str) -> Made {
        self.rename_user(user, new)
    }

    fn swap(&mut self, a: &str, b: &str) -> Made {
        self.rename_user(a, "swap.tmp@example.com")?;
        self.rename_user(b, a)?;
        self.rename_user("swap.tmp@example.com", b)
    }

    fn aliases(&self, user: &str) -> Vec<String> {
        self.user(user)
            .map(|u| u.aliases.clone())
            .unwrap_or_default()
    }

    fn add_alias(&mut self, user: &str, alias: &str) -> Made {
        google::Directory::add_alias(self, user, alias)
    }

    fn remove_alias(&mut self, user: &str, alias: &str) -> Made {
        google::Directory::remove_alias(self, user, alias)
    }

    fn toggle_disabled(&mut self, user: &str) -> Made {
        let suspended = self
            .user(user)
            .ok_or_else(|| anyhow::anyhow!("no user"))?
            .suspended;
        self.set_suspended(user, !suspended)
    }

    fn toggle_archived(&mut self, user: &str) -> Made {
        let archived = self
            .user(user)
            .ok_or_else(|| anyhow::anyhow!("no user"))?
            .archived;
        self.set_archived(user, !archived)
    }

    fn set_name(&mut self, user: &str, n: u8) -> Made {
        google::Directory::set_name(self, user, "Renamed", &n.to_string())
    }

    fn join(&mut self, group: &str, member: &str) -> Made {
        self.add_member_with_role(group, member, MemberType::User, Role::Member)
    }

    fn leave(&mut self, group: &str, member: &str) -> Made {
        self.remove_member(group, member)
    }

    fn nest(&mut self, parent: &str, child: &str) -> Made {
        self.add_member_with_role(parent, child, MemberType::Group, Role::Member)
    }

    fn contains(&self, group: &str, member: &str) -> bool {
        self.has_member(group, member) == Some(true)
    }

    fn in_scope(&self, group: Option<&str>) -> BTreeMap<String, Synced> {
        self.users()
            .filter(|u| group.is_none_or(|g| self.has_member(g, &u.id) == Some(true)))
            .map(|u| {
                let addresses = std::iter::once(&u.primary_email)
                    .chain(&u.aliases)
                    .chain(&u.non_editable_aliases)
                    .map(|a| a.to_lowercase())
                    .collect();
                (
                    u.id.clone(),
                    Synced {
                        user_name: u.primary_email.to_lowercase(),
                        addresses,
                        disabled: u.suspended || u.archived,
                        full_name: u.full_name(),
                    },
                )
            })
            .collect()
    }
}

/// Microsoft Entra ID with Exchange Online, as the admin centers change it: a proxy address is
/// held by one user at most (Exchange refuses another), a UPN too (kept by a soft-deleted user
/// until it is purged), a new primary address leaves the old one as an `smtp:` alias, and a
/// new user gets an alias in the tenant's `onmicrosoft.com` domain. Users are keyed by object
/// id.
impl Tenant for entra::Directory {
    fn user_keys(&self) -> Vec<String> {
        self.users().map(|u| u.id.clone()).collect()
    }

    fn is_taken(&self, address: &str) -> bool {
        let a = address.to_lowercase();
        self.users()
            .chain(self.deleted_users())
            .any(|u| u.user_principal_name.to_lowercase() == a)
            || self.users().any(|u| entra_addresses(u).contains(&a))
    }

    fn create(&mut self, address: &str, n: u8) -> anyhow::Result<String> {
        let local = address.split('@').next().unwrap_or(address);
        let initial = format!("{local}@{}", self.tenant.initial_domain());
        if self.is_taken(address) || self.is_taken(&initial) {
            anyhow::bail!("{address} is in use");
        }
        self.create_user(address, "New", &n.to_string())
    }

    fn delete(&mut self, user: &str) -> Made {
        self.delete_user(user)
    }

    fn deleted(&self) -> Vec<String> {
        self.deleted_users().map(|u| u.id.clone()).collect()
    }

    fn undelete(&mut self, user: &str) -> Made {
        let u = self
            .deleted_users()
            .find(|u| u.id == user)
            .ok_or_else(|| anyhow::anyhow!("no deleted user"))?;
        // Entra refuses a restore whose proxy addresses another user took meanwhile.
        if entra_addresses(u).iter().any(|a| self.is_taken(a)) {
            anyhow::bail!("an address of {user} is in use");
        }
        self.restore_user(user)
    }

    fn rename(&mut self, user: &str, new: &str) -> Made {
        self.rename_upn(user, new)?;
        self.set_mail(user, Some(new))
    }

    fn swap(&mut self, a: &str, b: &str) -> Made {
        let (ua, ub) = (
            self.user(a)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no user"))?,
            self.user(b)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no user"))?,
        );
        let (pa, pb) = (entra_primary(&ua), entra_primary(&ub));
        self.rename_upn(a, "swap.tmp@example.com")?;
        self.rename_upn(b, &ua.user_principal_name)?;
        self.rename_upn(a, &ub.user_principal_name)?;
        // Each takes the other's primary address and keeps its own aliases.
        let swapped = |u: &entra::User, new_primary: &str| {
            std::iter::once(format!("SMTP:{new_primary}"))
                .chain(
                    u.proxy_addresses
                        .iter()
                        .filter(|p| p.starts_with("smtp:"))
                        .filter(|p| !p[5..].eq_ignore_ascii_case(new_primary))
                        .cloned(),
                )
                .collect::<Vec<_>>()
        };
        self.set_proxy_addresses(a, &swapped(&ua, &pb))?;
        self.set_proxy_addresses(b, &swapped(&ub, &pa))
    }

    fn aliases(&self, user: &str) -> Vec<String> {
        self.user(user)
            .map(|u| {
                u.proxy_addresses
                    .iter()
                    .filter_map(|p| p.strip_prefix("smtp:"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn add_alias(&mut self, user: &str, alias: &str) -> Made {
        let mut proxies = self
            .user(user)
            .ok_or_else(|| anyhow::anyhow!("no user"))?
            .proxy_addresses
            .clone();
        if proxies.is_empty() {
            anyhow::bail!("{user} has no mailbox");
        }
        proxies.push(format!("smtp:{alias}"));
        self.set_proxy_addresses(user, &proxies)
    }

    fn remove_alias(&mut self, user: &str, alias: &str) -> Made {
        let proxies: Vec<String> = self
            .user(user)
            .ok_or_else(|| anyhow::anyhow!("no user"))?
            .proxy_addresses
            .iter()
            .filter(|p| *p != &format!("smtp:{alias}"))
            .cloned()
            .collect();
        self.set_proxy_addresses(user, &proxies)
    }

    fn toggle_disabled(&mut self, user: &str) -> Made {
        let enabled = self
            .user(user)
            .ok_or_else(|| anyhow::anyhow!("no user"))?
            .account_enabled;
        self.set_account_enabled(user, !enabled)
    }

    fn toggle_archived(&mut self, _user: &str) -> Made {
        anyhow::bail!("Entra ID has no archived users")
    }

    fn set_name(&mut self, user: &str, n: u8) -> Made {
        self.set_display_name(user, &format!("Renamed {n}"))
    }

    fn join(&mut self, group: &str, member: &str) -> Made {
        self.add_member(group, member)
    }

    fn leave(&mut self, group: &str, member: &str) -> Made {
        self.remove_member(group, member)
    }

    fn nest(&mut self, parent: &str, child: &str) -> Made {
        self.add_member(parent, child)
    }

    fn contains(&self, group: &str, member: &str) -> bool {
        let (Some(g), Some(m)) = (
            self.group(group).map(|g| g.id.clone()),
            self.group(member)
                .map(|g| g.id.clone())
                .or_else(|| self.user(member).map(|u| u.id.clone())),
        ) else {
            return false;
        };
        self.transitive_members(&g).iter().any(|(id, _)| *id == m)
    }

    fn in_scope(&self, group: Option<&str>) -> BTreeMap<String, Synced> {
        let members: Option<BTreeSet<String>> = group.map(|g| {
            self.group(g)
                .map(|g| {
                    self.transitive_members(&g.id)
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect()
                })
                .unwrap_or_default()
        });
        self.users()
            .filter(|u| u.user_type == entra::UserType::Member)
            .filter(|u| members.as_ref().is_none_or(|m| m.contains(&u.id)))
            .map(|u| {
                (
                    u.id.clone(),
                    Synced {
                        user_name: u.user_principal_name.to_lowercase(),
                        addresses: entra_addresses(u).into_iter().collect(),
                        disabled: !u.account_enabled,
                        full_name: u.display_name.clone().unwrap_or_default(),
                    },
                )
            })
            .collect()
    }
}

/// product.md §8: the `SMTP:` proxy address, else `mail`, else the UPN.
fn entra_primary(u: &entra::User) -> String {
    u.proxy_addresses
        .iter()
        .find_map(|p| p.strip_prefix("SMTP:"))
        .map(str::to_string)
        .or_else(|| u.mail.clone())
        .unwrap_or_else(|| u.user_principal_name.clone())
}

/// A user's addresses as dirsync keeps them, lower-cased: the primary and the `smtp:` aliases.
fn entra_addresses(u: &entra::User) -> BTreeSet<String> {
    std::iter::once(entra_primary(u))
        .chain(
            u.proxy_addresses
                .iter()
                .filter_map(|p| p.strip_prefix("smtp:"))
                .map(str::to_string),
        )
        .map(|a| a.to_lowercase())
        .collect()
}
