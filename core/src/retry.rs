//! What every outbound client (Google's Directory API and token endpoint, Microsoft Graph and
//! Entra's token endpoint) retries by: the timing, the backoff, `Retry-After`, the metrics
//! hook, and the words of a transport failure. Each provider keeps its own loop, because what
//! is retryable and what a refusal means are its own.

use std::sync::Arc;
use std::time::Duration;

/// Called once per HTTP response (or transport failure, status 0) with the endpoint name, the
/// status and the time to the answer's headers: a hook for metrics.
pub type Hook = Arc<dyn Fn(&str, u16, Duration) + Send + Sync>;

/// Retry timing.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per API request, the first included (default 6; Graph's client sets 5).
    pub max_attempts: u32,
    /// Attempts per token request (default 3, as google-auth and MSAL).
    pub token_max_attempts: u32,
    /// First backoff step (default 1 s); step n is `base × 2^(n-1)`, capped.
    pub base_delay: Duration,
    /// Cap of one backoff step (default 32 s).
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured (default 120 s); longer values are clamped to it.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            token_max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Exponential backoff with full jitter: uniform in `[0, min(max_delay, base × 2^(attempt-1))]`.
pub(crate) fn backoff(p: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = p
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(p.max_delay);
    ceiling.mul_f64(rand::random::<f64>())
}

/// `Retry-After` in seconds (what Google and Graph send; an HTTP date is not read).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A transport failure in words: reqwest's top-level message is generic ("error sending
/// request"), its causes say why. Never the request (a token request's body holds a secret).
pub(crate) fn failure_words(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
