//! Google's admin activity log (Reports API `activities.list`, `applicationName=admin`) read as
//! hints for an incremental sync: which addresses and groups to look at again, never what is
//! true. The wire facts are `shared/reference/google-reports-api.md`; the points that shape this
//! module:
//!
//! - events name addresses **at the time of the event**, never ids — so each named address is
//!   re-read from the Directory API (a rename names the old and the new address: both);
//! - a membership event's `USER_EMAIL` may be a nested group's address;
//! - a CSV upload (`BULK_UPLOAD`, `GROUP_MEMBER_BULK_UPLOAD`) and an org-unit rename or move name
//!   no object: only a full sync can tell what changed;
//! - Google renames events and adds new ones without notice: an unknown event that names an
//!   address or a group is looked at like a known one, never ignored silently;
//! - the log lags and releases events out of order, so the reader re-reads an overlap window
//!   and skips the activities it has already applied, by `(id.time, id.uniqueQualifier)`.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The scope `activities.list` needs, besides the three Directory scopes of a full sync. An
/// administrator adds it to the service account's domain-wide delegation.
pub const AUDIT_SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";

/// One page of `activities.list`. `items` is absent when nothing matched.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitiesPage {
    #[serde(default)]
    pub items: Vec<Activity>,
    pub next_page_token: Option<String>,
}

/// One logged activity.
#[derive(Clone, Debug, Deserialize)]
pub struct Activity {
    pub id: ActivityId,
    /// Usually one; every one is read. Absent rather than empty on some activities.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// `id`: when the change was made and a qualifier that tells apart activities of the same time.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityId {
    pub time: DateTime<Utc>,
    /// An int64 sent as a string, often negative: kept as the string it is.
    pub unique_qualifier: String,
}

/// One event of an activity.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    pub name: String,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

/// An event parameter. Admin user and group events carry strings in `value`; the other value
/// fields are not read, and a parameter may come with a name and no value.
#[derive(Clone, Debug, Deserialize)]
pub struct Parameter {
    pub name: String,
    pub value: Option<String>,
}

impl Event {
    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// What identifies an activity for de-duplication across overlapping reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize)]
pub struct ActivityKey {
    pub time: DateTime<Utc>,
    pub unique_qualifier: String,
}

impl Activity {
    pub fn key(&self) -> ActivityKey {
        ActivityKey {
            time: self.id.time,
            unique_qualifier: self.id.unique_qualifier.clone(),
        }
    }
}

/// What the new activities of a read point at.
#[derive(Debug, Default, PartialEq)]
pub struct Touched {
    /// Lower-cased addresses to re-read: users (by primary address or alias) and the members
    /// named by membership events, which may be users or nested groups.
    pub addresses: BTreeSet<String>,
    /// Lower-cased addresses of groups whose members changed (or that were created, renamed
    /// or deleted): their members are re-read, and so are those of every sync group that
    /// reaches them.
    pub groups: BTreeSet<String>,
    /// Lower-cased addresses of groups created, deleted or renamed (old and new address): a
    /// sync group among them changes what `sync_groups` resolves to.
    pub group_changes: BTreeSet<String>,
    /// Lower-cased addresses of users deleted: Google drops a deleted user from every group
    /// without a membership event, so the groups that held it are re-read.
    pub deleted_users: BTreeSet<String>,
    /// Why the log cannot be trusted for this window: a full sync is needed instead. The
    /// first such event, named.
    pub fallback: Option<String>,
    /// The activities read that were not applied before, oldest first.
    pub new: Vec<ActivityKey>,
}

/// Events that name no object while changing many: only a full sync can follow them.
const NAMES_NOBODY: &[&str] = &[
    "BULK_UPLOAD",
    "USERS_BULK_UPLOAD",
    "GROUP_MEMBER_BULK_UPLOAD",
    // A renamed or moved organisational unit changes every user below it, with no per-user
    // event.
    "EDIT_ORG_UNIT_NAME",
    "MOVE_ORG_UNIT",
];

/// Events that change nothing dirsync mirrors (passwords, second factors, delivery settings,
/// downloads): not worth a Directory call.
fn ignorable(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "CHANGE_PASSWORD",
        "ENFORCE_STRONG_AUTHENTICATION",
        "CHANGE_TWO_STEP",
        "TURN_OFF_2_STEP",
        "GENERATE_2SV",
        "REVOKE_2SV",
        "RESET_SIGNIN_COOKIES",
        "UPDATE_GROUP_MEMBER_DELIVERY_SETTINGS",
        "GROUP_LIST_DOWNLOAD",
        "GROUP_MEMBERS_DOWNLOAD",
        "CHANGE_GROUP_SETTING",
        "CHANGE_GROUP_DESCRIPTION",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Collects what the activities not in `applied` point at.
pub fn touched<'a>(
    activities: impl IntoIterator<Item = &'a Activity>,
    applied: &HashSet<ActivityKey>,
) -> Touched {
    let mut t = Touched::default();
    let mut fresh: Vec<&Activity> = activities
        .into_iter()
        .filter(|a| !applied.contains(&a.key()))
        .collect();
    fresh.sort_by_key(|a| a.key());
    fresh.dedup_by_key(|a| a.key());
    let lower = |s: &str| s.to_lowercase();
    for a in fresh {
        t.new.push(a.key());
        for e in &a.events {
            let name = e.name.as_str();
            if NAMES_NOBODY.contains(&name) {
                t.fallback.get_or_insert_with(|| {
                    format!("the admin log has a {name} event, which names no user or group")
                });
                continue;
            }
            if ignorable(name) {
                continue;
            }
            let user = e.parameter("USER_EMAIL");
            let group = e.parameter("GROUP_EMAIL");
            if let Some(g) = group {
                t.groups.insert(lower(g));
                if matches!(name, "CREATE_GROUP" | "DELETE_GROUP" | "CHANGE_GROUP_EMAIL") {
                    t.group_changes.insert(lower(g));
                }
                if name == "CHANGE_GROUP_EMAIL" {
                    if let Some(new) = e.parameter("NEW_VALUE") {
                        t.groups.insert(lower(new));
                        t.group_changes.insert(lower(new));
                    }
                }
            }
            if let Some(u) = user {
                t.addresses.insert(lower(u));
                if name == "DELETE_USER" {
                    t.deleted_users.insert(lower(u));
                }
                if name == "RENAME_USER" {
                    if let Some(new) = e.parameter("NEW_VALUE") {
                        t.addresses.insert(lower(new));
                    }
                }
            }
            if let Some(alias) = e.parameter("USER_NICKNAME") {
                t.addresses.insert(lower(alias));
            }
            if user.is_none() && group.is_none() && name.contains("USER") {
                // A user event that names no user (a new event, or a changed one): what it
                // changed cannot be found from the log.
                t.fallback.get_or_insert_with(|| {
                    format!("the admin log has a {name} event that names no user")
                });
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(items: serde_json::Value) -> Vec<Activity> {
        let p: ActivitiesPage =
            serde_json::from_value(json!({"kind": "admin#reports#activities", "items": items}))
                .unwrap();
        p.items
    }

    fn activity(time: &str, q: &str, name: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let params: Vec<_> = params
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        json!({"id": {"time": time, "uniqueQualifier": q, "applicationName": "admin"},
               "events": [{"type": "USER_SETTINGS", "name": name, "parameters": params}]})
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_page_without_items_is_empty_and_ids_stay_strings() {
        let p: ActivitiesPage =
            serde_json::from_str(r#"{"kind":"admin#reports#activities","etag":"\"x\""}"#).unwrap();
        assert!(p.items.is_empty() && p.next_page_token.is_none());
        let a = page(json!([activity(
            "2026-03-02T10:15:07.482Z",
            "-8375579481294953117",
            "SUSPEND_USER",
            &[("USER_EMAIL", "Ada@Example.com")]
        )]));
        assert_eq!(a[0].id.unique_qualifier, "-8375579481294953117");
    }

    #[test]
    fn renames_name_both_addresses_and_memberships_name_group_and_member() {
        let a = page(json!([
            activity(
                "2026-03-02T10:00:00.000Z",
                "1",
                "RENAME_USER",
                &[
                    ("USER_EMAIL", "ada@example.com"),
                    ("NEW_VALUE", "ada.l@example.com")
                ]
            ),
            activity(
                "2026-03-02T10:00:01.000Z",
                "2",
                "ADD_GROUP_MEMBER",
                &[
                    ("GROUP_EMAIL", "Staff@example.com"),
                    ("USER_EMAIL", "team@example.com")
                ]
            ),
            activity(
                "2026-03-02T10:00:02.000Z",
                "3",
                "CHANGE_GROUP_EMAIL",
                &[
                    ("GROUP_EMAIL", "team@example.com"),
                    ("NEW_VALUE", "crew@example.com")
                ]
            ),
            activity(
                "2026-03-02T10:00:03.000Z",
                "4",
                "ADD_NICKNAME",
                &[
                    ("USER_EMAIL", "bob@example.com"),
                    ("USER_NICKNAME", "rob@example.com")
                ]
            ),
            activity(
                "2026-03-02T10:00:04.000Z",
                "5",
                "CHANGE_PASSWORD",
                &[("USER_EMAIL", "eve@example.com")]
            ),
            activity(
                "2026-03-02T10:00:05.000Z",
                "6",
                "SOME_NEW_EVENT_2027",
                &[("USER_EMAIL", "new@example.com")]
            ),
        ]));
        let t = touched(&a, &HashSet::new());
        assert_eq!(
            t.addresses,
            set(&[
                "ada@example.com",
                "ada.l@example.com",
                "team@example.com",
                "bob@example.com",
                "rob@example.com",
                "new@example.com"
            ])
        );
        assert_eq!(
            t.groups,
            set(&["staff@example.com", "team@example.com", "crew@example.com"])
        );
        assert_eq!(t.fallback, None);
        assert_eq!(t.new.len(), 6);
    }

    #[test]
    fn events_already_applied_and_repeats_are_skipped() {
        let a = page(json!([
            activity(
                "2026-03-02T10:00:00.000Z",
                "1",
                "SUSPEND_USER",
                &[("USER_EMAIL", "a@example.com")]
            ),
            activity(
                "2026-03-02T10:00:00.000Z",
                "2",
                "SUSPEND_USER",
                &[("USER_EMAIL", "b@example.com")]
            ),
            activity(
                "2026-03-02T10:00:00.000Z",
                "2",
                "SUSPEND_USER",
                &[("USER_EMAIL", "b@example.com")]
            ),
        ]));
        let applied: HashSet<ActivityKey> = [a[0].key()].into();
        let t = touched(&a, &applied);
        assert_eq!(t.addresses, set(&["b@example.com"]));
        assert_eq!(t.new, vec![a[1].key()]);
    }

    #[test]
    fn bulk_uploads_org_unit_moves_and_user_events_naming_nobody_need_a_full_sync() {
        for (name, params) in [
            (
                "BULK_UPLOAD",
                vec![("BULK_UPLOAD_TOTAL_USERS_NUMBER", "40")],
            ),
            (
                "GROUP_MEMBER_BULK_UPLOAD",
                vec![("GROUP_MEMBER_BULK_UPLOAD_TOTAL_NUMBER", "3")],
            ),
            (
                "MOVE_ORG_UNIT",
                vec![("ORG_UNIT_NAME", "/Staff"), ("NEW_VALUE", "/Old")],
            ),
            ("SUSPEND_USER", vec![]),
        ] {
            let a = page(json!([activity(
                "2026-03-02T10:00:00.000Z",
                "1",
                name,
                &params
            )]));
            let t = touched(&a, &HashSet::new());
            assert!(
                t.fallback.as_deref().is_some_and(|f| f.contains(name)),
                "{name}: {t:?}"
            );
        }
    }
}

/// The reader against the Google emulator, which logs what Google logs for each change.
#[cfg(test)]
mod emulator_tests {
    use super::*;
    use crate::google::{Account, ClientConfig, DirectoryClient, GoogleError, ServiceAccountKey};
    use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, READONLY_SCOPES};

    fn client(emu: &Emulator) -> DirectoryClient {
        let key = ServiceAccountKey::parse(emu.service_account_key_json().as_bytes()).unwrap();
        let mut config =
            ClientConfig::new(key, emu.base_url(), "admin@example.com", Account::default());
        config.token_url = emu.token_uri();
        DirectoryClient::new(config).unwrap()
    }

    #[tokio::test]
    async fn changes_in_the_directory_are_read_back_as_touched_addresses_and_groups() {
        let emu = Emulator::start(EmulatorOptions::with_directory(Directory::generate(
            40, 4, 3,
        )))
        .await
        .unwrap();
        let c = emu.control();
        let dir = c.directory();
        let mut users = dir.users().filter(|u| !u.is_admin);
        let (a, b) = (
            users.next().unwrap().primary_email.clone(),
            users.next().unwrap().primary_email.clone(),
        );
        let group = dir.groups().next().unwrap().email.clone();
        let start = Utc::now() - chrono::Duration::seconds(5);
        c.rename_user(&a, "renamed@example.com").unwrap();
        c.suspend_user(&b, true).unwrap();
        c.remove_member(&group, &b).ok();
        let client = client(&emu);
        let all = client
            .activities(start, Utc::now() + chrono::Duration::seconds(1))
            .collect_all()
            .await
            .unwrap();
        assert!(all.len() >= 3, "{all:?}");
        let t = touched(&all, &HashSet::new());
        assert!(t.addresses.contains(&a.to_lowercase()));
        assert!(t.addresses.contains("renamed@example.com"));
        assert!(t.addresses.contains(&b.to_lowercase()));
        assert_eq!(t.fallback, None);
        // Read again with the first read applied: nothing new.
        let applied: HashSet<ActivityKey> = t.new.into_iter().collect();
        let again = client
            .activities(start, Utc::now() + chrono::Duration::seconds(1))
            .collect_all()
            .await
            .unwrap();
        assert!(touched(&again, &applied).new.is_empty());
        // The re-read confirms what the events only hint at.
        assert!(client
            .get_user("renamed@example.com")
            .await
            .unwrap()
            .is_some());
        assert!(
            client.get_user(&a).await.unwrap().is_none(),
            "the old address is gone"
        );
        assert!(client.get_user(&b).await.unwrap().unwrap().suspended);
    }

    #[tokio::test]
    async fn without_the_audit_scope_the_log_is_refused_naming_it_and_listings_still_work() {
        let emu = Emulator::start(EmulatorOptions::with_directory(Directory::generate(
            10, 1, 3,
        )))
        .await
        .unwrap();
        emu.control()
            .set_delegation(&emu.service_account().client_id, &READONLY_SCOPES);
        let client = client(&emu);
        let err = client
            .activities(Utc::now() - chrono::Duration::hours(1), Utc::now())
            .collect_all()
            .await
            .unwrap_err();
        // The emulator, like Google, refuses to issue a token for a scope not granted.
        assert!(
            matches!(&err, GoogleError::UnauthorizedClient { scopes, .. } if scopes == AUDIT_SCOPE),
            "{err:?}"
        );
        assert!(format!("{err}").contains(AUDIT_SCOPE), "{err}");
        assert_eq!(client.list_users().await.unwrap().len(), 10);
    }
}
