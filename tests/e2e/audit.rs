//! The audit trail of changes to users, privileges, defaults, folders, the directory and
//! sign-in settings, API keys and sync jobs: each written with its change, or neither.

use dirsync_tests::google::{spawn_with_google, GoogleEnv};
use dirsync_tests::{spawn_app, TestApp};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::users::create_user;

async fn events(app: &TestApp) -> Vec<Value> {
    let r = app.get("/api/v1/audit-events?limit=500").await.expect(200);
    let mut items = r.json["items"].as_array().unwrap().clone();
    items.reverse(); // oldest first
    items
}

fn find<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn every_change_is_audited_with_before_and_after_and_no_password() {
    let app = spawn_app().await;
    let first_password = "first secret password";
    let second_password = "second secret password";
    let ada = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "ada", "full_name": "Ada", "emails": ["ada@x.com"],
                    "password": first_password, "privileges": ["login"]}),
        )
        .await
        .expect(201)
        .json;
    let id = ada["id"].as_str().unwrap();
    let folder = ada["archive_folder_id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/users/{id}"),
        &json!({"full_name": "Ada Lovelace", "password": second_password}),
    )
    .await
    .expect(200);
    app.put(
        &format!("/api/v1/users/{id}/privileges"),
        &json!({"privileges": ["login", "export_email"],
                "folder_access": [{"folder_id": folder, "access": ["read", "write"]}]}),
    )
    .await
    .expect(200);
    app.put(
        "/api/v1/directory/default-privileges",
        &json!({"privileges": ["login", "archive_email"], "own_folder_access": ["read"]}),
    )
    .await
    .expect(200);
    let operator = app.api_key("operator").await;
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/v1/archive-folders/{folder}"),
        Some(&operator),
        Some(&json!({"message_count": 3})),
    )
    .await
    .expect(200);
    app.delete(&format!("/api/v1/users/{id}")).await.expect(204);

    let all = events(&app).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [first_password, second_password, "$argon2"] {
        assert!(!text.contains(secret), "{secret} is in the audit trail");
    }

    let create = find(&all, "user.create");
    assert_eq!(create.len(), 1);
    let create = create[0];
    assert_eq!(create["actor"], "bootstrap");
    assert_eq!(create["target_type"], "user");
    assert_eq!(create["target_id"], id);
    assert_eq!(create["details"]["after"]["user_name"], "ada");
    assert_eq!(create["details"]["password_set"], true);
    assert_eq!(
        create["details"]["privileges"]["privileges"],
        json!(["login"])
    );

    let update = find(&all, "user.update");
    assert_eq!(update.len(), 1);
    assert_eq!(update[0]["details"]["before"]["full_name"], "Ada");
    assert_eq!(update[0]["details"]["after"]["full_name"], "Ada Lovelace");
    assert_eq!(update[0]["details"]["password_changed"], true);

    let privileges = find(&all, "privileges.update");
    assert_eq!(privileges.len(), 1);
    assert_eq!(privileges[0]["target_id"], id);
    assert_eq!(
        privileges[0]["details"]["before"],
        json!({"privileges": ["login"], "folder_access": [{"folder_id": folder, "access": ["read"]}]})
    );
    assert_eq!(
        privileges[0]["details"]["after"]["privileges"],
        json!(["login", "export_email"])
    );

    let defaults = find(&all, "default_privileges.update");
    assert_eq!(defaults.len(), 1);
    assert_eq!(
        defaults[0]["details"],
        json!({"before": {"privileges": ["login"], "own_folder_access": ["read"]},
               "after": {"privileges": ["login", "archive_email"], "own_folder_access": ["read"]}})
    );

    let folder_events = find(&all, "folder.update");
    assert_eq!(folder_events.len(), 1);
    assert_eq!(folder_events[0]["actor"], "api_key:operator-key");
    assert_eq!(folder_events[0]["target_type"], "archive_folder");
    assert_eq!(folder_events[0]["target_id"], folder);
    assert_eq!(folder_events[0]["details"]["before"]["message_count"], 0);
    assert_eq!(folder_events[0]["details"]["after"]["message_count"], 3);

    let delete = find(&all, "user.delete");
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0]["details"]["before"]["user_name"], "ada");
    assert_eq!(delete[0]["details"]["folder"]["fate"], "kept");
    assert_eq!(delete[0]["details"]["folder"]["folder_id"], folder);
}

#[tokio::test]
async fn a_refused_change_leaves_no_audit_event() {
    let app = spawn_app().await;
    let ada = create_user(&app, "ada", &["ada@x.com"]).await;
    let before = events(&app).await.len();

    // Each of these fails after the transaction has begun writing.
    app.post(
        "/api/v1/users",
        &json!({"user_name": "bob", "full_name": "", "emails": ["ADA@x.com"]}),
    )
    .await
    .expect(409);
    app.put(
        &format!("/api/v1/users/{}/privileges", ada["id"].as_str().unwrap()),
        &json!({"privileges": [], "folder_access": [{"folder_id": uuid::Uuid::new_v4(), "access": ["read"]}]}),
    )
    .await
    .expect(422);
    // Writing the same message count again is no change.
    app.patch(
        &format!(
            "/api/v1/archive-folders/{}",
            ada["archive_folder_id"].as_str().unwrap()
        ),
        &json!({"message_count": 0}),
    )
    .await
    .expect(200);

    assert_eq!(events(&app).await.len(), before);
    let r = app.get("/api/v1/users?q=bob").await.expect(200);
    assert_eq!(r.json["items"], json!([]));
}

fn count(events: &[Value], action: &str) -> usize {
    find(events, action).len()
}

fn small_directory() -> dirsync_google_emulator::Directory {
    let mut d = dirsync_google_emulator::Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d
}

fn oidc_settings(app: &TestApp) -> Value {
    json!({"client_id": "dirsync.apps.googleusercontent.com", "client_secret": "s3cret",
           "redirect_uri": format!("{}/oidc/signin", app.address)})
}

/// Starts a sync job that stays active for a while (each Google answer takes 400 ms), so that
/// it can be cancelled.
async fn slow_job(env: &GoogleEnv) -> String {
    env.google
        .control()
        .set_latency(std::time::Duration::from_millis(400));
    let job = env
        .app
        .post("/api/v1/sync-jobs", &json!({"dry_run": true}))
        .await
        .expect(202);
    job.json["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_change_of_settings_keys_and_jobs_is_audited_exactly_once() {
    let env = spawn_with_google(small_directory()).await;
    let app = &env.app;
    let created = app
        .post(
            "/api/v1/api-keys",
            &json!({"name": "cron", "role": "reader"}),
        )
        .await
        .expect(201);
    let key_id = created.json["id"].as_str().unwrap();
    app.delete(&format!("/api/v1/api-keys/{key_id}"))
        .await
        .expect(204);
    app.put("/api/v1/auth/oidc", &oidc_settings(app))
        .await
        .expect(200);
    let job = slow_job(&env).await;
    app.post(&format!("/api/v1/sync-jobs/{job}/cancel"), &json!({}))
        .await
        .expect(200);
    // A running job stops at its next check: once it has, a second cancel is refused.
    let ended = app
        .get(&format!("/api/v1/sync-jobs/{job}?wait=30"))
        .await
        .expect(200);
    assert_eq!(ended.json["status"], "cancelled", "{}", ended.text);
    // Refused changes add nothing.
    app.delete(&format!("/api/v1/api-keys/{key_id}"))
        .await
        .expect(404);
    app.post(&format!("/api/v1/sync-jobs/{job}/cancel"), &json!({}))
        .await
        .expect(409);
    app.put(
        "/api/v1/directory",
        &json!({"provider": "google_workspace"}),
    )
    .await
    .expect(422);
    env.upload_key("{}").await.expect(422);
    app.post("/api/v1/api-keys", &json!({"name": " ", "role": "reader"}))
        .await
        .expect(422);

    let all = events(app).await;
    // spawn_with_google uploaded the key and saved the settings.
    for action in [
        "directory.service_account.upload",
        "directory.update",
        "api_key.create",
        "api_key.delete",
        "oidc.update",
        "sync.dry_run",
        "sync.cancel",
    ] {
        assert_eq!(count(&all, action), 1, "{action}: {all:#?}");
    }
    assert_eq!(all.len(), 7, "{all:#?}");
    assert!(all.iter().all(|e| e["actor"] == "bootstrap"), "{all:#?}");
    let create = find(&all, "api_key.create")[0];
    assert_eq!(create["target_id"], key_id);
    assert_eq!(create["details"], json!({"name": "cron", "role": "reader"}));
    let oidc = find(&all, "oidc.update")[0];
    assert_eq!(
        oidc["details"]["after"]["client_id"],
        "dirsync.apps.googleusercontent.com"
    );
    assert!(!serde_json::to_string(&all).unwrap().contains("s3cret"));
    let cancel = find(&all, "sync.cancel")[0];
    assert_eq!(cancel["target_id"], job.as_str());
}

#[tokio::test]
async fn a_change_whose_audit_event_cannot_be_written_is_not_made() {
    let env = spawn_with_google(small_directory()).await;
    let app = &env.app;
    let kept = app
        .post(
            "/api/v1/api-keys",
            &json!({"name": "kept", "role": "reader"}),
        )
        .await
        .expect(201);
    let kept_id = kept.json["id"].as_str().unwrap();
    let job = slow_job(&env).await;
    let directory_before = app.get("/api/v1/directory").await.expect(200).json;
    let mut other_key: Value =
        serde_json::from_str(&env.google.service_account_key_json()).unwrap();
    other_key["private_key_id"] = json!("another-key-id");
    let mut settings = dirsync_tests::google::base_directory_settings();
    settings["schedule_minutes"] = json!(60);
    let audit_before = events(app).await.len();

    // The change and its event are one transaction: without the event, no change.
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    app.db
        .execute_unprepared(&rename("audit_events", "audit_events_away"))
        .await
        .unwrap();
    let attempts = [
        (
            "PUT /directory",
            app.put("/api/v1/directory", &settings).await,
        ),
        (
            "PUT /directory/service-account",
            env.upload_key(&other_key.to_string()).await,
        ),
        (
            "POST /api-keys",
            app.post(
                "/api/v1/api-keys",
                &json!({"name": "new", "role": "reader"}),
            )
            .await,
        ),
        (
            "DELETE /api-keys",
            app.delete(&format!("/api/v1/api-keys/{kept_id}")).await,
        ),
        (
            "PUT /auth/oidc",
            app.put("/api/v1/auth/oidc", &oidc_settings(app)).await,
        ),
        (
            "POST /sync-jobs/cancel",
            app.post(&format!("/api/v1/sync-jobs/{job}/cancel"), &json!({}))
                .await,
        ),
    ];
    app.db
        .execute_unprepared(&rename("audit_events_away", "audit_events"))
        .await
        .unwrap();
    for (what, reply) in &attempts {
        assert_eq!(reply.status, 500, "{what}: {}", reply.text);
    }

    assert_eq!(
        app.get("/api/v1/directory").await.expect(200).json,
        directory_before
    );
    let keys = app.get("/api/v1/api-keys").await.expect(200).json;
    let names: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kept"]);
    let oidc = app.get("/api/v1/auth/oidc").await.expect(200).json;
    assert_eq!(oidc["client_id"], Value::Null, "{oidc}");
    let finished = env.wait(&job).await;
    assert_ne!(finished["status"], "cancelled", "{finished}");
    // A job cannot be started either while the trail is unwritable.
    app.db
        .execute_unprepared(&rename("audit_events", "audit_events_away"))
        .await
        .unwrap();
    let started = app
        .post("/api/v1/sync-jobs", &json!({"dry_run": true}))
        .await;
    app.db
        .execute_unprepared(&rename("audit_events_away", "audit_events"))
        .await
        .unwrap();
    assert_eq!(started.status, 500, "{}", started.text);
    let jobs = app.get("/api/v1/sync-jobs").await.expect(200).json;
    assert_eq!(jobs["items"].as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(events(app).await.len(), audit_before);
}
