//! Per-client limits that several instances share: token buckets kept in the database.
//!
//! Sign-in starts and failed authentications are limited per client address. Kept in each
//! process's memory, N instances behind a load balancer would give a client N times the
//! allowance, which is what an attacker spreading a password guess over instances wants. These
//! events are rare (a sign-in, a wrong token), so one row update each is cheap; the per-key API
//! rate limit, which every request meets, stays in memory (see `api/src/limits.rs`).
//!
//! A bucket holds up to a minute's allowance and refills continuously, exactly like the
//! in-memory limiter: taking a token is one `INSERT … ON CONFLICT DO UPDATE … RETURNING`
//! statement, atomic on both databases, so two instances never both take the last token. A
//! client refused once is remembered here until its wait ends, so that a client hammering a
//! spent allowance costs no database work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

/// A limit shared through the database: `per_minute` events per key, per `scope`.
pub struct SharedLimiter {
    db: DatabaseConnection,
    scope: &'static str,
    per_minute: u32,
    /// Keys refused, and until when: answered without the database until then.
    refused: Mutex<HashMap<String, Instant>>,
    /// When this instance last forgot buckets that are full again (Unix seconds).
    last_sweep: AtomicI64,
}

/// Whether the event is allowed, or the seconds to wait.
pub type Verdict = Result<(), u64>;

impl SharedLimiter {
    /// A limiter of `per_minute` events per key (0: unlimited) under `scope`, a name that tells
    /// this limit's buckets from another's.
    pub fn new(db: DatabaseConnection, scope: &'static str, per_minute: u32) -> SharedLimiter {
        SharedLimiter {
            db,
            scope,
            per_minute,
            refused: Mutex::new(HashMap::new()),
            last_sweep: AtomicI64::new(0),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn per_second(&self) -> f64 {
        self.capacity() / 60.0
    }

    /// Seconds until one token is back, from `tokens` now.
    fn wait(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / self.per_second()).ceil().max(1.0) as u64
    }

    /// A refusal remembered for `key`, while it lasts.
    fn remembered(&self, key: &str) -> Option<u64> {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        match refused.get(key) {
            Some(until) if *until > Instant::now() => {
                Some(until.duration_since(Instant::now()).as_secs().max(1))
            }
            Some(_) => {
                refused.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: &str, wait: u64) {
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() > 50_000 {
            let now = Instant::now();
            refused.retain(|_, until| *until > now);
        }
        refused.insert(key.to_owned(), Instant::now() + Duration::from_secs(wait));
    }

    /// Takes one event from `key`'s allowance, or says how many seconds until one is free.
    pub async fn check(&self, key: &str) -> Result<Verdict, DbErr> {
        if self.per_minute == 0 {
            return Ok(Ok(()));
        }
        if let Some(wait) = self.remembered(key) {
            return Ok(Err(wait));
        }
        let now = unix_now();
        self.sweep(now).await;
        let backend = self.db.get_database_backend();
        // The refill, capped at the capacity: the stored tokens plus the time since the last
        // update times the rate. `rate_limit_buckets.` names the stored row, `excluded.` the
        // one this statement proposes (both databases spell it so).
        let refill = "CASE WHEN rate_limit_buckets.tokens + (excluded.updated_at - rate_limit_buckets.updated_at) * $4 > $3 \
             THEN $3 \
             ELSE rate_limit_buckets.tokens + (excluded.updated_at - rate_limit_buckets.updated_at) * $4 END";
        let sql = format!(
            "INSERT INTO rate_limit_buckets (scope, bucket_key, tokens, updated_at, allowed) \
             VALUES ($1, $2, $3 - 1, $5, 1) \
             ON CONFLICT (scope, bucket_key) DO UPDATE SET \
             tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, \
             allowed = CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END, \
             updated_at = excluded.updated_at \
             RETURNING tokens, allowed"
        );
        let row = self
            .db
            .query_one(Statement::from_sql_and_values(
                backend,
                numbered_placeholders(backend, &sql),
                [
                    self.scope.into(),
                    key.into(),
                    self.capacity().into(),
                    self.per_second().into(),
                    now.into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the rate limit bucket".into()))?;
        let tokens: f64 = row.try_get("", "tokens")?;
        let allowed: i32 = row.try_get("", "allowed")?;
        if allowed == 1 {
            return Ok(Ok(()));
        }
        let wait = self.wait(tokens);
        self.remember(key, wait);
        Ok(Err(wait))
    }

    /// Whether `key` has an event left, without taking it.
    pub async fn peek(&self, key: &str) -> Result<Verdict, DbErr> {
        if self.per_minute == 0 {
            return Ok(Ok(()));
        }
        if let Some(wait) = self.remembered(key) {
            return Ok(Err(wait));
        }
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one(Statement::from_sql_and_values(
                backend,
                numbered_placeholders(
                    backend,
                    "SELECT tokens, updated_at FROM rate_limit_buckets \
                     WHERE scope = $1 AND bucket_key = $2",
                ),
                [self.scope.into(), key.into()],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(Ok(()));
        };
        let tokens: f64 = row.try_get("", "tokens")?;
        let updated_at: f64 = row.try_get("", "updated_at")?;
        let tokens =
            (tokens + (unix_now() - updated_at).max(0.0) * self.per_second()).min(self.capacity());
        if tokens >= 1.0 {
            return Ok(Ok(()));
        }
        let wait = self.wait(tokens);
        self.remember(key, wait);
        Ok(Err(wait))
    }

    /// Forgets buckets untouched for a minute (full again, which is what no row means), at
    /// most once a minute per instance. A failure is only logged: the rows are only storage.
    async fn sweep(&self, now: f64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if (now as i64) - last < 60
            || self
                .last_sweep
                .compare_exchange(last, now as i64, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let backend = self.db.get_database_backend();
        let res = self
            .db
            .execute(Statement::from_sql_and_values(
                backend,
                numbered_placeholders(
                    backend,
                    "DELETE FROM rate_limit_buckets WHERE scope = $1 AND updated_at < $2",
                ),
                [self.scope.into(), (now - 60.0).into()],
            ))
            .await;
        if let Err(e) = res {
            tracing::warn!(scope = self.scope, error = %e, "could not forget full rate-limit buckets");
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `$N` placeholders as PostgreSQL writes them, `?N` for SQLite: both number them, so a value
/// used twice is bound once.
fn numbered_placeholders(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => sql.replace('$', "?"),
    }
}
