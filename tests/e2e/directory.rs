//! Directory configuration: settings, the service-account upload, the connection test and its
//! diagnoses, the live group list, and the private key's life at rest.

use dirsync_entity::directory_config;
use dirsync_google_emulator::Directory;
use dirsync_tests::google::spawn_with_google;
use dirsync_tests::{captured_logs, spawn_app, spawn_app_in};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{json, Value};

fn directory() -> Directory {
    let mut d = Directory::empty("example.com");
    d.add_user("ada@example.com", "Ada", "Lovelace").unwrap();
    d.add_group("staff@example.com", "Staff").unwrap();
    d
}

#[tokio::test]
async fn settings_are_validated_and_returned_with_the_caller_field_names() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/directory").await.expect(200);
    assert_eq!(r.json["provider"], "none");
    assert_eq!(r.json["customer_id"], "my_customer");
    assert_eq!(r.json["sync_groups"], json!([]));
    assert!(r.json["service_account"].is_null());

    let body = json!({"provider": "google_workspace", "admin_email": "Admin@Example.com",
        "customer_id": "my_customer", "domain": null, "sync_groups": ["Staff@Example.com", "staff@example.com"],
        "auto_delete_users": false, "deletion_limit": null, "schedule_minutes": 60});
    let r = app.put("/api/v1/directory", &body).await.expect(200);
    assert_eq!(r.json["sync_groups"], json!(["staff@example.com"]));
    assert_eq!(r.json["schedule_minutes"], 60);

    for (patch, field) in [
        (json!({"admin_email": null}), "admin_email"),
        (json!({"admin_email": "not-an-address"}), "admin_email"),
        (json!({"domain": "example.com"}), "domain"),
        (json!({"sync_groups": ["nope"]}), "sync_groups"),
        (json!({"schedule_minutes": 0}), "schedule_minutes"),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let r = app.put("/api/v1/directory", &b).await;
        assert_eq!(r.status, 422, "{patch}: {}", r.text);
        assert_eq!(r.json["error"]["details"]["field"], field, "{}", r.text);
    }
    let mut b = body.clone();
    b["provider"] = json!("ldap");
    assert_eq!(app.put("/api/v1/directory", &b).await.status, 422);
}

#[tokio::test]
async fn bad_key_files_are_refused_naming_the_field() {
    let env = spawn_with_google(directory()).await;
    let good: Value = serde_json::from_str(&env.google.service_account_key_json()).unwrap();
    let r = env.upload_key("{not json").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_key_file"));
    let cases = [
        ("type", json!("authorized_user")),
        ("private_key", Value::Null),
        (
            "private_key",
            json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        ),
        ("client_email", Value::Null),
        ("token_uri", Value::Null),
    ];
    for (field, value) in cases {
        let mut k = good.clone();
        if value.is_null() {
            k.as_object_mut().unwrap().remove(field);
        } else {
            k[field] = value;
        }
        let r = env.upload_key(&k.to_string()).await;
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert_eq!(r.json["error"]["details"]["field"], field, "{}", r.text);
    }
}

#[tokio::test]
async fn the_private_key_is_encrypted_never_returned_never_logged_and_survives_a_restart() {
    let env = spawn_with_google(directory()).await;
    let key: Value = serde_json::from_str(&env.google.service_account_key_json()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let pem_body = pem.lines().nth(2).unwrap();
    let r = env.app.get("/api/v1/directory").await.expect(200);
    assert_eq!(
        r.json["service_account"]["client_email"],
        key["client_email"]
    );
    assert_eq!(
        r.json["service_account"]["private_key_id"],
        key["private_key_id"]
    );
    assert!(!r.text.contains(pem_body));

    let row = directory_config::Entity::find_by_id(1)
        .one(&env.app.db)
        .await
        .unwrap()
        .unwrap();
    let sealed = row.sa_private_key.clone().unwrap();
    assert!(sealed.starts_with("v1:") && !sealed.contains("PRIVATE KEY"));
    assert!(!format!("{row:?}").contains(pem_body));

    let audit = env
        .app
        .get("/api/v1/audit-events?limit=500")
        .await
        .expect(200);
    assert!(!audit.text.contains(pem_body));
    assert!(
        !captured_logs().contains(pem_body),
        "the private key reached the log"
    );

    // A restart on the same database and key file decrypts it: the test passes again.
    let restarted = spawn_app_in(env.app.settings.clone(), env.app.dir.clone()).await;
    let r = restarted
        .post("/api/v1/directory/test", &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["ok"], true, "{}", r.text);

    // Tampered ciphertext fails loudly: a 500 with an error id, never a garbage key.
    let mut raw = sealed.into_bytes();
    let i = raw.len() - 5;
    raw[i] = if raw[i] == b'A' { b'B' } else { b'A' };
    let mut am: directory_config::ActiveModel = row.into();
    am.sa_private_key = Set(Some(String::from_utf8(raw).unwrap()));
    am.update(&env.app.db).await.unwrap();
    let r = restarted.post("/api/v1/directory/test", &json!({})).await;
    assert_eq!((r.status, r.error_code()), (500, "internal_error"));
    assert!(r.json["error"]["details"]["error_id"].is_string());
    assert!(captured_logs().contains("could not be decrypted"));
}

#[tokio::test]
async fn the_connection_test_passes_every_step_and_lists_groups() {
    let env = spawn_with_google(directory()).await;
    let r = env
        .app
        .post("/api/v1/directory/test", &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json["ok"], true, "{}", r.text);
    let names: Vec<&str> = r.json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "key_parsed",
            "token_obtained",
            "users_readable",
            "groups_readable",
            "events_readable"
        ]
    );
    let g = env.app.get("/api/v1/directory/groups").await.expect(200);
    assert_eq!(g.json["items"][0]["email"], "staff@example.com");
}

#[tokio::test]
async fn the_connection_test_diagnoses_each_misconfiguration() {
    let mut d = directory();
    d.add_user("clerk@example.com", "Not", "Admin").unwrap();
    let env = spawn_with_google(d).await;
    let client_id = serde_json::from_str::<Value>(&env.google.service_account_key_json()).unwrap()
        ["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed_step = |r: &dirsync_tests::Reply| {
        assert_eq!(r.json["ok"], false, "{}", r.text);
        r.json["steps"].as_array().unwrap().last().unwrap().clone()
    };

    env.google.control().revoke_delegation(&client_id);
    let r = env
        .app
        .post("/api/v1/directory/test", &json!({}))
        .await
        .expect(200);
    let step = failed_step(&r);
    assert_eq!(step["code"], "unauthorized_client");
    let msg = step["message"].as_str().unwrap();
    assert!(
        msg.contains("domain-wide delegation") && msg.contains(&client_id),
        "{msg}"
    );
    env.google
        .control()
        .set_delegation(&client_id, &dirsync_google_emulator::READONLY_SCOPES);

    env.configure(json!({"admin_email": "nobody@example.com"}))
        .await
        .expect(200);
    let step = failed_step(
        &env.app
            .post("/api/v1/directory/test", &json!({}))
            .await
            .expect(200),
    );
    assert!(
        step["message"].as_str().unwrap().contains("does not exist"),
        "{step}"
    );

    env.configure(json!({"admin_email": "clerk@example.com"}))
        .await
        .expect(200);
    let step = failed_step(
        &env.app
            .post("/api/v1/directory/test", &json!({}))
            .await
            .expect(200),
    );
    assert!(
        step["message"]
            .as_str()
            .unwrap()
            .contains("not a Workspace administrator"),
        "{step}"
    );

    env.configure(json!({"customer_id": null, "domain": "elsewhere.org"}))
        .await
        .expect(200);
    let step = failed_step(
        &env.app
            .post("/api/v1/directory/test", &json!({}))
            .await
            .expect(200),
    );
    assert!(
        step["message"].as_str().unwrap().contains("customer_id"),
        "{step}"
    );
}
