//! Opening the database and bringing its schema up to date.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use dirsync_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, Query, SimpleExpr};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait,
    Statement, Value,
};

use crate::settings::Settings;

/// Connects to the configured database (creating the SQLite file and data directory on first
/// start) and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "while creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let url = settings.effective_database_url();
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if sqlite {
        // SQLite allows one writer at a time; a handful of connections serve concurrent readers.
        // WAL lets readers proceed while a sync writes. `synchronous` is a per-connection
        // setting, so it is given to every connection the pool opens, not run once. No ping
        // before each use: a connection to a file cannot go stale, and the ping is a round trip
        // to the connection's thread (about a tenth of a lookup's CPU). On PostgreSQL the ping
        // stays: it replaces connections the server or the network has dropped.
        opts.max_connections(8)
            .min_connections(1)
            .test_before_acquire(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            });
    } else {
        opts.max_connections(20).min_connections(2);
    }
    let db = Database::connect(opts)
        .await
        .context("while connecting to the database")?;
    Migrator::up(&db, None)
        .await
        .context("while applying database migrations")?;
    Ok(db)
}

/// True when the database answers a trivial query.
pub async fn is_reachable(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// `(SELECT E.value FROM E WHERE E.key = outer)`: one column of a related row, read in the query
/// that selects the rows it belongs to (a user's folder id, a folder's owner's name). `key` must
/// be unique, so that the subquery yields at most one row.
pub(crate) fn related_column<E: EntityTrait>(
    value: E::Column,
    key: E::Column,
    outer: impl IntoColumnRef,
) -> SimpleExpr {
    let related = Query::select()
        .column((E::default(), value))
        .from(E::default())
        .and_where(Expr::col((E::default(), key)).equals(outer))
        .to_owned();
    SimpleExpr::SubQuery(None, Box::new(related.into_sub_query_statement()))
}

/// The SQL text of a statement whose text never depends on its values, built by sea-query on
/// first use for each backend and kept. The hot read paths — every API-key check, every lookup
/// by address, every privileges read — bind new values to the kept text: building the text of
/// a select (quoting, aliases, subqueries) took more CPU than SQLite took to run it.
///
/// Debug builds, which the tests use, build the statement every time and check that the kept
/// text and the given values are what it builds: a statement whose text did depend on its
/// values, or values given in the wrong order, fails the tests instead of reading wrong rows.
pub(crate) struct SqlText {
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl SqlText {
    pub(crate) const fn new() -> SqlText {
        SqlText {
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement `build` makes for `backend`, with `values` in placeholder order.
    pub(crate) fn statement(
        &self,
        backend: DbBackend,
        values: Vec<Value>,
        build: impl FnOnce() -> Statement,
    ) -> Statement {
        let slot = match backend {
            DbBackend::Sqlite => &self.sqlite,
            DbBackend::Postgres => &self.postgres,
            // Not a backend dirsync runs on: no cache.
            _ => return build(),
        };
        if cfg!(debug_assertions) {
            let built = build();
            let kept = slot.get_or_init(|| built.sql.clone());
            assert_eq!(*kept, built.sql, "the SQL text changed with its values");
            assert_eq!(
                built.values.as_ref().map(|v| &v.0),
                Some(&values),
                "values not in placeholder order"
            );
            return built;
        }
        let text = slot.get_or_init(|| build().sql);
        Statement::from_sql_and_values(backend, text.clone(), values)
    }
}
