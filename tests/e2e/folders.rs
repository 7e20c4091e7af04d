//! Archive folders: listing, reading, and the message counts the archive server reports.

use dirsync_tests::spawn_app;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::users::create_user;

#[tokio::test]
async fn folders_are_listed_by_name_with_their_owners_and_paged() {
    let app = spawn_app().await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let u = create_user(&app, &format!("user{i}"), &[]).await;
        expected.push((
            format!("user{i}"),
            u["archive_folder_id"].as_str().unwrap().to_string(),
            u["id"].as_str().unwrap().to_string(),
        ));
    }
    let reader = app.api_key("reader").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/archive-folders?limit=3&cursor={c}"),
            None => "/api/v1/archive-folders?limit=3".into(),
        };
        let r = app
            .call(Method::GET, &path, Some(&reader), None)
            .await
            .expect(200);
        for f in r.json["items"].as_array().unwrap() {
            let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    "created_at",
                    "detached_at",
                    "id",
                    "message_count",
                    "name",
                    "user_id",
                    "user_name"
                ]
            );
            assert_eq!(f["name"], f["user_name"]);
            assert!(f["detached_at"].is_null());
            seen.push((
                f["name"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
                f["user_id"].as_str().unwrap().to_string(),
            ));
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let r = app
        .get("/api/v1/archive-folders?detached=true")
        .await
        .expect(200);
    assert_eq!(r.json["items"], json!([]));
    let r = app
        .get("/api/v1/archive-folders?detached=false")
        .await
        .expect(200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 7);
    let r = app
        .get(&format!("/api/v1/archive-folders/{}", Uuid::new_v4()))
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}

#[tokio::test]
async fn message_counts_are_reported_by_an_operator_and_never_negative() {
    let app = spawn_app().await;
    let u = create_user(&app, "ada", &[]).await;
    let path = format!(
        "/api/v1/archive-folders/{}",
        u["archive_folder_id"].as_str().unwrap()
    );
    let operator = app.api_key("operator").await;
    let reader = app.api_key("reader").await;

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&operator),
            Some(&json!({"message_count": 42})),
        )
        .await
        .expect(200);
    assert_eq!(r.json["message_count"], 42);
    let r = app
        .call(Method::GET, &path, Some(&reader), None)
        .await
        .expect(200);
    assert_eq!(r.json["message_count"], 42);

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&reader),
            Some(&json!({"message_count": 1})),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden"));

    let r = app.patch(&path, &json!({"message_count": -1})).await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_message_count"));
    let r = app.patch(&path, &json!({"message_count": "many"})).await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));
    let r = app.patch(&path, &json!({})).await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));
    let r = app
        .patch(&path, &json!({"message_count": 0}))
        .await
        .expect(200);
    assert_eq!(r.json["message_count"], 0);
    // JSON Schema counts 12.0 as an integer, as the documented `type: integer` promises; 12.5
    // is not one, and a count past 2^53 - 1 (the documented maximum) is refused.
    let r = app
        .patch(&path, &json!({"message_count": 12.0}))
        .await
        .expect(200);
    assert_eq!(r.json["message_count"], 12);
    let r = app.patch(&path, &json!({"message_count": 12.5})).await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));
    let r = app
        .patch(&path, &json!({"message_count": 9_007_199_254_740_992_i64}))
        .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid_body"));
    let whole = app.get("/api/v1/archive-folders?limit=1").await.expect(200);
    let integral = app
        .get("/api/v1/archive-folders?limit=1.0")
        .await
        .expect(200);
    assert_eq!(integral.json, whole.json);
    let r = app.get("/api/v1/archive-folders?limit=1.5").await;
    assert_eq!((r.status, r.error_code()), (400, "invalid_query"));

    let r = app
        .patch(
            &format!("/api/v1/archive-folders/{}", Uuid::new_v4()),
            &json!({"message_count": 1}),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (404, "not_found"));
}
