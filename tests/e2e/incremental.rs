//! Incremental sync (issue 15; Entra: issue 16 item 4): an incremental job re-reads what Google's
//! admin log (or Entra's delta links) names and ends where a full sync would. The heart is the
//! equivalence property, on either provider: random sequences of valid changes (creations,
//! renames onto freed addresses, swaps, aliases, suspensions, archiving, deletions and
//! undeletions, moves between groups, nesting and cycles), incremental jobs at random points, and
//! after each one dirsync compared with a second installation that ran a full sync of the same
//! directory. Then one test per reason to fall back to a full sync.

use std::sync::atomic::{AtomicUsize, Ordering};

use dirsync_entity::directory_state;
use dirsync_entra_emulator as entra;
use dirsync_google_emulator::{Directory, Emulator, EmulatorOptions, Endpoint, MemberType};
use dirsync_tests::entra::{base_entra_settings, EntraEnv};
use dirsync_tests::google::{spawn_app_for, spawn_with_google, GoogleEnv};
use dirsync_tests::TestApp;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::{json, Value};

use crate::address_moves::{dirsync_users_of, Provider};
use crate::changes::{apply_op, check, op, pool, Op};
use crate::metrics::scrape;

/// Starts a job with `body` on `app` and waits for its end.
async fn run_job(app: &TestApp, body: Value) -> Value {
    let started = app.post("/api/v1/sync-jobs", &body).await.expect(202);
    let id = started.json["id"].as_str().unwrap().to_string();
    for _ in 0..12 {
        let r = app
            .get(&format!("/api/v1/sync-jobs/{id}?wait=10"))
            .await
            .expect(200);
        if !matches!(r.json["status"].as_str(), Some("queued" | "running")) {
            return r.json;
        }
    }
    panic!("job {id} did not end in two minutes");
}

async fn incremental(env: &GoogleEnv) -> Value {
    run_job(&env.app, json!({"kind": "incremental"})).await
}

// ---- the equivalence property, on either provider ----

/// The sync group, the groups that can be nested (under it, in each other, in cycles), and no
/// group. The pads also raise the cost of a full sync (one listing each), so that a batch of
/// changes is cheaper to follow than to read again, as in a real directory.
const GROUPS: [Option<&str>; 6] = [
    Some("staff@example.com"),
    Some("team@example.com"),
    Some("pad0@example.com"),
    Some("pad1@example.com"),
    Some("pad2@example.com"),
    None,
];
const PADS: usize = 12;

/// What the property needs of a provider beyond the sync property's [`Provider`]: its
/// starting directory, its settings, and a second installation reading the same directory.
pub(crate) trait Twins: Provider {
    /// `n` users on the pool's first addresses, spread over [`GROUPS`], `team@` and the pads
    /// nested in `staff@`.
    fn start_padded(n: usize) -> Self::Dir;
    /// The property's directory settings: the sync group, and a deletion limit out of the way.
    fn settings(&self, auto_delete: bool) -> Value;
    /// A second server with its own database, syncing from the same emulator.
    async fn twin(&self) -> TestApp;
}

impl Twins for GoogleEnv {
    fn start_padded(n: usize) -> Directory {
        let mut d = Directory::empty("example.com");
        for g in GROUPS.iter().flatten() {
            d.add_group(g, g).unwrap();
        }
        d.add_member("staff@example.com", "team@example.com", MemberType::Group)
            .unwrap();
        for i in 0..PADS {
            let pad = format!("extra{i}@example.com");
            d.add_group(&pad, &pad).unwrap();
            d.add_member("staff@example.com", &pad, MemberType::Group)
                .unwrap();
        }
        for i in 0..n {
            let email = pool(i as u8);
            d.add_user(&email, "User", &i.to_string()).unwrap();
            if let Some(g) = GROUPS[i % GROUPS.len()] {
                d.add_member(g, &email, MemberType::User).unwrap();
            }
        }
        d
    }

    fn settings(&self, auto_delete: bool) -> Value {
        json!({
            "provider": "google_workspace",
            "admin_email": "admin@example.com",
            "customer_id": "my_customer",
            "sync_groups": ["staff@example.com"],
            "auto_delete_users": auto_delete,
            "deletion_limit": 1000,
            "schedule_minutes": null
        })
    }

    async fn twin(&self) -> TestApp {
        spawn_app_for(&self.google, |_| {}).await
    }
}

impl Twins for EntraEnv {
    fn start_padded(n: usize) -> entra::Directory {
        let mut d = entra::Directory::empty(
            "5d2f7e8a-3c41-4b6e-9f0a-1b2c3d4e5f60",
            &["example.com", "example.onmicrosoft.com"],
        );
        for g in GROUPS.iter().flatten() {
            d.create_group(g, Some(g)).unwrap();
        }
        d.add_member("staff@example.com", "team@example.com")
            .unwrap();
        for i in 0..PADS {
            let pad = format!("extra{i}@example.com");
            d.create_group(&pad, Some(&pad)).unwrap();
            d.add_member("staff@example.com", &pad).unwrap();
        }
        for i in 0..n {
            let id = d
                .create_user(&pool(i as u8), "User", &i.to_string())
                .unwrap();
            if let Some(g) = GROUPS[i % GROUPS.len()] {
                d.add_member(g, &id).unwrap();
            }
        }
        d
    }

    fn settings(&self, auto_delete: bool) -> Value {
        let mut body = base_entra_settings(&self.credentials);
        body["sync_groups"] = json!(["staff@example.com"]);
        body["auto_delete_users"] = json!(auto_delete);
        body["deletion_limit"] = json!(1000);
        body
    }

    async fn twin(&self) -> TestApp {
        dirsync_tests::entra::spawn_app_for(&self.entra, |_| {}).await
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    users: usize,
    /// Changes, and whether an incremental job runs after them.
    batches: Vec<(Vec<Op>, bool)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        2usize..8,
        proptest::collection::vec(
            (proptest::collection::vec(op(true), 1..4), any::<bool>()),
            1..6,
        ),
    )
        .prop_map(|(users, batches)| Scenario { users, batches })
}

/// Random changes, incremental jobs at random points, and after each one dirsync compared with
/// a twin installation that ran a full sync at the same point. `followed` counts the
/// incremental jobs that followed the directory's changes rather than falling back.
async fn run<P: Twins>(
    s: Scenario,
    auto_delete: bool,
    followed: &AtomicUsize,
) -> Result<(), TestCaseError> {
    let env = P::spawn(P::start_padded(s.users)).await;
    let twin = env.twin().await;
    let settings = env.settings(auto_delete);
    env.app()
        .put("/api/v1/directory", &settings)
        .await
        .expect(200);
    twin.put("/api/v1/directory", &settings).await.expect(200);
    // Both start from a full sync.
    let first = env.app().sync(false).await;
    prop_assert_eq!(&first["status"], "succeeded", "{}", first);
    let first = run_job(&twin, json!({})).await;
    prop_assert_eq!(&first["status"], "succeeded", "{}", first);
    let mut batches = s.batches.clone();
    if let Some(last) = batches.last_mut() {
        last.1 = true;
    }
    let mut last_succeeded = true;
    for (n, (ops, sync)) in batches.iter().enumerate() {
        env.edit(|d| {
            for op in ops {
                apply_op(d, op, &GROUPS);
            }
        });
        if !sync {
            continue;
        }
        // The twin takes a full sync at the same point: same history, full reads.
        let full = run_job(&twin, json!({})).await;
        let inc = run_job(env.app(), json!({"kind": "incremental"})).await;
        let context = format!("after batch {n} ({ops:?}): incremental {inc}, full {full}");
        prop_assert_eq!(&inc["kind"], "incremental", "{}", context);
        prop_assert_eq!(&inc["status"], &full["status"], "{}", context);
        last_succeeded = inc["status"] == "succeeded";
        if inc["fallback_reason"].is_null() {
            followed.fetch_add(1, Ordering::Relaxed);
        }
        if full["status"] == "succeeded" {
            prop_assert_eq!(&inc["summary"], &full["summary"], "{}", context);
        } else {
            prop_assert_eq!(&inc["error"]["code"], &full["error"]["code"], "{}", context);
        }
        let mine = dirsync_users_of(&env.app().db).await;
        let theirs = dirsync_users_of(&twin.db).await;
        prop_assert_eq!(&mine, &theirs, "{}", context);
    }
    if auto_delete && last_succeeded {
        // And a full sync into a fresh database agrees too (after a refused run, such as
        // `empty_directory`, dirsync keeps what a fresh database never had).
        let fresh = env.twin().await;
        fresh.put("/api/v1/directory", &settings).await.expect(200);
        let job = run_job(&fresh, json!({})).await;
        if job["status"] == "succeeded" {
            prop_assert_eq!(
                dirsync_users_of(&env.app().db).await,
                dirsync_users_of(&fresh.db).await
            );
        }
    }
    Ok(())
}

fn property<P: Twins>(auto_delete: bool) {
    let followed = AtomicUsize::new(0);
    check(scenario(), |s| run::<P>(s, auto_delete, &followed));
    assert!(
        followed.load(Ordering::Relaxed) > 0,
        "every incremental job fell back to a full sync: the property saw no change followed"
    );
}

#[test]
fn incremental_jobs_at_random_points_with_auto_delete_end_where_a_full_sync_ends() {
    property::<GoogleEnv>(true);
}

#[test]
fn incremental_jobs_at_random_points_with_departures_kept_end_where_a_full_sync_ends() {
    property::<GoogleEnv>(false);
}

#[test]
fn entra_incremental_jobs_at_random_points_with_auto_delete_end_where_a_full_sync_ends() {
    property::<EntraEnv>(true);
}

#[test]
fn entra_incremental_jobs_at_random_points_with_departures_kept_end_where_a_full_sync_ends() {
    property::<EntraEnv>(false);
}

/// Shrunk from the property: a user deleted and undeleted between two incremental jobs. Google
/// drops a deleted user from its groups without a membership event and does not restore them;
/// the job once kept the user in scope from the stored memberships.
#[tokio::test]
async fn a_user_deleted_and_undeleted_between_two_jobs_is_out_of_the_sync_groups() {
    let s = Scenario {
        users: 2,
        batches: vec![(
            vec![Op::Delete { user: 0 }, Op::Undelete { which: 0 }],
            true,
        )],
    };
    if let Err(e) = run::<GoogleEnv>(s, true, &AtomicUsize::new(0)).await {
        panic!("{e}");
    }
}

/// Shrunk from the property (CI, departures kept): two users swap addresses, one is deleted and
/// the other leaves every group, then the deleted one is undeleted. Google undeletes a user
/// outside its former groups, so nobody is in scope: the full sync refuses (`empty_directory`),
/// and so must the incremental job.
#[tokio::test]
async fn an_undeleted_user_after_a_swap_and_a_regroup_is_not_back_in_scope() {
    let s = Scenario {
        users: 2,
        batches: vec![
            (vec![Op::Swap { a: 19, b: 216 }], false),
            (
                vec![
                    Op::Delete { user: 0 },
                    Op::Regroup {
                        user: 21,
                        group: 184,
                    },
                ],
                true,
            ),
            (
                vec![
                    Op::AddAlias {
                        user: 186,
                        slot: 25,
                    },
                    Op::Undelete { which: 191 },
                ],
                true,
            ),
        ],
    };
    if let Err(e) = run::<GoogleEnv>(s, false, &AtomicUsize::new(0)).await {
        panic!("{e}");
    }
}

/// Entra restores a user with its group memberships, and the groups' delta says nothing of
/// them: the job asks which groups the restored user is in (`memberOf`), whether it was deleted
/// before the last full sync or after it.
#[tokio::test]
async fn entra_a_user_deleted_and_restored_is_back_in_its_sync_groups() {
    for batches in [
        vec![
            (vec![Op::Delete { user: 0 }], true),
            (vec![Op::Undelete { which: 0 }], true),
        ],
        vec![(
            vec![Op::Delete { user: 0 }, Op::Undelete { which: 0 }],
            true,
        )],
    ] {
        let s = Scenario { users: 3, batches };
        if let Err(e) = run::<EntraEnv>(s, true, &AtomicUsize::new(0)).await {
            panic!("{e}");
        }
    }
}

// ---- following the log, and its cost ----

/// admin@ and `n` users u0000…, no groups.
fn users(n: usize) -> Directory {
    let mut d = Directory::empty("example.com");
    for i in 0..n {
        d.add_user(&format!("u{i:04}@example.com"), "User", &i.to_string())
            .unwrap();
    }
    d
}

#[tokio::test]
async fn an_incremental_job_re_reads_only_the_users_the_log_names() {
    let env = spawn_with_google(users(1200)).await;
    let full = env.sync(false).await;
    assert_eq!(full["status"], "succeeded", "{full}");
    let control = env.google.control();
    control.with_directory(|d| {
        d.set_suspended("u0007@example.com", true).unwrap();
        d.rename_user("u0008@example.com", "renamed@example.com")
            .unwrap();
    });
    let lists = control.request_count(Endpoint::UsersList);
    let gets = control.request_count(Endpoint::UsersGet);
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "incremental");
    assert!(job["fallback_reason"].is_null(), "{job}");
    assert_eq!(job["summary"]["disabled"], 1, "{job}");
    assert_eq!(job["summary"]["updated"], 1, "{job}");
    assert_eq!(
        control.request_count(Endpoint::UsersList),
        lists,
        "no user listing"
    );
    // The suspended user, and for the rename the old address, the new one and (by id) the
    // user the old address belonged to: at most three per named address.
    let reads = control.request_count(Endpoint::UsersGet) - gets;
    assert!((1..=6).contains(&reads), "{reads} users.get calls");
    let r = env
        .app
        .get("/api/v1/users/lookup?email=renamed@example.com")
        .await;
    r.expect(200);
    // The next incremental job has nothing new: the applied events are not applied again.
    let gets = control.request_count(Endpoint::UsersGet);
    let again = incremental(&env).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["summary"]["updated"], 0, "{again}");
    assert_eq!(control.request_count(Endpoint::UsersGet), gets, "{again}");
}

#[tokio::test]
async fn a_dry_run_incremental_job_writes_nothing_and_keeps_the_cursor() {
    let env = spawn_with_google(users(20)).await;
    env.sync(false).await;
    let before = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .expect("a full sync writes the state");
    env.google.control().with_directory(|d| {
        d.set_suspended("u0003@example.com", true).unwrap();
    });
    let dry = run_job(&env.app, json!({"kind": "incremental", "dry_run": true})).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["summary"]["disabled"], 1, "{dry}");
    let after = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.cursor, after.cursor);
    assert_eq!(before.snapshot, after.snapshot);
    let u = env
        .app
        .get("/api/v1/users/lookup?email=u0003@example.com")
        .await;
    assert_eq!(u.expect(200).json["disabled"], false);
}

// ---- falling back to a full sync, each reason ----

fn reason(job: &Value) -> String {
    job["fallback_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no fallback_reason: {job}"))
        .to_string()
}

#[tokio::test]
async fn an_incremental_job_before_any_full_sync_runs_as_one_and_says_why() {
    let env = spawn_with_google(users(5)).await;
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "incremental");
    assert!(reason(&job).contains("no full sync"), "{job}");
    assert_eq!(job["summary"]["created"], 6, "{job}");
}

#[tokio::test]
async fn a_bulk_upload_in_the_log_makes_the_job_a_full_sync() {
    let env = spawn_with_google(users(5)).await;
    env.sync(false).await;
    env.google.control().with_directory(|d| {
        d.bulk_upload(&[("bulk1@example.com", "Bulk", "One")])
            .unwrap();
    });
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(reason(&job).contains("BULK_UPLOAD"), "{job}");
    assert_eq!(job["summary"]["created"], 1, "{job}");
}

#[tokio::test]
async fn without_the_audit_scope_the_job_is_a_full_sync_that_names_the_scope() {
    let env = spawn_with_google(users(5)).await;
    env.sync(false).await;
    let control = env.google.control();
    let client_id = env.google.service_account().client_id.clone();
    control.set_delegation(&client_id, &dirsync_google_emulator::READONLY_SCOPES);
    control.with_directory(|d| {
        d.set_suspended("u0001@example.com", true).unwrap();
    });
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let why = reason(&job);
    assert!(
        why.contains("admin.reports.audit.readonly"),
        "the reason names the scope to grant: {why}"
    );
    assert_eq!(
        job["summary"]["disabled"], 1,
        "the full sync still ran: {job}"
    );
    let state = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.events_available, Some(false));
}

#[tokio::test]
async fn a_cursor_older_than_the_log_keeps_makes_the_job_a_full_sync() {
    let env = spawn_with_google(users(5)).await;
    env.sync(false).await;
    let row = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am = row.into_active_model();
    am.cursor = Set(Some(chrono::Utc::now() - chrono::Duration::days(200)));
    am.update(&env.app.db).await.unwrap();
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(reason(&job).contains("180 days"), "{job}");
    // The full sync moved the cursor to its own start.
    let state = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(state.cursor.unwrap() > chrono::Utc::now() - chrono::Duration::minutes(5));
}

#[tokio::test]
async fn more_changes_than_a_full_sync_reads_make_the_job_a_full_sync() {
    // Ten users: a full sync is one page; renaming four users names eight addresses.
    let env = spawn_with_google(users(10)).await;
    env.sync(false).await;
    env.google.control().with_directory(|d| {
        for i in 0..4 {
            d.rename_user(
                &format!("u{i:04}@example.com"),
                &format!("n{i:04}@example.com"),
            )
            .unwrap();
        }
    });
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(reason(&job).contains("more Directory calls"), "{job}");
    assert_eq!(job["summary"]["updated"], 4, "{job}");
}

#[tokio::test]
async fn a_deleted_user_leaves_only_when_the_directory_confirms_it() {
    // The log is read, but the user it names as deleted is back (undeleted) by the time the
    // job re-reads it: nobody is deleted.
    let google = Emulator::start(EmulatorOptions::with_directory(users(1200)))
        .await
        .unwrap();
    let env = dirsync_tests::google::spawn_with_google_and(google, |_| {}).await;
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    env.sync(false).await;
    env.google.control().with_directory(|d| {
        let id = d.user("u0002@example.com").unwrap().id.clone();
        d.delete_user("u0002@example.com").unwrap();
        d.undelete_user(&id).unwrap();
    });
    let job = incremental(&env).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["fallback_reason"].is_null(), "{job}");
    assert_eq!(job["summary"]["deleted"], 0, "{job}");
    env.app
        .get("/api/v1/users/lookup?email=u0002@example.com")
        .await
        .expect(200);
    // Deleted for good: now it leaves.
    env.google.control().with_directory(|d| {
        d.delete_user("u0002@example.com").unwrap();
    });
    let job = incremental(&env).await;
    assert_eq!(job["summary"]["deleted"], 1, "{job}");
    env.app
        .get("/api/v1/users/lookup?email=u0002@example.com")
        .await
        .expect(404);
}

// ---- settings, connection test, schedule, metric, CLI ----

#[tokio::test]
async fn the_directory_takes_the_incremental_settings_and_shows_where_incremental_sync_stands() {
    let env = spawn_with_google(users(5)).await;
    let r = env.app.get("/api/v1/directory").await.expect(200);
    assert_eq!(r.json["incremental_seconds"], Value::Null);
    assert_eq!(r.json["full_sync_hours"], 24);
    assert_eq!(r.json["event_overlap_minutes"], 10);
    assert_eq!(r.json["incremental"]["cursor"], Value::Null);
    assert_eq!(r.json["incremental"]["available"], false);
    env.configure(json!({"incremental_seconds": 5}))
        .await
        .expect(422);
    env.configure(json!({"full_sync_hours": 0}))
        .await
        .expect(422);
    env.configure(json!({"event_overlap_minutes": 1441}))
        .await
        .expect(422);
    let r = env
        .configure(
            json!({"incremental_seconds": 30, "full_sync_hours": 6, "event_overlap_minutes": 15}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["incremental_seconds"], 30);
    assert_eq!(r.json["full_sync_hours"], 6);
    assert_eq!(r.json["event_overlap_minutes"], 15);

    env.sync(false).await;
    let job = incremental(&env).await;
    assert!(job["fallback_reason"].is_null(), "{job}");
    let r = env.app.get("/api/v1/directory").await.expect(200);
    let inc = &r.json["incremental"];
    assert!(inc["cursor"].is_string(), "{inc}");
    assert_eq!(inc["last_job_id"], job["id"], "{inc}");
    assert_eq!(inc["available"], true, "{inc}");
    assert_eq!(inc["reason"], Value::Null, "{inc}");

    // A full sync moves the cursor and leaves the last incremental job as it was.
    let cursor = inc["cursor"].clone();
    env.sync(false).await;
    let r = env.app.get("/api/v1/directory").await.expect(200);
    let after = &r.json["incremental"];
    assert_eq!(after["last_job_id"], job["id"], "{after}");
    assert_ne!(after["cursor"], cursor, "{after}");
}

#[tokio::test]
async fn the_connection_test_checks_the_admin_log_and_fails_on_it_only_when_incremental_is_on() {
    let env = spawn_with_google(users(5)).await;
    let test = env.test_connection().await;
    let step = |t: &Value| {
        t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "events_readable")
            .cloned()
            .unwrap_or_else(|| panic!("no events_readable step: {t}"))
    };
    assert_eq!(test["ok"], true, "{}", test);
    assert_eq!(step(&test)["ok"], true);

    let client_id = env.google.service_account().client_id.clone();
    env.google
        .control()
        .set_delegation(&client_id, &dirsync_google_emulator::READONLY_SCOPES);
    // Tokens already issued stay good until they expire, as at Google.
    env.google.control().expire_tokens();
    let test = env.test_connection().await;
    let events = step(&test);
    assert_eq!(events["ok"], false, "{events}");
    let message = events["message"].as_str().unwrap();
    assert!(
        message.contains("admin.reports.audit.readonly") && message.contains(&client_id),
        "the step names the scope and the client id to grant it to: {message}"
    );
    assert_eq!(test["ok"], true, "full sync still works: {}", test);
    let r = env.app.get("/api/v1/directory").await.expect(200);
    assert_eq!(r.json["incremental"]["available"], false);
    assert!(r.json["incremental"]["reason"]
        .as_str()
        .unwrap()
        .contains("admin.reports.audit.readonly"));

    env.configure(json!({"incremental_seconds": 60}))
        .await
        .expect(200);
    let test = env.test_connection().await;
    assert_eq!(test["ok"], false, "{}", test);
}

#[tokio::test]
async fn the_schedule_runs_a_full_sync_first_then_incremental_jobs() {
    use dirsync_core::sync::schedule::schedule_once;
    let env = spawn_with_google(users(5)).await;
    let first = schedule_once(&env.app.db).await.unwrap();
    assert!(first.is_none(), "nothing is scheduled without a setting");
    env.configure(json!({"incremental_seconds": 10}))
        .await
        .expect(200);
    let full = schedule_once(&env.app.db).await.unwrap().expect("a job");
    assert_eq!(full.kind.as_str(), "full");
    env.wait(&full.id.to_string()).await;
    let inc = schedule_once(&env.app.db).await.unwrap().expect("a job");
    assert_eq!(inc.kind.as_str(), "incremental");
    let done = env.wait(&inc.id.to_string()).await;
    assert!(done["fallback_reason"].is_null(), "{done}");
    assert!(
        schedule_once(&env.app.db).await.unwrap().is_none(),
        "neither is due again yet"
    );
}

#[tokio::test]
async fn the_age_of_the_newest_applied_event_is_a_metric() {
    let env = spawn_with_google(users(5)).await;
    let before = scrape(&env.app).await;
    assert!(!before.contains("dirsync_directory_event_age_seconds "));
    env.sync(false).await;
    let after = scrape(&env.app).await;
    let age: f64 = after
        .lines()
        .find_map(|l| l.strip_prefix("dirsync_directory_event_age_seconds "))
        .unwrap_or_else(|| panic!("no gauge: {after}"))
        .parse()
        .unwrap();
    assert!((0.0..120.0).contains(&age), "{age}");
}

#[tokio::test]
async fn the_cli_starts_an_incremental_job() {
    let env = spawn_with_google(users(5)).await;
    env.sync(false).await;
    let key = env.app.api_key("operator").await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DIRSYNC_TOKEN", &key)
        .args([
            "sync",
            "--server",
            &env.app.address,
            "--kind",
            "incremental",
            "--wait",
            "--json",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["kind"], "incremental", "{job}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dirsync-test-server"))
        .env_clear()
        .env("DIRSYNC_TOKEN", &key)
        .args(["sync", "--server", &env.app.address, "--kind", "partial"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error: {out:?}");
}

// ---- Microsoft Entra ID: delta links ----

/// Ten users in the sync group `staff@`.
fn entra_tenant() -> entra::Directory {
    let mut d = entra::Directory::empty(
        "5d2f7e8a-3c41-4b6e-9f0a-1b2c3d4e5f60",
        &["example.com", "example.onmicrosoft.com"],
    );
    d.create_group("Staff", Some("staff@example.com")).unwrap();
    for i in 0..10 {
        let id = d
            .create_user(&format!("u{i:02}@example.com"), "User", &i.to_string())
            .unwrap();
        d.add_member("staff@example.com", &id).unwrap();
    }
    d
}

async fn delta_links(app: &TestApp) -> Option<Value> {
    directory_state::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .and_then(|s| s.delta_links)
        .map(|l| serde_json::from_str(&l).expect("delta links are JSON"))
}

#[tokio::test]
async fn entra_a_full_sync_stores_delta_links_and_an_incremental_job_follows_them() {
    let env = dirsync_tests::entra::spawn_with_entra(entra_tenant()).await;
    env.configure(json!({"sync_groups": ["staff@example.com"]}))
        .await
        .expect(200);
    let dry = env.app.sync(true).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(
        delta_links(&env.app).await,
        None,
        "a dry run writes nothing"
    );
    let full = env.app.sync(false).await;
    assert_eq!(full["status"], "succeeded", "{full}");
    let links = delta_links(&env.app).await.expect("links stored");
    assert!(links["users"]
        .as_str()
        .unwrap()
        .contains("/v1.0/users/delta?"));
    assert!(links["groups"]
        .as_str()
        .unwrap()
        .contains("/v1.0/groups/delta?"));

    let control = env.entra.control();
    let id = control
        .directory()
        .user("u03@example.com")
        .unwrap()
        .id
        .clone();
    control.with_directory(|d| d.set_account_enabled(&id, false).unwrap());
    control.reset_counts();
    let job = run_job(&env.app, json!({"kind": "incremental"})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["fallback_reason"].is_null(), "{job}");
    assert_eq!(job["summary"]["disabled"], 1, "{job}");
    assert_eq!(
        control.request_count(dirsync_entra_emulator::Endpoint::UsersList),
        0
    );
    assert_ne!(
        delta_links(&env.app).await.unwrap(),
        links,
        "new links stored"
    );

    // Expired links: a full sync, with the reason, which stores new links.
    control.expire_delta_tokens(410);
    let id = control
        .directory()
        .user("u04@example.com")
        .unwrap()
        .id
        .clone();
    control.with_directory(|d| d.set_account_enabled(&id, false).unwrap());
    let job = run_job(&env.app, json!({"kind": "incremental"})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(reason(&job).contains("syncStateNotFound"), "{job}");
    assert_eq!(job["summary"]["disabled"], 1, "{job}");
    let job = run_job(&env.app, json!({"kind": "incremental"})).await;
    assert!(job["fallback_reason"].is_null(), "{job}");
}

#[tokio::test]
async fn entra_without_stored_delta_links_the_job_is_a_full_sync_that_says_why() {
    let env = dirsync_tests::entra::spawn_with_entra(entra_tenant()).await;
    env.app.sync(false).await;
    // As after an upgrade: a state written before delta links were stored.
    let row = directory_state::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am = row.into_active_model();
    am.delta_links = Set(None);
    am.update(&env.app.db).await.unwrap();
    let job = run_job(&env.app, json!({"kind": "incremental"})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(reason(&job), dirsync_core::entra::NO_DELTA_LINKS, "{job}");
    assert!(
        delta_links(&env.app).await.is_some(),
        "the full sync stored them"
    );
}
