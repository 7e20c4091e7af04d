//! Compact records of what the Directory API lists, and the wire shapes they come from.
//!
//! The records hold only what dirsync uses (they are kept for 100,000 users at a time); the wire
//! structs are deserialized page by page and converted at once.

use serde::Deserialize;
use serde_json::Value;

/// A Workspace user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Google's numeric id: the only stable key (a primary address can change).
    pub id: String,
    /// Primary address.
    pub primary_email: String,
    /// `name.givenName`.
    pub given_name: String,
    /// `name.familyName`.
    pub family_name: String,
    /// `name.fullName`.
    pub full_name: String,
    /// Suspended in Google.
    pub suspended: bool,
    /// Archived in Google.
    pub archived: bool,
    /// Editable aliases.
    pub aliases: Vec<String>,
    /// Non-editable aliases.
    pub non_editable_aliases: Vec<String>,
    /// `emails[].address` (primary and further addresses as Google reports them).
    pub emails: Vec<String>,
}

impl User {
    /// Every address of the user, primary first, without duplicates (case-insensitive).
    pub fn all_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> =
            Vec::with_capacity(1 + self.aliases.len() + self.non_editable_aliases.len());
        for a in std::iter::once(&self.primary_email)
            .chain(&self.aliases)
            .chain(&self.non_editable_aliases)
            .chain(&self.emails)
        {
            if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a.clone());
            }
        }
        out
    }

    /// Suspended or archived: such a user is kept but disabled.
    pub fn is_disabled(&self) -> bool {
        self.suspended || self.archived
    }
}

/// A Workspace group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Google's id.
    pub id: String,
    /// The group's address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Direct members (nested members not counted).
    pub direct_members_count: u64,
}

/// What a group member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberType {
    /// A user of the account.
    User,
    /// A nested group: resolve it (guarding against cycles).
    Group,
    /// Everyone in the account (no address).
    Customer,
    /// An address outside the account.
    External,
    /// A type this client does not know.
    Other,
}

impl MemberType {
    fn parse(s: &str) -> MemberType {
        match s {
            "USER" => MemberType::User,
            "GROUP" => MemberType::Group,
            "CUSTOMER" => MemberType::Customer,
            "EXTERNAL" => MemberType::External,
            _ => MemberType::Other,
        }
    }
}

/// A direct member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The user's or group's id (the customer id for `CUSTOMER`).
    pub id: String,
    /// Address (absent for `CUSTOMER`).
    pub email: Option<String>,
    /// What the member is.
    pub kind: MemberType,
    /// `OWNER`, `MANAGER` or `MEMBER`.
    pub role: String,
    /// `ACTIVE`, `SUSPENDED`, ... (external members may have none).
    pub status: Option<String>,
}

// ---- wire shapes ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    #[serde(default)]
    users: Vec<WireUser>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireName {
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    full_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireUser {
    id: String,
    #[serde(default)]
    primary_email: String,
    #[serde(default)]
    name: WireName,
    #[serde(default)]
    suspended: bool,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    non_editable_aliases: Vec<String>,
    /// Typed "any" in the discovery document: usually `[{address, primary?, type?}]`.
    #[serde(default)]
    emails: Value,
}

impl From<WireUser> for User {
    fn from(w: WireUser) -> User {
        let emails = match w.emails {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|e| match e {
                    Value::Object(mut m) => match m.remove("address") {
                        Some(Value::String(a)) => Some(a),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let full_name = if w.name.full_name.is_empty() {
            format!("{} {}", w.name.given_name, w.name.family_name)
                .trim()
                .to_string()
        } else {
            w.name.full_name
        };
        User {
            id: w.id,
            primary_email: w.primary_email,
            given_name: w.name.given_name,
            family_name: w.name.family_name,
            full_name,
            suspended: w.suspended,
            archived: w.archived,
            aliases: w.aliases,
            non_editable_aliases: w.non_editable_aliases,
            emails,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupsPage {
    #[serde(default)]
    groups: Vec<WireGroup>,
    next_page_token: Option<String>,
}

/// `directMembersCount` is an int64 sent as a string; accept a number too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Count {
    Str(String),
    Num(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireGroup {
    id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    direct_members_count: Option<Count>,
}

impl From<WireGroup> for Group {
    fn from(w: WireGroup) -> Group {
        Group {
            id: w.id,
            email: w.email,
            name: w.name,
            direct_members_count: match w.direct_members_count {
                Some(Count::Str(s)) => s.parse().unwrap_or(0),
                Some(Count::Num(n)) => n,
                None => 0,
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersPage {
    #[serde(default)]
    members: Vec<WireMember>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct WireMember {
    #[serde(default)]
    id: String,
    email: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    role: String,
    status: Option<String>,
}

impl From<WireMember> for Member {
    fn from(w: WireMember) -> Member {
        Member {
            id: w.id,
            email: w.email,
            kind: MemberType::parse(&w.kind),
            role: w.role,
            status: w.status,
        }
    }
}

/// A listing's page on the wire: items plus the token of the next page. (Public but unnameable
/// outside this crate: it only bounds [`Listed`].)
pub trait WirePage: serde::de::DeserializeOwned {
    /// The record a page holds.
    type Item;
    /// Items and `nextPageToken`.
    fn split(self) -> (Vec<Self::Item>, Option<String>);
}

/// What a listing yields: [`User`], [`Group`] or [`Member`].
pub trait Listed: Sized {
    /// The page shape on the wire.
    type Wire: WirePage<Item = Self>;
}

impl Listed for User {
    type Wire = UsersPage;
}

impl Listed for Group {
    type Wire = GroupsPage;
}

impl Listed for Member {
    type Wire = MembersPage;
}

impl WirePage for UsersPage {
    type Item = User;
    fn split(self) -> (Vec<User>, Option<String>) {
        (
            self.users.into_iter().map(User::from).collect(),
            self.next_page_token,
        )
    }
}

impl WirePage for GroupsPage {
    type Item = Group;
    fn split(self) -> (Vec<Group>, Option<String>) {
        (
            self.groups.into_iter().map(Group::from).collect(),
            self.next_page_token,
        )
    }
}

impl Listed for super::activity::Activity {
    type Wire = super::activity::ActivitiesPage;
}

impl WirePage for super::activity::ActivitiesPage {
    type Item = super::activity::Activity;
    fn split(self) -> (Vec<super::activity::Activity>, Option<String>) {
        (self.items, self.next_page_token)
    }
}

impl WirePage for MembersPage {
    type Item = Member;
    fn split(self) -> (Vec<Member>, Option<String>) {
        (
            self.members.into_iter().map(Member::from).collect(),
            self.next_page_token,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_page_reads_google_shapes() {
        let page: UsersPage = serde_json::from_str(
            r#"{"kind":"admin#directory#users","users":[
                {"id":"104331570604379156316","primaryEmail":"ada@example.com",
                 "name":{"givenName":"Ada","familyName":"Lovelace","fullName":"Ada Lovelace"},
                 "suspended":true,"suspensionReason":"ADMIN","archived":false,
                 "emails":[{"address":"ada@example.com","primary":true},{"address":"ada@example.com.test-google-a.com"}],
                 "aliases":["a.lovelace@example.com"],"nonEditableAliases":["ada@example.com.test-google-a.com"]},
                {"id":"2","primaryEmail":"bob@example.com","name":{"givenName":"Bob","familyName":"B"}}],
               "nextPageToken":"abc"}"#,
        )
        .unwrap();
        let (users, next) = page.split();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(users[0].emails.len(), 2);
        assert!(users[0].suspended && users[0].is_disabled());
        assert_eq!(
            users[0].all_addresses(),
            vec![
                "ada@example.com",
                "a.lovelace@example.com",
                "ada@example.com.test-google-a.com"
            ]
        );
        assert_eq!(users[1].full_name, "Bob B");
        assert!(users[1].aliases.is_empty());
        let empty: UsersPage = serde_json::from_str(r#"{"kind":"admin#directory#users"}"#).unwrap();
        assert_eq!(empty.split(), (vec![], None));
    }

    #[test]
    fn groups_and_members_read_google_shapes() {
        let g: GroupsPage =
            serde_json::from_str(r#"{"groups":[{"id":"01x","email":"all@example.com","name":"All","directMembersCount":"3"}]}"#)
                .unwrap();
        assert_eq!(g.split().0[0].direct_members_count, 3);
        let m: MembersPage = serde_json::from_str(
            r#"{"members":[{"id":"C0","type":"CUSTOMER","role":"MEMBER","status":"ACTIVE"},
                           {"id":"9","email":"x@other.org","type":"EXTERNAL","role":"MEMBER"},
                           {"id":"7","email":"g@example.com","type":"GROUP","role":"OWNER","status":"ACTIVE"}]}"#,
        )
        .unwrap();
        let (ms, next) = m.split();
        assert!(next.is_none());
        assert_eq!(ms[0].kind, MemberType::Customer);
        assert_eq!(ms[0].email, None);
        assert_eq!(ms[1].status, None);
        assert_eq!(ms[2].kind, MemberType::Group);
    }
}
