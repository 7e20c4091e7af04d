//! Users: creating, reading, listing, changing and deleting them; lookup by address; passwords.

use dirsync_core::{folders::Folder, users::User};
use dirsync_entity::{archive_folders, user_emails, user_privileges, users};
use dirsync_tests::{spawn_app, Reply, TestApp};
use reqwest::Method;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use uuid::Uuid;

/// Creates a local user through the API and returns its JSON.
pub(crate) async fn create_user(app: &TestApp, user_name: &str, emails: &[&str]) -> Value {
    app.post(
        "/api/v1/users",
        &json!({"user_name": user_name, "full_name": format!("{user_name} Example"), "emails": emails}),
    )
    .await
    .expect(201)
    .json
}

/// Inserts a directory user (as a sync would) straight into the database, with an archive
/// folder, and returns its id.
pub(crate) async fn insert_directory_user(app: &TestApp, primary: &str, aliases: &[&str]) -> Uuid {
    let id = Uuid::new_v4();
    let now = chrono::Utc::now();
    users::ActiveModel {
        id: Set(id),
        user_name: Set(primary.to_lowercase()),
        user_name_key: Set(primary.to_lowercase()),
        full_name: Set("Directory Person".into()),
        auth_method: Set(dirsync_entity::AuthMethod::Directory),
        directory_id: Set(Some(format!("1{}", id.as_u128() % 1_000_000_000))),
        disabled: Set(false),
        password_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_synced_at: Set(Some(now)),
    }
    .insert(&app.db)
    .await
    .unwrap();
    for (i, a) in std::iter::once(&primary).chain(aliases).enumerate() {
        user_emails::ActiveModel {
            address_key: Set(a.to_lowercase()),
            address: Set(a.to_string()),
            user_id: Set(id),
            kind: Set(if i == 0 {
                dirsync_entity::EmailKind::Primary
            } else {
                dirsync_entity::EmailKind::Alias
            }),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    archive_folders::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(primary.to_lowercase()),
        user_id: Set(Some(id)),
        message_count: Set(0),
        created_at: Set(now),
        detached_at: Set(None),
    }
    .insert(&app.db)
    .await
    .unwrap();
    id
}

/// A session token for a user, as sign-in will issue it: sign-in needs `login`, and so does
/// every request made with the session, so the user is granted it first.
pub(crate) async fn session_for(app: &TestApp, user_id: &str) -> String {
    let user_id: Uuid = user_id.parse().unwrap();
    let login = (user_id, "login".to_string());
    if user_privileges::Entity::find_by_id(login.clone())
        .one(&app.db)
        .await
        .unwrap()
        .is_none()
    {
        user_privileges::ActiveModel {
            user_id: Set(login.0),
            privilege: Set(login.1),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    let (token, _) =
        dirsync_core::auth::create_session(&app.db, user_id, chrono::Duration::hours(1))
            .await
            .unwrap();
    token.expose_secret().to_string()
}

fn id_of(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[tokio::test]
async fn a_created_local_user_has_its_folder_and_read_access_on_it() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "Ada", "full_name": "Ada Lovelace",
                    "emails": ["Ada@Example.com", "countess@example.com"]}),
        )
        .await
        .expect(201);
    let user = r.json.clone();
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "archive_folder_id",
            "auth_method",
            "created_at",
            "directory_id",
            "disabled",
            "emails",
            "full_name",
            "id",
            "last_synced_at",
            "updated_at",
            "user_name"
        ]
    );
    assert_eq!(user["user_name"], "Ada");
    assert_eq!(user["auth_method"], "local");
    assert_eq!(user["disabled"], false);
    assert!(user["directory_id"].is_null() && user["last_synced_at"].is_null());
    assert_eq!(
        user["emails"],
        json!(["Ada@Example.com", "countess@example.com"])
    );
    assert_eq!(
        r.headers["location"],
        format!("/api/v1/users/{}", id_of(&user)).as_str()
    );

    let got = app
        .get(&format!("/api/v1/users/{}", id_of(&user)))
        .await
        .expect(200);
    assert_eq!(got.json, user);

    let folder_id = user["archive_folder_id"].as_str().unwrap();
    let folder = app
        .get(&format!("/api/v1/archive-folders/{folder_id}"))
        .await
        .expect(200);
    assert_eq!(folder.json["name"], "Ada");
    assert_eq!(folder.json["user_id"], user["id"]);
    assert_eq!(folder.json["user_name"], "Ada");
    assert_eq!(folder.json["message_count"], 0);

    let p = app
        .get(&format!("/api/v1/users/{}/privileges", id_of(&user)))
        .await
        .expect(200);
    assert_eq!(
        p.json,
        json!({"privileges": [], "folder_access": [{"folder_id": folder_id, "access": ["read"]}]})
    );

    // Privileges named in the request are granted, and only those.
    let bob = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "bob", "full_name": "Bob", "emails": [],
                    "privileges": ["login", "change_password"]}),
        )
        .await
        .expect(201);
    let p = app
        .get(&format!("/api/v1/users/{}/privileges", id_of(&bob.json)))
        .await
        .expect(200);
    assert_eq!(p.json["privileges"], json!(["login", "change_password"]));

    let r = app.get(&format!("/api/v1/users/{}", Uuid::new_v4())).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn user_names_and_addresses_are_unique_without_case() {
    let app = spawn_app().await;
    create_user(&app, "ada", &["ada@x.com", "lovelace@x.com"]).await;

    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "ADA", "full_name": "", "emails": []}),
        )
        .await
        .expect(409);
    assert_eq!(r.error_code(), "user_name_taken");
    assert_eq!(r.json["error"]["details"]["field"], "user_name");
    assert!(r.json["error"]["message"].as_str().unwrap().contains("ADA"));

    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "other", "full_name": "", "emails": ["new@x.com", "Ada@X.com"]}),
        )
        .await
        .expect(409);
    assert_eq!(r.error_code(), "email_taken");
    assert_eq!(r.json["error"]["details"]["field"], "emails");
    assert_eq!(
        r.json["error"]["details"]["addresses"],
        json!(["Ada@X.com"])
    );
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Ada@X.com"));
    // Nothing of the refused user was kept.
    let list = app.get("/api/v1/users?q=other").await.expect(200);
    assert_eq!(list.json["items"], json!([]));
    app.get("/api/v1/users/lookup?email=new@x.com")
        .await
        .expect(404);

    let bob = create_user(&app, "bob", &["bob@x.com"]).await;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", id_of(&bob)),
            &json!({"emails": ["bob@x.com", "LOVELACE@x.com"]}),
        )
        .await
        .expect(409);
    assert_eq!(r.error_code(), "email_taken");
    assert_eq!(
        r.json["error"]["details"]["addresses"],
        json!(["LOVELACE@x.com"])
    );
    let r = app
        .patch(
            &format!("/api/v1/users/{}", id_of(&bob)),
            &json!({"user_name": "Ada"}),
        )
        .await
        .expect(409);
    assert_eq!(r.error_code(), "user_name_taken");

    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "carol", "full_name": "", "emails": ["c@x.com", "C@X.COM"]}),
        )
        .await
        .expect(422);
    assert_eq!(r.error_code(), "duplicate_email");

    // A user may keep its own addresses in another case.
    let r = app
        .patch(
            &format!("/api/v1/users/{}", id_of(&bob)),
            &json!({"emails": ["Bob@X.com"]}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["emails"], json!(["Bob@X.com"]));
}

#[tokio::test]
async fn invalid_users_are_refused_with_422_saying_what_is_wrong() {
    let app = spawn_app().await;
    for (body, code) in [
        (
            json!({"user_name": "", "full_name": "", "emails": []}),
            "invalid_user_name",
        ),
        (
            json!({"user_name": "a b", "full_name": "", "emails": []}),
            "invalid_user_name",
        ),
        (
            json!({"user_name": "a", "full_name": "", "emails": ["not-an-address"]}),
            "invalid_email",
        ),
        (
            json!({"user_name": "a", "full_name": "", "emails": [], "password": "short"}),
            "invalid_password",
        ),
        (
            json!({"user_name": "a", "full_name": "", "emails": [], "privileges": ["root"]}),
            "unknown_privilege",
        ),
        (
            json!({"user_name": "a", "full_name": "", "emails": [], "role": "admin"}),
            "invalid_body",
        ),
    ] {
        let r = app.post("/api/v1/users", &body).await;
        assert_eq!(
            (r.status, r.error_code()),
            (422, code),
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "a", "full_name": "", "emails": ["x@@y.com"]}),
        )
        .await;
    assert_eq!(r.json["error"]["details"]["email"], "x@@y.com");
    let r = app.get("/api/v1/users").await.expect(200);
    assert_eq!(r.json["items"], json!([]));
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_and_never_returned() {
    let app = spawn_app().await;
    let password = "correct horse battery staple";
    let r = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "ada", "full_name": "Ada", "emails": ["ada@x.com"], "password": password}),
        )
        .await
        .expect(201);
    assert!(!r.text.contains(password) && !r.text.contains("argon2"));
    assert!(r.json.get("password").is_none());
    let id: Uuid = id_of(&r.json).parse().unwrap();

    let row = users::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let hash = row.password_hash.clone().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(password));

    for path in [
        format!("/api/v1/users/{id}"),
        "/api/v1/users".into(),
        "/api/v1/users/lookup?email=ada@x.com".into(),
    ] {
        let r = app.get(&path).await.expect(200);
        assert!(!r.text.contains(password) && !r.text.contains("$argon2"));
    }

    app.patch(
        &format!("/api/v1/users/{id}"),
        &json!({"password": "another long password"}),
    )
    .await
    .expect(200);
    let new_hash = users::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(new_hash.starts_with("$argon2id$") && new_hash != hash);

    let r = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &json!({"password": "short"}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_password"));
}

#[tokio::test]
async fn patch_changes_only_the_given_fields_and_a_new_name_renames_the_folder() {
    let app = spawn_app().await;
    let ada: User =
        serde_json::from_value(create_user(&app, "ada", &["ada@x.com", "a2@x.com"]).await)
            .expect("a user as the server sends it");
    let id = ada.id;

    let changed: User = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &json!({"full_name": "Augusta Ada King"}),
        )
        .await
        .expect(200)
        .body();
    assert_eq!(changed.full_name, "Augusta Ada King");
    assert_eq!(changed.user_name, "ada");
    assert_eq!(changed.emails, ada.emails);
    assert_eq!(changed.created_at, ada.created_at);
    assert_ne!(changed.updated_at, ada.updated_at);
    assert_eq!(app.user(id).await, changed);

    let changed: User = app
        .patch(
            &format!("/api/v1/users/{id}"),
            &json!({"user_name": "countess", "emails": ["countess@x.com"], "disabled": true}),
        )
        .await
        .expect(200)
        .body();
    assert_eq!(changed.user_name, "countess");
    assert_eq!(changed.emails, ["countess@x.com"]);
    assert!(changed.disabled);
    let folder: Folder = app
        .get_as(&format!(
            "/api/v1/archive-folders/{}",
            ada.archive_folder_id.expect("a local user has a folder")
        ))
        .await;
    assert_eq!(folder.name, "countess");
    // The old addresses are free again.
    app.get("/api/v1/users/lookup?email=ada@x.com")
        .await
        .expect(404);
    create_user(&app, "ada", &["ada@x.com"]).await;

    // An empty patch changes nothing.
    let before = app.get(&format!("/api/v1/users/{id}")).await.expect(200);
    let r = app
        .patch(&format!("/api/v1/users/{id}"), &json!({}))
        .await
        .expect(200);
    assert_eq!(r.json, before.json);

    let r = app
        .patch(&format!("/api/v1/users/{}", Uuid::new_v4()), &json!({}))
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn directory_managed_fields_are_refused_but_privileges_stay_editable() {
    let app = spawn_app().await;
    let id = insert_directory_user(&app, "grace@example.com", &["hopper@example.com"]).await;

    let got = app.get(&format!("/api/v1/users/{id}")).await.expect(200);
    assert_eq!(got.json["auth_method"], "directory");
    assert!(got.json["directory_id"].is_string());
    assert!(got.json["last_synced_at"].is_string());

    for body in [
        json!({"full_name": "Grace Hopper"}),
        json!({"user_name": "grace"}),
        json!({"emails": ["g@example.com"]}),
        json!({"disabled": true}),
        json!({"password": "a long password"}),
    ] {
        let r = app
            .patch(&format!("/api/v1/users/{id}"), &body)
            .await
            .expect(409);
        assert_eq!(r.error_code(), "managed_by_directory");
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("Google"), "{message}");
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(r.json["error"]["details"]["fields"], json!([field]));
    }
    let after = app.get(&format!("/api/v1/users/{id}")).await.expect(200);
    assert_eq!(after.json, got.json);

    let folder = got.json["archive_folder_id"].as_str().unwrap();
    let r = app
        .put(
            &format!("/api/v1/users/{id}/privileges"),
            &json!({"privileges": ["login", "export_email"],
                    "folder_access": [{"folder_id": folder, "access": ["read", "write"]}]}),
        )
        .await
        .expect(200);
    assert_eq!(r.json["privileges"], json!(["login", "export_email"]));
}

#[tokio::test]
async fn deleting_a_user_keeps_a_folder_with_messages_detached_and_removes_an_empty_one() {
    let app = spawn_app().await;
    let keep = create_user(&app, "keeper", &["keeper@x.com"]).await;
    let gone = create_user(&app, "leaver", &["leaver@x.com"]).await;
    let keep_folder = keep["archive_folder_id"].as_str().unwrap().to_string();
    let gone_folder = gone["archive_folder_id"].as_str().unwrap().to_string();
    let keeper_session = session_for(&app, id_of(&keep)).await;
    app.call(Method::GET, "/api/v1/me", Some(&keeper_session), None)
        .await
        .expect(200);
    // Another user's access to the kept folder survives the deletion.
    let other = create_user(&app, "other", &[]).await;
    app.put(
        &format!("/api/v1/users/{}/privileges", id_of(&other)),
        &json!({"privileges": [], "folder_access": [
            {"folder_id": keep_folder, "access": ["read"]},
            {"folder_id": gone_folder, "access": ["read"]}]}),
    )
    .await
    .expect(200);

    app.patch(
        &format!("/api/v1/archive-folders/{keep_folder}"),
        &json!({"message_count": 12}),
    )
    .await
    .expect(200);

    for u in [&keep, &gone] {
        app.delete(&format!("/api/v1/users/{}", id_of(u)))
            .await
            .expect(204);
        let r = app.get(&format!("/api/v1/users/{}", id_of(u))).await;
        assert_eq!(r.status, 404);
        let r = app
            .get(&format!("/api/v1/users/{}/privileges", id_of(u)))
            .await;
        assert_eq!(r.status, 404);
    }
    let r = app.delete(&format!("/api/v1/users/{}", id_of(&keep))).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    let kept = app
        .get(&format!("/api/v1/archive-folders/{keep_folder}"))
        .await
        .expect(200);
    assert!(kept.json["user_id"].is_null());
    assert!(kept.json["user_name"].is_null());
    assert!(kept.json["detached_at"].is_string());
    assert_eq!(kept.json["message_count"], 12);
    assert_eq!(kept.json["name"], "keeper");
    let r = app
        .get(&format!("/api/v1/archive-folders/{gone_folder}"))
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));

    // Addresses and sessions went with the users.
    for a in ["keeper@x.com", "leaver@x.com"] {
        app.get(&format!("/api/v1/users/lookup?email={a}"))
            .await
            .expect(404);
    }
    app.call(Method::GET, "/api/v1/me", Some(&keeper_session), None)
        .await
        .expect(401);
    let left: Vec<user_emails::Model> = user_emails::Entity::find().all(&app.db).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let p = app
        .get(&format!("/api/v1/users/{}/privileges", id_of(&other)))
        .await
        .expect(200);
    // Its PUT replaced its own folder's access; only the kept folder's is left.
    assert_eq!(
        p.json["folder_access"],
        json!([{"folder_id": keep_folder, "access": ["read"]}])
    );

    // A new user may take the deleted user's name and addresses.
    create_user(&app, "keeper", &["keeper@x.com"]).await;
}

#[tokio::test]
async fn deleting_many_users_at_once_applies_the_folder_rule_to_each() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    let mut with_messages = Vec::new();
    for i in 0..6 {
        let u = create_user(&app, &format!("u{i}"), &[&format!("u{i}@x.com")]).await;
        if i % 2 == 0 {
            app.patch(
                &format!(
                    "/api/v1/archive-folders/{}",
                    u["archive_folder_id"].as_str().unwrap()
                ),
                &json!({"message_count": i + 1}),
            )
            .await
            .expect(200);
            with_messages.push(u["archive_folder_id"].as_str().unwrap().to_string());
        }
        ids.push(id_of(&u).parse::<Uuid>().unwrap());
    }
    let missing = Uuid::new_v4();
    let mut all = ids.clone();
    all.push(missing);
    all.push(ids[0]);
    use sea_orm::TransactionTrait;
    let txn = app.db.begin().await.unwrap();
    let outcomes = dirsync_core::users::delete_users(&txn, &all).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(outcomes.len(), 6);
    for o in &outcomes {
        let expected = if with_messages.contains(&o.folder_id.to_string()) {
            dirsync_core::users::FolderFate::Kept
        } else {
            dirsync_core::users::FolderFate::Deleted
        };
        assert_eq!(o.fate, expected, "{o:?}");
        assert!(ids.contains(&o.user_id));
    }
    let r = app.get("/api/v1/users").await.expect(200);
    assert_eq!(r.json["items"], json!([]));
    let r = app
        .get("/api/v1/archive-folders?detached=true")
        .await
        .expect(200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);
    let r = app.get("/api/v1/archive-folders").await.expect(200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn lookup_finds_the_owner_of_a_primary_address_or_alias_in_any_case() {
    let app = spawn_app().await;
    let ada = create_user(&app, "ada", &["ada@example.com", "Countess@Example.com"]).await;
    let dir =
        insert_directory_user(&app, "grace@example.com", &["amazing.grace@example.com"]).await;
    create_user(&app, "bob", &["bob@example.com"]).await;

    let reader = app.api_key("reader").await;
    let find = |email: &str| {
        let url = format!("/api/v1/users/lookup?email={}", urlencode(email));
        let reader = reader.clone();
        let app = &app;
        async move { app.call(Method::GET, &url, Some(&reader), None).await }
    };
    for address in [
        "ada@example.com",
        "ADA@EXAMPLE.COM",
        "countess@example.com",
        "Countess@Example.com",
        " countess@EXAMPLE.com ",
    ] {
        let r = find(address).await.expect(200);
        assert_eq!(r.json, ada, "{address}");
    }
    let r = find("Amazing.Grace@example.com").await.expect(200);
    assert_eq!(r.json["id"], dir.to_string());
    assert_eq!(
        r.json["emails"],
        json!(["grace@example.com", "amazing.grace@example.com"])
    );

    let r = find("nobody@example.com").await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
    let r = find("not an address").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_email"));
    let r = app
        .call(Method::GET, "/api/v1/users/lookup", Some(&reader), None)
        .await;
    assert_eq!((r.status, r.error_code()), (422, "missing_email"));

    // `lookup` is not a user id.
    for m in [Method::PATCH, Method::DELETE, Method::PUT] {
        let r = app.call(m, "/api/v1/users/lookup", None, None).await;
        assert_eq!((r.status, r.error_code()), (405, "method_not_allowed"));
        assert_eq!(r.headers["allow"], "GET");
    }
    let r = app.get("/api/v1/users/not-an-id").await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn concurrent_changes_all_succeed() {
    let app = std::sync::Arc::new(spawn_app().await);
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(create_user(&app, &format!("c{i}"), &[]).await);
    }
    // Each change reads before it writes; on SQLite that used to fail with "database is
    // locked" when another connection wrote in between.
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..4 {
        for u in &users {
            let id = id_of(u).to_string();
            let folder = u["archive_folder_id"].as_str().unwrap().to_string();
            let app = app.clone();
            let access = if round % 2 == 0 {
                json!(["read"])
            } else {
                json!(["read", "write"])
            };
            tasks.spawn(async move {
                let a = app
                    .patch(
                        &format!("/api/v1/users/{id}"),
                        &json!({"full_name": format!("round {round}")}),
                    )
                    .await;
                let b = app
                    .put(
                        &format!("/api/v1/users/{id}/privileges"),
                        &json!({"privileges": ["login"],
                                "folder_access": [{"folder_id": folder, "access": access}]}),
                    )
                    .await;
                let c = app
                    .patch(
                        &format!("/api/v1/archive-folders/{folder}"),
                        &json!({"message_count": round}),
                    )
                    .await;
                [(a.status, a.text), (b.status, b.text), (c.status, c.text)]
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        for (status, text) in result.unwrap() {
            assert_eq!(status, 200, "{text}");
        }
    }
    // Each change took effect whole: every user ends as one of the rounds left it.
    let rounds: Vec<String> = (0..4).map(|r| format!("round {r}")).collect();
    for u in &users {
        let id = id_of(u);
        let folder = u["archive_folder_id"].as_str().unwrap();
        let user = app.get(&format!("/api/v1/users/{id}")).await.expect(200);
        let name = user.json["full_name"].as_str().unwrap().to_string();
        assert!(rounds.contains(&name), "{name}");
        let p = app
            .get(&format!("/api/v1/users/{id}/privileges"))
            .await
            .expect(200);
        assert_eq!(p.json["privileges"], json!(["login"]));
        let access = &p.json["folder_access"];
        assert!(
            *access == json!([{"folder_id": folder, "access": ["read"]}])
                || *access == json!([{"folder_id": folder, "access": ["read", "write"]}]),
            "{access}"
        );
        let f = app
            .get(&format!("/api/v1/archive-folders/{folder}"))
            .await
            .expect(200);
        assert!((0..4).contains(&f.json["message_count"].as_u64().unwrap()));
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let r: Reply = app.get(&format!("/api/v1/users?{query}")).await.expect(200);
    assert!(r.json["next_cursor"].is_null(), "{}", r.text);
    r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_list_filters_by_text_auth_method_and_disabled() {
    let app = spawn_app().await;
    create_user(&app, "ada", &["ada@analytical.org"]).await;
    let bob = create_user(&app, "Bob", &["bob@x.com", "builder@analytical.org"]).await;
    create_user(&app, "carol_50%", &["carol@x.com"]).await;
    app.post(
        "/api/v1/users",
        &json!({"user_name": "dave", "full_name": "Dave Grohl", "emails": []}),
    )
    .await
    .expect(201);
    insert_directory_user(&app, "erin@example.com", &["erin.alias@analytical.org"]).await;
    app.patch(
        &format!("/api/v1/users/{}", id_of(&bob)),
        &json!({"disabled": true}),
    )
    .await
    .expect(200);

    assert_eq!(
        names(&app, "").await,
        ["ada", "Bob", "carol_50%", "dave", "erin@example.com"]
    );
    // Text over user names, full names and every address, without case.
    assert_eq!(
        names(&app, "q=ANALYTICAL").await,
        ["ada", "Bob", "erin@example.com"]
    );
    assert_eq!(names(&app, "q=bob").await, ["Bob"]);
    assert_eq!(names(&app, "q=builder").await, ["Bob"]);
    assert_eq!(
        names(&app, "q=example").await,
        ["ada", "Bob", "carol_50%", "erin@example.com"]
    );
    assert_eq!(names(&app, "q=GROHL").await, ["dave"]);
    assert_eq!(names(&app, "q=%20%20").await.len(), 5);
    // % and _ are matched literally, not as wildcards.
    assert_eq!(names(&app, "q=50%25").await, ["carol_50%"]);
    assert_eq!(names(&app, "q=l_5").await, ["carol_50%"]);
    assert_eq!(names(&app, "q=a_a").await, Vec::<String>::new());
    assert_eq!(names(&app, "q=%25").await, ["carol_50%"]);

    assert_eq!(
        names(&app, "auth_method=directory").await,
        ["erin@example.com"]
    );
    assert_eq!(
        names(&app, "auth_method=local").await,
        ["ada", "Bob", "carol_50%", "dave"]
    );
    assert_eq!(names(&app, "disabled=true").await, ["Bob"]);
    assert_eq!(
        names(&app, "disabled=false&q=analytical").await,
        ["ada", "erin@example.com"]
    );
    assert_eq!(
        names(&app, "auth_method=local&disabled=false&q=a").await,
        ["ada", "carol_50%", "dave"]
    );

    let r = app.get("/api/v1/users?q=a%00b").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_q"));
    let r = app.get("/api/v1/users?auth_method=ldap").await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_query"));
    let r = app.get("/api/v1/users?disabled=maybe").await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_query"));
}

#[tokio::test]
async fn paging_walks_every_user_once_in_name_order() {
    let app = spawn_app().await;
    let mut expected = Vec::new();
    for i in 0..23 {
        // Mixed case: the order is by user name without case.
        let name = if i % 3 == 0 {
            format!("User{i:02}")
        } else {
            format!("user{i:02}")
        };
        let emails = [format!("u{i}@x.com")];
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        create_user(&app, &name, &emails).await;
        expected.push(name);
    }
    for (query, want) in [
        ("limit=5", expected.clone()),
        (
            "limit=4&q=1",
            expected
                .iter()
                .filter(|n| n.contains('1'))
                .cloned()
                .collect::<Vec<_>>(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/users?{query}&cursor={c}"),
                None => format!("/api/v1/users?{query}"),
            };
            let r = app.get(&path).await.expect(200);
            pages += 1;
            for item in r.json["items"].as_array().unwrap() {
                seen.push(item["user_name"].as_str().unwrap().to_string());
                assert_eq!(item["emails"].as_array().unwrap().len(), 1);
            }
            match r.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(pages < 20, "paging does not end");
        }
        assert_eq!(seen, want, "{query}");
    }
    let r = app.get("/api/v1/users?limit=501").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_limit"));
    let r = app.get("/api/v1/users?cursor=nonsense").await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_cursor"));
}
