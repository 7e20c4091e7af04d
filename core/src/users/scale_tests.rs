//! The user list and lookup at 100,000 users: the queries stay index range scans, so a page
//! costs about the same anywhere in the list. SQLite by default; PostgreSQL when
//! `DIRSYNC_TEST_PG_URL` names a server (a fresh database is created).
//!
//! The full-size run is `#[ignore]`d (filling the database takes a while in a debug build):
//! `cargo test -p dirsync-core --release users::scale_tests -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use chrono::Utc;
use dirsync_entity::{archive_folders, user_emails, users};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait};
use uuid::Uuid;

use super::{find_by_email, list, AddressKey, AuthMethod, EmailKind, UserFilter};
use crate::paging::PageRequest;
use crate::settings::Settings;

async fn fresh_db(dir: &tempfile::TempDir) -> DatabaseConnection {
    let database_url = match std::env::var("DIRSYNC_TEST_PG_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!("t_{}", Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&server).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            let base = server.rsplit_once('/').map(|(b, _)| b).unwrap();
            Some(format!("{base}/{name}"))
        }
        _ => None,
    };
    let settings = Settings {
        database_url,
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    crate::db::connect_and_migrate(&settings).await.unwrap()
}

/// `n` users named `user000000`…, every 7th a directory user, every 50th disabled, each with a
/// primary address and an alias, and a folder.
async fn fill(db: &DatabaseConnection, n: usize) {
    let now = Utc::now();
    let txn = db.begin().await.unwrap();
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let ids: Vec<Uuid> = (start..end).map(|_| Uuid::new_v4()).collect();
        users::Entity::insert_many((start..end).zip(&ids).map(|(i, id)| users::ActiveModel {
            id: Set(*id),
            user_name: Set(format!("User{i:06}")),
            user_name_key: Set(format!("user{i:06}")),
            full_name: Set(format!("Person Number {i}")),
            auth_method: Set(if i % 7 == 0 {
                AuthMethod::Directory
            } else {
                AuthMethod::Local
            }),
            directory_id: Set((i % 7 == 0).then(|| format!("d{i}"))),
            disabled: Set(i % 50 == 0),
            password_hash: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_synced_at: Set(None),
        }))
        .exec(&txn)
        .await
        .unwrap();
        user_emails::Entity::insert_many((start..end).zip(&ids).flat_map(|(i, id)| {
            [
                (format!("user{i:06}@example.com"), EmailKind::Primary),
                (format!("alias{i:06}@corp.example.org"), EmailKind::Alias),
            ]
            .map(|(a, kind)| user_emails::ActiveModel {
                address_key: Set(a.clone()),
                address: Set(a),
                user_id: Set(*id),
                kind: Set(kind),
            })
        }))
        .exec(&txn)
        .await
        .unwrap();
        archive_folders::Entity::insert_many((start..end).zip(&ids).map(|(i, id)| {
            archive_folders::ActiveModel {
                id: Set(Uuid::new_v4()),
                name: Set(format!("User{i:06}")),
                user_id: Set(Some(*id)),
                message_count: Set(0),
                created_at: Set(now),
                detached_at: Set(None),
            }
        }))
        .exec(&txn)
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
}

/// Walks `pages` pages of a filtered list; returns the slowest page and the items seen.
async fn walk(
    db: &DatabaseConnection,
    filter: &UserFilter,
    pages: usize,
    start_after: Option<String>,
) -> (Duration, usize) {
    let mut slowest = Duration::ZERO;
    let mut seen = 0;
    let mut page = PageRequest {
        limit: 50,
        after: start_after,
    };
    for _ in 0..pages {
        let t = Instant::now();
        let p = list(db, filter, page.clone()).await.unwrap();
        slowest = slowest.max(t.elapsed());
        seen += p.items.len();
        match p.items.last() {
            Some(last) if p.next_cursor.is_some() => {
                page.after = Some(AddressKey::new(&last.user_name).into());
            }
            _ => break,
        }
    }
    (slowest, seen)
}

async fn check_at(n: usize, bound: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    let t = Instant::now();
    fill(&db, n).await;
    eprintln!(
        "{:?}: {n} users written in {:?}",
        db.get_database_backend(),
        t.elapsed()
    );
    let middle = Some(format!("user{:06}", n / 2));
    let end = Some(format!("user{:06}", n - 60));
    let cases: Vec<(&str, UserFilter, Option<String>)> = vec![
        ("no filter, first pages", UserFilter::default(), None),
        ("no filter, middle", UserFilter::default(), middle.clone()),
        ("no filter, end", UserFilter::default(), end.clone()),
        (
            "directory users, middle",
            UserFilter {
                auth_method: Some(AuthMethod::Directory),
                ..Default::default()
            },
            middle.clone(),
        ),
        (
            "disabled users, middle",
            UserFilter {
                disabled: Some(true),
                ..Default::default()
            },
            middle.clone(),
        ),
        (
            "q matching most users (domain)",
            UserFilter {
                q: Some("CORP.example".into()),
                ..Default::default()
            },
            middle.clone(),
        ),
        (
            "q matching one user by alias",
            UserFilter {
                q: Some(format!("alias{:06}", n - 3)),
                ..Default::default()
            },
            None,
        ),
        (
            "q matching no one",
            UserFilter {
                q: Some("nobody-at-all".into()),
                ..Default::default()
            },
            None,
        ),
    ];
    for (name, filter, after) in cases {
        let (slowest, seen) = walk(&db, &filter, 5, after).await;
        eprintln!("  {name:<34} slowest page {slowest:>10.2?} ({seen} users)");
        assert!(seen > 0 || name.contains("no one"), "{name}: nothing found");
        // Text that matches nobody has to look at every user; the rest stop after a page.
        let limit = if name.contains("q matching") {
            bound * 20
        } else {
            bound
        };
        assert!(slowest < limit, "{name}: {slowest:?}");
    }
    let t = Instant::now();
    for i in [0, n / 3, n - 1] {
        let u = find_by_email(&db, &format!("ALIAS{i:06}@corp.example.org"))
            .await
            .unwrap();
        assert_eq!(u.user_name, format!("User{i:06}"));
        assert_eq!(u.emails.len(), 2);
    }
    eprintln!(
        "  lookup by alias, 3 times            {:>10.2?}",
        t.elapsed()
    );
    assert!(t.elapsed() < bound);
}

/// SQLite's plan for each kind of page: a walk along an index in `user_name_key` order, never
/// a sort of all matching users.
#[tokio::test]
async fn pages_are_index_range_scans_without_a_sort() {
    use sea_orm::{DbBackend, QueryTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(&dir).await;
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    fill(&db, 300).await;
    db.execute_unprepared("ANALYZE").await.unwrap();
    for (filter, index) in [
        (UserFilter::default(), "user_name_key"),
        (
            UserFilter {
                auth_method: Some(AuthMethod::Local),
                ..Default::default()
            },
            "idx_users_auth_method",
        ),
        (
            UserFilter {
                q: Some("x".into()),
                disabled: Some(false),
                ..Default::default()
            },
            "user_name_key",
        ),
    ] {
        let page = PageRequest {
            limit: 50,
            after: Some("user000100".to_string()),
        };
        let stmt = super::list::list_query(&filter, &page).build(DbBackend::Sqlite);
        let plan = db
            .query_all(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {}", stmt.sql),
                stmt.values.map(|v| v.0).unwrap_or_default(),
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(3).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!plan.contains("TEMP B-TREE"), "{filter:?}:\n{plan}");
        assert!(
            plan.contains("SEARCH users USING INDEX") && plan.contains(index),
            "{filter:?}:\n{plan}"
        );
    }
}

#[tokio::test]
async fn listing_stays_fast_with_some_users() {
    check_at(2_000, Duration::from_millis(500)).await;
}

#[tokio::test]
#[ignore = "fills a database with 100,000 users; run with --ignored (best with --release)"]
async fn listing_stays_fast_at_100_000_users() {
    check_at(100_000, Duration::from_millis(100)).await;
}
