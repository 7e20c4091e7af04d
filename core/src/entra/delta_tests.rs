//! Entra's incremental read against the emulator, in-process: a full read begins change
//! tracking; after changes an incremental read gives the users a fresh full read gives; each
//! reason to fall back; and what it costs in Graph requests.

use std::collections::BTreeMap;

use dirsync_entra_emulator::{Control, Directory, Emulator, Endpoint};

use super::tests::{client, secret_config, start};
use super::*;
use crate::jobs::{JobControl, Progress};
use crate::provider::DirectoryProvider;
use crate::sync::fetch;
use crate::sync::incremental::{self, Outcome};
use crate::sync::plan::RemoteUser;
use crate::sync::snapshot::{ScopeKey, Snapshot, State};

const TENANT: &str = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490";

async fn control() -> JobControl {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    JobControl::for_tests(db)
}

fn key(groups: &[&str]) -> ScopeKey {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    ScopeKey::new(None, None, &groups)
}

/// The users in scope, by id.
type Users = BTreeMap<String, RemoteUser>;

/// What the engine stores after a full sync: the snapshot with the users in scope, and the
/// state with the change marker taken before the read.
async fn full(c: &GraphClient, groups: &[&str]) -> (Snapshot, State, Users) {
    let ctl = control().await;
    let marker = c.change_marker().await.unwrap();
    let began = chrono::Utc::now();
    let sync_groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let fetched = fetch::fetch(c, &sync_groups, &mut Progress::default(), &ctl)
        .await
        .unwrap();
    let users: Users = fetched
        .remote
        .users
        .iter()
        .filter(|u| {
            fetched
                .remote
                .in_scope
                .as_ref()
                .is_none_or(|s| s.contains(u.id.as_str()))
        })
        .map(|u| (u.id.as_str().to_owned(), u.clone()))
        .collect();
    let snap = Snapshot {
        scope_key: key(groups),
        full_read_at: began,
        account_users: fetched.remote.users.len() as u64,
        account_groups: fetched.account_groups,
        users: users.values().cloned().collect(),
        graph: fetched.graph,
    };
    let state = State {
        cursor: Some(began),
        newest_event_at: Some(began),
        change_marker: marker,
        ..State::default()
    };
    (snap, state, users)
}

async fn incremental_read(
    c: &GraphClient,
    snap: Snapshot,
    state: &State,
    groups: &[&str],
) -> Outcome {
    let ctl = control().await;
    incremental::read(
        c,
        state,
        Some(snap),
        &key(groups),
        chrono::Duration::minutes(10),
        &mut Progress::default(),
        &ctl,
    )
    .await
    .unwrap()
}

/// An incremental read that must follow the links; returns the next snapshot and state.
async fn follows(
    c: &GraphClient,
    snap: Snapshot,
    state: &State,
    groups: &[&str],
) -> (Snapshot, State) {
    match incremental_read(c, snap, state, groups).await {
        Outcome::Ready(inc) => {
            let incremental::Incremental {
                snapshot,
                in_scope,
                state,
            } = *inc;
            for u in &snapshot.users {
                assert!(
                    in_scope.as_ref().is_none_or(|s| s.contains(u.id.as_str())),
                    "{u:?} is kept but out of scope"
                );
            }
            (snapshot, state)
        }
        Outcome::Fallback { reason, .. } => panic!("fell back: {reason}"),
    }
}

fn fallback_reason(o: Outcome) -> String {
    match o {
        Outcome::Fallback {
            reason,
            events_unreadable,
        } => {
            assert_eq!(events_unreadable, None);
            reason
        }
        Outcome::Ready(_) => panic!("followed the links"),
    }
}

fn by_id(snap: &Snapshot) -> Users {
    snap.users
        .iter()
        .map(|u| (u.id.as_str().to_owned(), u.clone()))
        .collect()
}

/// Staff (the sync group) holds u1, u2, the nested Team, which holds u3, u4 and Staff (a
/// cycle), and a nested security group without an address, which holds u7; Other holds u5 and
/// u6, outside; u8 is in no group. `pad` more users in no group make a full read cost more.
struct Tenant {
    emu: Emulator,
    ids: BTreeMap<&'static str, String>,
}

impl Tenant {
    async fn start(pad: usize) -> Tenant {
        let mut d = Directory::empty(TENANT, &["contoso.com", "contoso.onmicrosoft.com"]);
        for i in 0..pad {
            d.create_user(&format!("pad{i:04}@contoso.com"), "Pad", &i.to_string())
                .unwrap();
        }
        let mut ids = BTreeMap::new();
        for (i, name) in ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]
            .into_iter()
            .enumerate()
        {
            let id = d
                .create_user(&format!("{name}@contoso.com"), "User", &i.to_string())
                .unwrap();
            ids.insert(name, id);
        }
        for (name, mail) in [
            ("staff", Some("staff@contoso.com")),
            ("team", Some("team@contoso.com")),
            ("other", Some("other@contoso.com")),
            ("security", None),
        ] {
            ids.insert(name, d.create_group(name, mail).unwrap());
        }
        for (g, m) in [
            ("staff", "u1"),
            ("staff", "u2"),
            ("staff", "team"),
            ("team", "u3"),
            ("team", "u4"),
            ("team", "staff"),
            ("other", "u5"),
            ("other", "u6"),
            ("security", "u7"),
            ("staff", "security"),
        ] {
            d.add_member(&ids[g], &ids[m]).unwrap();
        }
        let emu = start(d).await;
        Tenant { emu, ids }
    }

    fn ctl(&self) -> Control {
        self.emu.control()
    }

    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    fn client(&self) -> GraphClient {
        client(&self.emu, secret_config(&self.ctl().default_app()))
    }
}

/// Runs `change` on the tenant, then checks that an incremental read from `(snap, state)`
/// gives the users a fresh full read gives; returns the incremental read's snapshot and
/// state for the next step.
async fn step(
    t: &Tenant,
    groups: &[&str],
    (snap, state): (Snapshot, State),
    what: &str,
    change: impl FnOnce(&mut Directory, &BTreeMap<&'static str, String>),
) -> (Snapshot, State) {
    t.ctl().with_directory(|d| change(d, &t.ids));
    let c = t.client();
    let (snap, state) = follows(&c, snap, &state, groups).await;
    let (_, _, fresh) = full(&c, groups).await;
    assert_eq!(by_id(&snap), fresh, "after {what}");
    (snap, state)
}

async fn changes_end_where_a_full_read_ends(groups: &[&str]) {
    // Enough users that re-reading a few is cheaper than a full read (three pages).
    let t = Tenant::start(2000).await;
    let c = t.client();
    let (snap, state, _) = full(&c, groups).await;
    let mut at = (snap, state);
    at = step(&t, groups, at, "a rename (UPN and mail)", |d, ids| {
        d.rename_upn(&ids["u1"], "ada@contoso.com").unwrap();
        d.set_mail(&ids["u1"], Some("ada@contoso.com")).unwrap();
    })
    .await;
    at = step(&t, groups, at, "an alias added", |d, ids| {
        let mut p = d.user(&ids["u3"]).unwrap().proxy_addresses.clone();
        p.push("smtp:third@contoso.com".into());
        d.set_proxy_addresses(&ids["u3"], &p).unwrap();
    })
    .await;
    at = step(&t, groups, at, "an alias removed", |d, ids| {
        let p: Vec<String> = d
            .user(&ids["u3"])
            .unwrap()
            .proxy_addresses
            .iter()
            .filter(|p| !p.eq_ignore_ascii_case("smtp:third@contoso.com"))
            .cloned()
            .collect();
        d.set_proxy_addresses(&ids["u3"], &p).unwrap();
    })
    .await;
    at = step(&t, groups, at, "a user disabled and renamed", |d, ids| {
        d.set_account_enabled(&ids["u2"], false).unwrap();
        d.set_display_name(&ids["u4"], "Renamed").unwrap();
    })
    .await;
    at = step(&t, groups, at, "a user deleted", |d, ids| {
        d.delete_user(&ids["u4"]).unwrap();
    })
    .await;
    at = step(&t, groups, at, "a user restored", |d, ids| {
        d.restore_user(&ids["u4"]).unwrap();
    })
    .await;
    at = step(&t, groups, at, "memberships added and removed", |d, ids| {
        d.add_member(&ids["team"], &ids["u8"]).unwrap();
        d.remove_member(&ids["staff"], &ids["u2"]).unwrap();
    })
    .await;
    at = step(&t, groups, at, "a group nested", |d, ids| {
        d.add_member(&ids["team"], &ids["other"]).unwrap();
    })
    .await;
    at = step(
        &t,
        groups,
        at,
        "a user created into a nested group",
        |d, ids| {
            let id = d.create_user("new@contoso.com", "New", "User").unwrap();
            d.add_member(&ids["other"], &id).unwrap();
        },
    )
    .await;
    at = step(&t, groups, at, "a nested group deleted", |d, ids| {
        d.delete_group(&ids["other"]).unwrap();
    })
    .await;
    at = step(&t, groups, at, "a user deleted for good", |d, ids| {
        d.delete_user(&ids["u3"]).unwrap();
        d.purge_user(&ids["u3"]).unwrap();
    })
    .await;
    step(&t, groups, at, "nothing", |_, _| {}).await;
}

#[tokio::test]
async fn with_sync_groups_an_incremental_read_after_changes_gives_the_users_a_full_read_gives() {
    changes_end_where_a_full_read_ends(&["staff@contoso.com"]).await;
}

#[tokio::test]
async fn without_sync_groups_an_incremental_read_after_changes_gives_the_users_a_full_read_gives() {
    changes_end_where_a_full_read_ends(&[]).await;
}

#[tokio::test]
async fn a_full_read_begins_change_tracking_from_now() {
    let t = Tenant::start(0).await;
    let c = t.client();
    t.ctl().reset_counts();
    let marker = c
        .change_marker()
        .await
        .unwrap()
        .expect("Entra tracks changes");
    let links: serde_json::Value = serde_json::from_str(&marker).unwrap();
    let base = format!("{}/v1.0/", t.emu.base_url());
    for kind in ["users", "groups"] {
        let link = links[kind].as_str().unwrap();
        assert!(link.starts_with(&format!("{base}{kind}/delta?")), "{link}");
        assert!(link.contains("deltatoken="), "{link}");
    }
    assert_eq!(links["include_guests"], false);
    // One request each: `latest` enumerates nothing.
    assert_eq!(t.ctl().request_count(Endpoint::UsersDelta), 1);
    assert_eq!(t.ctl().request_count(Endpoint::GroupsDelta), 1);

    // Nothing changed: the users stay, with only the two delta pages read.
    let (snap, state, users) = full(&c, &["staff@contoso.com"]).await;
    t.ctl().reset_counts();
    let (after, _) = follows(&c, snap, &state, &["staff@contoso.com"]).await;
    assert_eq!(by_id(&after), users);
    assert_eq!(t.ctl().request_count(Endpoint::Any), 2);
}

#[tokio::test]
async fn a_user_deleted_before_the_full_read_and_restored_after_it_is_back_in_scope() {
    let t = Tenant::start(0).await;
    let groups = ["staff@contoso.com"];
    t.ctl()
        .with_directory(|d| d.delete_user(&t.ids["u1"]))
        .unwrap();
    let c = t.client();
    let (snap, state, users) = full(&c, &groups).await;
    assert!(!users.contains_key(t.id("u1")));
    let (snap, _) = step(&t, &groups, (snap, state), "a restore", |d, ids| {
        d.restore_user(&ids["u1"]).unwrap();
    })
    .await;
    assert!(by_id(&snap).contains_key(t.id("u1")));
}

#[tokio::test]
async fn an_incremental_read_costs_far_fewer_requests_than_a_full_read() {
    // 2,500 users; the sync group holds 30 nested groups of 20 users each.
    let mut d = Directory::empty(TENANT, &["contoso.com", "contoso.onmicrosoft.com"]);
    let root = d.create_group("All", Some("all@contoso.com")).unwrap();
    let mut users = Vec::new();
    for i in 0..2500 {
        users.push(
            d.create_user(&format!("u{i:04}@contoso.com"), "User", &i.to_string())
                .unwrap(),
        );
    }
    let mut nested = Vec::new();
    for g in 0..30 {
        let id = d
            .create_group(&format!("g{g}"), Some(&format!("g{g}@contoso.com")))
            .unwrap();
        d.add_member(&root, &id).unwrap();
        for u in &users[g * 20..(g + 1) * 20] {
            d.add_member(&id, u).unwrap();
        }
        nested.push(id);
    }
    let emu = start(d).await;
    let ctl = emu.control();
    let c = client(&emu, secret_config(&ctl.default_app()));
    let groups = ["all@contoso.com"];
    ctl.reset_counts();
    let (snap, state, _) = full(&c, &groups).await;
    let full_requests = ctl.request_count(Endpoint::Any) - ctl.request_count(Endpoint::Token);
    ctl.with_directory(|d| {
        d.set_display_name(&users[3], "Renamed").unwrap();
        d.set_account_enabled(&users[45], false).unwrap();
        d.remove_member(&nested[7], &users[141]).unwrap();
        d.add_member(&nested[7], &users[2400]).unwrap();
    });
    ctl.reset_counts();
    let (after, _) = follows(&c, snap, &state, &groups).await;
    let requests = ctl.request_count(Endpoint::Any) - ctl.request_count(Endpoint::Token);
    // Two delta pages, one member listing, and the re-reads of 3, 45 and 2400 (newly in
    // scope); 141 simply leaves the scope.
    assert!(
        requests * 5 < full_requests,
        "{requests} requests, a full read {full_requests}"
    );
    assert_eq!(ctl.request_count(Endpoint::UsersList), 0);
    assert_eq!(ctl.request_count(Endpoint::Members), 1);
    let (_, _, fresh) = full(&c, &groups).await;
    assert_eq!(by_id(&after), fresh);
}

#[tokio::test]
async fn members_the_listing_leaves_out_are_not_read_again_by_each_incremental_read() {
    // The sync group holds a member and five guests; guests are out of scope (include_guests
    // off), so the user listing leaves them out.
    let mut d = Directory::empty(TENANT, &["contoso.com", "contoso.onmicrosoft.com"]);
    let root = d.create_group("All", Some("all@contoso.com")).unwrap();
    let member = d.create_user("m@contoso.com", "Mem", "Ber").unwrap();
    d.add_member(&root, &member).unwrap();
    for i in 0..5 {
        let g = d
            .create_user(
                &format!("g{i}_other.org#EXT#@contoso.onmicrosoft.com"),
                "G",
                "Uest",
            )
            .unwrap();
        d.set_user_type(&g, dirsync_entra_emulator::UserType::Guest)
            .unwrap();
        d.add_member(&root, &g).unwrap();
    }
    let emu = start(d).await;
    let ctl = emu.control();
    let c = client(&emu, secret_config(&ctl.default_app()));
    let groups = ["all@contoso.com"];
    let (snap, state, users) = full(&c, &groups).await;
    assert_eq!(users.len(), 1, "only the member is in scope: {users:?}");
    ctl.with_directory(|d| d.set_display_name(&member, "Renamed").unwrap());
    ctl.reset_counts();
    let (after, _) = follows(&c, snap, &state, &groups).await;
    assert_eq!(
        ctl.request_count(Endpoint::UsersGet),
        1,
        "the changed member is read again, and none of the guests"
    );
    assert_eq!(
        ctl.request_count(Endpoint::Any) - ctl.request_count(Endpoint::Token),
        3,
        "two delta pages and one user"
    );
    let (_, _, fresh) = full(&c, &groups).await;
    assert_eq!(by_id(&after), fresh);
}

#[tokio::test]
async fn expired_or_reset_delta_links_make_a_full_sync_with_the_reason() {
    for status in [400, 410] {
        let t = Tenant::start(0).await;
        let c = t.client();
        let (snap, state, _) = full(&c, &["staff@contoso.com"]).await;
        t.ctl().expire_delta_tokens(status);
        let why = fallback_reason(incremental_read(&c, snap, &state, &["staff@contoso.com"]).await);
        assert!(why.contains("syncStateNotFound"), "{why}");
        assert!(why.contains(&status.to_string()), "{why}");
    }
}

#[tokio::test]
async fn a_delta_round_cut_short_makes_a_full_sync_and_is_never_taken_for_complete() {
    // The users' round or the groups' round ends on a page with neither a next link nor a
    // delta link: what followed it is unknown, so nothing of it is used.
    for round in [Endpoint::UsersDelta, Endpoint::GroupsDelta] {
        let t = Tenant::start(0).await;
        let c = t.client();
        let (snap, state, _) = full(&c, &["staff@contoso.com"]).await;
        t.ctl().with_directory(|d| {
            d.delete_user(t.id("u1")).unwrap();
            d.remove_member(t.id("team"), t.id("u3")).unwrap();
        });
        t.ctl().reset_counts();
        t.ctl().truncate_next_delta_page(round);
        let why = fallback_reason(incremental_read(&c, snap, &state, &["staff@contoso.com"]).await);
        assert!(
            why.contains("ended without a delta link"),
            "{round:?}: {why}"
        );
        assert_eq!(t.ctl().request_count(round), 1, "{round:?}");
    }
}

#[tokio::test]
async fn a_sync_group_deleted_or_renamed_makes_a_full_sync() {
    let groups = ["staff@contoso.com"];
    let t = Tenant::start(0).await;
    let c = t.client();
    let (snap, state, _) = full(&c, &groups).await;
    t.ctl()
        .with_directory(|d| d.set_group_mail(t.id("staff"), "everyone@contoso.com"))
        .unwrap();
    let why = fallback_reason(incremental_read(&c, snap, &state, &groups).await);
    assert!(why.contains("staff@contoso.com was renamed"), "{why}");
    assert!(why.contains("everyone@contoso.com"), "{why}");

    // A nested group renamed is followed.
    let (snap, state, _) = full(&c, &["everyone@contoso.com"]).await;
    t.ctl()
        .with_directory(|d| d.set_group_mail(t.id("team"), "crew@contoso.com"))
        .unwrap();
    let (snap, _) = follows(&c, snap, &state, &["everyone@contoso.com"]).await;
    let graph = snap.graph.unwrap();
    assert_eq!(graph.nodes[t.id("team")].email, "crew@contoso.com");

    let (snap, state, _) = full(&c, &["everyone@contoso.com"]).await;
    t.ctl()
        .with_directory(|d| d.delete_group(t.id("staff")))
        .unwrap();
    let why = fallback_reason(incremental_read(&c, snap, &state, &["everyone@contoso.com"]).await);
    assert!(why.contains("everyone@contoso.com was deleted"), "{why}");
}

#[tokio::test]
async fn without_stored_links_the_job_is_a_full_sync_and_damaged_links_are_an_error() {
    let t = Tenant::start(0).await;
    let c = t.client();
    let (snap, state, _) = full(&c, &[]).await;
    t.ctl().reset_counts();
    let none = State {
        change_marker: None,
        ..state.clone()
    };
    let why = fallback_reason(incremental_read(&c, snap.clone(), &none, &[]).await);
    assert_eq!(why, NO_DELTA_LINKS);

    let damaged = State {
        change_marker: Some("{\"users\": 1}".into()),
        ..state.clone()
    };
    let ctl = control().await;
    let err = incremental::read(
        &c,
        &damaged,
        Some(snap.clone()),
        &key(&[]),
        chrono::Duration::minutes(10),
        &mut Progress::default(),
        &ctl,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "stored_data_invalid");
    assert!(
        err.to_string().contains("directory_state.delta_links"),
        "{err}"
    );

    // Links elsewhere than the configured Graph URL are never followed.
    let elsewhere = State {
        change_marker: Some(
            serde_json::json!({
                "users": "https://graph.example.net/v1.0/users/delta?$deltatoken=x",
                "groups": "https://graph.example.net/v1.0/groups/delta?$deltatoken=y",
                "include_guests": false
            })
            .to_string(),
        ),
        ..state.clone()
    };
    let why = fallback_reason(incremental_read(&c, snap.clone(), &elsewhere, &[]).await);
    assert!(why.contains("DIRSYNC_MICROSOFT_GRAPH_URL"), "{why}");

    // Links taken with guests out of scope say nothing about a scope with guests.
    let guests = GraphClient::with_options(
        EntraConfig {
            include_guests: true,
            ..secret_config(&t.ctl().default_app())
        },
        &super::tests::access(&t.emu),
        super::tests::fast(),
    )
    .unwrap();
    let why = fallback_reason(incremental_read(&guests, snap, &state, &[]).await);
    assert!(why.contains("include_guests"), "{why}");
    assert_eq!(t.ctl().request_count(Endpoint::Any), 0, "nothing read");
}

#[tokio::test]
async fn more_changes_than_a_full_read_costs_make_a_full_sync() {
    // Eight users: a full read without sync groups is one page.
    let t = Tenant::start(0).await;
    let c = t.client();
    let (snap, state, _) = full(&c, &[]).await;
    t.ctl().with_directory(|d| {
        for u in ["u1", "u2"] {
            d.set_display_name(&t.ids[u], "Renamed").unwrap();
        }
    });
    let why = fallback_reason(incremental_read(&c, snap, &state, &[]).await);
    assert!(
        why.contains("more Graph requests than a full sync"),
        "{why}"
    );
}

#[tokio::test]
async fn a_delta_read_that_fails_otherwise_is_an_error() {
    let t = Tenant::start(0).await;
    let c = t.client();
    let (snap, state, _) = full(&c, &[]).await;
    t.ctl().fail_requests(Endpoint::UsersDelta, 503, 10);
    let ctl = control().await;
    let err = incremental::read(
        &c,
        &state,
        Some(snap),
        &key(&[]),
        chrono::Duration::minutes(10),
        &mut Progress::default(),
        &ctl,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "entra_unavailable", "{err}");
}
