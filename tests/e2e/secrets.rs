//! Secrets never in clear: a full scenario (upload the key, configure Sign in with Google, sign
//! in, create an API key, sync) with dirsync's logs at debug level, then a search of the whole
//! log, every table and (on SQLite) the database files for each secret.

use dirsync_entity::*;
use dirsync_tests::captured_logs;
use dirsync_tests::oidc::{directory, spawn_with_oidc};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{json, Value};

/// Every row of every table, as text.
async fn dump(db: &DatabaseConnection) -> String {
    macro_rules! all {
        ($($m:ident),*) => {{
            let mut out = String::new();
            $( out.push_str(&format!("{:?}\n", $m::Entity::find().all(db).await.unwrap())); )*
            out
        }};
    }
    all!(
        users,
        user_emails,
        archive_folders,
        user_privileges,
        folder_access,
        directory_config,
        oidc_config,
        sync_jobs,
        sync_changes,
        api_keys,
        sessions,
        auth_tests,
        login_attempts,
        audit_events
    )
}

#[tokio::test]
async fn no_secret_is_ever_logged_returned_or_stored_in_clear() {
    let o = spawn_with_oidc(directory()).await;
    let app = &o.env.app;
    let key_file: Value = serde_json::from_str(&o.env.google.service_account_key_json()).unwrap();
    // The middle of the PEM: what any leak of the private key would contain.
    let private_key_line = key_file["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(3)
        .unwrap()
        .to_string();

    o.grant("ada@example.com", "admin").await;
    let session = o.sign_in("ada@example.com").await.expect(200);
    let session_token = session.json["token"].as_str().unwrap().to_string();
    let api_key = app.api_key("operator").await;
    // Use each credential, and run a sync with them.
    app.call(
        reqwest::Method::GET,
        "/api/v1/api-keys",
        Some(&session_token),
        None,
    )
    .await
    .expect(200);
    let started = app
        .call(
            reqwest::Method::POST,
            "/api/v1/sync-jobs",
            Some(&api_key),
            Some(&json!({"dry_run": false})),
        )
        .await
        .expect(202);
    o.env.wait(started.json["id"].as_str().unwrap()).await;
    let oidc = app.get("/api/v1/auth/oidc").await.expect(200);
    assert_eq!(oidc.json["client_secret_set"], true);
    let audit = app.get("/api/v1/audit-events?limit=500").await.expect(200);

    let secrets = [
        ("private key", private_key_line.as_str()),
        ("client secret", o.client_secret.as_str()),
        ("session token", session_token.as_str()),
        ("API key", api_key.as_str()),
        ("bootstrap key", app.admin_key.as_str()),
    ];
    let logs = captured_logs();
    let tables = dump(&app.db).await;
    let mut files = String::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    for (what, secret) in secrets {
        assert!(!logs.contains(secret), "the {what} is in the log");
        assert!(!tables.contains(secret), "the {what} is in the database");
        assert!(
            !files.contains(secret),
            "the {what} is in a file of the data directory"
        );
        assert!(
            !oidc.text.contains(secret) && !audit.text.contains(secret),
            "the {what} was returned"
        );
    }
    // The search would have found them: the log does hold the users' names and the tables the
    // service account's address.
    assert!(logs.contains("dirsync_core"));
    assert!(tables.contains(key_file["client_email"].as_str().unwrap()));
    if app.settings.database_url.is_none() {
        assert!(
            files.contains(key_file["client_email"].as_str().unwrap()),
            "SQLite files read"
        );
    }
}
