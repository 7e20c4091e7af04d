//! Planning: what a sync would change, computed from the fetched directory and the local users
//! alone. Pure (no I/O), so that every rule of product.md §3 can be tested directly and a dry run
//! is exactly the plan a real run would apply.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// A Google user as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    /// Google's stable user id.
    pub id: String,
    /// Primary address (becomes the user name, lower-cased).
    pub primary_email: String,
    /// Display name.
    pub full_name: String,
    /// Every address, primary first, aliases and non-editable aliases after it.
    pub addresses: Vec<String>,
    /// Suspended or archived in Google.
    pub disabled: bool,
}

/// The fetched directory: all users, and the ids in scope (`None`: everyone is in scope).
#[derive(Debug, Clone, Default)]
pub struct RemoteState {
    /// Every user of the account.
    pub users: Vec<RemoteUser>,
    /// Ids of the users in scope of `sync_groups`, or `None` when no groups are configured.
    pub in_scope: Option<HashSet<String>>,
}

impl RemoteState {
    fn contains(&self, id: &str) -> bool {
        self.in_scope.as_ref().is_none_or(|s| s.contains(id))
    }
}

/// A local user as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    /// Row id.
    pub id: Uuid,
    /// User name as stored.
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// `directory` (true) or `local` (false).
    pub directory: bool,
    /// Google id, when linked.
    pub directory_id: Option<String>,
    /// Disabled.
    pub disabled: bool,
    /// Addresses, primary first.
    pub addresses: Vec<String>,
    /// Holds the `admin` privilege (never deleted by a sync).
    pub is_admin: bool,
    /// Messages in the user's own archive folder.
    pub folder_messages: i64,
}

/// The configuration rules that shape a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Delete directory users that left the scope (otherwise report them).
    pub auto_delete_users: bool,
}

/// Kinds of change, as stored and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new directory user.
    Create,
    /// A user's name, addresses or link changed.
    Update,
    /// A user removed.
    Delete,
    /// A user suspended or archived in Google.
    Disable,
    /// A user active again in Google.
    Enable,
    /// A deleted user's archive folder kept because it holds messages.
    FolderKept,
    /// A Google user (or one of its addresses) that clashes with another user.
    Conflict,
    /// An out-of-scope user kept because it holds `admin`.
    KeptAdmin,
    /// A directory user no longer in scope, left alone (`auto_delete_users` is off).
    OutOfScope,
}

impl ChangeKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Disable => "disable",
            ChangeKind::Enable => "enable",
            ChangeKind::FolderKept => "folder_kept",
            ChangeKind::Conflict => "conflict",
            ChangeKind::KeptAdmin => "kept_admin",
            ChangeKind::OutOfScope => "out_of_scope",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ChangeKind> {
        use ChangeKind::*;
        [
            Create, Update, Delete, Disable, Enable, FolderKept, Conflict, KeptAdmin, OutOfScope,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One reported change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What kind.
    pub kind: ChangeKind,
    /// The user's name (the new one for a rename).
    pub user_name: String,
    /// The Google id, when known.
    pub directory_id: Option<String>,
    /// Changed fields: name → `[old, new]`.
    pub fields: Fields,
    /// Why, for conflicts and kept or skipped users.
    pub reason: Option<String>,
}

/// A change's fields, name → `[old, new]`, held as the JSON object text stored with the change
/// (`{"full_name":["Old","New"],…}`, sorted by name). A plan holds one per created user: one
/// string is a fifth of the memory of a map of JSON values, which matters at 100,000 users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Box<str>);

impl Fields {
    /// No fields.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// The fields of `pairs`, sorted by name (names are distinct).
    pub fn from_pairs(mut pairs: Vec<(&'static str, [Value; 2])>) -> Fields {
        if pairs.is_empty() {
            return Fields::new();
        }
        pairs.sort_by_key(|(name, _)| *name);
        let map: serde_json::Map<String, Value> = pairs
            .into_iter()
            .map(|(name, [old, new])| (name.to_string(), Value::Array(vec![old, new])))
            .collect();
        Fields(Value::Object(map).to_string().into_boxed_str())
    }

    /// True when no field changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON object text (`{}` when no field changed).
    pub fn as_json(&self) -> &str {
        if self.0.is_empty() {
            "{}"
        } else {
            &self.0
        }
    }

    /// A field's `[old, new]` (for tests: the plan itself only stores the text).
    #[cfg(test)]
    pub fn get(&self, name: &str) -> Option<[Value; 2]> {
        let mut map: serde_json::Map<String, Value> = serde_json::from_str(self.as_json()).ok()?;
        match map.remove(name)? {
            Value::Array(v) => <[Value; 2]>::try_from(v).ok(),
            _ => None,
        }
    }
}

/// Counts per change kind, plus the users that needed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Users created.
    pub created: u64,
    /// Users updated (renamed, addresses, name, adopted).
    pub updated: u64,
    /// Users deleted.
    pub deleted: u64,
    /// Users disabled.
    pub disabled: u64,
    /// Users enabled.
    pub enabled: u64,
    /// In-scope users already up to date.
    pub unchanged: u64,
    /// Conflicts skipped.
    pub conflicts: u64,
    /// Archive folders kept for deleted users.
    pub folders_kept: u64,
    /// Out-of-scope admins kept.
    pub kept_admin: u64,
    /// Out-of-scope users left alone.
    pub out_of_scope: u64,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// New row id.
    pub id: Uuid,
    /// Lower-cased primary address.
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// Google id.
    pub directory_id: String,
    /// Addresses, primary first.
    pub addresses: Vec<String>,
    /// Suspended or archived.
    pub disabled: bool,
}

/// The new state of an existing user.
#[derive(Debug, Clone)]
pub struct UserUpdate {
    /// Row id.
    pub id: Uuid,
    /// User name (maybe renamed).
    pub user_name: String,
    /// Full name.
    pub full_name: String,
    /// Google id (set on adoption).
    pub directory_id: String,
    /// Disabled.
    pub disabled: bool,
    /// New addresses when they changed.
    pub addresses: Option<Vec<String>>,
}

/// What a sync will do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Reported changes, in a stable order.
    pub changes: Vec<Change>,
    /// Users to create.
    pub creates: Vec<NewUser>,
    /// Users to update.
    pub updates: Vec<UserUpdate>,
    /// Users to delete.
    pub deletes: Vec<Uuid>,
    /// Counts.
    pub summary: Summary,
}

impl Plan {
    /// True when applying would write nothing.
    pub fn writes_nothing(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.deletes.is_empty()
    }
}

/// The deletion limit in force: the configured number, else 10 % of the directory users but at
/// least 5 (product.md §3.6).
pub fn deletion_limit(configured: Option<u32>, directory_users: usize) -> u64 {
    configured
        .map(u64::from)
        .unwrap_or_else(|| ((directory_users as u64) * 10).div_ceil(100).max(5))
}

fn key(s: &str) -> String {
    s.to_lowercase()
}

/// Deduplicates addresses case-insensitively, keeping the first spelling and order.
fn dedup(addresses: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    addresses
        .into_iter()
        .filter(|a| !a.is_empty() && seen.insert(key(a)))
        .collect()
}

fn same_addresses(a: &[String], b: &[String]) -> bool {
    let ka: HashSet<String> = a.iter().map(|s| key(s)).collect();
    let kb: HashSet<String> = b.iter().map(|s| key(s)).collect();
    ka == kb && a.first().map(|s| key(s)) == b.first().map(|s| key(s))
}

/// Computes the plan. Deterministic for the same inputs.
pub fn plan(remote: &RemoteState, local: &LocalState, rules: Rules) -> Plan {
    let users = &local.users;
    let mut by_dir_id: HashMap<&str, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut addr_owner: HashMap<String, usize> = HashMap::new();
    for (i, u) in users.iter().enumerate() {
        if let (true, Some(d)) = (u.directory, u.directory_id.as_deref()) {
            by_dir_id.insert(d, i);
        }
        by_name.insert(key(&u.user_name), i);
        for a in &u.addresses {
            addr_owner.insert(key(a), i);
        }
    }

    let mut out = Plan::default();
    let conflict = |r: &RemoteUser, reason: String| Change {
        kind: ChangeKind::Conflict,
        user_name: key(&r.primary_email),
        directory_id: Some(r.id.clone()),
        fields: Fields::new(),
        reason: Some(reason),
    };

    // Pass 1: match every in-scope Google user to a local user, or decide to create it.
    struct Target<'a> {
        remote: &'a RemoteUser,
        local: Option<usize>,
        adopt: bool,
        addresses: Vec<String>,
    }
    let mut matched = vec![false; users.len()];
    let mut targets: Vec<Target> = Vec::new();
    let in_scope: Vec<(&RemoteUser, Vec<String>)> = remote
        .users
        .iter()
        .filter(|r| remote.contains(&r.id))
        .map(|r| {
            let addresses =
                dedup(std::iter::once(r.primary_email.clone()).chain(r.addresses.iter().cloned()));
            (r, addresses)
        })
        .collect();
    // 1a: the stable key first, so that a renamed user frees its old name for 1b.
    let mut unmatched = Vec::new();
    for (r, addresses) in in_scope {
        match by_dir_id.get(r.id.as_str()) {
            Some(&i) => {
                matched[i] = true;
                targets.push(Target {
                    remote: r,
                    local: Some(i),
                    adopt: false,
                    addresses,
                });
            }
            None => unmatched.push((r, addresses)),
        }
    }
    // Users deleted by this plan free their names and addresses. An unlinked directory user
    // whose name an unmatched Google user has is adopted below instead.
    let adoptable: HashSet<String> = unmatched
        .iter()
        .map(|(r, _)| key(&r.primary_email))
        .collect();
    let leaves = |j: usize, matched: &[bool]| {
        let u = &users[j];
        u.directory
            && !matched[j]
            && rules.auto_delete_users
            && !u.is_admin
            && !(u.directory_id.is_none() && adoptable.contains(&key(&u.user_name)))
    };
    // Final names of the users matched so far: a rename onto a name that stays taken is held
    // back. Renames may chain (a → b while b → c), so settle them to a fixed point.
    let mut final_name: HashMap<usize, String> = targets
        .iter()
        .map(|t| (t.local.unwrap(), key(&t.remote.primary_email)))
        .collect();
    loop {
        let mut changed = false;
        for t in &targets {
            let i = t.local.unwrap();
            let wanted = &final_name[&i];
            if *wanted == key(&users[i].user_name) {
                continue;
            }
            let blocked = match by_name.get(wanted) {
                Some(&j) if j != i => match final_name.get(&j) {
                    Some(fj) => *fj == key(&users[j].user_name),
                    None => !leaves(j, &matched),
                },
                _ => false,
            };
            if blocked {
                final_name.insert(i, key(&users[i].user_name));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // 1b: by name: adopt an unlinked directory user, or create unless the name stays taken.
    for (r, addresses) in unmatched {
        let Some(&i) = by_name.get(&key(&r.primary_email)) else {
            targets.push(Target {
                remote: r,
                local: None,
                adopt: false,
                addresses,
            });
            continue;
        };
        let holder = &users[i];
        let renamed_away = final_name
            .get(&i)
            .is_some_and(|n| *n != key(&holder.user_name));
        let deleted = leaves(i, &matched);
        if holder.directory && holder.directory_id.is_none() && !matched[i] {
            matched[i] = true;
            final_name.insert(i, key(&r.primary_email));
            targets.push(Target {
                remote: r,
                local: Some(i),
                adopt: true,
                addresses,
            });
        } else if renamed_away || deleted {
            // The holder is renamed away or deleted by this same plan: the name is free.
            targets.push(Target {
                remote: r,
                local: None,
                adopt: false,
                addresses,
            });
        } else {
            let reason = if holder.directory {
                format!(
                    "the user name {} belongs to another directory user that is kept; resolve it in Google or delete that user",
                    holder.user_name
                )
            } else {
                format!(
                    "a local user named {} exists; it is not taken over",
                    holder.user_name
                )
            };
            out.changes.push(conflict(r, reason));
        }
    }

    // Which unmatched directory users this plan deletes: their names and addresses are freed.
    let deleting: Vec<bool> = users
        .iter()
        .enumerate()
        .map(|(i, u)| u.directory && !matched[i] && rules.auto_delete_users && !u.is_admin)
        .collect();
    // Addresses the matched users keep claiming after this plan.
    let mut claimed: HashMap<String, usize> = HashMap::new();
    for (t_idx, t) in targets.iter().enumerate() {
        for a in &t.addresses {
            claimed.entry(key(a)).or_insert(t_idx);
        }
    }
    // An address is free for target `t` unless another user keeps it.
    let taken_by = |t_idx: usize, own: Option<usize>, addr: &str| -> Option<String> {
        let k = key(addr);
        if claimed.get(&k).is_some_and(|&c| c != t_idx) {
            return Some("another Google user".to_string());
        }
        match addr_owner.get(&k) {
            Some(&j) if Some(j) != own && !matched[j] && !deleting[j] => Some(format!(
                "{} user {}",
                if users[j].directory {
                    "directory"
                } else {
                    "local"
                },
                users[j].user_name
            )),
            _ => None,
        }
    };

    // Pass 2: creates and updates. Room for the creations up front: at 100,000 users, growing
    // the vectors by doubling would hold up to twice their size at the peak.
    let creating = targets.iter().filter(|t| t.local.is_none()).count();
    out.creates.reserve_exact(creating);
    out.changes.reserve_exact(creating);
    for (t_idx, t) in targets.into_iter().enumerate() {
        let r = t.remote;
        let name = key(&r.primary_email);
        match t.local {
            None => {
                let clash = t
                    .addresses
                    .iter()
                    .find_map(|a| taken_by(t_idx, None, a).map(|who| (a, who)));
                if let Some((a, who)) = clash {
                    out.changes.push(conflict(
                        r,
                        format!("the address {a} belongs to {who}; not taken over"),
                    ));
                    continue;
                }
                let fields = Fields::from_pairs(vec![
                    ("user_name", [Value::Null, json!(name)]),
                    ("full_name", [Value::Null, json!(r.full_name)]),
                    ("emails", [Value::Null, json!(t.addresses)]),
                    ("disabled", [Value::Null, json!(r.disabled)]),
                ]);
                out.changes.push(Change {
                    kind: ChangeKind::Create,
                    user_name: name.clone(),
                    directory_id: Some(r.id.clone()),
                    fields,
                    reason: None,
                });
                out.creates.push(NewUser {
                    id: Uuid::new_v4(),
                    user_name: name,
                    full_name: r.full_name.clone(),
                    directory_id: r.id.clone(),
                    addresses: t.addresses,
                    disabled: r.disabled,
                });
                out.summary.created += 1;
            }
            Some(i) => {
                let l = &users[i];
                let mut conflicts = Vec::new();
                // A rename onto a name another user keeps is skipped; the rest still applies.
                let new_name = if final_name[&i] == name {
                    name.clone()
                } else {
                    conflicts.push(format!(
                        "cannot rename to {name}: another user keeps that name"
                    ));
                    l.user_name.clone()
                };
                let addresses: Vec<String> = t
                    .addresses
                    .iter()
                    .filter(|a| match taken_by(t_idx, Some(i), a) {
                        Some(who) => {
                            conflicts.push(format!("the address {a} belongs to {who}; left out"));
                            false
                        }
                        None => true,
                    })
                    .cloned()
                    .collect();
                if t.adopt && !conflicts.is_empty() {
                    // Adoption links a user to Google; with a clash, leave it unlinked.
                    out.changes.push(conflict(r, conflicts.join("; ")));
                    continue;
                }
                for c in conflicts {
                    out.changes.push(conflict(r, c));
                }
                let mut fields = Vec::new();
                if t.adopt {
                    fields.push(("directory_id", [Value::Null, json!(r.id)]));
                }
                if new_name != l.user_name {
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
                    continue;
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
                    directory_id: Some(r.id.clone()),
                    fields: Fields::from_pairs(fields),
                    reason: t
                        .adopt
                        .then(|| "linked to the Google user of the same name".into()),
                });
                out.updates.push(UserUpdate {
                    id: l.id,
                    user_name: new_name,
                    full_name: r.full_name.clone(),
                    directory_id: r.id.clone(),
                    disabled: r.disabled,
                    addresses: addresses_changed.then_some(addresses),
                });
            }
        }
    }

    // Pass 3: directory users no longer in scope.
    for (i, u) in users.iter().enumerate() {
        if !u.directory || matched[i] {
            continue;
        }
        let change = |kind, reason: &str| Change {
            kind,
            user_name: u.user_name.clone(),
            directory_id: u.directory_id.clone(),
            fields: Fields::new(),
            reason: Some(reason.to_string()),
        };
        if !rules.auto_delete_users {
            out.changes.push(change(
                ChangeKind::OutOfScope,
                "no longer in Google or in the sync groups; left alone because auto_delete_users is off",
            ));
            out.summary.out_of_scope += 1;
        } else if u.is_admin {
            out.changes.push(change(
                ChangeKind::KeptAdmin,
                "no longer in scope, but holds the admin privilege: never deleted by a sync",
            ));
            out.summary.kept_admin += 1;
        } else {
            out.changes.push(change(
                ChangeKind::Delete,
                "no longer in Google or in the sync groups",
            ));
            out.summary.deleted += 1;
            out.deletes.push(u.id);
            if u.folder_messages > 0 {
                out.changes.push(change(
                    ChangeKind::FolderKept,
                    &format!(
                        "the archive folder holds {} messages; kept, detached from the user",
                        u.folder_messages
                    ),
                ));
                out.summary.folders_kept += 1;
            }
        }
    }
    out.summary.conflicts = out
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Conflict)
        .count() as u64;
    out
}

/// The local users a plan is computed against.
#[derive(Debug, Clone, Default)]
pub struct LocalState {
    /// Every user, local and directory.
    pub users: Vec<LocalUser>,
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
