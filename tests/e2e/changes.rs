//! Random valid Google changes for the sync property tests (`address_moves.rs`,
//! `incremental.rs`): one generator, one way of making a change as Google would (or not at all
//! when Google would refuse it), so that only valid directories arise, and one way of running
//! such a property.

use std::future::Future;

use dirsync_google_emulator::{Directory, MemberType, Role};
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

/// One change an administrator makes in Google. Indices pick among the users (or groups) at
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

/// The users an operation may touch: everyone but the administrator the service account acts
/// as, in a stable order.
fn pick(d: &Directory, i: u8) -> Option<String> {
    let users: Vec<String> = d
        .users()
        .filter(|u| !u.is_admin)
        .map(|u| u.primary_email.clone())
        .collect();
    (!users.is_empty()).then(|| users[i as usize % users.len()].clone())
}

/// Makes one change as Google would, or not at all when Google would refuse it. `groups` are
/// the groups users move between (`None`: no group); the first is the sync group, the others
/// may be nested in it and in each other.
pub(crate) fn apply_op(d: &mut Directory, op: &Op, groups: &[Option<&str>]) {
    let mut work = d.clone();
    if apply_op_to(&mut work, op, groups).is_ok() {
        *d = work;
    }
}

fn apply_op_to(d: &mut Directory, op: &Op, groups: &[Option<&str>]) -> anyhow::Result<()> {
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
            let email = pool(slot);
            d.add_user(&email, "New", &slot.to_string())?;
            if let Some(g) = group(g) {
                d.add_member_with_role(g, &email, MemberType::User, Role::Member)?;
            }
        }
        Op::Delete { user } => d.delete_user(&pick(d, user).ok_or_else(none)?)?,
        Op::Undelete { which } => {
            let ids: Vec<String> = d.deleted_users_by_id().keys().cloned().collect();
            if ids.is_empty() {
                anyhow::bail!("nobody to undelete");
            }
            d.undelete_user(&ids[which as usize % ids.len()])?;
        }
        Op::Rename { user, slot } => {
            let old = pick(d, user).ok_or_else(none)?;
            let new = pool(slot);
            // Making one of its own aliases primary is a different change in Google.
            if d.user(&new).is_some() {
                anyhow::bail!("{new} is in use");
            }
            d.rename_user(&old, &new)?;
        }
        Op::Swap { a, b } => {
            let (a, b) = (pick(d, a).ok_or_else(none)?, pick(d, b).ok_or_else(none)?);
            if a == b {
                anyhow::bail!("a swap needs two users");
            }
            d.rename_user(&a, "swap.tmp@example.com")?;
            d.rename_user(&b, &a)?;
            d.rename_user("swap.tmp@example.com", &b)?;
        }
        Op::AddAlias { user, slot } => {
            d.add_alias(&pick(d, user).ok_or_else(none)?, &pool(slot))?
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
        Op::Suspend { user } => {
            let u = pick(d, user).ok_or_else(none)?;
            let suspended = d.user(&u).ok_or_else(none)?.suspended;
            d.set_suspended(&u, !suspended)?;
        }
        Op::Archive { user } => {
            let u = pick(d, user).ok_or_else(none)?;
            let archived = d.user(&u).ok_or_else(none)?.archived;
            d.set_archived(&u, !archived)?;
        }
        Op::SetName { user, n } => {
            d.set_name(&pick(d, user).ok_or_else(none)?, "Renamed", &n.to_string())?
        }
        Op::Regroup { user, group: g } => {
            let u = pick(d, user).ok_or_else(none)?;
            for g in &named {
                let _ = d.remove_member(g, &u);
            }
            if let Some(g) = group(g) {
                d.add_member_with_role(g, &u, MemberType::User, Role::Member)?;
            }
        }
        Op::Nest {
            child: c,
            parent: p,
        } => {
            let (c, p) = (child(c).ok_or_else(none)?, parent(p));
            if c == p || d.has_member(p, c) == Some(true) {
                anyhow::bail!("already nested");
            }
            d.add_member_with_role(p, c, MemberType::Group, Role::Member)?;
        }
        Op::Unnest {
            child: c,
            parent: p,
        } => {
            d.remove_member(parent(p), child(c).ok_or_else(none)?)?;
        }
    }
    Ok(())
}

fn nth_alias(d: &Directory, user: &str, which: u8) -> anyhow::Result<String> {
    let u = d.user(user).ok_or_else(|| anyhow::anyhow!("no user"))?;
    if u.aliases.is_empty() {
        anyhow::bail!("{user} has no alias");
    }
    Ok(u.aliases[which as usize % u.aliases.len()].clone())
}
