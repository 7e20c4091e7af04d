//! Matching and address moves (product.md §3 rules 2–4): which local user each in-scope Google
//! user is, and who holds each user name and address once the run is applied.
//!
//! Within one run a name or an address may leave one user and arrive at another — through
//! renames, alias changes, deletions and departures from scope, in chains and in cycles (two
//! users swapping addresses). The [`Planner`] settles the final holder of every name and address
//! before it plans a single write, so that the plan never asks for a state in which two users
//! hold one; `apply.rs` then orders the writes so that the unique indexes hold at every statement.
//! What truly cannot move — a name or address held by a user this run keeps as it is (a local
//! user, an out-of-scope user kept by the rules) — is a `conflict` that names that user and what
//! to do, and the rest of the run applies. A database constraint error is therefore never an
//! answer to a valid directory.
//!
//! Phases, in order: [`Planner::index`], [`Planner::match_by_directory_id`],
//! [`Planner::match_by_name`], [`Planner::settle`] (renames and addresses together, to a fixed
//! point: an address that cannot move refuses an adoption, whose user then keeps its name and
//! holds back a rename onto it, so neither can be settled first), then the writes ([`Planner::changes`]) and the departures
//! ([`Planner::departures`], `departures.rs`). Whether an unmatched directory user leaves is one
//! predicate, [`Planner::departure`] (`departures.rs`), asked by settling and departures alike.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use uuid::Uuid;

use super::departures::Departure;
use super::plan::{
    Change, ChangeKind, DirectoryId, Fields, LocalState, LocalUser, NewUser, Plan, RemoteState,
    RemoteUser, Rules, UserUpdate,
};
use crate::users::AddressKey;

/// An in-scope Google user and the local user it becomes.
struct Target<'a> {
    remote: &'a RemoteUser,
    /// The matched local user; `None` creates one.
    local: Option<usize>,
    /// Matched by name: an unlinked directory user that this run links to Google.
    adopt: bool,
    /// The wanted user name, lower-cased ([`RemoteUser::name`]: the primary address, or
    /// Entra's UPN).
    name: AddressKey,
    /// Wanted addresses: primary first, each once (case-insensitively).
    wanted: Vec<String>,
    /// Their keys, in the same order.
    wanted_keys: Vec<AddressKey>,
    /// Why the rename is held back (the user keeps its current name).
    name_held: Option<String>,
    /// Wanted addresses left out, each with why.
    dropped: Vec<(String, String)>,
    /// Why this user is skipped whole: a creation or an adoption that cannot apply.
    refused: Option<String>,
}

impl Target<'_> {
    fn is_dropped(&self, address_key: &AddressKey) -> bool {
        self.dropped
            .iter()
            .any(|(a, _)| AddressKey::new(a) == *address_key)
    }

    fn wants(&self, address_key: &AddressKey) -> bool {
        self.wanted_keys.iter().any(|k| k == address_key)
    }
}

/// Who holds a name or an address after the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// A local row this run leaves as it is (a local user, a kept directory user).
    Kept(usize),
    /// An in-scope Google user, by target index.
    Target(usize),
}

/// The planner: built from the fetched directory and the local users, consumed by [`plan`].
///
/// [`plan`]: super::plan::plan
pub(super) struct Planner<'a> {
    remote: &'a RemoteState,
    pub(super) users: &'a [LocalUser],
    pub(super) rules: Rules,
    by_dir_id: HashMap<&'a DirectoryId, usize>,
    by_name: HashMap<AddressKey, usize>,
    /// Per local user: the target it is matched to.
    pub(super) matched: Vec<Option<usize>>,
    targets: Vec<Target<'a>>,
}

impl<'a> Planner<'a> {
    /// Phase 1: index the local users by directory id and by name.
    pub(super) fn index(remote: &'a RemoteState, local: &'a LocalState, rules: Rules) -> Self {
        let users = local.users.as_slice();
        let mut by_dir_id = HashMap::new();
        let mut by_name = HashMap::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            if let (true, Some(d)) = (u.directory, &u.directory_id) {
                by_dir_id.insert(d, i);
            }
            by_name.insert(AddressKey::new(&u.user_name), i);
        }
        Planner {
            remote,
            users,
            rules,
            by_dir_id,
            by_name,
            matched: vec![None; users.len()],
            targets: Vec::new(),
        }
    }

    /// Phase 2: in-scope Google users matched on the stable key, the directory id. Returns the
    /// others, for matching by name.
    pub(super) fn match_by_directory_id(&mut self) -> Vec<&'a RemoteUser> {
        let mut unmatched = Vec::new();
        let remote = self.remote;
        for r in remote
            .users
            .iter()
            .filter(|r| remote.contains(r.id.as_str()))
        {
            match self.by_dir_id.get(&r.id) {
                Some(&i) => self.push_target(r, Some(i), false),
                None => unmatched.push(r),
            }
        }
        unmatched
    }

    /// Phase 3: a directory user without a directory id and the same name is adopted (§3.3);
    /// every other unmatched Google user is a creation. Whether its name is free is settled next.
    pub(super) fn match_by_name(&mut self, unmatched: Vec<&'a RemoteUser>) {
        for r in unmatched {
            let holder = self.by_name.get(&AddressKey::new(r.name())).copied();
            match holder {
                Some(i)
                    if self.users[i].directory
                        && self.users[i].directory_id.is_none()
                        && self.matched[i].is_none() =>
                {
                    self.push_target(r, Some(i), true)
                }
                _ => self.push_target(r, None, false),
            }
        }
    }

    fn push_target(&mut self, r: &'a RemoteUser, local: Option<usize>, adopt: bool) {
        if let Some(i) = local {
            self.matched[i] = Some(self.targets.len());
        }
        let wanted = dedup(std::iter::once(&r.primary_email).chain(&r.addresses));
        self.targets.push(Target {
            remote: r,
            local,
            adopt,
            name: AddressKey::new(r.name()),
            wanted_keys: wanted.iter().map(|a| AddressKey::new(a)).collect(),
            wanted,
            name_held: None,
            dropped: Vec::new(),
            refused: None,
        });
    }

    /// A local row this run leaves exactly as it is, holding its name and addresses: local
    /// users, directory users out of scope but kept, and unlinked users whose adoption was
    /// refused.
    fn kept_as_is(&self, i: usize) -> bool {
        match self.matched[i] {
            Some(t) => self.targets[t].refused.is_some(),
            None => !self.leaves(i),
        }
    }

    /// Phase 4: who holds each name and address after the run, to a fixed point.
    ///
    /// Each round starts from what cannot move — the rows kept as they are, the names of matched
    /// users that keep their name, and the addresses matched users keep — and then lets each
    /// in-scope Google user, in a stable order, take its wanted name and addresses where nobody
    /// holds them. A rename onto a held name is held back (the user keeps its name, which may
    /// in turn hold back a rename onto it); an address held by someone else is left out; a
    /// creation or an adoption that meets either is refused whole. These only ever grow, so the
    /// rounds end; a valid directory with no kept holders settles in one.
    pub(super) fn settle(&mut self) {
        loop {
            let mut names: HashMap<AddressKey, Holder> = HashMap::new();
            let mut addresses: HashMap<AddressKey, Holder> = HashMap::new();
            for (i, u) in self.users.iter().enumerate() {
                if self.kept_as_is(i) {
                    names.insert(AddressKey::new(&u.user_name), Holder::Kept(i));
                    for a in &u.addresses {
                        addresses.insert(AddressKey::new(a), Holder::Kept(i));
                    }
                }
            }
            for (t, target) in self.targets.iter().enumerate() {
                let Some(i) = target.local.filter(|_| target.refused.is_none()) else {
                    continue;
                };
                let current = AddressKey::new(&self.users[i].user_name);
                if target.name_held.is_some() || current == target.name {
                    names.insert(current, Holder::Target(t));
                }
                for a in &self.users[i].addresses {
                    let k = AddressKey::new(a);
                    if target.wants(&k) {
                        addresses.insert(k, Holder::Target(t));
                    }
                }
            }

            let mut changed = false;
            for t in 0..self.targets.len() {
                if self.targets[t].refused.is_some() {
                    continue;
                }
                if let Some(why) = self.take_name(t, &mut names) {
                    changed = true;
                    let target = &mut self.targets[t];
                    if target.local.is_some() {
                        target.name_held = Some(why);
                    } else {
                        target.refused = Some(why);
                        continue;
                    }
                }
                let target = &self.targets[t];
                let mut newly_dropped = Vec::new();
                for (a, k) in target.wanted.iter().zip(&target.wanted_keys) {
                    if target.is_dropped(k) {
                        continue;
                    }
                    match addresses.get(k) {
                        Some(&h) if h != Holder::Target(t) => {
                            newly_dropped.push((a.clone(), self.describe(h)))
                        }
                        _ => {
                            addresses.insert(k.clone(), Holder::Target(t));
                        }
                    }
                }
                let Some((a, who)) = newly_dropped.first() else {
                    continue;
                };
                changed = true;
                let target = &mut self.targets[t];
                if target.local.is_none() || target.adopt {
                    let verb = if target.adopt { "linked" } else { "created" };
                    target.refused = Some(format!("the address {a} is held by {who}; not {verb}"));
                }
                target.dropped.extend(newly_dropped);
            }
            if !changed {
                return;
            }
        }
    }

    /// Takes the wanted name of target `t` unless someone else holds it; says why not.
    fn take_name(&self, t: usize, names: &mut HashMap<AddressKey, Holder>) -> Option<String> {
        let target = &self.targets[t];
        if target.name_held.is_some() {
            return None;
        }
        match names.get(&target.name) {
            Some(&h) if h != Holder::Target(t) => Some(format!(
                "the user name {} is held by {}; {}",
                target.name,
                self.describe(h),
                if target.local.is_some() {
                    "the rename is held back"
                } else {
                    "not created"
                }
            )),
            _ => {
                names.insert(target.name.clone(), Holder::Target(t));
                None
            }
        }
    }

    /// Names a holder, and what an administrator can do about it.
    fn describe(&self, h: Holder) -> String {
        match h {
            Holder::Kept(j) => {
                let u = &self.users[j];
                if !u.directory {
                    format!(
                        "the local user {}, which a sync never takes over: rename or delete it \
                         here, or change the address in Google",
                        u.user_name
                    )
                } else if self.matched[j].is_some() {
                    format!(
                        "the directory user {}, which is not linked to Google and could not be \
                         linked in this run",
                        u.user_name
                    )
                } else if self.departure(j) == Some(Departure::KeptAdmin) {
                    format!(
                        "the directory user {}, which is no longer in scope but holds admin and is \
                         never deleted by a sync: delete it here or remove its admin privilege",
                        u.user_name
                    )
                } else {
                    format!(
                        "the directory user {}, which is no longer in scope and is kept because \
                         auto_delete_users is off: delete it here or turn auto_delete_users on",
                        u.user_name
                    )
                }
            }
            Holder::Target(t) => {
                let target = &self.targets[t];
                match (target.local, &target.name_held) {
                    (Some(i), Some(_)) => format!(
                        "the user {}, whose own rename to {} is held back",
                        self.users[i].user_name, target.name
                    ),
                    _ => format!(
                        "the Google user {} (id {}) in this same run",
                        target.remote.primary_email, target.remote.id
                    ),
                }
            }
        }
    }

    /// Phase 5: creations, updates and conflicts, in target order.
    pub(super) fn changes(&self, out: &mut Plan) {
        // Room for the creations up front: at 100,000 users, growing the vectors by doubling
        // would hold up to twice their size at the peak.
        let creating = self.targets.iter().filter(|t| t.local.is_none()).count();
        out.creates.reserve_exact(creating);
        out.changes.reserve_exact(creating);
        for t in &self.targets {
            if let Some(why) = &t.refused {
                out.changes.push(conflict(t.remote, why.clone()));
                continue;
            }
            if let Some(why) = &t.name_held {
                out.changes.push(conflict(t.remote, why.clone()));
            }
            for (a, who) in &t.dropped {
                out.changes.push(conflict(
                    t.remote,
                    format!("the address {a} is held by {who}; left out"),
                ));
            }
            let addresses: Vec<String> = t
                .wanted
                .iter()
                .zip(&t.wanted_keys)
                .filter(|(_, k)| !t.is_dropped(k))
                .map(|(a, _)| a.clone())
                .collect();
            match t.local {
                None => create(out, t, addresses),
                Some(i) => self.update(out, t, &self.users[i], addresses),
            }
        }
    }

    fn update(&self, out: &mut Plan, t: &Target, l: &LocalUser, addresses: Vec<String>) {
        let r = t.remote;
        let new_name = match t.name_held {
            None => String::from(t.name.clone()),
            Some(_) => l.user_name.clone(),
        };
        let mut fields = Vec::new();
        if t.adopt {
            fields.push(("directory_id", [Value::Null, json!(r.id)]));
        }
        let renamed = new_name != l.user_name;
        if renamed {
            fields.push(("user_name", [json!(l.user_name), json!(new_name)]));
        }
        if r.full_name != l.full_name {
            fields.push(("full_name", [json!(l.full_name), json!(r.full_name)]));
        }
        let addresses_changed = !same_addresses(&addresses, &l.addresses);
        if addresses_changed {
            fields.push(("emails", [json!(l.addresses), json!(addresses)]));
        }
        if r.disabled != l.disabled {
            fields.push(("disabled", [json!(l.disabled), json!(r.disabled)]));
        }
        if fields.is_empty() {
            out.summary.unchanged += 1;
            return;
        }
        let kind = match (l.disabled, r.disabled) {
            (false, true) => {
                out.summary.disabled += 1;
                ChangeKind::Disable
            }
            (true, false) => {
                out.summary.enabled += 1;
                ChangeKind::Enable
            }
            _ => {
                out.summary.updated += 1;
                ChangeKind::Update
            }
        };
        out.changes.push(Change {
            kind,
            user_name: new_name.clone(),
            directory_id: Some(r.id.clone().into()),
            fields: Fields::from_pairs(fields),
            reason: t
                .adopt
                .then(|| "linked to the Google user of the same name".into()),
        });
        out.updates.push(UserUpdate {
            id: l.id,
            renamed: AddressKey::new(&new_name) != AddressKey::new(&l.user_name),
            user_name: new_name,
            full_name: r.full_name.clone(),
            directory_id: r.id.clone(),
            disabled: r.disabled,
            addresses: addresses_changed.then_some(addresses),
        });
    }
}

fn create(out: &mut Plan, t: &Target, addresses: Vec<String>) {
    let r = t.remote;
    let fields = Fields::from_pairs(vec![
        ("user_name", [Value::Null, json!(t.name.as_str())]),
        ("full_name", [Value::Null, json!(r.full_name)]),
        ("emails", [Value::Null, json!(addresses)]),
        ("disabled", [Value::Null, json!(r.disabled)]),
    ]);
    out.changes.push(Change {
        kind: ChangeKind::Create,
        user_name: t.name.clone().into(),
        directory_id: Some(r.id.clone().into()),
        fields,
        reason: None,
    });
    out.creates.push(NewUser {
        id: Uuid::new_v4(),
        user_name: t.name.clone().into(),
        full_name: r.full_name.clone(),
        directory_id: r.id.clone(),
        addresses,
        disabled: r.disabled,
    });
    out.summary.created += 1;
}

fn conflict(r: &RemoteUser, reason: String) -> Change {
    Change {
        kind: ChangeKind::Conflict,
        user_name: AddressKey::new(r.name()).into(),
        directory_id: Some(r.id.clone().into()),
        fields: Fields::new(),
        reason: Some(reason),
    }
}

/// Deduplicates addresses case-insensitively, keeping the first spelling and order.
fn dedup<'s>(addresses: impl IntoIterator<Item = &'s String>) -> Vec<String> {
    let mut seen = HashSet::new();
    addresses
        .into_iter()
        .filter(|a| !a.is_empty() && seen.insert(AddressKey::new(a)))
        .cloned()
        .collect()
}

fn same_addresses(a: &[String], b: &[String]) -> bool {
    let ka: HashSet<AddressKey> = a.iter().map(|s| AddressKey::new(s)).collect();
    let kb: HashSet<AddressKey> = b.iter().map(|s| AddressKey::new(s)).collect();
    ka == kb && a.first().map(|s| AddressKey::new(s)) == b.first().map(|s| AddressKey::new(s))
}
