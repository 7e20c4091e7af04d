//! Sync jobs across processes: the CLI, several instances on one database, a worker that dies,
//! the schedule, and the metrics jobs leave behind.

use std::time::Duration;

use dirsync_entity::{sync_jobs, users};
use dirsync_google_emulator::Directory;
use dirsync_tests::google::spawn_with_google;
use dirsync_tests::spawn_app_in;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::json;

fn directory(n: usize) -> Directory {
    let mut d = Directory::empty("example.com");
    for i in 0..n {
        d.add_user(&format!("u{i}@example.com"), "User", &i.to_string())
            .unwrap();
    }
    d
}

use crate::process::{self, dirsync as server_command};

#[tokio::test]
async fn the_cli_runs_a_sync_prints_its_summary_and_fails_when_the_job_does() {
    let env = spawn_with_google(directory(3)).await;
    let out = server_command()
        .args(["sync", "--server", &env.app.address, "--wait"])
        .env("DIRSYNC_TOKEN", &env.app.admin_key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("succeeded") && stdout.contains("created 4"),
        "{stdout}"
    );
    let jobs = env.app.get("/api/v1/sync-jobs").await.expect(200);
    assert_eq!(jobs.json["items"][0]["trigger"], "cli");

    // A job that fails makes the command fail.
    env.configure(json!({"sync_groups": ["missing@example.com"]}))
        .await
        .expect(200);
    let out = server_command()
        .args(["sync", "--server", &env.app.address, "--wait", "--dry-run"])
        .env("DIRSYNC_TOKEN", &env.app.admin_key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[tokio::test]
async fn two_instances_on_one_database_run_a_job_once() {
    let env = spawn_with_google(directory(600)).await;
    let other = spawn_app_in(env.app.settings.clone(), env.app.dir.clone()).await;
    env.google.control().set_latency(Duration::from_millis(100));
    let started = env
        .app
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await
        .expect(202);
    let refused = other
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (409, "sync_in_progress")
    );
    let id = started.json["id"].as_str().unwrap();
    let job = env.wait(id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let row = sync_jobs::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 1, "claimed by exactly one worker");
    assert_eq!(users::Entity::find().count(&other.db).await.unwrap(), 601);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_after_its_lease() {
    let env = spawn_with_google(directory(5)).await;
    // A job claimed by a worker that no longer renews its lease.
    let id = uuid::Uuid::new_v4();
    sync_jobs::ActiveModel {
        id: Set(id),
        dry_run: Set(false),
        trigger: Set(dirsync_entity::Trigger::Api),
        status: Set(dirsync_entity::JobStatus::Running),
        active_slot: Set(Some(1)),
        phase: Set(Some(dirsync_entity::Phase::FetchingUsers)),
        users_fetched: Set(0),
        groups_fetched: Set(0),
        members_fetched: Set(0),
        pages_fetched: Set(0),
        summary: Set(None),
        planned_deletions: Set(None),
        confirm_deletions: Set(None),
        error_code: Set(None),
        error_message: Set(None),
        requested_by: Set("test".into()),
        created_at: Set(chrono::Utc::now()),
        started_at: Set(Some(chrono::Utc::now())),
        finished_at: Set(None),
        lease_owner: Set(Some("a-dead-worker".into())),
        lease_expires_at: Set(Some(chrono::Utc::now() + chrono::Duration::seconds(2))),
        cancel_requested: Set(false),
        attempts: Set(1),
        handovers: Set(0),
        kind: Set(dirsync_entity::JobKind::Full),
        fallback_reason: Set(None),
    }
    .insert(&env.app.db)
    .await
    .unwrap();
    let job = env.wait(&id.to_string()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let row = sync_jobs::Entity::find_by_id(id)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(users::Entity::find().count(&env.app.db).await.unwrap(), 6);
}

/// A sync job running on a `dirsync serve` process, the in-process server of `env` stopped first
/// so that only the process may claim it; what the test needs to start another instance beside
/// it on the same database.
struct Takeover {
    child: tokio::process::Child,
    settings: dirsync_core::settings::Settings,
    dir: std::sync::Arc<tempfile::TempDir>,
    google: dirsync_google_emulator::Emulator,
    id: String,
}

/// Starts a server process on `env`'s database and Google with a job lease of `lease_seconds`,
/// and a real sync job on it.
async fn start_a_job_on_a_server_process(
    env: dirsync_tests::google::GoogleEnv,
    lease_seconds: u64,
) -> Takeover {
    let mut cmd = server_command();
    cmd.env("DIRSYNC_DATA_DIR", env.app.dir.path())
        .env("DIRSYNC_BOOTSTRAP_ADMIN_KEY", &env.app.admin_key)
        .env("DIRSYNC_GOOGLE_DIRECTORY_URL", env.google.base_url())
        .env("DIRSYNC_GOOGLE_TOKEN_URL", env.google.token_uri())
        .env("DIRSYNC_JOB_LEASE_SECONDS", lease_seconds.to_string())
        .env("DIRSYNC_RATE_LIMIT_API_PER_MINUTE", "0");
    if let Some(url) = &env.app.settings.database_url {
        cmd.env("DIRSYNC_DATABASE_URL", url);
    }
    let settings = env.app.settings.clone();
    let dir = env.app.dir.clone();
    let admin_key = env.app.admin_key.clone();
    let google = env.google;
    drop(env.app);
    let (child, port) = process::serve(cmd).await;
    let started: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/sync-jobs"))
        .bearer_auth(&admin_key)
        .json(&json!({"dry_run": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_string();
    Takeover {
        child,
        settings,
        dir,
        google,
        id,
    }
}

#[tokio::test]
async fn a_server_killed_while_applying_leaves_old_or_new_state_and_the_survivor_takes_over() {
    const USERS: u64 = 20_000;
    let env = spawn_with_google(directory(USERS as usize - 1)).await;
    let Takeover {
        mut child,
        settings,
        dir,
        google: _google,
        id,
    } = start_a_job_on_a_server_process(env, 3).await;
    let job_id: uuid::Uuid = id.parse().unwrap();
    // The survivor runs beside it, on the same database, from before the kill.
    let survivor = spawn_app_in(settings, dir).await;
    let mut applying = false;
    for _ in 0..3000 {
        let row = sync_jobs::Entity::find_by_id(job_id)
            .one(&survivor.db)
            .await
            .unwrap()
            .unwrap();
        if row.phase == Some(dirsync_entity::Phase::Applying)
            && row.status == dirsync_entity::JobStatus::Running
        {
            applying = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(applying, "never saw the job applying");
    child.start_kill().unwrap(); // SIGKILL, in the middle of the apply transaction
    child.wait().await.unwrap();

    let row = sync_jobs::Entity::find_by_id(job_id)
        .one(&survivor.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.status,
        dirsync_entity::JobStatus::Running,
        "the kill came after the job ended; the test proves nothing"
    );
    let count = users::Entity::find().count(&survivor.db).await.unwrap();
    assert!(count == 0 || count == USERS, "half applied: {count} users");
    let mut job = serde_json::Value::Null;
    for _ in 0..18 {
        job = survivor
            .get(&format!("/api/v1/sync-jobs/{id}?wait=10"))
            .await
            .expect(200)
            .json;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            break;
        }
    }
    assert_eq!(job["status"], "succeeded", "{job}");
    let row = sync_jobs::Entity::find_by_id(job_id)
        .one(&survivor.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 2, "taken over by the survivor");
    assert_eq!(
        users::Entity::find().count(&survivor.db).await.unwrap(),
        USERS
    );
}

#[tokio::test]
async fn a_server_stopped_with_sigterm_hands_its_job_over_at_once_not_a_lease_later() {
    const USERS: u64 = 10_000;
    const LEASE_SECONDS: u64 = 120;
    let env = spawn_with_google(directory(USERS as usize - 1)).await;
    // Slow Google: twenty pages of users take twenty seconds, and the job is still fetching when
    // the signal comes, on a loaded machine too (a signal during the apply stops the job only
    // once its transaction is done, which may outlast the grace).
    env.google
        .control()
        .set_latency(Duration::from_millis(1000));
    let Takeover {
        mut child,
        settings,
        dir,
        google,
        id,
    } = start_a_job_on_a_server_process(env, LEASE_SECONDS).await;
    let job_id: uuid::Uuid = id.parse().unwrap();
    let db = dirsync_core::db::connect_and_migrate(&settings)
        .await
        .unwrap();
    let fetching = || async {
        let row = sync_jobs::Entity::find_by_id(job_id)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        row.status == dirsync_entity::JobStatus::Running
            && row.pages_fetched > 0
            && row.phase != Some(dirsync_entity::Phase::Applying)
    };
    // Claimed by the process (the only worker yet), past its first page.
    let mut seen = false;
    for _ in 0..1000 {
        if fetching().await {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "never saw the job fetching");
    // The other instance, beside it on the same database, from before the signal.
    let survivor = spawn_app_in(settings, dir).await;
    assert!(fetching().await, "the job left the fetch before the signal");

    let signalled = std::time::Instant::now();
    process::terminate(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the stopped instance exits within its grace")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let row = sync_jobs::Entity::find_by_id(job_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        row.status,
        dirsync_entity::JobStatus::Succeeded,
        "the job ended before the signal; the test proves nothing"
    );
    assert_eq!(row.handovers, 1, "the hand-over is recorded");
    assert_eq!(
        users::Entity::find().count(&db).await.unwrap(),
        0,
        "a stopped job writes nothing"
    );
    google.control().set_latency(Duration::ZERO);

    let mut job = serde_json::Value::Null;
    for _ in 0..6 {
        job = survivor
            .get(&format!("/api/v1/sync-jobs/{id}?wait=10"))
            .await
            .expect(200)
            .json;
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            break;
        }
    }
    let took = signalled.elapsed();
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["handovers"], 1, "{job}");
    assert!(
        took < Duration::from_secs(LEASE_SECONDS / 4),
        "taken over after {took:?}, not at once"
    );
    let row = sync_jobs::Entity::find_by_id(job_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.attempts, 1,
        "a hand-over is not counted as a worker that died"
    );
    assert_eq!(users::Entity::find().count(&db).await.unwrap(), USERS);
}

#[tokio::test]
async fn the_schedule_queues_a_job_once_per_interval_and_not_while_one_runs() {
    let env = spawn_with_google(directory(2)).await;
    assert!(dirsync_core::sync::schedule::schedule_once(&env.app.db)
        .await
        .unwrap()
        .is_none());
    env.configure(json!({"schedule_minutes": 60}))
        .await
        .expect(200);
    let job = dirsync_core::sync::schedule::schedule_once(&env.app.db)
        .await
        .unwrap()
        .expect("due");
    assert_eq!(job.trigger, dirsync_entity::Trigger::Schedule);
    // Not again while it is active, nor within the interval after it.
    assert!(dirsync_core::sync::schedule::schedule_once(&env.app.db)
        .await
        .unwrap()
        .is_none());
    let done = env.wait(&job.id.to_string()).await;
    assert_eq!(done["status"], "succeeded");
    assert!(dirsync_core::sync::schedule::schedule_once(&env.app.db)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn metrics_count_jobs_and_google_requests() {
    let env = spawn_with_google(directory(2)).await;
    env.sync(false).await;
    // The worker counts a job just after recording its end, which the API may report first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let m = env.app.get("/metrics").await.expect(200).text;
        if m.contains("dirsync_sync_jobs_finished_total{status=\"succeeded\"} 1")
            || std::time::Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        m.contains("dirsync_sync_jobs_finished_total{status=\"succeeded\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("dirsync_google_requests_total{endpoint=\"users.list\",status=\"200\"}"),
        "{m}"
    );
    assert!(m.contains("dirsync_sync_job_duration_seconds_count"));
}

#[tokio::test]
async fn a_job_and_its_changes_read_back_as_the_core_types() {
    let env = spawn_with_google(Directory::generate(3, 0, 7)).await;
    let job = env.sync_typed(true).await;
    assert_eq!(job.status, dirsync_core::jobs::Status::Succeeded);
    assert_eq!(job.trigger, dirsync_core::jobs::Trigger::Api);
    let created = job.summary.expect("a summary").created;
    assert!(created > 0);
    let page = env
        .app
        .get(&format!("/api/v1/sync-jobs/{}/changes?kind=create", job.id))
        .await
        .expect(200);
    let changes: Vec<dirsync_core::jobs::StoredChange> =
        serde_json::from_value(page.json["items"].clone()).unwrap();
    assert_eq!(changes.len() as u64, created);
    assert!(changes
        .iter()
        .all(|c| c.kind == dirsync_core::sync::ChangeKind::Create));
}
