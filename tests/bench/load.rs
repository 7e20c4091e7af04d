//! Load generation against 127.0.0.1 only, always bounded in request count and in time:
//! a closed loop for throughput, and a paced (open-loop) stream for latency percentiles.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};

/// Requests per second a closed loop achieved.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Answered 200.
    pub ok: usize,
    /// Anything else (including transport errors).
    pub errors: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl Throughput {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Fails unless `url` is on 127.0.0.1: load is never aimed anywhere else.
pub fn ensure_local(url: &reqwest::Url) -> anyhow::Result<()> {
    ensure!(
        url.host_str() == Some("127.0.0.1"),
        "load is only ever aimed at 127.0.0.1, not {url}"
    );
    Ok(())
}

fn check_local(urls: &[reqwest::Url]) -> anyhow::Result<()> {
    ensure!(!urls.is_empty(), "no URLs to load");
    urls.iter().try_for_each(ensure_local)
}

/// `concurrency` clients run `one(i)` back to back (`i` counts up across clients) until
/// `duration` has passed or `max` were started. Fails when none succeeded or more than 1 %
/// failed, naming the first failure; a smaller share of failures is logged. `what` names one
/// attempt in those messages.
pub async fn closed_loop<F, Fut>(
    what: &str,
    concurrency: usize,
    duration: Duration,
    max: usize,
    one: F,
) -> anyhow::Result<Throughput>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (one, next, first_error) = (one.clone(), next.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max || t0.elapsed() >= duration {
                    break;
                }
                match one(i).await {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        errors += 1;
                        first_error
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (o, e) = t.await?;
        ok += o;
        errors += e;
    }
    let res = Throughput {
        ok,
        errors,
        elapsed: t0.elapsed(),
    };
    let first = first_error.lock().unwrap().take();
    let first = first.as_deref().unwrap_or("none");
    if res.ok == 0 || res.errors * 100 > res.ok + res.errors {
        bail!(
            "{} of {} {what} failed; the first: {first}",
            res.errors,
            res.ok + res.errors,
        );
    }
    if res.errors > 0 {
        crate::scenario::note(format!(
            "  {} of {} {what} failed (under 1 %); the first: {first}",
            res.errors,
            res.ok + res.errors
        ));
    }
    Ok(res)
}

/// [`closed_loop`] of GETs with a bearer token, cycling through `urls`; a 200 with its whole
/// body counts.
pub async fn get_loop(
    http: &reqwest::Client,
    urls: Arc<Vec<reqwest::Url>>,
    token: &str,
    concurrency: usize,
    duration: Duration,
    max_requests: usize,
) -> anyhow::Result<Throughput> {
    check_local(&urls)?;
    let (http, token) = (http.clone(), Arc::<str>::from(token));
    closed_loop("requests", concurrency, duration, max_requests, move |i| {
        let url = urls[i % urls.len()].clone();
        let (http, token) = (http.clone(), token.clone());
        async move {
            let r = http.get(url).bearer_auth(&token).send().await?;
            ensure!(r.status() == 200, "answered {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// One request of a paced stream.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was scheduled.
    pub at: Instant,
    /// From the scheduled time to the end of the body (so a stalled server cannot hide
    /// requests it delayed).
    pub latency: Duration,
    /// Answered 200.
    pub ok: bool,
}

/// Sends `rate` requests a second (cycling through `urls`), each on its own task so that a slow
/// answer does not delay the next request, until `stop` says so, `max_time` has passed or
/// `max_requests` were sent. At most 256 requests are in flight.
pub async fn paced(
    http: &reqwest::Client,
    urls: Arc<Vec<reqwest::Url>>,
    token: &str,
    rate: u32,
    max_time: Duration,
    max_requests: usize,
    stop: impl Fn() -> bool,
) -> anyhow::Result<Vec<Sample>> {
    check_local(&urls)?;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let t0 = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..max_requests {
        tick.tick().await;
        if stop() || t0.elapsed() >= max_time {
            break;
        }
        let at = t0 + period * i as u32;
        let permit = limit.clone().acquire_owned().await?;
        let (http, url, token) = (
            http.clone(),
            urls[i % urls.len()].clone(),
            token.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let ok = match http.get(url).bearer_auth(&token).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                _ => false,
            };
            drop(permit);
            Sample {
                at,
                latency: at.elapsed(),
                ok,
            }
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?);
    }
    let failed = out.iter().filter(|s| !s.ok).count();
    if failed * 100 > out.len() {
        bail!(
            "more than 1 % of paced requests failed ({failed} of {})",
            out.len()
        );
    }
    Ok(out)
}

/// The `q` quantile (0–1) of some latencies, nearest rank.
pub fn quantile(latencies: &mut [Duration], q: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1]
}
