//! Addresses that move between directory users (issue 18): the five changes that once wedged
//! every later sync, a local user's address as a conflict that names it, and a property test of
//! the whole sync — random sequences of valid Google changes (renames onto just-freed addresses,
//! chains and swaps, alias moves, deletions, suspensions, moves between nested groups), a real
//! sync after each batch, and dirsync's users compared with Google's.

use std::collections::{BTreeMap, BTreeSet};

use dirsync_entity::{user_emails, users};
use dirsync_google_emulator::{Directory, MemberType};
use dirsync_tests::entra::{spawn_with_entra, EntraEnv};
use dirsync_tests::google::{spawn_with_google, GoogleEnv};
use dirsync_tests::{Reply, TestApp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::changes::{apply_op, check, op, pool, Op, Synced, Tenant};

/// admin@ plus u00 … u29, every third with an alias.
fn thirty() -> Directory {
    let mut d = Directory::empty("example.com");
    for i in 0..30 {
        let email = format!("u{i:02}@example.com");
        d.add_user(&email, "User", &i.to_string()).unwrap();
        if i % 3 == 0 {
            d.add_alias(&email, &format!("alias{i:02}@example.com"))
                .unwrap();
        }
    }
    d
}

/// A server's directory users by directory id, read from its database.
pub(crate) async fn dirsync_users_of(db: &sea_orm::DatabaseConnection) -> BTreeMap<String, Synced> {
    let emails = user_emails::Entity::find().all(db).await.unwrap();
    let mut by_user: BTreeMap<uuid::Uuid, BTreeSet<String>> = BTreeMap::new();
    for e in emails {
        by_user.entry(e.user_id).or_default().insert(e.address_key);
    }
    users::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.auth_method == dirsync_entity::AuthMethod::Directory)
        .map(|u| {
            (
                u.directory_id.clone().unwrap_or_default(),
                Synced {
                    user_name: u.user_name,
                    addresses: by_user.remove(&u.id).unwrap_or_default(),
                    disabled: u.disabled,
                    full_name: u.full_name,
                },
            )
        })
        .collect()
}

/// dirsync's directory users by directory id, read from its database.
async fn dirsync_users(app: &TestApp) -> BTreeMap<String, Synced> {
    dirsync_users_of(&app.db).await
}

fn summary(job: &Value, field: &str) -> u64 {
    job["summary"][field].as_u64().unwrap_or(u64::MAX)
}

/// Syncs once, then applies `change` in Google, syncs again and requires dirsync to equal
/// Google exactly, without a conflict.
async fn after_change(auto_delete: bool, change: impl FnOnce(&mut Directory)) -> GoogleEnv {
    let env = spawn_with_google(thirty()).await;
    env.configure(json!({"auto_delete_users": auto_delete}))
        .await
        .expect(200);
    let first = env.sync(false).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    env.google.control().with_directory(change);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(summary(&job, "conflicts"), 0, "{job}");
    let google = env.google.control().directory().in_scope(None);
    let synced = dirsync_users(&env.app).await;
    if auto_delete {
        assert_eq!(synced, google);
    } else {
        for (id, want) in &google {
            assert_eq!(synced.get(id), Some(want), "user {id}");
        }
    }
    // And the run after it has nothing left to do.
    let again = env.sync(false).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(summary(&again, "updated"), 0, "{again}");
    env
}

#[tokio::test]
async fn a_user_renamed_onto_the_address_another_user_was_renamed_away_from_syncs() {
    after_change(false, |d| {
        d.rename_user("u01@example.com", "u01.new@example.com")
            .unwrap();
        d.rename_user("u02@example.com", "u01@example.com").unwrap();
    })
    .await;
}

#[tokio::test]
async fn two_users_swapping_primary_addresses_through_a_temporary_name_sync() {
    after_change(false, |d| {
        d.rename_user("u04@example.com", "swap.tmp@example.com")
            .unwrap();
        d.rename_user("u05@example.com", "u04@example.com").unwrap();
        d.rename_user("swap.tmp@example.com", "u05@example.com")
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_user_renamed_onto_a_deleted_users_address_syncs_with_auto_delete() {
    let env = after_change(true, |d| {
        d.delete_user("u07@example.com").unwrap();
        d.rename_user("u08@example.com", "u07@example.com").unwrap();
    })
    .await;
    assert!(!dirsync_users(&env.app)
        .await
        .values()
        .any(|u| u.user_name == "u08@example.com"));
}

#[tokio::test]
async fn a_user_renamed_onto_an_alias_just_removed_from_another_user_syncs() {
    after_change(false, |d| {
        d.remove_alias("u09@example.com", "alias09@example.com")
            .unwrap();
        d.rename_user("u10@example.com", "alias09@example.com")
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_alias_moved_from_one_user_to_another_syncs() {
    after_change(false, |d| {
        d.remove_alias("u12@example.com", "alias12@example.com")
            .unwrap();
        d.add_alias("u13@example.com", "alias12@example.com")
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_address_a_local_user_holds_is_a_conflict_naming_it_and_the_rest_of_the_run_applies() {
    let env = spawn_with_google(thirty()).await;
    env.sync(false).await;
    env.app
        .post(
            "/api/v1/users",
            &json!({"user_name": "keeper", "full_name": "Local Keeper", "emails": ["role@example.com"]}),
        )
        .await
        .expect(201);
    env.google.control().with_directory(|d| {
        // u14 takes the local user's address; u15 and u16 swap names meanwhile.
        d.add_alias("u14@example.com", "role@example.com").unwrap();
        d.rename_user("u15@example.com", "swap.tmp@example.com")
            .unwrap();
        d.rename_user("u16@example.com", "u15@example.com").unwrap();
        d.rename_user("swap.tmp@example.com", "u16@example.com")
            .unwrap();
    });
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(summary(&job, "conflicts"), 1, "{job}");
    let conflicts = env
        .changes(job["id"].as_str().unwrap(), Some("conflict"))
        .await;
    let reason = conflicts[0]["reason"].as_str().unwrap();
    assert_eq!(conflicts[0]["user_name"], "u14@example.com");
    assert!(
        reason.contains("role@example.com") && reason.contains("local user keeper"),
        "{reason}"
    );
    let synced = dirsync_users(&env.app).await;
    let google = env.google.control().directory().in_scope(None);
    for (id, want) in &google {
        let got = &synced[id];
        if want.user_name == "u14@example.com" {
            assert!(!got.addresses.contains("role@example.com"));
        } else {
            assert_eq!(got, want);
        }
    }
}

// ---- the property test, on either provider ----

/// The sync group, the group nested in it, and no group.
const GROUPS: [Option<&str>; 3] = [Some("staff@example.com"), Some("team@example.com"), None];

/// A provider's emulator and a server syncing from it, as the property drives them.
pub(crate) trait Provider: Sized {
    type Dir: Tenant;
    /// The starting directory: `n` users on the pool's first addresses, spread over
    /// [`GROUPS`] (`team@` nested in `staff@`).
    fn start(n: usize) -> Self::Dir;
    async fn spawn(d: Self::Dir) -> Self;
    fn app(&self) -> &TestApp;
    async fn configure(&self, changes: Value) -> Reply;
    fn edit(&self, f: impl FnOnce(&mut Self::Dir));
    fn directory(&self) -> Self::Dir;
}

impl Provider for GoogleEnv {
    type Dir = Directory;

    fn start(n: usize) -> Directory {
        let mut d = Directory::empty("example.com");
        d.add_group("staff@example.com", "Staff").unwrap();
        d.add_group("team@example.com", "Team").unwrap();
        d.add_member("staff@example.com", "team@example.com", MemberType::Group)
            .unwrap();
        for i in 0..n {
            let email = pool(i as u8);
            d.add_user(&email, "User", &i.to_string()).unwrap();
            if let Some(g) = GROUPS[i % 3] {
                d.add_member(g, &email, MemberType::User).unwrap();
            }
        }
        d
    }

    async fn spawn(d: Directory) -> Self {
        spawn_with_google(d).await
    }

    fn app(&self) -> &TestApp {
        &self.app
    }

    async fn configure(&self, changes: Value) -> Reply {
        GoogleEnv::configure(self, changes).await
    }

    fn edit(&self, f: impl FnOnce(&mut Directory)) {
        self.google.control().with_directory(f)
    }

    fn directory(&self) -> Directory {
        self.google.control().directory()
    }
}

impl Provider for EntraEnv {
    type Dir = dirsync_entra_emulator::Directory;

    fn start(n: usize) -> Self::Dir {
        let mut d = dirsync_entra_emulator::Directory::empty(
            "5d2f7e8a-3c41-4b6e-9f0a-1b2c3d4e5f60",
            &["example.com", "example.onmicrosoft.com"],
        );
        d.create_group("Staff", Some("staff@example.com")).unwrap();
        d.create_group("Team", Some("team@example.com")).unwrap();
        d.add_member("staff@example.com", "team@example.com")
            .unwrap();
        for i in 0..n {
            let id = d
                .create_user(&pool(i as u8), "User", &i.to_string())
                .unwrap();
            if let Some(g) = GROUPS[i % 3] {
                d.add_member(g, &id).unwrap();
            }
        }
        d
    }

    async fn spawn(d: Self::Dir) -> Self {
        spawn_with_entra(d).await
    }

    fn app(&self) -> &TestApp {
        &self.app
    }

    async fn configure(&self, changes: Value) -> Reply {
        EntraEnv::configure(self, changes).await
    }

    fn edit(&self, f: impl FnOnce(&mut Self::Dir)) {
        self.entra.control().with_directory(f)
    }

    fn directory(&self) -> Self::Dir {
        self.entra.control().directory()
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    users: usize,
    batches: Vec<Vec<Op>>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        2usize..7,
        proptest::collection::vec(proptest::collection::vec(op(false), 1..5), 1..5),
    )
        .prop_map(|(users, batches)| Scenario { users, batches })
}

/// The rules each property runs under.
#[derive(Clone, Copy)]
enum Mode {
    /// auto_delete_users on: dirsync must equal the directory's in-scope users exactly, no
    /// conflicts.
    AutoDelete,
    /// auto_delete_users off and a local user holding a pool address: conflicts are allowed only
    /// where a kept user holds the address, and must name it.
    KeepDepartures,
}

async fn run<P: Provider>(s: Scenario, mode: Mode) -> Result<(), TestCaseError> {
    let env = P::spawn(P::start(s.users)).await;
    let auto_delete = matches!(mode, Mode::AutoDelete);
    env.configure(json!({
        "sync_groups": ["staff@example.com"],
        "auto_delete_users": auto_delete,
        "deletion_limit": 1000,
    }))
    .await
    .expect(200);
    if let Mode::KeepDepartures = mode {
        env.app()
            .post(
                "/api/v1/users",
                &json!({"user_name": "keeper", "full_name": "Keeper", "emails": [pool(9)]}),
            )
            .await
            .expect(201);
    }
    let batches = std::iter::once(Vec::new()).chain(s.batches);
    for (n, batch) in batches.enumerate() {
        env.edit(|d| {
            for op in &batch {
                apply_op(d, op, &GROUPS);
            }
        });
        let job = env.app().sync(false).await;
        let context = format!("after batch {n} ({batch:?}): {job}");
        let directory = env.directory().in_scope(GROUPS[0]);
        if directory.is_empty() && job["status"] == "failed" {
            // §3.6: nobody in scope while directory users exist is refused, not obeyed.
            prop_assert_eq!(&job["error"]["code"], "empty_directory", "{}", context);
            continue;
        }
        prop_assert_eq!(&job["status"], "succeeded", "{}", context);
        let synced = dirsync_users(env.app()).await;
        match mode {
            Mode::AutoDelete => {
                prop_assert_eq!(summary(&job, "conflicts"), 0, "{}", context);
                prop_assert_eq!(&synced, &directory, "{}", context);
            }
            Mode::KeepDepartures => {
                check_kept(env.app(), &job, &synced, &directory, &context).await?;
            }
        }
    }
    Ok(())
}

/// With departures kept, every in-scope directory user is synced exactly, except where a
/// conflict of this run names a user that dirsync keeps and that holds the address in question.
async fn check_kept(
    app: &TestApp,
    job: &Value,
    synced: &BTreeMap<String, Synced>,
    directory: &BTreeMap<String, Synced>,
    context: &str,
) -> Result<(), TestCaseError> {
    let conflicts = app
        .changes(job["id"].as_str().unwrap(), Some("conflict"))
        .await;
    let all_names: BTreeSet<String> = users::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    for (id, want) in directory {
        let mine: Vec<&str> = conflicts
            .iter()
            .filter(|c| c["directory_id"] == id.as_str())
            .map(|c| c["reason"].as_str().unwrap_or(""))
            .collect();
        if mine.is_empty() {
            prop_assert_eq!(synced.get(id), Some(want), "user {}: {}", id, context);
            continue;
        }
        for reason in mine {
            // "… is held by the local user keeper, …" / "the directory user X, which …"
            let named = all_names
                .iter()
                .any(|n| reason.contains(&format!("user {n}")));
            prop_assert!(
                named,
                "conflict names no kept user: {} — {}",
                reason,
                context
            );
        }
        if let Some(got) = synced.get(id) {
            prop_assert!(
                got.addresses.is_subset(&want.addresses),
                "user {} holds addresses the directory does not give it: {}",
                id,
                context
            );
        }
    }
    Ok(())
}

fn property<P: Provider>(mode: Mode) {
    check(scenario(), |s| run::<P>(s, mode));
}

#[test]
fn random_google_changes_with_auto_delete_always_sync_to_exactly_googles_users() {
    property::<GoogleEnv>(Mode::AutoDelete);
}

#[test]
fn random_google_changes_with_departures_kept_sync_or_name_the_user_in_the_way() {
    property::<GoogleEnv>(Mode::KeepDepartures);
}

#[test]
fn random_entra_changes_with_auto_delete_always_sync_to_exactly_the_tenants_users() {
    property::<EntraEnv>(Mode::AutoDelete);
}

#[test]
fn random_entra_changes_with_departures_kept_sync_or_name_the_user_in_the_way() {
    property::<EntraEnv>(Mode::KeepDepartures);
}
