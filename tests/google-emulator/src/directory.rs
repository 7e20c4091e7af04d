//! The emulated Workspace account: users, groups and members, indexed for fast lookups.
//!
//! Users and groups are kept in `BTreeMap`s keyed by their id, which gives the Directory API a
//! stable listing order that survives renames; one `HashMap` indexes every address (primary,
//! alias, non-editable alias) of users and groups, so lookups by any address are O(1) and an
//! address belongs to at most one object, as in Google.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::activity::{self, Activity};

/// The type of a group member, as in members.list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberType {
    /// A user of the account.
    User,
    /// A nested group.
    Group,
    /// Everyone in the account (no `email`).
    Customer,
    /// An address outside the account.
    External,
}

impl MemberType {
    /// The wire name (`USER`, `GROUP`, `CUSTOMER`, `EXTERNAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::User => "USER",
            MemberType::Group => "GROUP",
            MemberType::Customer => "CUSTOMER",
            MemberType::External => "EXTERNAL",
        }
    }
}

/// The role of a group member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Owner (also a member).
    Owner,
    /// Manager (also a member).
    Manager,
    /// Plain member.
    #[default]
    Member,
}

impl Role {
    /// The wire name (`OWNER`, `MANAGER`, `MEMBER`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Manager => "MANAGER",
            Role::Member => "MEMBER",
        }
    }
}

fn root_ou() -> String {
    "/".to_string()
}
fn default_creation_time() -> String {
    "2020-01-01T00:00:00.000Z".to_string()
}
fn never_logged_in() -> String {
    "1970-01-01T00:00:00.000Z".to_string()
}
fn yes() -> bool {
    true
}

/// One Workspace user. Field names in the fixture are Google's (camelCase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Numeric string id; generated from the e-mail address when absent or empty in a fixture.
    #[serde(default)]
    pub id: String,
    /// Primary e-mail address.
    pub primary_email: String,
    /// Given name.
    #[serde(default)]
    pub given_name: String,
    /// Family name.
    #[serde(default)]
    pub family_name: String,
    /// Super administrator (`isAdmin`).
    #[serde(default)]
    pub is_admin: bool,
    /// Suspended users keep their data but cannot sign in.
    #[serde(default)]
    pub suspended: bool,
    /// `ADMIN`, `WEB_LOGIN_REQUIRED`, ...; reported only while suspended (default `ADMIN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension_reason: Option<String>,
    /// Archived users (an "Archived User" licence).
    #[serde(default)]
    pub archived: bool,
    /// Editable aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Non-editable aliases (domain aliases, `...test-google-a.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_editable_aliases: Vec<String>,
    /// Organisational unit path.
    #[serde(default = "root_ou")]
    pub org_unit_path: String,
    /// RFC 3339 creation time.
    #[serde(default = "default_creation_time")]
    pub creation_time: String,
    /// RFC 3339 last login; `1970-01-01T00:00:00.000Z` for never.
    #[serde(default = "never_logged_in")]
    pub last_login_time: String,
    /// Set on users removed with `delete_user` (listed only with `showDeleted=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<String>,
}

impl User {
    fn new(id: String, primary_email: &str, given: &str, family: &str) -> User {
        User {
            id,
            primary_email: primary_email.to_string(),
            given_name: given.to_string(),
            family_name: family.to_string(),
            is_admin: false,
            suspended: false,
            suspension_reason: None,
            archived: false,
            aliases: Vec::new(),
            non_editable_aliases: Vec::new(),
            org_unit_path: root_ou(),
            creation_time: default_creation_time(),
            last_login_time: never_logged_in(),
            deletion_time: None,
        }
    }

    /// `givenName familyName`, as Google builds `name.fullName`.
    pub fn full_name(&self) -> String {
        match (self.given_name.is_empty(), self.family_name.is_empty()) {
            (false, false) => format!("{} {}", self.given_name, self.family_name),
            (false, true) => self.given_name.clone(),
            (true, false) => self.family_name.clone(),
            (true, true) => String::new(),
        }
    }

    fn addresses(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.primary_email)
            .chain(self.aliases.iter())
            .chain(self.non_editable_aliases.iter())
    }
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Id of the user or group, the customer id for `CUSTOMER`; derived from the address for
    /// `EXTERNAL`. May be omitted in a fixture.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Address of the member (absent for `CUSTOMER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Member type; in a fixture, inferred from `email` when omitted.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MemberType>,
    /// Role, default `MEMBER`.
    #[serde(default)]
    pub role: Role,
}

impl Member {
    /// The member type (always set once the member is in a [`Directory`]).
    pub fn member_type(&self) -> MemberType {
        self.kind.unwrap_or(MemberType::User)
    }
}

/// One group. Members are keyed by member id (the listing order of members.list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Opaque id (e.g. `01rvwp1q1gini8q`); generated when absent.
    #[serde(default)]
    pub id: String,
    /// Group address.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Editable aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Non-editable aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_editable_aliases: Vec<String>,
    /// `adminCreated`.
    #[serde(default = "yes")]
    pub admin_created: bool,
    /// Direct members (in the fixture: a list).
    #[serde(default, with = "members_as_list")]
    pub members: BTreeMap<String, Member>,
}

mod members_as_list {
    use super::Member;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Member>, s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<&Member> = m.values().collect();
        list.serialize(s)
    }

    /// Members are keyed later, once ids are resolved; keep them under placeholder keys.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Member>, D::Error> {
        let list = Vec::<Member>::deserialize(d)?;
        Ok(list
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("\u{0}{i:08}"), m))
            .collect())
    }
}

impl Group {
    fn addresses(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.email)
            .chain(self.aliases.iter())
            .chain(self.non_editable_aliases.iter())
    }
}

/// What an address belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A user, by id.
    User(String),
    /// A group, by id.
    Group(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fixture {
    domain: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    deleted_users: Vec<User>,
    #[serde(default)]
    groups: Vec<Group>,
}

/// A Workspace account: users, groups and their members.
///
/// # JSON fixture format
///
/// ```json
/// {
///   "domain": "example.com",
///   "customerId": "C01abcdef",
///   "users": [
///     {"id": "100000000000000000001", "primaryEmail": "admin@example.com",
///      "givenName": "Ada", "familyName": "Admin", "isAdmin": true},
///     {"primaryEmail": "bob@example.com", "givenName": "Bob", "familyName": "Builder",
///      "aliases": ["robert@example.com"], "nonEditableAliases": ["bob@example.com.test-google-a.com"],
///      "suspended": true, "suspensionReason": "ADMIN", "archived": false,
///      "orgUnitPath": "/Staff", "creationTime": "2021-03-04T05:06:07.000Z",
///      "lastLoginTime": "1970-01-01T00:00:00.000Z"}
///   ],
///   "groups": [
///     {"id": "01abcdefghijklm", "email": "staff@example.com", "name": "Staff",
///      "description": "", "aliases": [], "adminCreated": true,
///      "members": [
///        {"email": "bob@example.com", "role": "OWNER"},
///        {"email": "team@example.com", "type": "GROUP"},
///        {"email": "partner@other.org", "type": "EXTERNAL"},
///        {"type": "CUSTOMER"}
///      ]}
///   ]
/// }
/// ```
///
/// Only `domain`, each user's `primaryEmail` and each group's `email` are required. Missing ids
/// are derived from the address (stable across loads); `customerId` defaults to one derived from
/// the domain. A member's `type` is inferred from its `email` (a user, a group of the fixture, or
/// else `EXTERNAL`); `role` defaults to `MEMBER`; member `id`s are filled in. Every address is
/// unique across users and groups (case-insensitive); a member must refer to an existing user
/// or group unless it is `EXTERNAL`. `deletedUsers` (optional) are listed only with
/// `showDeleted=true`. [`Directory::to_json`] writes the same format, fully resolved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "Fixture", try_from = "Fixture")]
pub struct Directory {
    domain: String,
    customer_id: String,
    users: BTreeMap<String, User>,
    deleted_users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    /// Lower-cased address → owner.
    addresses: HashMap<String, Owner>,
    /// Bumped on every change; used in etags.
    generation: u64,
    /// The admin activity log of the changes made through the change methods, oldest first. Not
    /// part of the fixture: loading a directory logs nothing, as importing history would not.
    log: Vec<Activity>,
}

impl From<Directory> for Fixture {
    fn from(d: Directory) -> Fixture {
        Fixture {
            domain: d.domain,
            customer_id: d.customer_id,
            users: d.users.into_values().collect(),
            deleted_users: d.deleted_users.into_values().collect(),
            groups: d.groups.into_values().collect(),
        }
    }
}

impl TryFrom<Fixture> for Directory {
    type Error = anyhow::Error;

    fn try_from(f: Fixture) -> anyhow::Result<Directory> {
        if f.domain.trim().is_empty() {
            bail!("fixture: `domain` is required");
        }
        let mut d = Directory::bare(&f.domain);
        if !f.customer_id.is_empty() {
            d.customer_id = f.customer_id;
        }
        for mut u in f.users {
            if u.id.is_empty() {
                u.id = numeric_id(&u.primary_email.to_lowercase());
            }
            d.insert_user(u)?;
        }
        for mut u in f.deleted_users {
            if u.id.is_empty() {
                u.id = numeric_id(&u.primary_email.to_lowercase());
            }
            if u.deletion_time.is_none() {
                u.deletion_time = Some(now_rfc3339());
            }
            d.deleted_users.insert(u.id.clone(), u);
        }
        // Groups first without members, so that members can refer to any group.
        let mut pending = Vec::new();
        for mut g in f.groups {
            if g.id.is_empty() {
                g.id = group_id(&g.email.to_lowercase());
            }
            let members = std::mem::take(&mut g.members);
            let email = g.email.clone();
            d.insert_group(g)?;
            pending.push((email, members));
        }
        for (group_email, members) in pending {
            for m in members.into_values() {
                let kind = m.kind;
                let target = m.email.clone().unwrap_or_default();
                d.insert_member(&group_email, &target, kind, m.role, non_empty(m.id))
                    .with_context(|| format!("fixture: group {group_email}"))?;
            }
        }
        Ok(d)
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// A 21-digit numeric id (like Google's user ids) derived from `seed`.
fn numeric_id(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut n = u128::from_be_bytes(h[..16].try_into().expect("16 bytes"));
    n %= 100_000_000_000_000_000_000; // 20 digits
    format!("1{n:020}")
}

/// A 15-character group id (like `01rvwp1q1gini8q`) derived from `seed`.
fn group_id(seed: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let h = Sha256::digest(format!("group:{seed}").as_bytes());
    let mut s = String::from("0");
    for b in h.iter().take(14) {
        s.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
    }
    s
}

fn customer_id_for(domain: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let h = Sha256::digest(format!("customer:{domain}").as_bytes());
    let mut s = String::from("C0");
    for b in h.iter().take(7) {
        s.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
    }
    s
}

fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Dennis",
    "Radia", "Ken", "Katherine", "Tim", "Hedy", "Linus", "Annie", "Niklaus", "Sophie", "Guido",
    "Karen", "Bjarne", "Joan", "James", "Mary", "Robert", "Lynn", "Claude", "Shafi", "Leslie",
    "Evelyn", "Butler", "Jean", "Whitfield", "Adele", "Ivan", "Carol", "Tony", "Dorothy", "Peter",
    "Elena", "Marco", "Yuki", "Amara", "Priya", "Omar", "Ingrid", "Mateo", "Chloe", "Kwame",
];
#[rustfmt::skip]
const FAMILY_NAMES: &[&str] = &[
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Hamilton",
    "Ritchie", "Perlman", "Thompson", "Johnson", "Berners-Lee", "Lamarr", "Torvalds", "Easley",
    "Wirth", "Wilson", "van Rossum", "Jones", "Stroustrup", "Clarke", "Gosling", "Keller", "Kahn",
    "Conway", "Shannon", "Goldwasser", "Lamport", "Berezin", "Lampson", "Bartik", "Diffie",
    "Goldberg", "Sutherland", "Shaw", "Hoare", "Vaughan", "Naur", "Rossi", "Bianchi", "Tanaka",
    "Okafor", "Sharma", "Haddad", "Larsen", "Garcia", "Martin", "Mensah",
];
#[rustfmt::skip]
const TEAMS: &[&str] = &[
    "engineering", "sales", "support", "finance", "legal", "marketing", "research", "ops", "design",
    "hr", "security", "it", "product", "data", "facilities",
];

fn email_local(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

impl Directory {
    fn bare(domain: &str) -> Directory {
        let domain = domain.trim().to_lowercase();
        Directory {
            customer_id: customer_id_for(&domain),
            domain,
            users: BTreeMap::new(),
            deleted_users: BTreeMap::new(),
            groups: BTreeMap::new(),
            addresses: HashMap::new(),
            generation: 0,
            log: Vec::new(),
        }
    }

    /// A directory holding only the super administrator `admin@{domain}`.
    pub fn empty(domain: &str) -> Directory {
        let mut d = Directory::bare(domain);
        let email = format!("admin@{}", d.domain);
        let mut admin = User::new(numeric_id(&email), &email, "Ada", "Admin");
        admin.is_admin = true;
        admin.last_login_time = "2024-05-06T07:08:09.000Z".to_string();
        d.insert_user(admin).expect("empty directory");
        d
    }

    /// A deterministic, realistic directory of `users` users (the admin included) and `groups`
    /// groups on `example.com`.
    ///
    /// What it contains: `admin@example.com` (super admin, always); about 12 % of users with
    /// aliases and 30 % with a non-editable `@example.com.test-google-a.com` alias; about 3 %
    /// suspended and 2 % archived (never the admin); a handful of further admins. Groups are
    /// named `<team>-<n>@example.com` with 0–40 direct members (a few large ones with 250–600 so
    /// members.list pages), some `OWNER`/`MANAGER` roles, `EXTERNAL` members in some groups and
    /// nested groups (`GROUP` members, always pointing at a group created later, so there are no
    /// cycles). With 3 or more groups, the last one is `everyone@example.com` with a single
    /// `CUSTOMER` member. The same `(users, groups, seed)` always yields the same directory.
    pub fn generate(users: usize, groups: usize, seed: u64) -> Directory {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut d = Directory::empty("example.com");
        let mut user_ids: Vec<String> = vec![d.users.keys().next().cloned().expect("admin")];
        let mut taken_local: HashMap<String, u32> = HashMap::new();
        for i in 1..users.max(1) {
            let given = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
            let family = FAMILY_NAMES[rng.gen_range(0..FAMILY_NAMES.len())];
            let base = format!("{}.{}", email_local(given), email_local(family));
            let n = taken_local.entry(base.clone()).or_insert(0);
            *n += 1;
            let local = if *n == 1 { base } else { format!("{base}{n}") };
            let email = format!("{local}@example.com");
            let id = d.fresh_user_id(&format!("{seed}:{i}:{email}"));
            let mut u = User::new(id.clone(), &email, given, family);
            let year = rng.gen_range(2015..2025);
            let month = rng.gen_range(1..=12);
            let day = rng.gen_range(1..=28);
            u.creation_time = format!(
                "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60)
            );
            if rng.gen_bool(0.8) {
                u.last_login_time = format!(
                    "2025-{:02}-{:02}T{:02}:{:02}:00.000Z",
                    rng.gen_range(1..=12),
                    rng.gen_range(1..=28),
                    rng.gen_range(0..24),
                    rng.gen_range(0..60)
                );
            }
            let roll: f64 = rng.gen();
            if roll < 0.03 {
                u.suspended = true;
                u.suspension_reason = Some("ADMIN".to_string());
                u.org_unit_path = "/Offboarding".to_string();
            } else if roll < 0.05 {
                u.archived = true;
                u.org_unit_path = "/Archived".to_string();
            } else if roll < 0.052 {
                u.is_admin = true;
            } else {
                u.org_unit_path = format!("/{}", TEAMS[rng.gen_range(0..TEAMS.len())]);
            }
            if rng.gen_bool(0.12) {
                u.aliases.push(format!(
                    "{}{}@example.com",
                    &local[..1],
                    local_after_dot(&local)
                ));
                if rng.gen_bool(0.25) {
                    u.aliases.push(format!("{local}.alt@example.com"));
                }
            }
            if rng.gen_bool(0.3) {
                u.non_editable_aliases
                    .push(format!("{local}@example.com.test-google-a.com"));
            }
            // An alias may collide with another user's address: drop it then.
            u.aliases
                .retain(|a| !d.addresses.contains_key(&a.to_lowercase()));
            u.aliases.dedup();
            d.insert_user(u).expect("generated user");
            user_ids.push(id);
        }

        let group_count = groups;
        let mut group_emails = Vec::with_capacity(group_count);
        for g in 0..group_count {
            let everyone = group_count >= 3 && g == group_count - 1;
            let (email, name) = if everyone {
                ("everyone@example.com".to_string(), "Everyone".to_string())
            } else {
                let team = TEAMS[g % TEAMS.len()];
                (
                    format!("{team}-{}@example.com", g / TEAMS.len() + 1),
                    format!("{} {}", capitalize(team), g / TEAMS.len() + 1),
                )
            };
            let id = d.fresh_group_id(&format!("{seed}:{g}:{email}"));
            let mut group = Group {
                id,
                email: email.clone(),
                name,
                description: if everyone {
                    "Everyone in the account".to_string()
                } else {
                    String::new()
                },
                aliases: Vec::new(),
                non_editable_aliases: vec![format!(
                    "{}@example.com.test-google-a.com",
                    email.split('@').next().unwrap_or_default()
                )],
                admin_created: true,
                members: BTreeMap::new(),
            };
            if rng.gen_bool(0.1) {
                let alias = format!(
                    "{}-alias@example.com",
                    email.split('@').next().unwrap_or_default()
                );
                if !d.addresses.contains_key(&alias) {
                    group.aliases.push(alias);
                }
            }
            d.insert_group(group).expect("generated group");
            group_emails.push(email);
        }
        for (g, email) in group_emails.iter().enumerate() {
            if group_count >= 3 && g == group_count - 1 {
                d.insert_member(email, "", Some(MemberType::Customer), Role::Member, None)
                    .expect("customer member");
                continue;
            }
            let size = if g % 50 == 7 {
                rng.gen_range(250..=600)
            } else {
                rng.gen_range(0..=40)
            }
            .min(user_ids.len());
            for k in 0..size {
                let uid = &user_ids[rng.gen_range(0..user_ids.len())];
                let user_email = d.users[uid].primary_email.clone();
                let role = if k == 0 {
                    Role::Owner
                } else if rng.gen_bool(0.05) {
                    Role::Manager
                } else {
                    Role::Member
                };
                // Duplicates are simply skipped: a user is a member at most once.
                let _ = d.insert_member(email, &user_email, Some(MemberType::User), role, None);
            }
            if rng.gen_bool(0.08) {
                let ext = format!("partner{}@partner-{}.example.org", g, rng.gen_range(1..5));
                let _ =
                    d.insert_member(email, &ext, Some(MemberType::External), Role::Member, None);
            }
            // Nested groups point "forward" only, so the graph has no cycles.
            let last_nestable = if group_count >= 3 {
                group_count - 1
            } else {
                group_count
            };
            if g + 1 < last_nestable && rng.gen_bool(0.15) {
                let child = &group_emails[rng.gen_range(g + 1..last_nestable)];
                let _ = d.insert_member(email, child, Some(MemberType::Group), Role::Member, None);
            }
        }
        d
    }

    /// Parses the JSON fixture format (see the type documentation).
    pub fn from_json(s: &str) -> anyhow::Result<Directory> {
        let f: Fixture = serde_json::from_str(s).context("fixture is not valid JSON")?;
        Directory::try_from(f)
    }

    /// Writes the JSON fixture format.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&Fixture::from(self.clone())).expect("serializable")
    }

    /// The primary domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The customer id (what `my_customer` stands for).
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }

    /// Changes the customer id.
    pub fn set_customer_id(&mut self, id: &str) {
        self.customer_id = id.to_string();
        self.touch();
    }

    /// A counter bumped on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn touch(&mut self) {
        self.generation += 1;
    }

    /// Logs an admin activity for a change just made, by the first super administrator.
    fn record(&mut self, name: &'static str, parameters: Vec<(&'static str, String)>) {
        let (actor_email, actor_profile_id) = self
            .users
            .values()
            .find(|u| u.is_admin)
            .map(|u| (u.primary_email.clone(), u.id.clone()))
            .unwrap_or_else(|| (format!("admin@{}", self.domain), numeric_id("admin")));
        self.log.push(Activity {
            time: activity::now_ms(),
            unique_qualifier: rand::random(),
            actor_email,
            actor_profile_id,
            event_type: activity::event_type(name),
            name,
            parameters,
        });
    }

    /// The admin activity log, oldest first.
    pub fn activities(&self) -> &[Activity] {
        &self.log
    }

    /// Takes over the activity log of `previous`, the directory this one replaces wholesale,
    /// dropping this one's own (the changes that built it are its starting state, not history).
    pub(crate) fn take_log_of(&mut self, previous: &mut Directory) {
        self.log = std::mem::take(&mut previous.log);
    }

    /// Forgets the activity log: the directory as it is now is where the log starts.
    pub(crate) fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Number of (not deleted) users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Number of direct memberships over all groups.
    pub fn member_count(&self) -> usize {
        self.groups.values().map(|g| g.members.len()).sum()
    }

    /// Users in listing order (by id).
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Users by id (the listing order).
    pub fn users_by_id(&self) -> &BTreeMap<String, User> {
        &self.users
    }

    /// Deleted users by id.
    pub fn deleted_users_by_id(&self) -> &BTreeMap<String, User> {
        &self.deleted_users
    }

    /// Groups in listing order (by id).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Groups by id (the listing order).
    pub fn groups_by_id(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    /// Who owns an address (case-insensitive).
    pub fn owner_of(&self, address: &str) -> Option<&Owner> {
        self.addresses.get(&address.to_lowercase())
    }

    /// A user by id, primary e-mail or alias.
    pub fn user(&self, key: &str) -> Option<&User> {
        if let Some(u) = self.users.get(key) {
            return Some(u);
        }
        match self.owner_of(key)? {
            Owner::User(id) => self.users.get(id),
            Owner::Group(_) => None,
        }
    }

    /// A group by id, e-mail or alias.
    pub fn group(&self, key: &str) -> Option<&Group> {
        if let Some(g) = self.groups.get(key) {
            return Some(g);
        }
        match self.owner_of(key)? {
            Owner::Group(id) => self.groups.get(id),
            Owner::User(_) => None,
        }
    }

    /// Addresses of all super admins.
    pub fn admin_emails(&self) -> Vec<String> {
        self.users
            .values()
            .filter(|u| u.is_admin)
            .map(|u| u.primary_email.clone())
            .collect()
    }

    fn user_id_of(&self, key: &str) -> anyhow::Result<String> {
        self.user(key)
            .map(|u| u.id.clone())
            .ok_or_else(|| anyhow!("no user {key}"))
    }

    fn group_id_of(&self, key: &str) -> anyhow::Result<String> {
        self.group(key)
            .map(|g| g.id.clone())
            .ok_or_else(|| anyhow!("no group {key}"))
    }

    fn claim(&mut self, address: &str, owner: Owner) -> anyhow::Result<()> {
        let key = address.trim().to_lowercase();
        if key.is_empty() || !key.contains('@') {
            bail!("{address:?} is not an e-mail address");
        }
        if let Some(existing) = self.addresses.get(&key) {
            if *existing != owner {
                bail!("address {address} is already in use");
            }
        }
        self.addresses.insert(key, owner);
        Ok(())
    }

    fn fresh_user_id(&self, seed: &str) -> String {
        let mut id = numeric_id(seed);
        let mut n = 0;
        while self.users.contains_key(&id) || self.deleted_users.contains_key(&id) {
            n += 1;
            id = numeric_id(&format!("{seed}#{n}"));
        }
        id
    }

    fn fresh_group_id(&self, seed: &str) -> String {
        let mut id = group_id(seed);
        let mut n = 0;
        while self.groups.contains_key(&id) {
            n += 1;
            id = group_id(&format!("{seed}#{n}"));
        }
        id
    }

    fn insert_user(&mut self, u: User) -> anyhow::Result<()> {
        if self.users.contains_key(&u.id) || self.groups.contains_key(&u.id) {
            bail!("duplicate id {}", u.id);
        }
        let owner = Owner::User(u.id.clone());
        let mut claimed = Vec::new();
        for a in u.addresses() {
            if let Err(e) = self.claim(a, owner.clone()) {
                for c in claimed {
                    self.addresses.remove(&c);
                }
                return Err(e);
            }
            claimed.push(a.to_lowercase());
        }
        self.users.insert(u.id.clone(), u);
        self.touch();
        Ok(())
    }

    fn insert_group(&mut self, g: Group) -> anyhow::Result<()> {
        if self.groups.contains_key(&g.id) || self.users.contains_key(&g.id) {
            bail!("duplicate id {}", g.id);
        }
        let owner = Owner::Group(g.id.clone());
        let mut claimed = Vec::new();
        for a in g.addresses() {
            if let Err(e) = self.claim(a, owner.clone()) {
                for c in claimed {
                    self.addresses.remove(&c);
                }
                return Err(e);
            }
            claimed.push(a.to_lowercase());
        }
        self.groups.insert(g.id.clone(), g);
        self.touch();
        Ok(())
    }

    fn insert_member(
        &mut self,
        group_key: &str,
        member: &str,
        kind: Option<MemberType>,
        role: Role,
        id: Option<String>,
    ) -> anyhow::Result<()> {
        let gid = self.group_id_of(group_key)?;
        let kind = match kind {
            Some(k) => k,
            None if member.is_empty() => MemberType::Customer,
            None => match self.owner_of(member) {
                Some(Owner::User(_)) => MemberType::User,
                Some(Owner::Group(_)) => MemberType::Group,
                None => MemberType::External,
            },
        };
        let (mid, email) = match kind {
            MemberType::User => {
                let u = self
                    .user(member)
                    .ok_or_else(|| anyhow!("no user {member}"))?;
                (u.id.clone(), Some(u.primary_email.clone()))
            }
            MemberType::Group => {
                let g = self
                    .group(member)
                    .ok_or_else(|| anyhow!("no group {member}"))?;
                if g.id == gid {
                    bail!("a group cannot be a member of itself");
                }
                (g.id.clone(), Some(g.email.clone()))
            }
            MemberType::Customer => (self.customer_id.clone(), None),
            MemberType::External => {
                if !member.contains('@') {
                    bail!("{member:?} is not an e-mail address");
                }
                if self.owner_of(member).is_some() {
                    bail!("{member} belongs to this account; it cannot be EXTERNAL");
                }
                (
                    id.unwrap_or_else(|| {
                        numeric_id(&format!("external:{}", member.to_lowercase()))
                    }),
                    Some(member.to_string()),
                )
            }
        };
        let group = self.groups.get_mut(&gid).expect("group exists");
        if group.members.contains_key(&mid) {
            bail!(
                "{} is already a member of {}",
                email.as_deref().unwrap_or(&mid),
                group.email
            );
        }
        group.members.insert(
            mid.clone(),
            Member {
                id: mid,
                email,
                kind: Some(kind),
                role,
            },
        );
        self.touch();
        Ok(())
    }

    // ---- changes: each refuses what Google refuses, as an error (callers expect or handle it) ----

    /// Adds a user; returns its id.
    pub fn add_user(
        &mut self,
        primary_email: &str,
        given: &str,
        family: &str,
    ) -> anyhow::Result<String> {
        let id = self.fresh_user_id(&format!(
            "added:{}:{}",
            primary_email.to_lowercase(),
            self.generation
        ));
        self.insert_user(User::new(id.clone(), primary_email, given, family))?;
        self.record(
            "CREATE_USER",
            vec![("USER_EMAIL", primary_email.to_string())],
        );
        Ok(id)
    }

    /// Adds users the way a CSV upload in the Admin console does: all of them, and one
    /// `BULK_UPLOAD` activity that names none of them. Nothing is added when one is refused.
    pub fn bulk_upload(&mut self, users: &[(&str, &str, &str)]) -> anyhow::Result<Vec<String>> {
        let mut next = self.clone();
        let mut ids = Vec::new();
        for (email, given, family) in users {
            let id = next.fresh_user_id(&format!(
                "bulk:{}:{}",
                email.to_lowercase(),
                next.generation
            ));
            next.insert_user(User::new(id.clone(), email, given, family))?;
            next.touch();
            ids.push(id);
        }
        next.record(
            "BULK_UPLOAD",
            vec![
                ("BULK_UPLOAD_TOTAL_USERS_NUMBER", users.len().to_string()),
                ("BULK_UPLOAD_FAIL_USERS_NUMBER", "0".to_string()),
                ("DOMAIN_NAME", next.domain.clone()),
            ],
        );
        *self = next;
        Ok(ids)
    }

    /// Adds an editable alias to a user. Any address already held — by another user, a group,
    /// or this user itself — is refused, as Google refuses it.
    pub fn add_alias(&mut self, user: &str, alias: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        if self.addresses.contains_key(&alias.trim().to_lowercase()) {
            bail!("address {alias} is already in use");
        }
        self.claim(alias, Owner::User(id.clone()))?;
        self.users
            .get_mut(&id)
            .expect("user")
            .aliases
            .push(alias.to_string());
        self.touch();
        let primary = self.users[&id].primary_email.clone();
        self.record(
            "ADD_NICKNAME",
            vec![
                ("USER_EMAIL", primary),
                ("USER_NICKNAME", alias.to_string()),
            ],
        );
        Ok(())
    }

    /// Adds a non-editable alias to a user.
    pub fn add_non_editable_alias(&mut self, user: &str, alias: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        self.claim(alias, Owner::User(id.clone()))?;
        self.users
            .get_mut(&id)
            .expect("user")
            .non_editable_aliases
            .push(alias.to_string());
        self.touch();
        Ok(())
    }

    /// Removes an alias (editable or not) from a user.
    pub fn remove_alias(&mut self, user: &str, alias: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        let before = u.aliases.len() + u.non_editable_aliases.len();
        u.aliases.retain(|a| !a.eq_ignore_ascii_case(alias));
        u.non_editable_aliases
            .retain(|a| !a.eq_ignore_ascii_case(alias));
        if before == u.aliases.len() + u.non_editable_aliases.len() {
            bail!("{user} has no alias {alias}");
        }
        let primary = u.primary_email.clone();
        self.addresses.remove(&alias.to_lowercase());
        self.touch();
        self.record(
            "REMOVE_NICKNAME",
            vec![
                ("USER_EMAIL", primary),
                ("USER_NICKNAME", alias.to_string()),
            ],
        );
        Ok(())
    }

    /// Adds a group; returns its id.
    pub fn add_group(&mut self, email: &str, name: &str) -> anyhow::Result<String> {
        let id = self.fresh_group_id(&format!(
            "added:{}:{}",
            email.to_lowercase(),
            self.generation
        ));
        self.insert_group(Group {
            id: id.clone(),
            email: email.to_string(),
            name: name.to_string(),
            description: String::new(),
            aliases: Vec::new(),
            non_editable_aliases: Vec::new(),
            admin_created: true,
            members: BTreeMap::new(),
        })?;
        self.record("CREATE_GROUP", vec![("GROUP_EMAIL", email.to_string())]);
        Ok(id)
    }

    /// Adds an alias to a group. Google logs no activity for a group alias, and neither does
    /// this.
    pub fn add_group_alias(&mut self, group: &str, alias: &str) -> anyhow::Result<()> {
        let id = self.group_id_of(group)?;
        self.claim(alias, Owner::Group(id.clone()))?;
        self.groups
            .get_mut(&id)
            .expect("group")
            .aliases
            .push(alias.to_string());
        self.touch();
        Ok(())
    }

    /// Adds a member (`member` is ignored for `CUSTOMER`).
    pub fn add_member_with_role(
        &mut self,
        group: &str,
        member: &str,
        kind: MemberType,
        role: Role,
    ) -> anyhow::Result<()> {
        self.insert_member(group, member, Some(kind), role, None)?;
        let params = self.member_event(group, member);
        self.record("ADD_GROUP_MEMBER", params);
        Ok(())
    }

    /// Adds members the way a CSV upload of members does: one `GROUP_MEMBER_BULK_UPLOAD`
    /// activity that names neither the group nor the members. All or nothing.
    pub fn bulk_add_members(
        &mut self,
        group: &str,
        members: &[(&str, MemberType)],
    ) -> anyhow::Result<()> {
        let mut next = self.clone();
        for (member, kind) in members {
            next.insert_member(group, member, Some(*kind), Role::Member, None)?;
        }
        next.record(
            "GROUP_MEMBER_BULK_UPLOAD",
            vec![
                (
                    "GROUP_MEMBER_BULK_UPLOAD_TOTAL_NUMBER",
                    members.len().to_string(),
                ),
                ("GROUP_MEMBER_BULK_UPLOAD_FAILED_NUMBER", "0".to_string()),
            ],
        );
        *self = next;
        Ok(())
    }

    /// `GROUP_EMAIL` and `USER_EMAIL` of a membership event: the group's and the member's
    /// current primary addresses (a nested group's address for a group member; no `USER_EMAIL`
    /// for the whole-customer member).
    fn member_event(&self, group: &str, member: &str) -> Vec<(&'static str, String)> {
        let group_email = self
            .group(group)
            .map(|g| g.email.clone())
            .unwrap_or_else(|| group.to_string());
        let mut params = vec![("GROUP_EMAIL", group_email)];
        let member_email = match self.owner_of(member) {
            Some(Owner::User(id)) => self.users.get(id).map(|u| u.primary_email.clone()),
            Some(Owner::Group(id)) => self.groups.get(id).map(|g| g.email.clone()),
            None if member.contains('@') => Some(member.to_string()),
            None => None,
        };
        if let Some(m) = member_email {
            params.push(("USER_EMAIL", m));
        }
        params
    }

    /// Removes a member by address or id (`CUSTOMER` members by the customer id or `""`).
    pub fn remove_member(&mut self, group: &str, member: &str) -> anyhow::Result<()> {
        let gid = self.group_id_of(group)?;
        let mid = self.member_id_in(&gid, member)?;
        let params = self.member_event(group, member);
        self.groups
            .get_mut(&gid)
            .expect("group")
            .members
            .remove(&mid);
        self.touch();
        self.record("REMOVE_GROUP_MEMBER", params);
        Ok(())
    }

    fn member_id_in(&self, gid: &str, member: &str) -> anyhow::Result<String> {
        let g = &self.groups[gid];
        let found = if member.is_empty() || member == self.customer_id {
            g.members
                .values()
                .find(|m| m.kind == Some(MemberType::Customer))
        } else if let Some(m) = g.members.get(member) {
            Some(m)
        } else {
            g.members.values().find(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(member))
            })
        }
        .or_else(|| {
            // An alias of a user or group member.
            let id = match self.owner_of(member)? {
                Owner::User(id) | Owner::Group(id) => id,
            };
            g.members.get(id)
        });
        found
            .map(|m| m.id.clone())
            .ok_or_else(|| anyhow!("{member} is not a member of {}", g.email))
    }

    /// Changes a user's primary address; the old one is dropped. Google keeps the old address as
    /// an alias, so this is Google's rename followed by the deletion of that alias: both are
    /// changes an administrator makes, and the result is a directory Google can hold. As Google
    /// does, a user cannot be renamed onto an address that is already an alias — its own or
    /// anyone's.
    pub fn rename_user(&mut self, old_primary: &str, new_primary: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(old_primary)?;
        if !self.users[&id]
            .primary_email
            .eq_ignore_ascii_case(new_primary)
            && self
                .addresses
                .contains_key(&new_primary.trim().to_lowercase())
        {
            bail!("address {new_primary} is already in use");
        }
        self.claim(new_primary, Owner::User(id.clone()))?;
        let u = self.users.get_mut(&id).expect("user");
        let old = std::mem::replace(&mut u.primary_email, new_primary.to_string());
        if !old.eq_ignore_ascii_case(new_primary) {
            self.addresses.remove(&old.to_lowercase());
        }
        for g in self.groups.values_mut() {
            if let Some(m) = g.members.get_mut(&id) {
                m.email = Some(new_primary.to_string());
            }
        }
        self.touch();
        if !old.eq_ignore_ascii_case(new_primary) {
            self.record(
                "RENAME_USER",
                vec![
                    ("USER_EMAIL", old.clone()),
                    ("NEW_VALUE", new_primary.to_string()),
                ],
            );
            // Google would keep `old` as an alias; the emulator's rename is that rename followed
            // by the administrator's removal of the alias, so both are logged.
            self.record(
                "REMOVE_NICKNAME",
                vec![
                    ("USER_EMAIL", new_primary.to_string()),
                    ("USER_NICKNAME", old),
                ],
            );
        }
        Ok(())
    }

    /// Renames a group's address.
    pub fn rename_group(&mut self, old_email: &str, new_email: &str) -> anyhow::Result<()> {
        let id = self.group_id_of(old_email)?;
        self.claim(new_email, Owner::Group(id.clone()))?;
        let g = self.groups.get_mut(&id).expect("group");
        let old = std::mem::replace(&mut g.email, new_email.to_string());
        if !old.eq_ignore_ascii_case(new_email) {
            self.addresses.remove(&old.to_lowercase());
        }
        for g in self.groups.values_mut() {
            if let Some(m) = g.members.get_mut(&id) {
                m.email = Some(new_email.to_string());
            }
        }
        self.touch();
        if !old.eq_ignore_ascii_case(new_email) {
            self.record(
                "CHANGE_GROUP_EMAIL",
                vec![("GROUP_EMAIL", old), ("NEW_VALUE", new_email.to_string())],
            );
        }
        Ok(())
    }

    /// Suspends (reason `ADMIN`) or unsuspends a user.
    pub fn set_suspended(&mut self, user: &str, suspended: bool) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        u.suspended = suspended;
        u.suspension_reason = suspended.then(|| "ADMIN".to_string());
        let email = u.primary_email.clone();
        self.touch();
        let name = if suspended {
            "SUSPEND_USER"
        } else {
            "UNSUSPEND_USER"
        };
        self.record(name, vec![("USER_EMAIL", email)]);
        Ok(())
    }

    /// Archives or unarchives a user.
    pub fn set_archived(&mut self, user: &str, archived: bool) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        u.archived = archived;
        let email = u.primary_email.clone();
        self.touch();
        let name = if archived {
            "ARCHIVE_USER"
        } else {
            "UNARCHIVE_USER"
        };
        self.record(name, vec![("USER_EMAIL", email)]);
        Ok(())
    }

    /// Makes a user a super admin or not.
    pub fn set_admin(&mut self, user: &str, admin: bool) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        u.is_admin = admin;
        let email = u.primary_email.clone();
        self.touch();
        let name = if admin {
            "GRANT_ADMIN_PRIVILEGE"
        } else {
            "REVOKE_ADMIN_PRIVILEGE"
        };
        self.record(name, vec![("USER_EMAIL", email)]);
        Ok(())
    }

    /// Changes a user's names.
    pub fn set_name(&mut self, user: &str, given: &str, family: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        let old_given = std::mem::replace(&mut u.given_name, given.to_string());
        let old_family = std::mem::replace(&mut u.family_name, family.to_string());
        let email = u.primary_email.clone();
        self.touch();
        for (name, old, new) in [
            ("CHANGE_FIRST_NAME", old_given, given),
            ("CHANGE_LAST_NAME", old_family, family),
        ] {
            if old != new {
                self.record(
                    name,
                    vec![
                        ("USER_EMAIL", email.clone()),
                        ("NEW_VALUE", new.to_string()),
                        ("OLD_VALUE", old),
                    ],
                );
            }
        }
        Ok(())
    }

    /// Deletes a user: its addresses are freed, it leaves every group, and it is listed from then
    /// on only with `showDeleted=true`.
    pub fn delete_user(&mut self, user: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let mut u = self.users.remove(&id).expect("user");
        for a in u.addresses() {
            self.addresses.remove(&a.to_lowercase());
        }
        for g in self.groups.values_mut() {
            g.members.remove(&id);
        }
        u.deletion_time = Some(now_rfc3339());
        let email = u.primary_email.clone();
        self.deleted_users.insert(id, u);
        self.touch();
        self.record("DELETE_USER", vec![("USER_EMAIL", email)]);
        Ok(())
    }

    /// Restores a deleted user by id (a deleted user's address may be taken by then, so it is
    /// named by id, as Google requires). Its addresses must be free; it is in no group.
    pub fn undelete_user(&mut self, id: &str) -> anyhow::Result<()> {
        let mut u = self
            .deleted_users
            .get(id)
            .cloned()
            .ok_or_else(|| anyhow!("no deleted user {id}"))?;
        u.deletion_time = None;
        let email = u.primary_email.clone();
        self.insert_user(u)?;
        self.deleted_users.remove(id);
        self.touch();
        self.record("UNDELETE_USER", vec![("USER_EMAIL", email)]);
        Ok(())
    }

    /// Moves a user to another organisational unit.
    pub fn move_to_org_unit(&mut self, user: &str, path: &str) -> anyhow::Result<()> {
        let id = self.user_id_of(user)?;
        let u = self.users.get_mut(&id).expect("user");
        let old = std::mem::replace(&mut u.org_unit_path, path.to_string());
        let email = u.primary_email.clone();
        self.touch();
        self.record(
            "MOVE_USER_TO_ORG_UNIT",
            vec![
                ("USER_EMAIL", email),
                ("ORG_UNIT_NAME", old),
                ("NEW_VALUE", path.to_string()),
            ],
        );
        Ok(())
    }

    /// Deletes a group; it also leaves every group it was a member of.
    pub fn delete_group(&mut self, group: &str) -> anyhow::Result<()> {
        let id = self.group_id_of(group)?;
        let g = self.groups.remove(&id).expect("group");
        for a in g.addresses() {
            self.addresses.remove(&a.to_lowercase());
        }
        for other in self.groups.values_mut() {
            other.members.remove(&id);
        }
        self.touch();
        self.record("DELETE_GROUP", vec![("GROUP_EMAIL", g.email.clone())]);
        Ok(())
    }

    /// Adds a member with role `MEMBER` (`member` is ignored for `CUSTOMER`).
    pub fn add_member(
        &mut self,
        group: &str,
        member: &str,
        kind: MemberType,
    ) -> anyhow::Result<()> {
        self.add_member_with_role(group, member, kind, Role::Member)
    }

    /// Whether `member` (a user or group key) belongs to `group` directly or through nested
    /// groups (a `CUSTOMER` member contains every user). `None` when the group or member is
    /// unknown.
    pub fn has_member(&self, group: &str, member: &str) -> Option<bool> {
        let g = self.group(group)?;
        let target = match self.owner_of(member).cloned() {
            Some(Owner::User(id)) | Some(Owner::Group(id)) => id,
            None if self.users.contains_key(member) || self.groups.contains_key(member) => {
                member.to_string()
            }
            None => return None,
        };
        let target_is_user = self.users.contains_key(&target);
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![g.id.clone()];
        while let Some(gid) = stack.pop() {
            if !seen.insert(gid.clone()) {
                continue;
            }
            let Some(g) = self.groups.get(&gid) else {
                continue;
            };
            if g.members.contains_key(&target) {
                return Some(true);
            }
            for m in g.members.values() {
                match m.kind {
                    Some(MemberType::Customer) if target_is_user => return Some(true),
                    Some(MemberType::Group) => stack.push(m.id.clone()),
                    _ => {}
                }
            }
        }
        Some(false)
    }
}

fn local_after_dot(local: &str) -> &str {
    local.split_once('.').map(|(_, b)| b).unwrap_or(local)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_is_deterministic_and_realistic() {
        let a = Directory::generate(800, 60, 3);
        let b = Directory::generate(800, 60, 3);
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(a.user_count(), 800);
        assert_eq!(a.group_count(), 60);
        let admin = a.user("admin@example.com").expect("admin");
        assert!(admin.is_admin);
        assert!(a.users().any(|u| !u.aliases.is_empty()));
        assert!(a.users().any(|u| !u.non_editable_aliases.is_empty()));
        assert!(a
            .users()
            .any(|u| u.suspended && u.suspension_reason.is_some()));
        assert!(a.users().any(|u| u.archived));
        assert!(a.groups().any(|g| g
            .members
            .values()
            .any(|m| m.kind == Some(MemberType::Group))));
        let everyone = a.group("everyone@example.com").expect("everyone");
        assert_eq!(everyone.members.len(), 1);
        assert_eq!(
            everyone.members.values().next().unwrap().kind,
            Some(MemberType::Customer)
        );
        assert!(a.groups().any(|g| g.members.len() > 200), "a group pages");
        let c = Directory::generate(800, 60, 4);
        assert_ne!(a.to_json(), c.to_json());
    }

    #[test]
    fn fixture_round_trips() {
        let a = Directory::generate(50, 8, 1);
        let b = Directory::from_json(&a.to_json()).unwrap();
        assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn minimal_fixture_infers_ids_and_types() {
        let d = Directory::from_json(
            r#"{"domain":"acme.test","users":[{"primaryEmail":"boss@acme.test","isAdmin":true},
                {"primaryEmail":"bob@acme.test","givenName":"Bob"}],
               "groups":[{"email":"all@acme.test","members":[{"email":"bob@acme.test"},
                 {"email":"team@acme.test"},{"email":"x@other.org"},{"type":"CUSTOMER"}]},
                 {"email":"team@acme.test"}]}"#,
        )
        .unwrap();
        let g = d.group("all@acme.test").unwrap();
        let kinds: Vec<_> = g.members.values().map(|m| m.kind.unwrap()).collect();
        assert_eq!(kinds.len(), 4);
        for k in [
            MemberType::User,
            MemberType::Group,
            MemberType::External,
            MemberType::Customer,
        ] {
            assert!(kinds.contains(&k));
        }
        assert_eq!(d.user("bob@acme.test").unwrap().id.len(), 21);
        assert!(Directory::from_json(r#"{"domain":"a.test","users":[{"primaryEmail":"a@a.test"},{"primaryEmail":"A@a.test"}]}"#).is_err());
        assert!(Directory::from_json(r#"{"domain":"a.test","groups":[{"email":"g@a.test","members":[{"email":"nobody@a.test","type":"USER"}]}]}"#).is_err());
    }

    #[test]
    fn renames_and_deletes_keep_indexes_consistent() {
        let mut d = Directory::empty("example.com");
        d.add_user("ann@example.com", "Ann", "A").unwrap();
        d.add_group("g@example.com", "G").unwrap();
        d.add_member("g@example.com", "ann@example.com", MemberType::User)
            .unwrap();
        d.rename_user("ann@example.com", "anna@example.com")
            .unwrap();
        assert!(d.user("ann@example.com").is_none());
        let g = d.group("g@example.com").unwrap();
        assert_eq!(
            g.members.values().next().unwrap().email.as_deref(),
            Some("anna@example.com")
        );
        assert_eq!(
            d.has_member("g@example.com", "anna@example.com"),
            Some(true)
        );
        d.delete_user("anna@example.com").unwrap();
        assert_eq!(d.group("g@example.com").unwrap().members.len(), 0);
        assert_eq!(d.deleted_users_by_id().len(), 1);
        d.add_user("ann@example.com", "Ann", "B").unwrap();
    }
}
