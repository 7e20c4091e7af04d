//! The rules of product.md §3 on the pure planner, and property tests: plan, apply, plan again
//! gives an empty plan, with one property per rule the planner and the safeguards hold (§3.1
//! scope, §3.2–3.3 create and match, §3.4–3.5 departures and folders, §3.6 safeguards, §3.10
//! idempotence). Rules 7–9 and 11 are the runner's and the jobs': the end-to-end suite tests
//! them (`tests/e2e/sync.rs`, `tests/e2e/jobs.rs`).

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::sync::safeguards::{self, deletion_limit};

fn did(id: &str) -> DirectoryId {
    DirectoryId::new(id.to_string())
}

fn remote(id: &str, email: &str, aliases: &[&str], disabled: bool) -> RemoteUser {
    RemoteUser {
        user_name: None,
        id: did(id),
        primary_email: email.into(),
        full_name: format!("Name {id}"),
        addresses: aliases.iter().map(|a| a.to_string()).collect(),
        disabled,
    }
}

fn dir_user(id: &str, email: &str) -> LocalUser {
    LocalUser {
        id: Uuid::new_v4(),
        user_name: email.into(),
        full_name: format!("Name {id}"),
        directory: true,
        directory_id: Some(did(id)),
        disabled: false,
        addresses: vec![email.into()],
        is_admin: false,
        folder_messages: 0,
    }
}

fn local_user(name: &str, addresses: &[&str]) -> LocalUser {
    LocalUser {
        directory: false,
        directory_id: None,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        ..dir_user("", name)
    }
}

/// A field's `[old, new]`, read back from the text the plan holds.
fn field(fields: &Fields, name: &str) -> Option<[serde_json::Value; 2]> {
    match fields.to_value() {
        serde_json::Value::Object(mut map) => match map.remove(name)? {
            serde_json::Value::Array(v) => <[serde_json::Value; 2]>::try_from(v).ok(),
            _ => None,
        },
        _ => None,
    }
}

fn kinds(p: &Plan) -> Vec<ChangeKind> {
    p.changes.iter().map(|c| c.kind).collect()
}

/// Applies a plan to the in-memory local state, as the database apply does.
fn apply_model(local: &LocalState, p: &Plan) -> LocalState {
    let deleted: HashSet<Uuid> = p.deletes.iter().copied().collect();
    let mut users: Vec<LocalUser> = local
        .users
        .iter()
        .filter(|u| !deleted.contains(&u.id))
        .cloned()
        .collect();
    for up in &p.updates {
        let u = users.iter_mut().find(|u| u.id == up.id).unwrap();
        u.user_name = up.user_name.clone();
        u.full_name = up.full_name.clone();
        u.directory_id = Some(up.directory_id.clone());
        u.disabled = up.disabled;
        if let Some(a) = &up.addresses {
            u.addresses = a.clone();
        }
    }
    for c in &p.creates {
        users.push(LocalUser {
            id: c.id,
            user_name: c.user_name.clone(),
            full_name: c.full_name.clone(),
            directory: true,
            directory_id: Some(c.directory_id.clone()),
            disabled: c.disabled,
            addresses: c.addresses.clone(),
            is_admin: false,
            folder_messages: 0,
        });
    }
    LocalState { users }
}

#[test]
fn creates_in_scope_users_with_their_addresses() {
    let r = RemoteState {
        users: vec![remote(
            "1",
            "Ada@Example.com",
            &["ada.l@example.com"],
            false,
        )],
        in_scope: None,
    };
    let p = plan(&r, &LocalState::default(), Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::Create]);
    assert_eq!(p.creates[0].user_name, "ada@example.com");
    assert_eq!(
        p.creates[0].addresses,
        vec!["Ada@Example.com", "ada.l@example.com"]
    );
    assert_eq!(p.summary.created, 1);
    assert_eq!(
        p.changes[0].fields.as_json(),
        r#"{"disabled":[null,false],"emails":[null,["Ada@Example.com","ada.l@example.com"]],"full_name":[null,"Name 1"],"user_name":[null,"ada@example.com"]}"#
    );
}

#[test]
fn an_unchanged_user_needs_nothing() {
    let r = RemoteState {
        users: vec![remote("1", "ada@example.com", &[], false)],
        in_scope: None,
    };
    let local = LocalState {
        users: vec![dir_user("1", "ada@example.com")],
    };
    let p = plan(&r, &local, Rules::default());
    assert!(p.changes.is_empty() && p.writes_nothing());
    assert_eq!(p.summary.unchanged, 1);
}

#[test]
fn a_rename_keeps_the_user() {
    let r = RemoteState {
        users: vec![remote("1", "ada.king@example.com", &[], false)],
        in_scope: None,
    };
    let local = LocalState {
        users: vec![dir_user("1", "ada@example.com")],
    };
    let p = plan(&r, &local, Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::Update]);
    assert_eq!(p.updates[0].id, local.users[0].id);
    assert_eq!(p.updates[0].user_name, "ada.king@example.com");
    // Only what changed, as [old, new].
    let fields = &p.changes[0].fields;
    assert_eq!(
        field(fields, "user_name"),
        Some([json!("ada@example.com"), json!("ada.king@example.com")])
    );
    assert_eq!(
        field(fields, "emails"),
        Some([json!(["ada@example.com"]), json!(["ada.king@example.com"])])
    );
    assert_eq!(field(fields, "full_name"), None);
    assert_eq!(p.summary.unchanged, 0);
}

#[test]
fn suspension_disables_and_reactivation_enables() {
    let r = RemoteState {
        users: vec![remote("1", "ada@example.com", &[], true)],
        in_scope: None,
    };
    let local = LocalState {
        users: vec![dir_user("1", "ada@example.com")],
    };
    let p = plan(&r, &local, Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::Disable]);
    let back = apply_model(&local, &p);
    let r2 = RemoteState {
        users: vec![remote("1", "ada@example.com", &[], false)],
        in_scope: None,
    };
    assert_eq!(
        kinds(&plan(&r2, &back, Rules::default())),
        vec![ChangeKind::Enable]
    );
}

#[test]
fn a_local_user_with_the_same_name_or_address_is_a_conflict() {
    let r = RemoteState {
        users: vec![
            remote("1", "ada@example.com", &[], false),
            remote("2", "bob@example.com", &["shared@example.com"], false),
        ],
        in_scope: None,
    };
    let local = LocalState {
        users: vec![
            local_user("ada@example.com", &["ada@example.com"]),
            local_user("carol", &["Shared@example.com"]),
        ],
    };
    let p = plan(
        &r,
        &local,
        Rules {
            auto_delete_users: true,
        },
    );
    assert_eq!(kinds(&p), vec![ChangeKind::Conflict, ChangeKind::Conflict]);
    assert!(p.writes_nothing());
}

#[test]
fn a_directory_user_without_id_is_adopted() {
    let mut u = dir_user("", "ada@example.com");
    u.directory_id = None;
    let local = LocalState { users: vec![u] };
    let r = RemoteState {
        users: vec![remote("7", "ada@example.com", &[], false)],
        in_scope: None,
    };
    let p = plan(&r, &local, Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::Update]);
    assert_eq!(p.updates[0].directory_id.as_str(), "7");
}

#[test]
fn out_of_scope_users_are_reported_or_deleted_but_admins_kept() {
    let mut admin = dir_user("2", "boss@example.com");
    admin.is_admin = true;
    let mut busy = dir_user("3", "busy@example.com");
    busy.folder_messages = 12;
    let local = LocalState {
        users: vec![
            dir_user("1", "gone@example.com"),
            admin,
            busy,
            local_user("me", &[]),
        ],
    };
    let r = RemoteState {
        users: vec![],
        in_scope: None,
    };
    let p = plan(&r, &local, Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::OutOfScope; 3]);
    assert!(p.writes_nothing());
    let p = plan(
        &r,
        &local,
        Rules {
            auto_delete_users: true,
        },
    );
    assert_eq!(
        kinds(&p),
        vec![
            ChangeKind::Delete,
            ChangeKind::KeptAdmin,
            ChangeKind::Delete,
            ChangeKind::FolderKept
        ]
    );
    assert_eq!(p.deletes.len(), 2);
}

#[test]
fn scope_limits_who_is_synced() {
    let r = RemoteState {
        users: vec![
            remote("1", "a@example.com", &[], false),
            remote("2", "b@example.com", &[], false),
        ],
        in_scope: Some(["2".to_string()].into_iter().collect()),
    };
    let p = plan(&r, &LocalState::default(), Rules::default());
    assert_eq!(p.creates.len(), 1);
    assert_eq!(p.creates[0].directory_id.as_str(), "2");
}

#[test]
fn the_deletion_limit_is_ten_percent_but_at_least_five() {
    assert_eq!(deletion_limit(None, 0), 5);
    assert_eq!(deletion_limit(None, 49), 5);
    assert_eq!(deletion_limit(None, 51), 6);
    assert_eq!(deletion_limit(None, 1000), 100);
    assert_eq!(deletion_limit(Some(2), 1000), 2);
}

/// Plans, checks the apply's statement order, and returns the state after applying.
fn plan_and_apply(remote: &RemoteState, local: &LocalState, rules: Rules) -> (Plan, LocalState) {
    let p = plan(remote, local, rules);
    assert_eq!(
        super::super::apply::check(&p, local),
        Ok(()),
        "{:?}",
        p.changes
    );
    let after = apply_model(local, &p);
    (p, after)
}

fn names_by_id(state: &LocalState) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = state
        .users
        .iter()
        .map(|u| {
            (
                u.directory_id.clone().map(String::from).unwrap_or_default(),
                u.user_name.clone(),
                u.addresses.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

fn everyone(users: Vec<RemoteUser>) -> RemoteState {
    RemoteState {
        users,
        in_scope: None,
    }
}

#[test]
fn a_rename_onto_a_name_another_user_leaves_in_the_same_run_applies() {
    let local = LocalState {
        users: vec![dir_user("a", "a@x.com"), dir_user("b", "b@x.com")],
    };
    // b moves to a new name; a takes b's old one.
    let r = everyone(vec![
        remote("a", "b@x.com", &[], false),
        remote("b", "new@x.com", &[], false),
    ]);
    let (p, after) = plan_and_apply(&r, &local, Rules::default());
    assert_eq!(p.summary.conflicts, 0, "{:?}", p.changes);
    assert!(p.updates.iter().all(|u| u.renamed));
    assert_eq!(
        names_by_id(&after),
        vec![
            ("a".into(), "b@x.com".into(), vec!["b@x.com".into()]),
            ("b".into(), "new@x.com".into(), vec!["new@x.com".into()]),
        ]
    );
}

#[test]
fn swaps_and_three_way_cycles_of_names_apply() {
    let local = LocalState {
        users: vec![
            dir_user("a", "a@x.com"),
            dir_user("b", "b@x.com"),
            dir_user("c", "c@x.com"),
        ],
    };
    let r = everyone(vec![
        remote("a", "b@x.com", &[], false),
        remote("b", "c@x.com", &[], false),
        remote("c", "a@x.com", &[], false),
    ]);
    let (p, after) = plan_and_apply(&r, &local, Rules::default());
    assert_eq!(p.summary.conflicts, 0, "{:?}", p.changes);
    assert_eq!(p.summary.updated, 3);
    let second = plan(&r, &after, Rules::default());
    assert!(second.writes_nothing());
}

#[test]
fn a_rename_onto_a_deleted_users_name_and_an_alias_moved_between_users_apply() {
    let mut a = dir_user("a", "a@x.com");
    a.addresses.push("shared@x.com".into());
    let local = LocalState {
        users: vec![a, dir_user("b", "b@x.com"), dir_user("c", "c@x.com")],
    };
    // c is deleted in Google; b is renamed onto c's name and receives a's alias.
    let r = everyone(vec![
        remote("a", "a@x.com", &[], false),
        remote("b", "c@x.com", &["shared@x.com"], false),
    ]);
    let rules = Rules {
        auto_delete_users: true,
    };
    let (p, after) = plan_and_apply(&r, &local, rules);
    assert_eq!(p.summary.conflicts, 0, "{:?}", p.changes);
    assert_eq!(p.summary.deleted, 1);
    assert_eq!(
        names_by_id(&after),
        vec![
            ("a".into(), "a@x.com".into(), vec!["a@x.com".into()]),
            (
                "b".into(),
                "c@x.com".into(),
                vec!["c@x.com".into(), "shared@x.com".into()]
            ),
        ]
    );
}

#[test]
fn a_held_back_rename_holds_back_the_rename_onto_its_name_and_names_who_holds_it() {
    // c is a local user: b cannot take c's name, so b keeps its own, so a cannot take b's.
    let local = LocalState {
        users: vec![
            dir_user("a", "a@x.com"),
            dir_user("b", "b@x.com"),
            local_user("c@x.com", &["c@x.com"]),
        ],
    };
    let r = everyone(vec![
        remote("a", "b@x.com", &[], false),
        remote("b", "c@x.com", &[], false),
    ]);
    let (p, after) = plan_and_apply(&r, &local, Rules::default());
    let reasons: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Conflict)
        .map(|c| c.reason.as_deref().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("local user c@x.com") && r.contains("held back")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("the user b@x.com, whose own rename to c@x.com is held back")),
        "{reasons:?}"
    );
    let names: HashSet<String> = after.users.iter().map(|u| u.user_name.clone()).collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains("a@x.com") && names.contains("b@x.com"));
}

#[test]
fn an_adoption_refused_keeps_the_unlinked_users_addresses_from_everyone_else() {
    // An unlinked directory user "u" holds x@; its Google namesake also wants an address a
    // local user holds, so it is not linked — and x@ must then stay with it, not go to t.
    let mut unlinked = dir_user("", "u@x.com");
    unlinked.directory_id = None;
    unlinked.addresses.push("x@x.com".into());
    let local = LocalState {
        users: vec![unlinked, local_user("l@x.com", &["l@x.com", "held@x.com"])],
    };
    let r = everyone(vec![
        remote("u", "u@x.com", &["held@x.com"], false),
        remote("t", "t@x.com", &["x@x.com"], false),
    ]);
    let (p, after) = plan_and_apply(&r, &local, Rules::default());
    assert!(p.updates.is_empty(), "{:?}", p.changes);
    assert!(p.changes.iter().any(|c| c.kind == ChangeKind::Conflict
        && c.directory_id.as_deref() == Some("t")
        && c.reason.as_deref().unwrap().contains("u@x.com")));
    let holders: Vec<usize> = after
        .users
        .iter()
        .map(|u| u.addresses.iter().filter(|a| *a == "x@x.com").count())
        .collect();
    assert_eq!(holders.iter().sum::<usize>(), 1);
}

#[test]
fn the_apply_check_names_the_user_the_address_and_the_rule_of_a_plan_that_would_clash() {
    let local = LocalState {
        users: vec![local_user("l@x.com", &["l@x.com", "held@x.com"])],
    };
    let mut p = Plan::default();
    p.creates.push(NewUser {
        id: Uuid::new_v4(),
        user_name: "n@x.com".into(),
        full_name: "N".into(),
        directory_id: did("9"),
        addresses: vec!["n@x.com".into(), "Held@x.com".into()],
        disabled: false,
    });
    let clash = super::super::apply::check(&p, &local).unwrap_err();
    assert_eq!(
        clash.to_string(),
        "the plan gives the address Held@x.com to n@x.com while l@x.com still holds it"
    );
}

/// Entra: the user name is the UPN, the addresses are the mail addresses; a UPN change is a
/// rename of the same user (matched by object id), and a UPN held as another user's name is
/// held back like any rename, while the addresses still move.
#[test]
fn a_user_name_of_its_own_names_the_user_and_renames_keep_it() {
    let mut entra = remote("oid-1", "Ada@Contoso.com", &["ada.l@contoso.com"], false);
    entra.user_name = Some("ADA@contoso.onmicrosoft.com".into());
    let r = RemoteState {
        users: vec![entra.clone()],
        in_scope: None,
    };
    let p = plan(&r, &LocalState::default(), Rules::default());
    assert_eq!(p.creates[0].user_name, "ada@contoso.onmicrosoft.com");
    assert_eq!(
        p.creates[0].addresses,
        vec!["Ada@Contoso.com", "ada.l@contoso.com"]
    );
    let local = apply_model(&LocalState::default(), &p);

    entra.user_name = Some("ada.lovelace@contoso.onmicrosoft.com".into());
    let r = RemoteState {
        users: vec![entra.clone()],
        in_scope: None,
    };
    let p = plan(&r, &local, Rules::default());
    assert_eq!(kinds(&p), vec![ChangeKind::Update]);
    assert_eq!(p.updates[0].id, local.users[0].id);
    assert_eq!(
        p.updates[0].user_name,
        "ada.lovelace@contoso.onmicrosoft.com"
    );

    // A local user already has the new name: the rename is held back, nothing else is lost.
    let mut with_local = local.clone();
    with_local.users.push(local_user(
        "grace@contoso.onmicrosoft.com",
        &["grace@contoso.com"],
    ));
    entra.user_name = Some("grace@contoso.onmicrosoft.com".into());
    let r = RemoteState {
        users: vec![entra],
        in_scope: None,
    };
    let p = plan(&r, &with_local, Rules::default());
    assert!(p
        .updates
        .iter()
        .all(|u| u.user_name == "ada@contoso.onmicrosoft.com"));
    assert!(p
        .changes
        .iter()
        .any(|c| c.reason.as_deref().is_some_and(|r| r.contains("held back"))));
}

fn arb_state() -> impl Strategy<Value = (RemoteState, LocalState, bool)> {
    // A small address space so that renames, clashes and moves happen often.
    let name = || (0u8..12).prop_map(|n| format!("u{n}@example.com"));
    let remote_users = proptest::collection::vec(
        (
            0u8..10,
            name(),
            proptest::collection::vec(name(), 0..3),
            any::<bool>(),
            name(),
        ),
        0..8,
    );
    let local_users = proptest::collection::vec(
        (
            proptest::option::of(0u8..10),
            name(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(name()),
            0i64..3,
        ),
        0..8,
    );
    let scope = proptest::option::of(proptest::collection::hash_set(0u8..10, 0..10));
    // `entra`: every user has a user name of its own (Entra's UPN), drawn from the same names
    // as the addresses so that a UPN meets other users' names and addresses; otherwise the
    // primary address is the name (Google).
    let mode = (any::<bool>(), any::<bool>());
    (remote_users, local_users, scope, mode).prop_map(|(ru, lu, scope, (auto, entra))| {
        let mut seen_ids = HashSet::new();
        let mut seen_addr = HashSet::new();
        let mut seen_upn = HashSet::new();
        let mut users = Vec::new();
        for (id, email, aliases, disabled, upn) in ru {
            // Google and Entra keep ids and addresses unique, Entra UPNs too.
            if !seen_ids.insert(id)
                || !seen_addr.insert(email.clone())
                || (entra && !seen_upn.insert(upn.clone()))
            {
                continue;
            }
            let aliases: Vec<String> = aliases
                .into_iter()
                .filter(|a| seen_addr.insert(a.clone()))
                .collect();
            users.push(RemoteUser {
                user_name: entra.then_some(upn),
                id: DirectoryId::new(id.to_string()),
                primary_email: email,
                full_name: format!("N{id}"),
                addresses: aliases,
                disabled,
            });
        }
        let mut local = Vec::new();
        let mut seen_names = HashSet::new();
        let mut seen_local_ids = HashSet::new();
        let mut seen_local_addr = HashSet::new();
        for (id, name, directory, is_admin, disabled, alias, messages) in lu {
            // The database keeps names, addresses and directory ids unique.
            if !seen_names.insert(name.clone()) || !seen_local_addr.insert(name.clone()) {
                continue;
            }
            let mut addresses = vec![name.clone()];
            addresses.extend(alias.filter(|a| seen_local_addr.insert(a.clone())));
            let id = if directory {
                id.filter(|i| seen_local_ids.insert(*i))
            } else {
                None
            };
            local.push(LocalUser {
                id: Uuid::new_v4(),
                user_name: name.clone(),
                full_name: "x".into(),
                directory,
                directory_id: id.map(|i| DirectoryId::new(i.to_string())),
                disabled,
                addresses,
                is_admin,
                folder_messages: messages,
            });
        }
        let in_scope = scope.map(|s| s.into_iter().map(|i| i.to_string()).collect());
        (
            RemoteState { users, in_scope },
            LocalState { users: local },
            auto,
        )
    })
}

proptest! {
    #[test]
    fn planning_again_after_applying_changes_nothing((remote, local, auto) in arb_state()) {
        let rules = Rules { auto_delete_users: auto };
        let first = plan(&remote, &local, rules);
        // Deletions are only synced users that left the scope.
        let in_scope: HashSet<&str> = remote
            .users
            .iter()
            .filter(|r| remote.contains(r.id.as_str()))
            .map(|r| r.id.as_str())
            .collect();
        for id in &first.deletes {
            let u = local.users.iter().find(|u| u.id == *id).unwrap();
            prop_assert!(u.directory && !u.is_admin);
            prop_assert!(u.directory_id.as_ref().is_none_or(|d| !in_scope.contains(d.as_str())));
        }
        // §3.1: no Google user out of scope is created or written.
        for d in first.creates.iter().map(|c| &c.directory_id).chain(first.updates.iter().map(|u| &u.directory_id)) {
            prop_assert!(in_scope.contains(d.as_str()), "out-of-scope Google user {} written", d);
        }
        // §3.4: with auto_delete_users off nothing is deleted; every departing directory user is
        // reported once, as deleted, out of scope or kept admin.
        if !auto {
            prop_assert!(first.deletes.is_empty());
        }
        let departures = first
            .changes
            .iter()
            .filter(|c| matches!(c.kind, ChangeKind::Delete | ChangeKind::OutOfScope | ChangeKind::KeptAdmin))
            .count() as u64;
        prop_assert_eq!(departures, first.summary.deleted + first.summary.out_of_scope + first.summary.kept_admin);
        prop_assert_eq!(first.summary.deleted, first.deletes.len() as u64);
        // §3.5: a deleted user's folder is reported kept exactly when it holds messages.
        let with_messages = first
            .deletes
            .iter()
            .filter(|id| local.users.iter().any(|u| u.id == **id && u.folder_messages > 0))
            .count() as u64;
        prop_assert_eq!(kinds(&first).iter().filter(|k| **k == ChangeKind::FolderKept).count() as u64, with_messages);
        prop_assert_eq!(first.summary.folders_kept, with_messages);
        // Local users are never touched.
        for u in local.users.iter().filter(|u| !u.directory) {
            prop_assert!(!first.deletes.contains(&u.id));
            prop_assert!(first.updates.iter().all(|up| up.id != u.id));
        }
        // Every statement of the apply, in its order, keeps names and addresses unique.
        prop_assert_eq!(super::super::apply::check(&first, &local), Ok(()));
        // Names and addresses stay unique after applying.
        let after = apply_model(&local, &first);
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for u in &after.users {
            prop_assert!(names.insert(u.user_name.to_lowercase()), "duplicate name {}", u.user_name);
            for a in &u.addresses {
                prop_assert!(addrs.insert(a.to_lowercase()), "duplicate address {}", a);
            }
        }
        // §3.2, §3.3: every Google user in scope is, once applied, a user here linked to it, or
        // a conflict that names it.
        for id in &in_scope {
            let linked = after.users.iter().any(|u| u.directory && u.directory_id.as_ref().map(DirectoryId::as_str) == Some(*id));
            let conflict = first.changes.iter().any(|c| c.kind == ChangeKind::Conflict && c.directory_id.as_deref() == Some(*id));
            prop_assert!(linked || conflict, "Google user {} neither synced nor reported", id);
        }
        let second = plan(&remote, &after, rules);
        prop_assert!(second.writes_nothing(), "second plan still writes: {:?}", second.changes);
        // §3.10: the second run reports every synced user unchanged, and changes nobody.
        prop_assert!(
            second.changes.iter().all(|c| matches!(c.kind, ChangeKind::Conflict | ChangeKind::OutOfScope | ChangeKind::KeptAdmin)),
            "second plan reports changes: {:?}", second.changes
        );
        let linked_in_scope = after
            .users
            .iter()
            .filter(|u| u.directory && u.directory_id.as_ref().is_some_and(|d| in_scope.contains(d.as_str())))
            .count() as u64;
        prop_assert_eq!(second.summary.unchanged, linked_in_scope);
    }

    /// §3.6: the deletion limit is the configured number, else 10 % of the directory users
    /// (rounded up) but at least 5; more deletions pass only when confirmed with their count.
    #[test]
    fn more_deletions_than_the_limit_pass_only_when_confirmed_with_their_count(
        deletions in 0u64..200,
        configured in proptest::option::of(0u32..50),
        directory_users in 0usize..1000,
        confirm in proptest::option::of(0u64..200),
    ) {
        let limit = deletion_limit(configured, directory_users);
        match configured {
            Some(n) => prop_assert_eq!(limit, u64::from(n)),
            None => {
                prop_assert!(limit >= 5 && limit * 10 >= directory_users as u64);
                prop_assert!(limit == 5 || (limit - 1) * 10 < directory_users as u64);
            }
        }
        let passes = safeguards::check_deletions(deletions, configured, directory_users, confirm);
        prop_assert_eq!(passes.is_ok(), deletions <= limit || confirm == Some(deletions));
        if let Err(e) = passes {
            prop_assert_eq!(e.code.as_str(), "deletion_limit_exceeded");
        }
    }

    /// §3.6: nobody in scope while directory users exist is refused, never planned as
    /// everyone leaving.
    #[test]
    fn a_fetch_with_nobody_in_scope_is_refused_while_directory_users_exist(
        (remote, local, _) in arb_state(),
    ) {
        let directory_users = local.users.iter().filter(|u| u.directory).count();
        let in_scope = remote.users.iter().filter(|r| remote.contains(r.id.as_str())).count();
        let refused = safeguards::check_not_empty(&remote, directory_users);
        prop_assert_eq!(refused.is_err(), in_scope == 0 && directory_users > 0);
        if let Err(e) = refused {
            prop_assert_eq!(e.code(), "empty_directory");
        }
    }
}
