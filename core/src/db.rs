//! Opening the database and bringing its schema up to date; helpers for the statements on hot
//! paths.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use dirsync_entity::users;
use dirsync_migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, IntoColumnRef, Query, SimpleExpr};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityName, EntityTrait, IdenStatic, Iterable,
    PrimaryKeyToColumn, PrimaryKeyTrait, QuerySelect, QueryTrait, Statement, TransactionTrait,
    Value,
};
use uuid::Uuid;

use crate::settings::Settings;
use crate::{Error, Result};

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
        .acquire_timeout(Duration::from_secs(
            settings.database_acquire_timeout_seconds,
        ));
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
    migrate(&db).await?;
    Ok(db)
}

/// The PostgreSQL advisory lock key that serialises migrations across instances ("dirsync" in
/// ASCII): any fixed number works as long as every instance uses the same one.
const MIGRATION_LOCK: i64 = 0x0064_6972_7379_6e63;

/// Applies pending migrations. On PostgreSQL several instances may start at once — the first
/// deployment of two replicas, every upgrade that adds a migration — and DDL run twice at the
/// same time fails (`pg_type_typname_nsp_index`). So each instance takes a session-level
/// advisory lock on a connection of its own, runs the migrations (a no-op for all but the
/// first), and lets go; a process that dies while holding it releases it with its session.
async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None)
            .await
            .context("while applying database migrations");
    }
    use sea_orm::sqlx;
    let mut lock = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .context("while connecting to the database to apply migrations")?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *lock)
        .await
        .context("while waiting for another instance's migrations")?;
    let result = Migrator::up(db, None)
        .await
        .context("while applying database migrations");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *lock)
        .await
        .context("while releasing the migration lock")?;
    result
}

/// True when a database error means the database cannot be reached (no connection within the
/// acquire timeout, a dropped connection, a server shutting down or refusing connections), as
/// opposed to a fault in a statement: the API answers these 503 `database_unavailable`, so
/// that callers retry and load balancers look elsewhere.
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::{sqlx, RuntimeErr};
    let sqlx_err = match e {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match sqlx_err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes 08 (connection exception) and 57 (operator intervention: the server
        // is shutting down or not yet accepting connections).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

/// True when the database answers a trivial query.
pub async fn is_reachable(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// Begins a transaction that is going to write. On SQLite it takes the write lock at once: a
/// transaction that reads first and writes later fails with "database is locked" when another
/// connection wrote in between (a WAL snapshot cannot be upgraded), whereas waiting for the
/// lock up front is covered by the busy timeout. PostgreSQL locks rows and needs nothing.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Sqlite {
        // A write that matches no row still takes the lock (like BEGIN IMMEDIATE).
        txn.execute_unprepared("UPDATE users SET id = id WHERE 1 = 0")
            .await?;
    }
    Ok(txn)
}

/// A set that a write replaces whole, and that two such writes must not replace at once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WholeSet {
    /// `PUT /api/v1/notifications`: the notification endpoints.
    NotificationEndpoints = 1,
}

/// Begins a write transaction that replaces `set` whole, alone among those replacing it.
/// Replacing a set is "update the listed, insert the new, delete the rest": under PostgreSQL's
/// READ COMMITTED two concurrent replacements each delete only what their statement saw, so
/// rows of both survive (the end state is no caller's list). On PostgreSQL this takes a
/// transaction-scoped advisory lock (released at commit or rollback; the key pairs a fixed
/// dirsync class with the set, apart from the migration lock's); on SQLite [`begin_write`]'s
/// write lock already lets one writer in at a time.
pub(crate) async fn begin_replacing(
    db: &DatabaseConnection,
    set: WholeSet,
) -> Result<DatabaseTransaction> {
    let txn = begin_write(db).await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [WHOLE_SET_LOCK_CLASS.into(), (set as i32).into()],
        ))
        .await?;
    }
    Ok(txn)
}

/// The first key of [`begin_replacing`]'s advisory locks ("dirs" in ASCII).
const WHOLE_SET_LOCK_CLASS: i32 = 0x6469_7273;

/// Locks a user's row until the transaction ends, so that concurrent changes of one user run
/// one after the other (PostgreSQL; on SQLite [`begin_write`] holds the database's write lock
/// already). 404 when there is no such user.
pub(crate) async fn lock_user<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<()> {
    users::Entity::find_by_id(id)
        .select_only()
        .column(users::Column::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .ok_or(Error::NotFound("user"))?;
    Ok(())
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

    /// The statement of the query `build` makes, for `db`'s backend, with `values` in
    /// placeholder order.
    pub(crate) fn statement<Q: QueryTrait>(
        &self,
        db: &impl ConnectionTrait,
        values: Vec<Value>,
        build: impl FnOnce() -> Q,
    ) -> Statement {
        let backend = db.get_database_backend();
        let slot = match backend {
            DbBackend::Sqlite => &self.sqlite,
            DbBackend::Postgres => &self.postgres,
            // Not a backend dirsync runs on: no cache.
            _ => return build().build(backend),
        };
        if cfg!(debug_assertions) {
            let built = build().build(backend);
            let kept = slot.get_or_init(|| built.sql.clone());
            assert_eq!(*kept, built.sql, "the SQL text changed with its values");
            assert_eq!(
                built.values.as_ref().map(|v| &v.0),
                Some(&values),
                "values not in placeholder order"
            );
            return built;
        }
        let text = slot.get_or_init(|| build().build(backend).sql);
        Statement::from_sql_and_values(backend, text.clone(), values)
    }
}

/// Rows per multi-row statement or `IN (...)` list: with the widest table written in bulk
/// (11 columns) well under the bind-parameter limits of SQLite (32,766) and PostgreSQL (65,535).
pub(crate) const ROWS_PER_STATEMENT: usize = 1000;

/// `(?, ?), (?, ?)` — or `($1, $2), ($3, $4)` on PostgreSQL — for `rows` rows of `cols` values.
pub(crate) fn placeholders(backend: DbBackend, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 7);
    let mut n = 0;
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            n += 1;
            match backend {
                DbBackend::Postgres => {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push('?'),
            }
        }
        out.push(')');
    }
    out
}

/// Rows to insert, built lazily: each an `ActiveModel` written as a struct literal with every
/// field named (no `..Default::default()`), so that a column added to the entity is a compile
/// error where rows are built, and no value can land in another column's place. Boxed: the
/// async-trait job runner must prove its future `Send`, which the compiler cannot do for
/// closures over borrowed plan entries held across an `await`.
pub(crate) type Rows<'a, A> = Box<dyn Iterator<Item = A> + Send + 'a>;

/// The columns a bulk insert into `E` writes: all of them, in the entity's order, but a key the
/// database assigns (auto-increment).
fn written_columns<E: EntityTrait>() -> Vec<E::Column> {
    let generated = <E::PrimaryKey as PrimaryKeyTrait>::auto_increment()
        .then(|| E::PrimaryKey::iter().next().map(|k| k.into_column()))
        .flatten();
    E::Column::iter()
        .filter(|c| generated.is_none_or(|g| g.as_str() != c.as_str()))
        .collect()
}

/// Inserts `rows` into their table, [`ROWS_PER_STATEMENT`] rows a statement, building each
/// statement only when it is written. Table and column names come from the entity; each
/// row's values are moved out of its `ActiveModel` column by column, straight into the
/// statement's values (no per-row vector).
///
/// The bulk writes of a sync (six rows per created user) go through here rather than through
/// sea-query's `insert_many`: building those statements cost about as much CPU as the
/// database took to run them, and on PostgreSQL `insert_many(..).exec` also asked for every
/// inserted key back.
pub(crate) async fn insert_rows<A, C>(db: &C, rows: Rows<'_, A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let columns = written_columns::<A::Entity>();
    let head = format!(
        "INSERT INTO \"{}\" ({}) VALUES ",
        A::Entity::default().table_name(),
        columns
            .iter()
            .map(|c| format!("\"{}\"", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut values = Vec::with_capacity(ROWS_PER_STATEMENT * columns.len());
        let mut count = 0;
        for mut row in rows.by_ref().take(ROWS_PER_STATEMENT) {
            for c in &columns {
                match row.take(*c).into_value() {
                    Some(v) => values.push(v),
                    // A field left `NotSet` in a row literal: a bug, refused before writing.
                    None => {
                        return Err(DbErr::Custom(format!(
                            "bulk insert into {}: column {} not set",
                            A::Entity::default().table_name(),
                            c.as_str()
                        )))
                    }
                }
            }
            count += 1;
        }
        let sql = head.clone() + &placeholders(backend, count, columns.len());
        db.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dirsync_entity::{sync_changes, users};
    use sea_orm::{IdenStatic, Iterable};

    use super::written_columns;

    fn names<E: sea_orm::EntityTrait>() -> Vec<String> {
        written_columns::<E>()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect::<Vec<_>>()
    }

    #[test]
    fn a_bulk_insert_writes_every_column_of_the_entity_but_a_generated_key() {
        // Every column, in the entity's order: one added to the entity is written too (and its
        // row literals fail to compile until they set it).
        let all: Vec<String> = users::Column::iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(names::<users::Entity>(), all);
        assert_eq!(
            names::<sync_changes::Entity>(),
            [
                "job_id",
                "kind",
                "user_name",
                "directory_id",
                "fields",
                "reason"
            ]
        );
    }
}
