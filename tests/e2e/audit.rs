//! The audit trail of changes to users, privileges, defaults and folders.

use dirsync_tests::{spawn_app, TestApp};
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
