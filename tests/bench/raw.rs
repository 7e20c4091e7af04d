//! The yardstick for API throughput: a minimal actix-web server answering the same two reads as
//! `GET /api/v1/users/lookup` and `GET /api/v1/users/{id}/privileges` — the same API-key check
//! and the same rows, in the same JSON shapes — with hand-written SQL and nothing else (no
//! middleware, no logging, no metrics). It opens the database exactly as dirsync does
//! (`dirsync_core::db::connect_and_migrate`: same pool sizes and SQLite pragmas).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use dirsync_core::settings::Settings;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;
use uuid::Uuid;

/// Serves until killed.
pub async fn serve(database_url: String, listen: String) -> anyhow::Result<()> {
    let settings = Settings {
        database_url: Some(database_url),
        ..Settings::default()
    };
    let db = dirsync_core::db::connect_and_migrate(&settings).await?;
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(db.clone()))
            .route("/health", web::get().to(HttpResponse::Ok))
            .route("/raw/users/lookup", web::get().to(lookup))
            .route("/raw/users/{id}/privileges", web::get().to(privileges))
    })
    .bind(listen)?
    .run()
    .await?;
    Ok(())
}

/// `$n` on PostgreSQL, `?` on SQLite.
fn sql(backend: DbBackend, text: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            let mut out = String::new();
            let mut n = 0;
            for c in text.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => text.to_string(),
    }
}

async fn rows(
    db: &DatabaseConnection,
    text: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>, HttpResponse> {
    let backend = db.get_database_backend();
    db.query_all(Statement::from_sql_and_values(
        backend,
        sql(backend, text),
        values,
    ))
    .await
    .map_err(|_| HttpResponse::InternalServerError().finish())
}

/// The same check as dirsync's for an API key: find the row by prefix, compare the hash.
async fn authorized(db: &DatabaseConnection, req: &HttpRequest) -> Result<(), HttpResponse> {
    let unauthorized = || HttpResponse::Unauthorized().finish();
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let prefix = token
        .strip_prefix("dsk_")
        .and_then(|r| r.split_once('_'))
        .map(|(p, _)| p)
        .ok_or_else(unauthorized)?;
    let found = rows(
        db,
        "SELECT key_hash FROM api_keys WHERE prefix = ?",
        vec![prefix.into()],
    )
    .await?;
    let hash: String = found
        .first()
        .and_then(|r| r.try_get("", "key_hash").ok())
        .ok_or_else(unauthorized)?;
    if hash != dirsync_core::auth::token_hash(token) {
        return Err(unauthorized());
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct LookupQuery {
    email: String,
}

/// A handler's answer when every step is written with `?`: the error is an answer too.
type Answer = Result<HttpResponse, HttpResponse>;

async fn lookup(
    db: web::Data<DatabaseConnection>,
    req: HttpRequest,
    q: web::Query<LookupQuery>,
) -> HttpResponse {
    lookup_answer(&db, &req, &q.email)
        .await
        .unwrap_or_else(|r| r)
}

async fn lookup_answer(db: &DatabaseConnection, req: &HttpRequest, email: &str) -> Answer {
    authorized(db, req).await?;
    let found = rows(
        db,
        "SELECT u.id, u.user_name, u.full_name, u.auth_method, u.directory_id, u.disabled, \
         u.created_at, u.updated_at, u.last_synced_at, f.id AS folder_id \
         FROM user_emails e JOIN users u ON u.id = e.user_id \
         LEFT JOIN archive_folders f ON f.user_id = u.id WHERE e.address_key = ?",
        vec![email.to_lowercase().into()],
    )
    .await?;
    let Some(u) = found.first() else {
        return Err(HttpResponse::NotFound().finish());
    };
    let user = (|| -> Result<_, sea_orm::DbErr> {
        Ok((
            u.try_get::<Uuid>("", "id")?,
            json!({
                "user_name": u.try_get::<String>("", "user_name")?,
                "full_name": u.try_get::<String>("", "full_name")?,
                "auth_method": u.try_get::<String>("", "auth_method")?,
                "directory_id": u.try_get::<Option<String>>("", "directory_id")?,
                "disabled": u.try_get::<bool>("", "disabled")?,
                "archive_folder_id": u.try_get::<Option<Uuid>>("", "folder_id")?,
                "created_at": u.try_get::<chrono::DateTime<chrono::Utc>>("", "created_at")?,
                "updated_at": u.try_get::<chrono::DateTime<chrono::Utc>>("", "updated_at")?,
                "last_synced_at": u.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "last_synced_at")?,
            }),
        ))
    })();
    let (id, mut body) = user.map_err(|_| HttpResponse::InternalServerError().finish())?;
    let emails = rows(
        db,
        "SELECT address, kind FROM user_emails WHERE user_id = ?",
        vec![id.into()],
    )
    .await?;
    let mut emails: Vec<(bool, String)> = emails
        .iter()
        .filter_map(|r| {
            let kind: String = r.try_get("", "kind").ok()?;
            Some((kind != "primary", r.try_get("", "address").ok()?))
        })
        .collect();
    emails.sort();
    body["id"] = json!(id);
    body["emails"] = json!(emails.into_iter().map(|(_, a)| a).collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(body))
}

async fn privileges(
    db: web::Data<DatabaseConnection>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    privileges_answer(&db, &req, &id)
        .await
        .unwrap_or_else(|r| r)
}

async fn privileges_answer(db: &DatabaseConnection, req: &HttpRequest, id: &str) -> Answer {
    authorized(db, req).await?;
    let id: Uuid = id.parse().map_err(|_| HttpResponse::NotFound().finish())?;
    let found = rows(
        db,
        "SELECT 1 AS one FROM users WHERE id = ?",
        vec![id.into()],
    )
    .await?;
    if found.is_empty() {
        return Err(HttpResponse::NotFound().finish());
    }
    let privileges = rows(
        db,
        "SELECT privilege FROM user_privileges WHERE user_id = ? ORDER BY privilege",
        vec![id.into()],
    )
    .await?;
    let access = rows(
        db,
        "SELECT folder_id, can_read, can_write, can_delete FROM folder_access WHERE user_id = ?",
        vec![id.into()],
    )
    .await?;
    let privileges: Vec<String> = privileges
        .iter()
        .filter_map(|r| r.try_get("", "privilege").ok())
        .collect();
    let folder_access: Vec<serde_json::Value> = access
        .iter()
        .filter_map(|r| {
            let folder: Uuid = r.try_get("", "folder_id").ok()?;
            let flags = [
                ("read", r.try_get::<bool>("", "can_read").ok()?),
                ("write", r.try_get::<bool>("", "can_write").ok()?),
                ("delete", r.try_get::<bool>("", "can_delete").ok()?),
            ];
            let access: Vec<&str> = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
            Some(json!({"folder_id": folder, "access": access}))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"privileges": privileges, "folder_access": folder_access})))
}
