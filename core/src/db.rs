//! Opening the database and bringing its schema up to date.

use std::time::Duration;

use anyhow::Context;
use dirsync_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, Query, SimpleExpr};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait,
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
        opts.max_connections(8).min_connections(1);
    } else {
        opts.max_connections(20).min_connections(2);
    }
    let db = Database::connect(opts)
        .await
        .context("while connecting to the database")?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers proceed while a sync writes; the setting persists in the file.
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .await
            .context("while configuring SQLite")?;
    }
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
