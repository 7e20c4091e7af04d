//! Who may call what (product.md §5), checked for every operation of the served OpenAPI
//! document, and `/api/v1/me`.

use dirsync_tests::{spawn_app, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

use crate::users::{create_user, insert_directory_user, session_for};

/// The least a caller needs for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Min {
    /// No token needed.
    Public,
    /// Any authenticated caller, including a signed-in user without the `admin` privilege.
    Anyone,
    Reader,
    Operator,
    Admin,
}

/// THE ROLE OF EVERY OPERATION. Each new route must be added here: an operation of the OpenAPI
/// document missing from this table fails `every_operation_enforces_its_role`. Rules of §5:
/// admin everything; operator reads configuration and runs and reads sync jobs, reads users;
/// reader reads users, privileges, lookup; API keys and the audit trail are admin only;
/// `/health`, `/ready`, `/metrics`, `/oidc/*` and signing in need no token.
const RULES: &[(&str, &str, Min)] = &[
    // probes
    ("GET", "/health", Min::Public),
    ("GET", "/ready", Min::Public),
    ("GET", "/metrics", Min::Public),
    // API keys, audit
    ("GET", "/api/v1/api-keys", Min::Admin),
    ("POST", "/api/v1/api-keys", Min::Admin),
    ("DELETE", "/api/v1/api-keys/{id}", Min::Admin),
    ("GET", "/api/v1/audit-events", Min::Admin),
    // notifications: configuration holding secrets, admin only
    ("GET", "/api/v1/notifications", Min::Admin),
    ("PUT", "/api/v1/notifications", Min::Admin),
    ("GET", "/api/v1/notifications/deliveries", Min::Admin),
    // users
    ("GET", "/api/v1/users", Min::Reader),
    ("POST", "/api/v1/users", Min::Admin),
    ("GET", "/api/v1/users/lookup", Min::Reader),
    ("GET", "/api/v1/users/{id}", Min::Reader),
    ("PATCH", "/api/v1/users/{id}", Min::Admin),
    ("DELETE", "/api/v1/users/{id}", Min::Admin),
    // privileges
    ("GET", "/api/v1/users/{id}/privileges", Min::Reader),
    ("PUT", "/api/v1/users/{id}/privileges", Min::Admin),
    ("GET", "/api/v1/directory/default-privileges", Min::Operator),
    ("PUT", "/api/v1/directory/default-privileges", Min::Admin),
    // archive folders (the archive server reports message counts with an operator key)
    ("GET", "/api/v1/archive-folders", Min::Reader),
    ("GET", "/api/v1/archive-folders/{id}", Min::Reader),
    ("PATCH", "/api/v1/archive-folders/{id}", Min::Operator),
    // sign-in: the OIDC settings are configuration (read = operator, write = admin)
    ("GET", "/api/v1/me", Min::Anyone),
    ("GET", "/api/v1/auth/oidc", Min::Operator),
    ("PUT", "/api/v1/auth/oidc", Min::Admin),
    ("POST", "/api/v1/auth/login", Min::Public),
    ("POST", "/api/v1/auth/logout", Min::Anyone),
    ("GET", "/oidc/login", Min::Public),
    ("GET", "/oidc/signin", Min::Public),
    ("POST", "/api/v1/users/{id}/auth-test", Min::Admin),
    ("GET", "/api/v1/auth-tests/{id}", Min::Admin),
    // directory configuration: read (and test) = operator, write = admin
    ("GET", "/api/v1/directory", Min::Operator),
    ("PUT", "/api/v1/directory", Min::Admin),
    ("PUT", "/api/v1/directory/service-account", Min::Admin),
    ("PUT", "/api/v1/directory/entra-credential", Min::Admin),
    ("POST", "/api/v1/directory/test", Min::Operator),
    ("GET", "/api/v1/directory/groups", Min::Operator),
    // sync jobs: run and read = operator
    ("GET", "/api/v1/sync-jobs", Min::Operator),
    ("POST", "/api/v1/sync-jobs", Min::Operator),
    ("GET", "/api/v1/sync-jobs/{id}", Min::Operator),
    ("POST", "/api/v1/sync-jobs/{id}/cancel", Min::Operator),
    ("GET", "/api/v1/sync-jobs/{id}/changes", Min::Operator),
    ("POST", "/api/v1/sync/dry-run", Min::Operator),
];

fn rule(method: &str, path: &str) -> Option<Min> {
    RULES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, r)| *r)
}

/// Every operation of the served document: (method, path template).
async fn operations(app: &TestApp) -> Vec<(String, String)> {
    let doc = app
        .call(Method::GET, "/api-docs/openapi.json", None, None)
        .await
        .expect(200)
        .json;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The path with every `{param}` replaced by a random UUID.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_operation_enforces_its_role() {
    let app = spawn_app().await;
    let ops = operations(&app).await;
    let missing: Vec<String> = ops
        .iter()
        .filter(|(m, p)| rule(m, p).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a rule in tests/e2e/roles.rs RULES: {missing:?}"
    );

    let reader = app.api_key("reader").await;
    let operator = app.api_key("operator").await;
    let admin = app.api_key("admin").await;
    // A signed-in user without the admin privilege has no role: it may only read itself.
    let plain = create_user(&app, "plain", &[]).await;
    let plain = plain["id"].as_str().unwrap().to_string();

    let mut failures = Vec::new();
    for (method, path) in &ops {
        let min = rule(method, path).unwrap();
        let m: Method = method.parse().unwrap();
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        // A fresh session each time: logging out ends it.
        let session = session_for(&app, &plain).await;
        let callers: [(&str, Option<&str>, Min); 5] = [
            ("no token", None, Min::Public),
            ("signed-in user", Some(&session), Min::Anyone),
            ("reader", Some(&reader), Min::Reader),
            ("operator", Some(&operator), Min::Operator),
            ("admin", Some(&admin), Min::Admin),
        ];
        for (who, token, level) in callers {
            let mut rb = app.request_as(m.clone(), &concrete(path), token);
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let r = match rb.send().await {
                Ok(r) => Reply::read(r).await,
                Err(e) => {
                    failures.push(format!("{method} {path} as {who}: no answer: {e:?}"));
                    continue;
                }
            };
            let allowed = level >= min;
            let ok = match (allowed, token) {
                (true, _) => r.status != 401 && r.status != 403,
                (false, None) => r.status == 401,
                (false, Some(_)) => r.status == 403,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {who}: {} (needs {min:?}) {}",
                    r.status, r.text
                ));
            }
            if r.status == 401 || r.status == 403 {
                r.error_code();
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn me_names_a_key_and_its_role() {
    let app = spawn_app().await;
    let reader = app.api_key("reader").await;
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&reader), None)
        .await
        .expect(200);
    assert_eq!(
        r.json,
        json!({"kind": "api_key", "name": "reader-key", "role": "reader", "user": null,
               "privileges": [], "folder_access": []})
    );
    let r = app.get("/api/v1/me").await.expect(200);
    assert_eq!(r.json["kind"], "bootstrap");
    assert_eq!(r.json["role"], "admin");
    assert!(r.json["user"].is_null());
    let r = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!((r.status, r.error_code()), (401, "unauthorized"));
}

#[tokio::test]
async fn a_signed_in_user_reads_itself_and_nothing_else() {
    let app = spawn_app().await;
    let ada = app
        .post(
            "/api/v1/users",
            &json!({"user_name": "ada", "full_name": "Ada", "emails": ["ada@x.com"],
                    "privileges": ["login", "export_email"]}),
        )
        .await
        .expect(201)
        .json;
    let token = session_for(&app, ada["id"].as_str().unwrap()).await;
    let r = app
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(r.json["kind"], "user");
    assert_eq!(r.json["name"], "ada");
    assert!(r.json["role"].is_null());
    assert_eq!(r.json["user"], ada);
    assert_eq!(r.json["privileges"], json!(["login", "export_email"]));
    assert_eq!(
        r.json["folder_access"],
        json!([{"folder_id": ada["archive_folder_id"], "access": ["read"]}])
    );
    for path in [
        "/api/v1/users".to_string(),
        format!("/api/v1/users/{}", ada["id"].as_str().unwrap()),
        format!("/api/v1/users/{}/privileges", ada["id"].as_str().unwrap()),
    ] {
        let r = app.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!((r.status, r.error_code()), (403, "forbidden"), "{path}");
    }

    // A disabled user's session stops working.
    app.patch(
        &format!("/api/v1/users/{}", ada["id"].as_str().unwrap()),
        &json!({"disabled": true}),
    )
    .await
    .expect(200);
    app.call(Method::GET, "/api/v1/me", Some(&token), None)
        .await
        .expect(401);
}

#[tokio::test]
async fn a_signed_in_user_holding_admin_acts_as_admin() {
    let app = spawn_app().await;
    let id = insert_directory_user(&app, "boss@example.com", &[]).await;
    let token = session_for(&app, &id.to_string()).await;
    let r = app
        .call(Method::GET, "/api/v1/users", Some(&token), None)
        .await;
    assert_eq!(r.status, 403);

    let folder = app
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(200)
        .json["archive_folder_id"]
        .clone();
    app.put(
        &format!("/api/v1/users/{id}/privileges"),
        &json!({"privileges": ["admin", "login"], "folder_access": [{"folder_id": folder, "access": ["read"]}]}),
    )
    .await
    .expect(200);

    let r = app
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await
        .expect(200);
    assert_eq!(r.json["role"], "admin");
    assert_eq!(r.json["privileges"], json!(["admin", "login"]));
    app.call(Method::GET, "/api/v1/users", Some(&token), None)
        .await
        .expect(200);
    let r = app
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(&json!({"user_name": "new", "full_name": "", "emails": []})),
        )
        .await
        .expect(201);
    // The audit trail names the signed-in user.
    let events = app.get("/api/v1/audit-events").await.expect(200).json;
    let create: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.create" && e["target_id"] == r.json["id"])
        .collect();
    assert_eq!(create[0]["actor"], "user:boss@example.com");
}
