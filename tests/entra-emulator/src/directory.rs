//! The tenant's directory: users and groups as Graph v1.0 describes them
//! (`shared/reference/microsoft-entra.md` §2), a deterministic generator, a JSON fixture format,
//! and the changes tests make to it.
//!
//! Every change takes the next number of a change sequence and stamps it on what it touched, so
//! that delta queries (§3) can tell what changed after a given point. Soft-deleted objects keep
//! their group memberships, hidden, as Entra does: a restore brings them back.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{anyhow, bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// `Member` or `Guest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum UserType {
    /// A user of the tenant.
    #[default]
    Member,
    /// An invited outside user (B2B).
    Guest,
}

/// A user (Graph `microsoft.graph.user`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id, a lower-case GUID.
    #[serde(default)]
    pub id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Primary SMTP address, if the user has a mailbox.
    #[serde(default)]
    pub mail: Option<String>,
    /// `SMTP:` primary and `smtp:` secondary addresses (and other prefixes).
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    /// Outside addresses.
    #[serde(default)]
    pub other_mails: Vec<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Surname.
    #[serde(default)]
    pub surname: Option<String>,
    /// `false`: sign-in blocked.
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// Member or guest.
    #[serde(default)]
    pub user_type: UserType,
    /// When it was soft-deleted (ISO 8601), for users in `deletedUsers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date_time: Option<String>,
    /// Change sequence number of the last change to this user.
    #[serde(skip)]
    pub(crate) changed: u64,
}

/// A group (Graph `microsoft.graph.group`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id, a lower-case GUID.
    #[serde(default)]
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// SMTP address (mail-enabled groups).
    #[serde(default)]
    pub mail: Option<String>,
    /// Mail-enabled (Microsoft 365 groups, distribution lists, mail-enabled security groups).
    #[serde(default)]
    pub mail_enabled: bool,
    /// Security-enabled.
    #[serde(default = "yes")]
    pub security_enabled: bool,
    /// `["Unified"]` for Microsoft 365 groups, else empty.
    #[serde(default)]
    pub group_types: Vec<String>,
    /// Proxy addresses of a mail-enabled group.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    /// Direct members: ids of users or groups. In a fixture also a UPN or a group's mail.
    #[serde(default)]
    pub members: Vec<String>,
    /// When it was soft-deleted, for groups in `deletedGroups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_date_time: Option<String>,
    #[serde(skip)]
    pub(crate) changed: u64,
    /// Membership changes: (sequence number, member id, added).
    #[serde(skip)]
    pub(crate) member_log: Vec<(u64, String, bool)>,
}

fn yes() -> bool {
    true
}

/// The tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Tenant id, a lower-case GUID.
    pub id: String,
    /// Organisation name.
    #[serde(default)]
    pub display_name: String,
    /// Verified domains; the first is the default, one ends in `.onmicrosoft.com`.
    pub domains: Vec<String>,
}

impl Tenant {
    /// The `<name>.onmicrosoft.com` domain (guests' UPNs live there).
    pub fn initial_domain(&self) -> &str {
        self.domains
            .iter()
            .find(|d| d.ends_with(".onmicrosoft.com"))
            .unwrap_or(&self.domains[0])
    }

    /// Whether `s` names this tenant: its id or one of its domains.
    pub fn is_named(&self, s: &str) -> bool {
        s.eq_ignore_ascii_case(&self.id) || self.domains.iter().any(|d| d.eq_ignore_ascii_case(s))
    }
}

/// A user or group as a member, or as a directory object in general.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `#microsoft.graph.user`.
    User,
    /// `#microsoft.graph.group`.
    Group,
}

/// A removal seen by a delta query: the object id, and the sequence number of the removal.
#[derive(Clone, Debug)]
pub(crate) struct Tombstone {
    pub id: String,
    pub seq: u64,
    /// `changed` (soft-deleted, restorable) or `deleted` (gone for good).
    pub reason: &'static str,
}

/// The fixture format (see the crate README).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fixture {
    tenant: Tenant,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    deleted_users: Vec<User>,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    deleted_groups: Vec<Group>,
}

/// The directory of one tenant. Lists come in object-id order, which is stable under changes
/// (what page tokens rely on) and looks as random as Graph's order.
#[derive(Clone, Debug)]
pub struct Directory {
    /// The tenant.
    pub tenant: Tenant,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) deleted_users: BTreeMap<String, User>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) deleted_groups: BTreeMap<String, Group>,
    /// Lower-cased UPN → id, live and soft-deleted users.
    upn_index: HashMap<String, String>,
    pub(crate) seq: u64,
    pub(crate) user_tombstones: Vec<Tombstone>,
    pub(crate) group_tombstones: Vec<Tombstone>,
}

/// A GUID from the generator's random stream.
fn guid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string()
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const GIVEN: [&str; 24] = [
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Christie",
    "Debra",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Sarah",
];
const FAMILY: [&str; 20] = [
    "Vance",
    "Wilber",
    "Deyoung",
    "Kim",
    "Cline",
    "Berry",
    "Siciliani",
    "Braun",
    "Moreno",
    "Archie",
    "Cantrell",
    "Sayers",
    "Langer",
    "Lauridsen",
    "Sherman",
    "Gu",
    "Holloway",
    "Valdez",
    "Bowen",
    "Patel",
];
const TEAMS: [&str; 10] = [
    "sales",
    "marketing",
    "finance",
    "legal",
    "engineering",
    "support",
    "research",
    "operations",
    "hr",
    "design",
];

impl Directory {
    /// A tenant with no users or groups.
    pub fn empty(tenant_id: &str, domains: &[&str]) -> Directory {
        Directory {
            tenant: Tenant {
                id: tenant_id.to_ascii_lowercase(),
                display_name: "Contoso".into(),
                domains: domains.iter().map(|d| d.to_string()).collect(),
            },
            users: BTreeMap::new(),
            deleted_users: BTreeMap::new(),
            groups: BTreeMap::new(),
            deleted_groups: BTreeMap::new(),
            upn_index: HashMap::new(),
            seq: 0,
            user_tombstones: Vec::new(),
            group_tombstones: Vec::new(),
        }
    }

    /// A deterministic tenant of `users` users and `groups` groups (`example.com` and
    /// `example.onmicrosoft.com`): `admin@example.com` first, then `given.family[n]@example.com`;
    /// ~8 % without a mailbox (no `mail`, no proxy addresses), ~12 % with a second `smtp:` alias,
    /// ~3 % with an `X500:` address, ~10 % with `otherMails`, ~4 % disabled, ~4 % guests
    /// (`name_other.org#EXT#@example.onmicrosoft.com`). Groups `<team>-<n>` of the four kinds in
    /// turn (security, Microsoft 365, distribution list, mail-enabled security), 0–40 members,
    /// every 50th (index 7, 57, ...) 250–600 so that member lists page; every 9th group holds
    /// an earlier group, and with 3+ groups the first two hold each other (a cycle).
    pub fn generate(users: usize, groups: usize, seed: u64) -> Directory {
        let mut rng = StdRng::seed_from_u64(seed);
        let tenant_id = guid(&mut rng);
        let mut d = Directory::empty(&tenant_id, &["example.com", "example.onmicrosoft.com"]);
        let mut used: HashSet<String> = HashSet::new();
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let (given, family) = if i == 0 {
                ("Ada".to_string(), "Admin".to_string())
            } else {
                (
                    GIVEN[rng.gen_range(0..GIVEN.len())].to_string(),
                    FAMILY[rng.gen_range(0..FAMILY.len())].to_string(),
                )
            };
            let mut local = if i == 0 {
                "admin".to_string()
            } else {
                format!("{}.{}", given.to_lowercase(), family.to_lowercase())
            };
            let base = local.clone();
            let mut n = 1;
            while !used.insert(local.clone()) {
                n += 1;
                local = format!("{base}{n}");
            }
            let roll: f64 = rng.gen();
            let guest = i > 0 && roll < 0.04;
            let mut u = User {
                id: guid(&mut rng),
                user_principal_name: format!("{local}@example.com"),
                mail: Some(format!("{local}@example.com")),
                proxy_addresses: vec![
                    format!("SMTP:{local}@example.com"),
                    format!("smtp:{local}@example.onmicrosoft.com"),
                ],
                other_mails: vec![],
                display_name: Some(format!("{given} {family}")),
                given_name: Some(given.clone()),
                surname: Some(family.clone()),
                account_enabled: true,
                user_type: UserType::Member,
                deleted_date_time: None,
                changed: 0,
            };
            if guest {
                u.user_principal_name = format!("{local}_other.org#EXT#@example.onmicrosoft.com");
                u.mail = Some(format!("{local}@other.org"));
                u.proxy_addresses = vec![format!("SMTP:{local}@other.org")];
                u.user_type = UserType::Guest;
                u.given_name = None;
                u.surname = None;
            } else if i > 0 && roll < 0.12 {
                u.mail = None;
                u.proxy_addresses.clear();
            } else if i > 0 {
                if rng.gen_bool(0.12) {
                    u.proxy_addresses.push(format!(
                        "smtp:{}@example.com",
                        given.to_lowercase() + &i.to_string()
                    ));
                }
                if rng.gen_bool(0.03) {
                    u.proxy_addresses.push(format!(
                        "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}",
                        u.id.replace('-', "")
                    ));
                }
            }
            if i > 0 && rng.gen_bool(0.10) {
                u.other_mails.push(format!("{local}@home.example.net"));
            }
            if i > 0 && rng.gen_bool(0.04) {
                u.account_enabled = false;
            }
            ids.push(u.id.clone());
            d.insert_user(u);
        }
        let mut group_ids: Vec<String> = Vec::with_capacity(groups);
        for i in 0..groups {
            let team = TEAMS[i % TEAMS.len()];
            let name = format!("{team}-{i}");
            let mut g = Group {
                id: guid(&mut rng),
                display_name: format!("{} {i}", capitalise(team)),
                description: Some(format!("The {team} team, group {i}")),
                mail: None,
                mail_enabled: false,
                security_enabled: true,
                group_types: vec![],
                proxy_addresses: vec![],
                members: vec![],
                deleted_date_time: None,
                changed: 0,
                member_log: vec![],
            };
            match i % 4 {
                0 => {}
                1 => {
                    g.group_types = vec!["Unified".into()];
                    g.mail_enabled = true;
                    g.security_enabled = false;
                }
                2 => {
                    g.mail_enabled = true;
                    g.security_enabled = false;
                }
                _ => g.mail_enabled = true,
            }
            if g.mail_enabled {
                g.mail = Some(format!("{name}@example.com"));
                g.proxy_addresses = vec![
                    format!("SMTP:{name}@example.com"),
                    format!("smtp:{name}@example.onmicrosoft.com"),
                ];
            }
            let size = if i % 50 == 7 {
                rng.gen_range(250..=600)
            } else {
                rng.gen_range(0..=40)
            };
            let size = size.min(ids.len());
            let mut chosen = HashSet::new();
            while chosen.len() < size {
                chosen.insert(rng.gen_range(0..ids.len()));
            }
            let mut chosen: Vec<usize> = chosen.into_iter().collect();
            chosen.sort_unstable();
            g.members = chosen.into_iter().map(|k| ids[k].clone()).collect();
            if i % 9 == 8 && !group_ids.is_empty() {
                g.members
                    .push(group_ids[rng.gen_range(0..group_ids.len())].clone());
            }
            group_ids.push(g.id.clone());
            d.groups.insert(g.id.clone(), g);
        }
        if groups >= 3 {
            let (a, b) = (group_ids[0].clone(), group_ids[1].clone());
            d.groups.get_mut(&a).expect("group").members.push(b.clone());
            d.groups.get_mut(&b).expect("group").members.push(a);
        }
        d
    }

    fn insert_user(&mut self, u: User) {
        self.upn_index
            .insert(u.user_principal_name.to_lowercase(), u.id.clone());
        self.users.insert(u.id.clone(), u);
    }

    /// Loads a fixture (format in the crate README). Missing ids are derived from the UPN or
    /// the group's name; members may be named by id, UPN or group mail.
    pub fn from_json(json: &str) -> anyhow::Result<Directory> {
        let f: Fixture = serde_json::from_str(json).context("while parsing the fixture")?;
        if f.tenant.domains.is_empty() {
            bail!("the tenant needs at least one domain");
        }
        let mut d = Directory::empty(&f.tenant.id, &[]);
        d.tenant = f.tenant;
        d.tenant.id = d.tenant.id.to_ascii_lowercase();
        for (deleted, list) in [(false, f.users), (true, f.deleted_users)] {
            for mut u in list {
                if u.id.is_empty() {
                    u.id = derived_id(&u.user_principal_name);
                }
                u.id = u.id.to_ascii_lowercase();
                if d.user(&u.user_principal_name).is_some()
                    || d.upn_index
                        .contains_key(&u.user_principal_name.to_lowercase())
                {
                    bail!("user {} appears twice", u.user_principal_name);
                }
                d.upn_index
                    .insert(u.user_principal_name.to_lowercase(), u.id.clone());
                if deleted {
                    u.deleted_date_time.get_or_insert_with(now_iso);
                    d.deleted_users.insert(u.id.clone(), u);
                } else {
                    u.deleted_date_time = None;
                    d.users.insert(u.id.clone(), u);
                }
            }
        }
        for (deleted, list) in [(false, f.groups), (true, f.deleted_groups)] {
            for mut g in list {
                if g.id.is_empty() {
                    g.id = derived_id(g.mail.as_deref().unwrap_or(&g.display_name));
                }
                g.id = g.id.to_ascii_lowercase();
                if d.groups.contains_key(&g.id) || d.deleted_groups.contains_key(&g.id) {
                    bail!("group {} appears twice", g.id);
                }
                if deleted {
                    g.deleted_date_time.get_or_insert_with(now_iso);
                    d.deleted_groups.insert(g.id.clone(), g);
                } else {
                    g.deleted_date_time = None;
                    d.groups.insert(g.id.clone(), g);
                }
            }
        }
        // Members are resolved once every object is known.
        let mut resolved: Vec<(String, bool, Vec<String>)> = Vec::new();
        for (deleted, map) in [(false, &d.groups), (true, &d.deleted_groups)] {
            for g in map.values() {
                let mut members = Vec::new();
                for m in &g.members {
                    let (id, _) = d
                        .any_object(m)
                        .ok_or_else(|| anyhow!("group {}: no user or group {m}", g.display_name))?;
                    if !members.contains(&id) {
                        members.push(id);
                    }
                }
                resolved.push((g.id.clone(), deleted, members));
            }
        }
        for (id, deleted, members) in resolved {
            let map = if deleted {
                &mut d.deleted_groups
            } else {
                &mut d.groups
            };
            map.get_mut(&id).expect("group").members = members;
        }
        Ok(d)
    }

    /// The directory as a fixture, fully resolved.
    pub fn to_json(&self) -> String {
        let f = Fixture {
            tenant: self.tenant.clone(),
            users: self.users.values().cloned().collect(),
            deleted_users: self.deleted_users.values().cloned().collect(),
            groups: self.groups.values().cloned().collect(),
            deleted_groups: self.deleted_groups.values().cloned().collect(),
        };
        serde_json::to_string_pretty(&f).expect("a fixture serialises")
    }

    // ---- lookups ----

    /// A live user by id or UPN (case-insensitive).
    pub fn user(&self, key: &str) -> Option<&User> {
        let id = self.user_id(key)?;
        self.users.get(&id)
    }

    fn user_id(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        if self.users.contains_key(&k) || self.deleted_users.contains_key(&k) {
            return Some(k);
        }
        self.upn_index.get(&key.to_lowercase()).cloned()
    }

    /// A live group by id or mail (case-insensitive).
    pub fn group(&self, key: &str) -> Option<&Group> {
        let id = self.group_id(key)?;
        self.groups.get(&id)
    }

    fn group_id(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        if self.groups.contains_key(&k) || self.deleted_groups.contains_key(&k) {
            return Some(k);
        }
        self.groups
            .values()
            .chain(self.deleted_groups.values())
            .find(|g| {
                g.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(key))
            })
            .map(|g| g.id.clone())
    }

    /// A user or group, live or soft-deleted, by id, UPN or group mail.
    fn any_object(&self, key: &str) -> Option<(String, ObjectKind)> {
        if let Some(id) = self.user_id(key) {
            return Some((id, ObjectKind::User));
        }
        self.group_id(key).map(|id| (id, ObjectKind::Group))
    }

    /// The kind of a live object, by id.
    pub(crate) fn live_kind(&self, id: &str) -> Option<ObjectKind> {
        if self.users.contains_key(id) {
            Some(ObjectKind::User)
        } else if self.groups.contains_key(id) {
            Some(ObjectKind::Group)
        } else {
            None
        }
    }

    /// Live users, in id order.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Soft-deleted users.
    pub fn deleted_users(&self) -> impl Iterator<Item = &User> {
        self.deleted_users.values()
    }

    /// Live groups, in id order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// A live group's live direct members (ids and kinds), in membership order.
    pub fn direct_members(&self, group_id: &str) -> Vec<(String, ObjectKind)> {
        let Some(g) = self.groups.get(group_id) else {
            return vec![];
        };
        g.members
            .iter()
            .filter_map(|m| self.live_kind(m).map(|k| (m.clone(), k)))
            .collect()
    }

    /// Everything reachable from a live group through live nested groups, nested groups
    /// included, each once, breadth first. The group itself is left out even when a cycle
    /// leads back to it.
    pub fn transitive_members(&self, group_id: &str) -> Vec<(String, ObjectKind)> {
        let mut seen: HashSet<String> = HashSet::from([group_id.to_string()]);
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([group_id.to_string()]);
        while let Some(g) = queue.pop_front() {
            for (id, kind) in self.direct_members(&g) {
                if seen.insert(id.clone()) {
                    if kind == ObjectKind::Group {
                        queue.push_back(id.clone());
                    }
                    out.push((id, kind));
                }
            }
        }
        out
    }

    // ---- changes ----

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn live_user_mut(&mut self, key: &str) -> anyhow::Result<&mut User> {
        let id = self
            .user_id(key)
            .filter(|id| self.users.contains_key(id))
            .ok_or_else(|| anyhow!("no user {key}"))?;
        let seq = self.next_seq();
        let u = self.users.get_mut(&id).expect("user");
        u.changed = seq;
        Ok(u)
    }

    fn live_group_id(&self, key: &str) -> anyhow::Result<String> {
        self.group_id(key)
            .filter(|id| self.groups.contains_key(id))
            .ok_or_else(|| anyhow!("no group {key}"))
    }

    fn check_upn(&self, upn: &str) -> anyhow::Result<()> {
        let (local, domain) = upn
            .rsplit_once('@')
            .ok_or_else(|| anyhow!("{upn} is not alias@domain"))?;
        if local.is_empty()
            || !self
                .tenant
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
        {
            bail!("{upn}: the domain is not a verified domain of the tenant");
        }
        if self.upn_index.contains_key(&upn.to_lowercase()) {
            bail!("{upn} is already taken");
        }
        Ok(())
    }

    /// Creates a member user with a mailbox at its UPN; returns its id.
    pub fn create_user(&mut self, upn: &str, given: &str, surname: &str) -> anyhow::Result<String> {
        self.check_upn(upn)?;
        let seq = self.next_seq();
        let id = uuid::Uuid::new_v4().to_string();
        let local = upn.split('@').next().unwrap_or(upn);
        self.insert_user(User {
            id: id.clone(),
            user_principal_name: upn.to_string(),
            mail: Some(upn.to_string()),
            proxy_addresses: vec![
                format!("SMTP:{upn}"),
                format!("smtp:{local}@{}", self.tenant.initial_domain()),
            ],
            other_mails: vec![],
            display_name: Some(format!("{given} {surname}")),
            given_name: Some(given.to_string()),
            surname: Some(surname.to_string()),
            account_enabled: true,
            user_type: UserType::Member,
            deleted_date_time: None,
            changed: seq,
        });
        Ok(id)
    }

    /// Changes a user's UPN (mail and proxy addresses stay as they are, as in Entra).
    pub fn rename_upn(&mut self, user: &str, new_upn: &str) -> anyhow::Result<()> {
        self.check_upn(new_upn)?;
        let u = self.live_user_mut(user)?;
        let old = std::mem::replace(&mut u.user_principal_name, new_upn.to_string());
        self.upn_index.remove(&old.to_lowercase());
        let id = self.user_id(user).unwrap_or_default();
        self.upn_index.insert(new_upn.to_lowercase(), id);
        Ok(())
    }

    /// Sets a user's `mail`. As in Exchange Online, the new address becomes the `SMTP:` proxy
    /// address and the old primary stays as an `smtp:` alias; `None` removes the mailbox
    /// (no mail, no proxy addresses).
    pub fn set_mail(&mut self, user: &str, mail: Option<&str>) -> anyhow::Result<()> {
        let u = self.live_user_mut(user)?;
        match mail {
            None => {
                u.mail = None;
                u.proxy_addresses.clear();
            }
            Some(m) => {
                for p in u.proxy_addresses.iter_mut() {
                    if let Some(rest) = p.strip_prefix("SMTP:") {
                        *p = format!("smtp:{rest}");
                    }
                }
                u.proxy_addresses.retain(|p| {
                    !(p.len() > 5
                        && p[..5].eq_ignore_ascii_case("smtp:")
                        && p[5..].eq_ignore_ascii_case(m))
                });
                u.proxy_addresses.insert(0, format!("SMTP:{m}"));
                u.mail = Some(m.to_string());
            }
        }
        Ok(())
    }

    /// Replaces a user's proxy addresses; `mail` follows the `SMTP:` one (at most one allowed).
    pub fn set_proxy_addresses(&mut self, user: &str, addresses: &[String]) -> anyhow::Result<()> {
        let primaries: Vec<&String> = addresses
            .iter()
            .filter(|a| a.starts_with("SMTP:"))
            .collect();
        if primaries.len() > 1 {
            bail!("more than one SMTP: (primary) address");
        }
        let primary = primaries.first().map(|p| p[5..].to_string());
        let u = self.live_user_mut(user)?;
        u.proxy_addresses = addresses.to_vec();
        u.mail = primary;
        Ok(())
    }

    /// Changes a user's display name.
    pub fn set_display_name(&mut self, user: &str, display_name: &str) -> anyhow::Result<()> {
        self.live_user_mut(user)?.display_name = Some(display_name.to_string());
        Ok(())
    }

    /// Makes a user a member or a guest (`userType`).
    pub fn set_user_type(&mut self, user: &str, user_type: UserType) -> anyhow::Result<()> {
        self.live_user_mut(user)?.user_type = user_type;
        Ok(())
    }

    /// Blocks or allows sign-in.
    pub fn set_account_enabled(&mut self, user: &str, enabled: bool) -> anyhow::Result<()> {
        self.live_user_mut(user)?.account_enabled = enabled;
        Ok(())
    }

    /// Soft-deletes a user: it leaves every listing (and its groups) until restored.
    pub fn delete_user(&mut self, user: &str) -> anyhow::Result<()> {
        let id = self
            .user_id(user)
            .filter(|id| self.users.contains_key(id))
            .ok_or_else(|| anyhow!("no user {user}"))?;
        let seq = self.next_seq();
        let mut u = self.users.remove(&id).expect("user");
        u.deleted_date_time = Some(now_iso());
        u.changed = seq;
        self.deleted_users.insert(id.clone(), u);
        self.user_tombstones.push(Tombstone {
            id,
            seq,
            reason: "changed",
        });
        Ok(())
    }

    /// Restores a soft-deleted user, with its group memberships.
    pub fn restore_user(&mut self, user: &str) -> anyhow::Result<()> {
        let id = self
            .user_id(user)
            .filter(|id| self.deleted_users.contains_key(id))
            .ok_or_else(|| anyhow!("no deleted user {user}"))?;
        let seq = self.next_seq();
        let mut u = self.deleted_users.remove(&id).expect("user");
        u.deleted_date_time = None;
        u.changed = seq;
        self.users.insert(id.clone(), u);
        self.user_tombstones.retain(|t| t.id != id);
        Ok(())
    }

    /// Deletes a soft-deleted user for good.
    pub fn purge_user(&mut self, user: &str) -> anyhow::Result<()> {
        let id = self
            .user_id(user)
            .filter(|id| self.deleted_users.contains_key(id))
            .ok_or_else(|| anyhow!("no deleted user {user}"))?;
        let seq = self.next_seq();
        let u = self.deleted_users.remove(&id).expect("user");
        self.upn_index.remove(&u.user_principal_name.to_lowercase());
        for g in self
            .groups
            .values_mut()
            .chain(self.deleted_groups.values_mut())
        {
            g.members.retain(|m| *m != id);
        }
        self.user_tombstones.retain(|t| t.id != id);
        self.user_tombstones.push(Tombstone {
            id,
            seq,
            reason: "deleted",
        });
        Ok(())
    }

    /// Creates a group; with a mail address it is a mail-enabled security group, without one a
    /// security group. Returns its id.
    pub fn create_group(
        &mut self,
        display_name: &str,
        mail: Option<&str>,
    ) -> anyhow::Result<String> {
        if let Some(m) = mail {
            if self.group_id(m).is_some() || self.upn_index.contains_key(&m.to_lowercase()) {
                bail!("{m} is already taken");
            }
        }
        let seq = self.next_seq();
        let id = uuid::Uuid::new_v4().to_string();
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                display_name: display_name.to_string(),
                description: None,
                mail: mail.map(str::to_string),
                mail_enabled: mail.is_some(),
                security_enabled: true,
                group_types: vec![],
                proxy_addresses: mail.map(|m| vec![format!("SMTP:{m}")]).unwrap_or_default(),
                members: vec![],
                deleted_date_time: None,
                changed: seq,
                member_log: vec![],
            },
        );
        Ok(id)
    }

    /// Renames a group (its display name).
    pub fn rename_group(&mut self, group: &str, display_name: &str) -> anyhow::Result<()> {
        let id = self.live_group_id(group)?;
        let seq = self.next_seq();
        let g = self.groups.get_mut(&id).expect("group");
        g.display_name = display_name.to_string();
        g.changed = seq;
        Ok(())
    }

    /// Changes a mail-enabled group's address (its `SMTP:` proxy address follows; the old one
    /// stays as an `smtp:` alias, as in Exchange Online).
    pub fn set_group_mail(&mut self, group: &str, mail: &str) -> anyhow::Result<()> {
        let id = self.live_group_id(group)?;
        if self.group_id(mail).is_some_and(|g| g != id)
            || self.upn_index.contains_key(&mail.to_lowercase())
        {
            bail!("{mail} is already taken");
        }
        let seq = self.next_seq();
        let g = self.groups.get_mut(&id).expect("group");
        for p in g.proxy_addresses.iter_mut() {
            if let Some(rest) = p.strip_prefix("SMTP:") {
                *p = format!("smtp:{rest}");
            }
        }
        g.proxy_addresses.insert(0, format!("SMTP:{mail}"));
        g.mail = Some(mail.to_string());
        g.mail_enabled = true;
        g.changed = seq;
        Ok(())
    }

    /// Soft-deletes a group.
    pub fn delete_group(&mut self, group: &str) -> anyhow::Result<()> {
        let id = self.live_group_id(group)?;
        let seq = self.next_seq();
        let mut g = self.groups.remove(&id).expect("group");
        g.deleted_date_time = Some(now_iso());
        g.changed = seq;
        self.deleted_groups.insert(id.clone(), g);
        self.group_tombstones.push(Tombstone {
            id,
            seq,
            reason: "changed",
        });
        Ok(())
    }

    /// Restores a soft-deleted group.
    pub fn restore_group(&mut self, group: &str) -> anyhow::Result<()> {
        let id = self
            .group_id(group)
            .filter(|id| self.deleted_groups.contains_key(id))
            .ok_or_else(|| anyhow!("no deleted group {group}"))?;
        let seq = self.next_seq();
        let mut g = self.deleted_groups.remove(&id).expect("group");
        g.deleted_date_time = None;
        g.changed = seq;
        self.groups.insert(id.clone(), g);
        self.group_tombstones.retain(|t| t.id != id);
        Ok(())
    }

    /// Adds a live user or group (by id, UPN or group mail) to a live group. Cycles are
    /// allowed, as in Entra; a group cannot hold itself.
    pub fn add_member(&mut self, group: &str, member: &str) -> anyhow::Result<()> {
        let gid = self.live_group_id(group)?;
        let (mid, _) = self
            .any_object(member)
            .filter(|(id, _)| self.live_kind(id).is_some())
            .ok_or_else(|| anyhow!("no user or group {member}"))?;
        if mid == gid {
            bail!("a group cannot be a member of itself");
        }
        if self.groups[&gid].members.contains(&mid) {
            bail!("{member} is already a member of {group}");
        }
        let seq = self.next_seq();
        let g = self.groups.get_mut(&gid).expect("group");
        g.members.push(mid.clone());
        g.member_log.push((seq, mid, true));
        Ok(())
    }

    /// Removes a direct member from a live group.
    pub fn remove_member(&mut self, group: &str, member: &str) -> anyhow::Result<()> {
        let gid = self.live_group_id(group)?;
        let (mid, _) = self
            .any_object(member)
            .ok_or_else(|| anyhow!("no user or group {member}"))?;
        if !self.groups[&gid].members.contains(&mid) {
            bail!("{member} is not a member of {group}");
        }
        let seq = self.next_seq();
        let g = self.groups.get_mut(&gid).expect("group");
        g.members.retain(|m| *m != mid);
        g.member_log.push((seq, mid, false));
        Ok(())
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A stable GUID-shaped id for fixture objects that have none: the first 16 bytes of the
/// SHA-256 of the name, so a fixture loads to the same ids every time.
fn derived_id(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.to_lowercase().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_a_fixture_round_trips() {
        let a = Directory::generate(200, 30, 5);
        let b = Directory::generate(200, 30, 5);
        assert_eq!(a.to_json(), b.to_json());
        assert_ne!(a.to_json(), Directory::generate(200, 30, 6).to_json());
        let c = Directory::from_json(&a.to_json()).unwrap();
        assert_eq!(c.to_json(), a.to_json());
        assert_eq!(a.users().count(), 200);
        assert!(a.users().any(|u| u.user_type == UserType::Guest));
    }

    #[test]
    fn a_cycle_does_not_loop_and_deleted_members_are_hidden_until_restored() {
        let mut d = Directory::generate(50, 5, 1);
        let ids: Vec<String> = d.groups().map(|g| g.id.clone()).collect();
        let t = d.transitive_members(&ids[0]);
        assert!(!t.iter().any(|(id, _)| *id == ids[0]));
        let user = d.users().nth(3).unwrap().id.clone();
        let g = d.create_group("Temp", Some("temp@example.com")).unwrap();
        d.add_member(&g, &user).unwrap();
        assert!(d.add_member(&g, &user).is_err());
        d.delete_user(&user).unwrap();
        assert!(d.direct_members(&g).is_empty());
        d.restore_user(&user).unwrap();
        assert_eq!(d.direct_members(&g).len(), 1);
        assert!(d.rename_upn(&user, "x@nowhere.org").is_err());
    }
}
