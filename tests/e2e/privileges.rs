//! Privileges and folder access of users; the default privileges of synchronized users.

use dirsync_core::privileges::Privilege;
use dirsync_tests::spawn_app;
use serde_json::json;
use uuid::Uuid;

use crate::users::create_user;

const ALL: [&str; 10] = [
    "admin",
    "login",
    "change_password",
    "archive_email",
    "modify_archive_profiles",
    "delete_archive_profiles",
    "export_email",
    "modify_export_profiles",
    "delete_export_profiles",
    "delete_email",
];

#[tokio::test]
async fn privileges_are_replaced_as_a_whole_and_read_back_in_order() {
    let app = spawn_app().await;
    let ada = create_user(&app, "ada", &["ada@x.com"]).await;
    let bob = create_user(&app, "bob", &["bob@x.com"]).await;
    let path = format!("/api/v1/users/{}/privileges", ada["id"].as_str().unwrap());
    let own = ada["archive_folder_id"].as_str().unwrap();
    let bobs = bob["archive_folder_id"].as_str().unwrap();

    let mut reversed = ALL;
    reversed.reverse();
    let r = app
        .put(
            &path,
            &json!({"privileges": reversed, "folder_access": [
                {"folder_id": own, "access": ["delete", "read", "write", "read"]},
                {"folder_id": bobs, "access": ["read"]}]}),
        )
        .await
        .expect(200);
    let mut access = vec![
        json!({"folder_id": own, "access": ["read", "write", "delete"]}),
        json!({"folder_id": bobs, "access": ["read"]}),
    ];
    access.sort_by_key(|a| a["folder_id"].as_str().unwrap().to_string());
    let expected = json!({"privileges": ALL, "folder_access": access});
    assert_eq!(r.json, expected);
    assert_eq!(app.get(&path).await.expect(200).json, expected);

    // A reader may read them.
    let reader = app.api_key("reader").await;
    let r = app
        .call(reqwest::Method::GET, &path, Some(&reader), None)
        .await
        .expect(200);
    assert_eq!(r.json, expected);

    let r = app
        .put(
            &path,
            &json!({"privileges": ["login"], "folder_access": [{"folder_id": bobs, "access": []}]}),
        )
        .await
        .expect(200);
    let expected = json!({"privileges": ["login"], "folder_access": []});
    assert_eq!(r.json, expected);
    assert_eq!(app.get(&path).await.expect(200).json, expected);
    // The same, read as the server's type.
    let ada_id: Uuid = ada["id"].as_str().unwrap().parse().unwrap();
    let read = app.privileges(ada_id).await;
    assert_eq!(read.privileges, [Privilege::Login]);
    assert!(read.folder_access.is_empty());
}

#[tokio::test]
async fn unknown_privileges_are_refused_with_the_valid_names_and_change_nothing() {
    let app = spawn_app().await;
    let ada = create_user(&app, "ada", &[]).await;
    let path = format!("/api/v1/users/{}/privileges", ada["id"].as_str().unwrap());
    let before = app.get(&path).await.expect(200).json;

    let r = app
        .put(
            &path,
            &json!({"privileges": ["login", "superuser"], "folder_access": []}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "unknown_privilege");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("superuser"), "{message}");
    for name in ALL {
        assert!(message.contains(name), "{name} missing from: {message}");
    }
    assert_eq!(r.json["error"]["details"]["unknown"], json!(["superuser"]));
    assert_eq!(r.json["error"]["details"]["valid"], json!(ALL));

    let folder = ada["archive_folder_id"].as_str().unwrap();
    let r = app
        .put(
            &path,
            &json!({"privileges": [], "folder_access": [{"folder_id": folder, "access": ["execute"]}]}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "unknown_access");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("read, write, delete"));

    let unknown = Uuid::new_v4();
    let r = app
        .put(
            &path,
            &json!({"privileges": ["login"], "folder_access": [{"folder_id": unknown, "access": ["read"]}]}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "unknown_folder");
    assert_eq!(r.json["error"]["details"]["folder_ids"], json!([unknown]));

    let r = app
        .put(
            &path,
            &json!({"privileges": [], "folder_access": [
                {"folder_id": folder, "access": ["read"]},
                {"folder_id": folder, "access": ["write"]}]}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "duplicate_folder");

    // A body without `folder_access` is refused rather than taken to mean "no folders".
    let r = app
        .put(&path, &json!({"privileges": ["login"]}))
        .await
        .expect(422);
    assert_eq!(r.error_code(), "invalid_body");

    assert_eq!(app.get(&path).await.expect(200).json, before);

    let r = app
        .put(
            &format!("/api/v1/users/{}/privileges", Uuid::new_v4()),
            &json!({"privileges": [], "folder_access": []}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let r = app
        .get(&format!("/api/v1/users/{}/privileges", Uuid::new_v4()))
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn default_privileges_start_as_login_and_read_and_can_be_changed() {
    let app = spawn_app().await;
    let path = "/api/v1/directory/default-privileges";
    let r = app.get(path).await.expect(200);
    assert_eq!(
        r.json,
        json!({"privileges": ["login"], "own_folder_access": ["read"]})
    );

    let r = app
        .put(
            path,
            &json!({"privileges": ["archive_email", "login", "login"], "own_folder_access": ["write", "read"]}),
        )
        .await
        .expect(200);
    let expected =
        json!({"privileges": ["login", "archive_email"], "own_folder_access": ["read", "write"]});
    assert_eq!(r.json, expected);
    assert_eq!(app.get(path).await.expect(200).json, expected);

    // What the sync engine reads.
    let d = dirsync_core::privileges::load_defaults(&app.db)
        .await
        .unwrap();
    use dirsync_core::privileges::{Access, Privilege};
    assert_eq!(d.privileges, [Privilege::Login, Privilege::ArchiveEmail]);
    assert_eq!(d.own_folder_access, [Access::Read, Access::Write]);

    let r = app
        .put(
            path,
            &json!({"privileges": ["login", "god_mode"], "own_folder_access": []}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "unknown_privilege");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("delete_export_profiles"));
    let r = app
        .put(
            path,
            &json!({"privileges": [], "own_folder_access": ["own"]}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "unknown_access");
    assert_eq!(app.get(path).await.expect(200).json, expected);

    // Users created through the API do not get the defaults.
    let ada = create_user(&app, "ada", &[]).await;
    let p = app
        .get(&format!(
            "/api/v1/users/{}/privileges",
            ada["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(p.json["privileges"], json!([]));

    // Operators may read the defaults but not change them; readers may do neither.
    let operator = app.api_key("operator").await;
    let reader = app.api_key("reader").await;
    let r = app
        .call(reqwest::Method::GET, path, Some(&operator), None)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .call(reqwest::Method::GET, path, Some(&reader), None)
        .await;
    assert_eq!(r.status, 403);
    let body = json!({"privileges": [], "own_folder_access": []});
    let r = app
        .call(reqwest::Method::PUT, path, Some(&operator), Some(&body))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn granting_the_defaults_to_new_users_is_one_batch() {
    use dirsync_core::privileges::{Access, Privilege};
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(create_user(&app, &format!("u{i}"), &[]).await);
    }
    // Start from users holding nothing, as the sync creates them.
    for u in &users {
        app.put(
            &format!("/api/v1/users/{}/privileges", u["id"].as_str().unwrap()),
            &json!({"privileges": [], "folder_access": []}),
        )
        .await
        .expect(200);
    }
    let defaults = dirsync_core::privileges::DefaultPrivileges {
        privileges: vec![Privilege::Login, Privilege::ExportEmail],
        own_folder_access: vec![Access::Read],
    };
    let pairs: Vec<(Uuid, Uuid)> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().parse().unwrap(),
                u["archive_folder_id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // The statements the grant sends, counted on a connection of its own: one batch per table,
    // not a statement per user.
    let statements = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut db = dirsync_core::db::connect_and_migrate(&app.settings)
        .await
        .unwrap();
    let counted = statements.clone();
    db.set_metric_callback(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    defaults.grant(&db, &pairs).await.unwrap();
    let sent = statements.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=2).contains(&sent),
        "{sent} statements for {} users",
        pairs.len()
    );
    for u in &users {
        let p = app
            .get(&format!(
                "/api/v1/users/{}/privileges",
                u["id"].as_str().unwrap()
            ))
            .await
            .expect(200);
        assert_eq!(
            p.json,
            json!({"privileges": ["login", "export_email"],
                   "folder_access": [{"folder_id": u["archive_folder_id"], "access": ["read"]}]})
        );
    }
}
