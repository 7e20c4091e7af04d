//! The sync engine end to end, one test per rule of product.md §3, against the Google emulator.

use dirsync_core::jobs::Status;
use dirsync_entity::{archive_folders, users};
use dirsync_google_emulator::{Directory, Endpoint, MemberType};
use dirsync_tests::google::{spawn_with_google, GoogleEnv};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

/// admin@ plus ada (with an alias), bob, carol.
fn small_directory() -> Directory {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_alias("ada@example.com", "a.lovelace@example.com")
        .unwrap();
    d.add_user("bob@example.com", "Bob", "Builder").unwrap();
    d.add_user("carol@example.com", "Carol", "Shannon").unwrap();
    d
}

async fn user_count(env: &GoogleEnv) -> u64 {
    users::Entity::find().count(&env.app.db).await.unwrap()
}

async fn user_named(env: &GoogleEnv, name: &str) -> Option<users::Model> {
    users::Entity::find()
        .filter(users::Column::UserNameKey.eq(name.to_lowercase()))
        .one(&env.app.db)
        .await
        .unwrap()
}

fn summary(job: &Value, field: &str) -> u64 {
    job["summary"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no summary.{field} in {job}"))
}

#[tokio::test]
async fn dry_run_writes_nothing_but_the_job_and_its_changes() {
    let env = spawn_with_google(small_directory()).await;
    let job = env.sync_typed(true).await;
    assert_eq!(job.status, Status::Succeeded, "{job:?}");
    assert!(job.dry_run);
    assert_eq!(job.summary.map(|s| s.created), Some(4));
    assert_eq!(env.app.job(job.id).await.status, Status::Succeeded);
    assert_eq!(user_count(&env).await, 0);
    let creates = env.changes(&job.id.to_string(), Some("create")).await;
    assert_eq!(creates.len(), 4);
    let ada = creates
        .iter()
        .find(|c| c["user_name"] == "ada@example.com")
        .unwrap();
    assert_eq!(
        ada["fields"]["emails"][1],
        json!(["ada@example.com", "a.lovelace@example.com"])
    );
    assert!(job.progress.pages >= 1);
}

#[tokio::test]
async fn the_dry_run_endpoint_answers_with_the_finished_job_and_its_changes() {
    let env = spawn_with_google(small_directory()).await;
    let r = env
        .app
        .post("/api/v1/sync/dry-run", &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["job"]["status"], "succeeded");
    assert_eq!(r.json["changes"].as_array().unwrap().len(), 4);
    assert_eq!(user_count(&env).await, 0);
}

#[tokio::test]
async fn apply_creates_users_with_aliases_findable_by_lookup_and_a_second_run_changes_nothing() {
    let env = spawn_with_google(small_directory()).await;
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(summary(&job, "created"), 4);
    assert_eq!(user_count(&env).await, 4);
    let r = env
        .app
        .get("/api/v1/users/lookup?email=A.Lovelace@Example.com")
        .await
        .expect(200);
    assert_eq!(r.json["user_name"], "ada@example.com");
    assert_eq!(r.json["auth_method"], "directory");
    let ada = user_named(&env, "ada@example.com").await.unwrap();
    // default privileges: login, and read on the own folder
    let p = env
        .app
        .get(&format!("/api/v1/users/{}/privileges", ada.id))
        .await
        .expect(200);
    assert_eq!(p.json["privileges"], json!(["login"]));
    assert_eq!(p.json["folder_access"][0]["access"], json!(["read"]));

    let before: Vec<_> = users::Entity::find().all(&env.app.db).await.unwrap();
    let again = env.sync(false).await;
    assert_eq!(again["status"], "succeeded");
    assert_eq!(summary(&again, "unchanged"), 4);
    for k in ["created", "updated", "deleted", "disabled", "enabled"] {
        assert_eq!(summary(&again, k), 0, "{k}");
    }
    let after: Vec<_> = users::Entity::find().all(&env.app.db).await.unwrap();
    assert_eq!(before, after, "an unchanged run wrote user rows");
}

#[tokio::test]
async fn a_rename_keeps_the_user_and_a_suspension_disables_it() {
    let env = spawn_with_google(small_directory()).await;
    env.sync(false).await;
    let ada = user_named(&env, "ada@example.com").await.unwrap();
    env.google
        .control()
        .rename_user("ada@example.com", "ada.king@example.com")
        .unwrap();
    env.google
        .control()
        .suspend_user("bob@example.com", true)
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(summary(&job, "updated"), 1, "{job}");
    assert_eq!(summary(&job, "disabled"), 1);
    let renamed = user_named(&env, "ada.king@example.com").await.unwrap();
    assert_eq!(renamed.id, ada.id);
    assert!(user_named(&env, "ada@example.com").await.is_none());
    // the folder follows the name
    let folder = archive_folders::Entity::find()
        .filter(archive_folders::Column::UserId.eq(ada.id))
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(folder.name, "ada.king@example.com");
    assert!(user_named(&env, "bob@example.com").await.unwrap().disabled);
    env.google
        .control()
        .suspend_user("bob@example.com", false)
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(summary(&job, "enabled"), 1);
    assert!(!user_named(&env, "bob@example.com").await.unwrap().disabled);
}

#[tokio::test]
async fn nested_groups_are_followed_and_a_cycle_ends() {
    let mut d = small_directory();
    d.add_user("dave@example.com", "Dave", "Outside").unwrap();
    d.add_group("staff@example.com", "Staff").unwrap();
    d.add_group("eng@example.com", "Engineering").unwrap();
    d.add_group("ops@example.com", "Ops").unwrap();
    d.add_member("staff@example.com", "ada@example.com", MemberType::User)
        .unwrap();
    d.add_member("staff@example.com", "eng@example.com", MemberType::Group)
        .unwrap();
    d.add_member("eng@example.com", "bob@example.com", MemberType::User)
        .unwrap();
    d.add_member("eng@example.com", "ops@example.com", MemberType::Group)
        .unwrap();
    d.add_member("ops@example.com", "carol@example.com", MemberType::User)
        .unwrap();
    d.add_member("ops@example.com", "staff@example.com", MemberType::Group)
        .unwrap(); // the cycle
    let env = spawn_with_google(d).await;
    env.configure(json!({"sync_groups": ["Staff@example.com"]}))
        .await
        .expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let mut names: Vec<String> = users::Entity::find()
        .all(&env.app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ada@example.com", "bob@example.com", "carol@example.com"]
    );
}

#[tokio::test]
async fn an_unknown_sync_group_fails_the_job() {
    let env = spawn_with_google(small_directory()).await;
    env.configure(json!({"sync_groups": ["nope@example.com"]}))
        .await
        .expect(200);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "unknown_group", "{job}");
    assert_eq!(user_count(&env).await, 0);
}

#[tokio::test]
async fn out_of_scope_users_are_reported_unless_auto_delete_is_on() {
    let env = spawn_with_google(small_directory()).await;
    env.sync(false).await;
    env.google
        .control()
        .delete_user("carol@example.com")
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(summary(&job, "out_of_scope"), 1, "{job}");
    assert!(user_named(&env, "carol@example.com").await.is_some());
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    let job = env.sync(false).await;
    assert_eq!(summary(&job, "deleted"), 1, "{job}");
    assert!(user_named(&env, "carol@example.com").await.is_none());
}

#[tokio::test]
async fn deleting_keeps_a_folder_with_messages_and_removes_an_empty_one_and_never_an_admin() {
    let env = spawn_with_google(small_directory()).await;
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    env.sync(false).await;
    let ada = user_named(&env, "ada@example.com").await.unwrap();
    let bob = user_named(&env, "bob@example.com").await.unwrap();
    let carol = user_named(&env, "carol@example.com").await.unwrap();
    let folder_of = |id| {
        archive_folders::Entity::find()
            .filter(archive_folders::Column::UserId.eq(id))
            .one(&env.app.db)
    };
    let ada_folder = folder_of(ada.id).await.unwrap().unwrap();
    let bob_folder = folder_of(bob.id).await.unwrap().unwrap();
    env.app
        .patch(
            &format!("/api/v1/archive-folders/{}", ada_folder.id),
            &json!({"message_count": 42}),
        )
        .await
        .expect(200);
    env.app
        .put(
            &format!("/api/v1/users/{}/privileges", carol.id),
            &json!({"privileges": ["login", "admin"], "folder_access": []}),
        )
        .await
        .expect(200);
    for u in ["ada@example.com", "bob@example.com", "carol@example.com"] {
        env.google.control().delete_user(u).unwrap();
    }
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(summary(&job, "deleted"), 2);
    assert_eq!(summary(&job, "folders_kept"), 1);
    assert_eq!(summary(&job, "kept_admin"), 1);
    let kept = archive_folders::Entity::find_by_id(ada_folder.id)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, None);
    assert!(kept.detached_at.is_some());
    assert_eq!(kept.message_count, 42);
    assert!(archive_folders::Entity::find_by_id(bob_folder.id)
        .one(&env.app.db)
        .await
        .unwrap()
        .is_none());
    assert!(user_named(&env, "carol@example.com").await.is_some());
}

#[tokio::test]
async fn a_local_user_in_conflict_is_left_untouched() {
    let env = spawn_with_google(small_directory()).await;
    let local = env
        .app
        .post(
            "/api/v1/users",
            &json!({"user_name": "bob@example.com", "full_name": "Local Bob", "emails": ["bob@example.com"]}),
        )
        .await
        .expect(201);
    let job = env.sync(false).await;
    assert_eq!(summary(&job, "conflicts"), 1, "{job}");
    assert_eq!(summary(&job, "created"), 3);
    let bob = user_named(&env, "bob@example.com").await.unwrap();
    assert_eq!(bob.id.to_string(), local.json["id"].as_str().unwrap());
    assert_eq!(bob.auth_method, dirsync_entity::AuthMethod::Local);
    assert_eq!(bob.full_name, "Local Bob");
    let conflicts = env
        .changes(job["id"].as_str().unwrap(), Some("conflict"))
        .await;
    assert!(conflicts[0]["reason"]
        .as_str()
        .unwrap()
        .contains("local user"));
}

#[tokio::test]
async fn the_deletion_limit_blocks_and_confirm_deletions_releases() {
    let mut d = Directory::empty("example.com");
    for i in 0..8 {
        d.add_user(&format!("u{i}@example.com"), "U", &i.to_string())
            .unwrap();
    }
    let env = spawn_with_google(d).await;
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    env.sync(false).await;
    for i in 0..6 {
        env.google
            .control()
            .delete_user(&format!("u{i}@example.com"))
            .unwrap();
    }
    let blocked = env.sync(false).await;
    assert_eq!(blocked["status"], "blocked", "{blocked}");
    assert_eq!(blocked["planned_deletions"], 6);
    assert_eq!(blocked["error"]["code"], "deletion_limit_exceeded");
    assert_eq!(user_count(&env).await, 9, "a blocked job wrote nothing");
    assert_eq!(
        env.changes(blocked["id"].as_str().unwrap(), Some("delete"))
            .await
            .len(),
        6
    );
    let wrong = env
        .sync_with(json!({"dry_run": false, "confirm_deletions": 5}))
        .await;
    assert_eq!(wrong["status"], "blocked");
    let done = env
        .sync_with(json!({"dry_run": false, "confirm_deletions": 6}))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(user_count(&env).await, 3);
}

#[tokio::test]
async fn a_failing_truncated_or_looping_page_fails_the_job_and_writes_nothing() {
    let mut d = Directory::empty("example.com");
    for i in 0..1200 {
        d.add_user(&format!("u{i}@example.com"), "U", &i.to_string())
            .unwrap();
    }
    let env = spawn_with_google(d).await;
    env.configure(json!({"auto_delete_users": true}))
        .await
        .expect(200);
    let c = env.google.control();

    c.fail_requests(Endpoint::UsersList, 404, 1);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(user_count(&env).await, 0);

    c.clear_faults();
    c.truncate_page(Endpoint::UsersList, 1);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(user_count(&env).await, 0);

    c.clear_faults();
    c.repeat_page_token(Endpoint::UsersList);
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(user_count(&env).await, 0);

    c.clear_faults();
    let job = env.sync(false).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(user_count(&env).await, 1201);
}

#[tokio::test]
async fn an_empty_directory_fails_instead_of_deleting_everyone() {
    let mut d = small_directory();
    d.add_group("staff@example.com", "Staff").unwrap();
    d.add_member("staff@example.com", "ada@example.com", MemberType::User)
        .unwrap();
    d.add_member("staff@example.com", "bob@example.com", MemberType::User)
        .unwrap();
    let env = spawn_with_google(d).await;
    env.configure(json!({"auto_delete_users": true, "sync_groups": ["staff@example.com"]}))
        .await
        .expect(200);
    assert_eq!(env.sync(false).await["status"], "succeeded");
    env.google
        .control()
        .remove_member("staff@example.com", "ada@example.com")
        .unwrap();
    env.google
        .control()
        .remove_member("staff@example.com", "bob@example.com")
        .unwrap();
    let job = env.sync(false).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "empty_directory");
    assert_eq!(user_count(&env).await, 2);
}

#[tokio::test]
async fn two_simultaneous_requests_make_one_job_and_a_409() {
    let env = spawn_with_google(small_directory()).await;
    env.google
        .control()
        .set_latency(std::time::Duration::from_millis(300));
    let body = json!({"dry_run": true});
    let (a, b) = tokio::join!(
        env.app.post("/api/v1/sync-jobs", &body),
        env.app.post("/api/v1/sync-jobs", &body)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409]);
    let (ok, refused) = if a.status == 202 { (a, b) } else { (b, a) };
    assert_eq!(refused.error_code(), "sync_in_progress");
    assert_eq!(refused.json["error"]["details"]["job_id"], ok.json["id"]);
    assert!(ok.headers["location"]
        .to_str()
        .unwrap()
        .ends_with(ok.json["id"].as_str().unwrap()));
}

#[tokio::test]
async fn cancelling_a_running_job_writes_nothing() {
    let mut d = Directory::empty("example.com");
    for i in 0..2000 {
        d.add_user(&format!("u{i}@example.com"), "U", &i.to_string())
            .unwrap();
    }
    let env = spawn_with_google(d).await;
    env.google
        .control()
        .set_latency(std::time::Duration::from_millis(400));
    let started = env
        .app
        .post("/api/v1/sync-jobs", &json!({"dry_run": false}))
        .await
        .expect(202);
    let id = started.json["id"].as_str().unwrap();
    // Cancelled while it runs: a cancel of a queued job would prove nothing about a running one.
    let mut running = false;
    for _ in 0..200 {
        if env.app.get(&format!("/api/v1/sync-jobs/{id}")).await.json["status"] == "running" {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(running, "the job never ran");
    env.app
        .post(&format!("/api/v1/sync-jobs/{id}/cancel"), &json!({}))
        .await
        .expect(200);
    let job = env.wait(id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert!(
        job["progress"]["users"].as_u64().unwrap() < 2000,
        "stopped before it had read every user: {job}"
    );
    assert_eq!(user_count(&env).await, 0);
    let r = env
        .app
        .post(&format!("/api/v1/sync-jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!((r.status, r.error_code()), (409, "job_finished"));
}

#[tokio::test]
async fn jobs_are_listed_newest_first_and_changes_filter_by_kind() {
    let env = spawn_with_google(small_directory()).await;
    let first = env.sync(true).await;
    let second = env.sync(false).await;
    let list = env.app.get("/api/v1/sync-jobs?limit=1").await.expect(200);
    assert_eq!(list.json["items"][0]["id"], second["id"]);
    let next = list.json["next_cursor"].as_str().unwrap();
    let list = env
        .app
        .get(&format!("/api/v1/sync-jobs?limit=1&cursor={next}"))
        .await
        .expect(200);
    assert_eq!(list.json["items"][0]["id"], first["id"]);
    let r = env
        .app
        .get(&format!(
            "/api/v1/sync-jobs/{}/changes?kind=delete",
            second["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(r.json["items"], json!([]));
    let r = env
        .app
        .get(&format!(
            "/api/v1/sync-jobs/{}/changes?kind=nope",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 400);
}
