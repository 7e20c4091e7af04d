//! Sending deliveries: every instance runs a [`Sender`] that claims due deliveries from the
//! database with a lease (so two instances never send one at once, and one that dies mid-send
//! leaves it to the others once the lease expires), POSTs the stored body signed with the
//! endpoint's secret, and records the outcome and the next attempt.
//!
//! The signature follows the usual webhook convention: `X-Dirsync-Signature: t=<unix
//! seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. The timestamp is signed with the
//! body so that a receiver can refuse old, replayed deliveries; it is new at every attempt,
//! while the body (and its `id`) stays the same.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dirsync_entity::{notification_deliveries, notification_endpoints};
use hmac::{Hmac, Mac};
use sea_orm::{
    sea_query::{Condition, Expr},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use secrecy::ExposeSecret;
use sha2::Sha256;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{check_url, secret_context, DeliveryStatus};
use crate::secrets::Cipher;
use crate::Result;

/// The waits between attempts: the first three attempts fall within a minute (a receiver
/// restarting), the later ones spread over hours (a receiver down for the night); the last
/// attempt is 6 h 42 min after the first. Then the delivery is `failed`.
pub const RETRY_DELAYS: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(3 * 60 * 60),
];

/// How long a claimed delivery is this instance's: well over one attempt (the request timeout)
/// so that a slow receiver does not let another instance send the same delivery meanwhile.
const LEASE: Duration = Duration::from_secs(60);
/// One attempt's whole time: connect, send, answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle sender looks for deliveries queued by jobs (on any instance).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The shortest pause between two looks: a row that is due but cannot be claimed (its lease
/// was just taken by another instance) must not make the loop spin.
const MIN_PAUSE: Duration = Duration::from_millis(20);
/// Deliveries claimed at once; they are sent side by side, so one slow receiver does not hold
/// up the others.
const BATCH: u64 = 16;

/// The signature header's value for `body` signed at `t` (Unix seconds).
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// This instance's delivery loop (cheap to clone).
#[derive(Clone)]
pub struct Sender {
    db: DatabaseConnection,
    cipher: Cipher,
    http: reqwest::Client,
    owner: String,
    delays: Arc<[Duration]>,
    wake: Arc<Notify>,
}

impl Sender {
    /// A sender with the retry schedule `delays` (normally [`RETRY_DELAYS`]; tests shorten it).
    /// It trusts and proxies like every outbound client (`outbound`).
    pub fn new(
        db: DatabaseConnection,
        cipher: Cipher,
        delays: Vec<Duration>,
        outbound: &crate::outbound::Outbound,
    ) -> Result<Sender> {
        // Redirects are not followed: the URL an administrator saved is the only place a
        // signed body goes.
        let http = outbound
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("while building the webhook HTTP client: {e}"))?;
        Ok(Sender {
            db,
            cipher,
            http,
            owner: format!("notify-{}", Uuid::new_v4().simple()),
            delays: delays.into(),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Looks for due deliveries at once (after this instance queued one).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs forever: sends what is due, then sleeps until the next delivery is due (at most
    /// [`IDLE_POLL`]) or it is woken.
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let pause = match self.send_due().await {
                Ok(_) => self.until_next_due().await.unwrap_or(IDLE_POLL),
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for notifications to send; retrying");
                    Duration::from_secs(2)
                }
            };
            let _ = tokio::time::timeout(pause, self.wake.notified()).await;
        }
    }

    async fn until_next_due(&self) -> Result<Duration> {
        use notification_deliveries::Column as D;
        let now = Utc::now();
        // A delivery leased by another instance (or by this one, when recording its attempt
        // failed) is not this loop's to wait for: counted, it would be "due" for the whole
        // lease and keep the loop spinning.
        let next: Option<Option<chrono::DateTime<Utc>>> = notification_deliveries::Entity::find()
            .select_only()
            .column(D::NextAttemptAt)
            .filter(D::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(D::NextAttemptAt.is_not_null())
            .filter(
                Condition::any()
                    .add(D::LeaseExpiresAt.is_null())
                    .add(D::LeaseExpiresAt.lt(now)),
            )
            .order_by_asc(D::NextAttemptAt)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(match next.flatten() {
            Some(t) => (t - now)
                .to_std()
                .unwrap_or_default()
                .clamp(MIN_PAUSE, IDLE_POLL),
            None => IDLE_POLL,
        })
    }

    /// Claims and sends the deliveries due now; returns how many were sent.
    pub async fn send_due(&self) -> Result<usize> {
        use notification_deliveries::Column as D;
        let now = Utc::now();
        let due: Vec<Uuid> = notification_deliveries::Entity::find()
            .select_only()
            .column(D::Id)
            .filter(D::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(D::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(D::LeaseExpiresAt.is_null())
                    .add(D::LeaseExpiresAt.lt(now)),
            )
            .order_by_asc(D::NextAttemptAt)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut claimed = Vec::new();
        for id in due {
            if let Some(row) = self.claim(id).await? {
                claimed.push(row);
            }
        }
        let n = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|row| self.attempt(row))).await;
        Ok(n)
    }

    /// Takes a delivery for this instance when it is still pending, due and unleased (the
    /// conditions are checked by the UPDATE itself, so of two instances only one wins).
    async fn claim(&self, id: Uuid) -> Result<Option<notification_deliveries::Model>> {
        use notification_deliveries::Column as D;
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let res = notification_deliveries::Entity::update_many()
            .col_expr(D::LeaseOwner, Expr::value(self.owner.clone()))
            .col_expr(D::LeaseExpiresAt, Expr::value(until))
            .filter(D::Id.eq(id))
            .filter(D::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(D::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(D::LeaseExpiresAt.is_null())
                    .add(D::LeaseExpiresAt.lt(now)),
            )
            .exec(&self.db)
            .await?;
        if res.rows_affected != 1 {
            return Ok(None);
        }
        Ok(notification_deliveries::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    /// One attempt, and its outcome recorded. Never panics or returns an error: a failure to
    /// record is logged, and the lease's expiry lets the delivery be tried again.
    async fn attempt(&self, row: notification_deliveries::Model) {
        let outcome = self.send(&row).await;
        if let Err(e) = self.record(&row, outcome).await {
            tracing::warn!(delivery_id = %row.id, error = %e, "could not record a notification attempt");
        }
    }

    /// What an attempt came to: `Ok` delivered; `Err((message, retry))`.
    async fn send(
        &self,
        row: &notification_deliveries::Model,
    ) -> std::result::Result<(), (String, bool)> {
        // The URL and the secret only: the delivery's event is fixed, whatever the endpoint's
        // events (even ones that no longer decode) say now.
        use notification_endpoints::Column as E;
        let endpoint: Option<(String, String)> =
            match notification_endpoints::Entity::find_by_id(row.endpoint_id)
                .select_only()
                .columns([E::Url, E::Secret])
                .into_tuple()
                .one(&self.db)
                .await
            {
                Ok(e) => e,
                Err(e) => return Err((format!("database error: {e}"), true)),
            };
        let Some((url, sealed)) = endpoint else {
            return Err(("the endpoint was removed".into(), false));
        };
        let url = check_url(&url).map_err(|m| (format!("the URL {m}"), false))?;
        let secret = self
            .cipher
            .decrypt(&sealed, &secret_context(row.endpoint_id))
            .map_err(|e| (e.to_string(), false))?;
        let t = Utc::now().timestamp();
        let sig = signature(secret.expose_secret().as_bytes(), t, row.body.as_bytes());
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Dirsync-Signature", sig)
            .header("X-Dirsync-Event", &row.event_type)
            .body(row.body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) if resp.status().is_redirection() => Err((
                format!(
                    "answered {} (redirects are not followed: save the final URL)",
                    resp.status().as_u16()
                ),
                true,
            )),
            Ok(resp) => Err((format!("answered {}", resp.status().as_u16()), true)),
            // Without the URL: a webhook URL often carries a token of its own.
            Err(e) => Err((e.without_url().to_string(), true)),
        }
    }

    async fn record(
        &self,
        row: &notification_deliveries::Model,
        outcome: std::result::Result<(), (String, bool)>,
    ) -> Result<()> {
        use notification_deliveries::Column as D;
        let now = Utc::now();
        let attempts = row.attempts + 1;
        let q = notification_deliveries::Entity::update_many()
            .col_expr(D::Attempts, Expr::value(attempts))
            .col_expr(D::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(
                D::LeaseExpiresAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            );
        let q = match outcome {
            Ok(()) => {
                tracing::info!(delivery_id = %row.id, event = %row.event_type, attempts, "notification delivered");
                q.col_expr(D::Status, Expr::value(DeliveryStatus::Delivered.as_str()))
                    .col_expr(D::DeliveredAt, Expr::value(Some(now)))
                    .col_expr(
                        D::NextAttemptAt,
                        Expr::value(Option::<chrono::DateTime<Utc>>::None),
                    )
            }
            Err((message, retry)) => {
                let delay = usize::try_from(row.attempts)
                    .ok()
                    .and_then(|n| self.delays.get(n))
                    .filter(|_| retry);
                let (status, next) = match delay {
                    Some(d) => (
                        DeliveryStatus::Pending,
                        Some(now + chrono::Duration::from_std(*d).unwrap_or_default()),
                    ),
                    None => (DeliveryStatus::Failed, None),
                };
                tracing::warn!(delivery_id = %row.id, event = %row.event_type, attempts,
                    error = %message, will_retry = next.is_some(), "notification not delivered");
                q.col_expr(D::Status, Expr::value(status.as_str()))
                    .col_expr(D::LastError, Expr::value(Some(message)))
                    .col_expr(D::NextAttemptAt, Expr::value(next))
            }
        };
        q.filter(D::Id.eq(row.id))
            .filter(D::LeaseOwner.eq(self.owner.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() {
        // Computed independently (Python's hmac module) over `1700000000.{"id":1}`.
        assert_eq!(
            signature(b"Jefe", 1_700_000_000, br#"{"id":1}"#),
            "t=1700000000,v1=05b728475104591e6ba9301ccd86c0f18c79ea7330ef9b9869435607a745d2bf"
        );
    }

    #[test]
    fn the_first_three_attempts_fall_within_a_minute_and_the_last_after_six_hours() {
        let first_three: Duration = RETRY_DELAYS[..2].iter().sum();
        assert!(first_three < Duration::from_secs(60));
        let all: Duration = RETRY_DELAYS.iter().sum();
        assert!(all >= Duration::from_secs(6 * 3600), "{all:?}");
    }
}
