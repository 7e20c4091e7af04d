//! What is measured, in which order, and how the figures become ratios.
//!
//! For each directory size (a fresh emulator each) and database: with the emulator at 50 ms a
//! request and at none, a few repetitions of — a fresh server on a fresh database; the paging
//! floor; a full apply sync; the floor again; an unchanged re-run; the floor again. Every
//! ratio compares measurements taken next to each other (a sync with the mean of the floors
//! just before and after it) and the table shows the median over repetitions. At the largest
//! size, the last server then syncs the whole directory while lookups are timed, and its API is
//! compared with the raw-SQL server; then sign-in is measured on a server of its own
//! (`signin.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dirsync_core::settings::Settings;
use dirsync_entity::{user_emails, users};
use rand::{seq::SliceRandom, SeedableRng};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use uuid::Uuid;

use crate::api::Api;
use crate::children::Proc;
use crate::google::Google;
use crate::load::{self, Sample};
use crate::report::{self, Row, Target};
use crate::signin::{self, SigninResult};
use crate::source::{Emulated, Provider, Source};
use crate::Size;

/// The server's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A SQLite file in a fresh data directory.
    Sqlite,
    /// A fresh database on `DIRSYNC_TEST_PG_URL`.
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A directory size.
#[derive(Debug, Clone, Copy)]
struct Scale {
    users: usize,
    groups: usize,
    /// Repetitions with latency (Google-bound, steady) and without (short, noisy).
    reps: [usize; 2],
    /// Item 1–3 targets apply (the sizes the issue names).
    headline: bool,
}

impl Scale {
    fn reps(&self, latency: Duration) -> usize {
        self.reps[usize::from(latency.is_zero())]
    }

    fn label(&self) -> String {
        let n = |n: usize| {
            if n >= 1000 {
                format!("{}k", n / 1000)
            } else {
                n.to_string()
            }
        };
        format!("{} users/{} groups", n(self.users), n(self.groups))
    }
}

/// How long the API measurements run.
#[derive(Debug, Clone, Copy)]
struct ApiPlan {
    /// Each closed-loop run.
    throughput: Duration,
    /// Alternating rounds (dirsync, raw) per endpoint.
    rounds: usize,
    /// Concurrent clients of a closed loop.
    concurrency: usize,
    /// Paced lookups per second for latency.
    rate: u32,
    /// Length of the idle latency window.
    idle: Duration,
}

const LATENCIES: [Duration; 2] = [Duration::from_millis(50), Duration::ZERO];
pub(crate) const SYNC_TIMEOUT: Duration = Duration::from_secs(15 * 60);

fn plan(size: Size) -> (Vec<Scale>, ApiPlan) {
    match size {
        Size::Small => (
            vec![
                Scale {
                    users: 1_000,
                    groups: 100,
                    reps: [1, 2],
                    headline: false,
                },
                Scale {
                    users: 10_000,
                    groups: 1_000,
                    reps: [2, 3],
                    headline: true,
                },
            ],
            ApiPlan {
                throughput: Duration::from_millis(1500),
                rounds: 3,
                concurrency: 16,
                rate: 100,
                idle: Duration::from_secs(3),
            },
        ),
        Size::Full => (
            vec![
                Scale {
                    users: 10_000,
                    groups: 1_000,
                    reps: [3, 5],
                    headline: true,
                },
                Scale {
                    users: 100_000,
                    groups: 10_000,
                    reps: [2, 3],
                    headline: true,
                },
            ],
            ApiPlan {
                throughput: Duration::from_secs(5),
                rounds: 3,
                concurrency: 16,
                rate: 100,
                idle: Duration::from_secs(10),
            },
        ),
    }
}

pub(crate) fn note(msg: impl std::fmt::Display) {
    eprintln!("[bench] {msg}");
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One repetition on a fresh server: the floor, the first sync, the floor, an unchanged re-run.
#[derive(Debug, Clone)]
struct Rep {
    /// Floor just before the sync, and just before the re-run.
    floors: [f64; 2],
    sync: f64,
    rerun: f64,
    /// The server's own account of the sync and re-run (`finished_at - created_at`).
    server: [f64; 2],
    calls: usize,
    rerun_calls: usize,
    tokens: usize,
    rows_written: usize,
    peak_rss_kib: u64,
    /// With latency: the incremental job after ten changes that followed the re-run.
    incremental: Option<Incremental>,
}

/// Best of n over best of n: the machine is shared and its noise only ever adds time, so the
/// least disturbed run of each side is the fairest pair. Both sides have the same n.
fn best_ratio(reps: &[Rep], num: fn(&Rep) -> f64, den: fn(&Rep) -> f64) -> f64 {
    let min = |f: fn(&Rep) -> f64| reps.iter().map(f).fold(f64::INFINITY, f64::min);
    min(num) / min(den)
}

fn sync_ratio(reps: &[Rep]) -> f64 {
    best_ratio(reps, |r| r.sync, |r| r.floors[0])
}

fn rerun_ratio(reps: &[Rep]) -> f64 {
    best_ratio(reps, |r| r.rerun, |r| r.floors[1])
}

/// Median of the per-repetition ratios (context: shows how noisy the run was).
fn median_ratio(reps: &[Rep], num: fn(&Rep) -> f64, den: fn(&Rep) -> f64) -> f64 {
    median(&reps.iter().map(|r| num(r) / den(r)).collect::<Vec<_>>())
}

fn server_secs(job: &serde_json::Value) -> f64 {
    let t = |k: &str| {
        job[k]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    match (t("created_at"), t("finished_at")) {
        (Some(a), Some(b)) => (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6,
        _ => f64::NAN,
    }
}

/// The API measurements (item 5).
#[derive(Debug, Clone)]
struct ApiResult {
    /// (dirsync rps, raw rps) medians, or why not measured.
    lookup: Result<(f64, f64), String>,
    privileges: Result<(f64, f64), String>,
    /// (idle p99, p99 while planning/applying, p99 over the whole job), or why not.
    p99: Result<(Duration, Duration, Duration), String>,
    /// Users in the database during the throughput runs.
    users_in_db: usize,
    peak_rss_kib: u64,
}

/// A server on a fresh database, configured to sync from the emulator.
pub(crate) struct ServerEnv {
    dir: tempfile::TempDir,
    settings: Settings,
    pub(crate) proc: Proc,
    pub(crate) api: Api,
    db: DatabaseConnection,
    backend: Backend,
}

impl ServerEnv {
    pub(crate) async fn start(backend: Backend, source: Source<'_>) -> anyhow::Result<ServerEnv> {
        let dir = tempfile::tempdir()?;
        let database_url = match backend {
            Backend::Postgres => dirsync_tests::fresh_database_url().await,
            Backend::Sqlite => None,
        };
        let mut settings = dirsync_tests::settings_on(&dir, database_url);
        // The server's own default (one HTTP worker per core), as in production; the per-key
        // rate limit stays in the request path but never trips under the load generator.
        settings.workers = None;
        settings.rate_limit_api_per_minute = 1_000_000_000;
        source.point(&mut settings);
        // Sign-in starts (item 6) are limited per client address (30 a minute by default) and
        // every bench client is 127.0.0.1: raised like the API limit, in the request path but
        // never tripped.
        settings.rate_limit_signin_per_minute = 1_000_000_000;
        let proc = Proc::dirsync(&settings).await?;
        use secrecy::ExposeSecret;
        let key = settings
            .bootstrap_admin_key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_default();
        let api = Api::new(proc.base.clone(), key);
        source.configure(&api).await?;
        let mut opts = ConnectOptions::new(settings.effective_database_url());
        opts.sqlx_logging(false).max_connections(4);
        let db = Database::connect(opts)
            .await
            .context("while connecting to the server's database")?;
        Ok(ServerEnv {
            dir,
            settings,
            proc,
            api,
            db,
            backend,
        })
    }

    pub(crate) async fn users(&self) -> anyhow::Result<HashMap<Uuid, users::Model>> {
        Ok(users::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect())
    }

    /// The first `n` synced directory users not disabled, by name: users a benchmark may
    /// disable in the directory.
    pub(crate) async fn enabled_directory_users(&self, n: usize) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .users()
            .await?
            .into_values()
            .filter(|u| u.auth_method == dirsync_entity::AuthMethod::Directory && !u.disabled)
            .map(|u| u.user_name)
            .collect();
        names.sort();
        names.truncate(n);
        Ok(names)
    }

    /// Drops the server and, on PostgreSQL, its database.
    pub(crate) async fn stop(self) {
        self.proc.stop().await;
        let _ = self.db.close().await;
        if self.backend == Backend::Postgres {
            if let (Some(url), Ok(server)) = (
                &self.settings.database_url,
                std::env::var("DIRSYNC_TEST_PG_URL"),
            ) {
                if let (Some((_, name)), Ok(admin)) =
                    (url.rsplit_once('/'), Database::connect(&server).await)
                {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            }
        }
        if std::env::var_os("BENCH_KEEP").is_some() {
            note(format!("kept {}", self.dir.keep().display()));
        }
    }
}

/// Runs everything and prints the table. With Entra, items 1–4 and the incremental job: the API
/// (item 5) and sign-in (item 6) measurements are of dirsync's own API and of Sign in with
/// Google, and run with Google only.
pub async fn run_all(size: Size, backends: &[Backend], provider: Provider) -> anyhow::Result<()> {
    let started = Instant::now();
    let (scales, api_plan) = plan(size);
    let mut reps: HashMap<(Backend, usize, u64), Vec<Rep>> = HashMap::new();
    let mut api_results: HashMap<Backend, ApiResult> = HashMap::new();
    let mut signin_results: HashMap<Backend, SigninResult> = HashMap::new();
    let mut bounds = Vec::new();
    for (si, scale) in scales.iter().enumerate() {
        note(format!("generating the directory: {}", scale.label()));
        let emulated = Emulated::start(provider, scale.users, scale.groups).await?;
        let source = emulated.source();
        let bound = source.bound();
        let (users, groups) = source.size();
        note(format!(
            "{users} users, {groups} groups; the sync groups reach {} groups and {} users; lower bound {} {} calls",
            bound.reachable_groups,
            bound.in_scope_users,
            bound.total(),
            source.calls_name()
        ));
        check_floor_calls(source).await?;
        bounds.push(bound);
        for &backend in backends {
            for latency in LATENCIES {
                let api = (si + 1 == scales.len() && latency.is_zero()).then_some(api_plan);
                let (r, a) = measure(source, backend, scale, latency, api).await?;
                reps.insert((backend, si, latency.as_millis() as u64), r);
                if let Some(a) = a {
                    api_results.insert(backend, a);
                }
            }
            if let (true, Source::Google(google)) = (si + 1 == scales.len(), source) {
                let r = signin_bench(google, backend, signin::plan(size)).await?;
                signin_results.insert(backend, r);
            }
        }
        emulated.stop().await;
    }

    let rows = rows(
        &scales,
        backends,
        &reps,
        &api_results,
        &signin_results,
        &bounds,
        provider.calls_name(),
    );
    println!("## dirsync benchmarks (--size {size:?} --provider {provider:?})\n");
    println!("{}", machine());
    println!("{}", report::table(&rows));
    println!(
        "{}",
        context(&scales, backends, &reps, &api_results, &signin_results)
    );
    let missed = rows.iter().filter(|r| r.missed()).count();
    println!(
        "{missed} target(s) missed; harness ran in {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Item 6 on a server of its own (fresh database, the 10 % scope synced): see `signin.rs`.
async fn signin_bench(
    google: &Google,
    backend: Backend,
    plan: signin::Plan,
) -> anyhow::Result<SigninResult> {
    google.set_latency(Duration::ZERO);
    let mut env = ServerEnv::start(backend, Source::Google(google)).await?;
    env.api.sync(SYNC_TIMEOUT).await?;
    let proc = &env.proc;
    let r = signin::bench(&env.api, &env.db, google, backend.name(), plan, || {
        proc.cpu_secs()
    })
    .await;
    let alive = env.proc.check_alive();
    env.stop().await;
    alive?;
    r
}

/// The floor must make exactly the lower bound of calls: this checks the bound's arithmetic.
async fn check_floor_calls(source: Source<'_>) -> anyhow::Result<()> {
    source.reset_counts();
    source.floor().await?;
    let (calls, _) = source.counts();
    if calls != source.bound().total() {
        bail!(
            "the paging floor made {calls} {} calls, the computed lower bound is {}",
            source.calls_name(),
            source.bound().total()
        );
    }
    Ok(())
}

async fn measure(
    source: Source<'_>,
    backend: Backend,
    scale: &Scale,
    latency: Duration,
    api: Option<ApiPlan>,
) -> anyhow::Result<(Vec<Rep>, Option<ApiResult>)> {
    source.set_latency(latency);
    source.floor().await?; // warm-up, discarded
    let mut out = Vec::new();
    let mut api_result = None;
    for rep in 0..scale.reps(latency) {
        let mut env = ServerEnv::start(backend, source).await?;
        let (fu, fg, f0) = source.floor_phases().await?;
        note(format!(
            "  floor: users@{:.2} groups@{:.2} members@{:.2}",
            secs(fu),
            secs(fg),
            secs(f0)
        ));
        source.reset_counts();
        let sync = env.api.sync(SYNC_TIMEOUT).await?;
        let (calls, tokens) = source.counts();
        let created = sync.job["summary"]["created"].as_u64().unwrap_or(0) as usize;
        if created != source.bound().in_scope_users {
            bail!(
                "the sync created {created} users; {} are in scope: {}",
                source.bound().in_scope_users,
                sync.job
            );
        }
        let before = env.users().await?;
        let f1 = source.floor().await?;
        source.reset_counts();
        let rerun = env.api.sync(SYNC_TIMEOUT).await?;
        let (rerun_calls, _) = source.counts();
        let after = env.users().await?;
        let rows_written = after
            .iter()
            .filter(|(id, u)| before.get(id) != Some(u))
            .count()
            + before.keys().filter(|id| !after.contains_key(id)).count();
        let unchanged = rerun.job["summary"]["unchanged"].as_u64().unwrap_or(0) as usize;
        if unchanged != source.bound().in_scope_users {
            bail!(
                "the re-run reports {unchanged} users unchanged, expected {}: {}",
                source.bound().in_scope_users,
                rerun.job
            );
        }
        env.proc.check_alive()?;
        let incremental = match latency.is_zero() {
            true => None,
            false => Some(incremental_after_changes(source, &env).await?),
        };
        let r = Rep {
            floors: [secs(f0), secs(f1)],
            sync: secs(sync.elapsed),
            rerun: secs(rerun.elapsed),
            server: [server_secs(&sync.job), server_secs(&rerun.job)],
            calls,
            rerun_calls,
            tokens,
            rows_written,
            peak_rss_kib: env.proc.peak_rss_kib()?,
            incremental,
        };
        note(format!(
            "{} {} latency {} ms rep {}: floor {:.2} s, sync {:.2} s (server {:.2} s), floor {:.2} s, re-run {:.2} s (server {:.2} s), {} calls, peak RSS {} MiB",
            scale.label(),
            backend.name(),
            latency.as_millis(),
            rep + 1,
            r.floors[0],
            r.sync,
            r.server[0],
            r.floors[1],
            r.rerun,
            r.server[1],
            r.calls,
            r.peak_rss_kib / 1024
        ));
        if let Some(Incremental {
            fallback: Some(why),
            ..
        }) = &r.incremental
        {
            note(format!(
                "  incremental after changes: MISS, ran as a full sync: {why}"
            ));
        } else if let Some(i) = &r.incremental {
            let bound = i.bound();
            note(format!(
                "  incremental after {} changes: {} calls (bound: {} event pages + 3 × {} touched = {}){}, {:.2} s = 1/{:.0} of the full sync's {:.2} s{}",
                i.touched,
                i.calls,
                i.event_pages,
                i.touched,
                bound,
                if i.calls <= bound { "" } else { " MISS" },
                i.elapsed,
                r.sync / i.elapsed,
                r.sync,
                if i.elapsed * 20.0 <= r.sync { "" } else { " MISS (target 1/20)" }
            ));
        }
        note(format!("  sync: {}", sync.timeline()));
        note(format!("  re-run: {}", rerun.timeline()));
        out.push(r);
        if let (Some(plan), true, Source::Google(google)) =
            (api, rep + 1 == scale.reps(latency), source)
        {
            api_result = Some(api_bench(&mut env, google, plan).await?);
        }
        env.stop().await;
    }
    source.set_latency(Duration::ZERO);
    Ok((out, api_result))
}

/// An incremental job after a handful of changes (issue 15's benchmark).
#[derive(Debug, Clone)]
pub(crate) struct Incremental {
    pub(crate) touched: usize,
    pub(crate) event_pages: usize,
    pub(crate) calls: usize,
    pub(crate) elapsed: f64,
    /// Why it ran as a full sync, when it did (a MISS: the log was not followed).
    pub(crate) fallback: Option<String>,
}

impl Incremental {
    /// Issue 15's bound on its calls: the change pages read, then 3 × the objects touched.
    pub(crate) fn bound(&self) -> usize {
        self.event_pages + 3 * self.touched
    }
}

/// Disables ten synced users in the directory (ten changes, ten objects to re-read), then runs
/// an incremental job and counts its calls.
pub(crate) async fn incremental_after_changes(
    source: Source<'_>,
    env: &ServerEnv,
) -> anyhow::Result<Incremental> {
    const CHANGES: usize = 10;
    let names = env.enabled_directory_users(CHANGES).await?;
    source.disable(&names)?;
    source.reset_counts();
    let run = env.api.sync_incremental(SYNC_TIMEOUT).await?;
    let (calls, _) = source.counts();
    let event_pages = source.change_pages();
    if let Some(b) = source.breakdown() {
        note(format!("  incremental job's requests: {b}"));
    }
    if run.job["summary"]["disabled"].as_u64() != Some(CHANGES as u64) {
        bail!(
            "the incremental job did not apply the {CHANGES} changes: {}",
            run.job
        );
    }
    Ok(Incremental {
        touched: names.len(),
        event_pages,
        calls,
        elapsed: secs(run.elapsed),
        fallback: run.job["fallback_reason"].as_str().map(str::to_owned),
    })
}

pub(crate) fn sample<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(crate::google::SEED);
    items.choose_multiple(&mut rng, n).cloned().collect()
}

async fn addresses(env: &ServerEnv) -> anyhow::Result<Vec<String>> {
    let all: Vec<String> = user_emails::Entity::find()
        .all(&env.db)
        .await?
        .into_iter()
        .map(|e| e.address)
        .collect();
    Ok(sample(&all, 5000))
}

fn urls(base: &str, path: &str, params: &[(&str, String)]) -> anyhow::Result<reqwest::Url> {
    Ok(reqwest::Url::parse_with_params(
        &format!("{base}{path}"),
        params,
    )?)
}

/// 404 `no route …`: the endpoint does not exist (yet).
async fn route_missing(api: &Api, token: &str, url: &reqwest::Url) -> anyhow::Result<bool> {
    let r = api.http.get(url.clone()).bearer_auth(token).send().await?;
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let missing = status == 404
        && body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no route"));
    if !missing && status != 200 {
        bail!("GET {url} answered {status}: {body}");
    }
    Ok(missing)
}

async fn api_bench(
    env: &mut ServerEnv,
    google: &Google,
    plan: ApiPlan,
) -> anyhow::Result<ApiResult> {
    let reader = env.api.api_key("reader").await?;
    let base = env.api.base.clone();
    let lookup_urls = |addrs: &[String]| -> anyhow::Result<Vec<reqwest::Url>> {
        addrs
            .iter()
            .map(|a| urls(&base, "/api/v1/users/lookup", &[("email", a.clone())]))
            .collect()
    };
    let first = lookup_urls(&addresses(env).await?)?;
    let lookup_missing = route_missing(&env.api, &reader, &first[0]).await?;
    let why_missing =
        "not done: GET /api/v1/users/lookup answers 404 \"no route\" (endpoint not built yet)"
            .to_string();

    // Latency of lookups, idle and while the whole directory is synced (most users are new,
    // so this sync writes a lot), with Google at 50 ms a request.
    let p99 = if lookup_missing {
        Err(why_missing.clone())
    } else {
        let first = Arc::new(first);
        let idle = load::paced(
            &env.api.http,
            first.clone(),
            &reader,
            plan.rate,
            plan.idle,
            plan.rate as usize * plan.idle.as_secs() as usize,
            || false,
        )
        .await?;
        let mut idle: Vec<Duration> = idle.iter().map(|s| s.latency).collect();
        let idle_p99 = load::quantile(&mut idle, 0.99);
        google.set_latency(Duration::from_millis(50));
        env.api.set_sync_groups(&[]).await?;
        let (id, t0) = env.api.start_sync().await?;
        let done = Arc::new(AtomicBool::new(false));
        let timeline: Arc<Mutex<Vec<(Instant, String)>>> = Default::default();
        let watcher = {
            let (api, done, timeline, id) =
                (env.api.clone(), done.clone(), timeline.clone(), id.clone());
            tokio::spawn(async move {
                let mut last = String::new();
                let res: anyhow::Result<crate::api::SyncRun> = async {
                    loop {
                        let job = api.job(&id).await?;
                        let phase = job["progress"]["phase"].as_str().unwrap_or("").to_string();
                        if phase != last {
                            timeline
                                .lock()
                                .unwrap()
                                .push((Instant::now(), phase.clone()));
                            last = phase;
                        }
                        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                            return api.finish_sync(&id, t0, SYNC_TIMEOUT).await;
                        }
                        if t0.elapsed() > SYNC_TIMEOUT {
                            bail!("the whole-directory sync did not end in time");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                .await;
                done.store(true, Ordering::Relaxed);
                res
            })
        };
        let samples = load::paced(
            &env.api.http,
            first,
            &reader,
            plan.rate,
            SYNC_TIMEOUT,
            plan.rate as usize * SYNC_TIMEOUT.as_secs() as usize,
            || done.load(Ordering::Relaxed),
        )
        .await?;
        let run = watcher.await??;
        let end = t0 + run.elapsed;
        google.set_latency(Duration::ZERO);
        let apply_from = timeline
            .lock()
            .unwrap()
            .iter()
            .find(|(_, p)| p == "planning" || p == "applying")
            .map(|(t, _)| *t)
            .unwrap_or(t0);
        let window = |from: Instant| -> Vec<Duration> {
            samples
                .iter()
                .filter(|s: &&Sample| s.at >= from && s.at <= end)
                .map(|s| s.latency)
                .collect()
        };
        let (mut applying, mut whole) = (window(apply_from), window(t0));
        note(format!(
            "whole-directory sync: {:.1} s, {} lookups timed while planning/applying, {} over the job; {}",
            secs(run.elapsed),
            applying.len(),
            whole.len(),
            run.job["summary"]
        ));
        Ok((
            idle_p99,
            load::quantile(&mut applying, 0.99),
            load::quantile(&mut whole, 0.99),
        ))
    };
    if lookup_missing {
        // Still sync the whole directory so that the memory figure covers it.
        env.api.set_sync_groups(&[]).await?;
        env.api.sync(SYNC_TIMEOUT).await?;
    }
    let users_in_db = env.users().await?.len();

    // Throughput: dirsync and the raw-SQL server, alternating, on the same database.
    let raw = Proc::raw(
        &env.settings.effective_database_url(),
        &env.dir.path().join("raw.log"),
    )
    .await?;
    let addrs = addresses(env).await?;
    let ids: Vec<Uuid> = sample(&env.users().await?.into_keys().collect::<Vec<_>>(), 5000);
    let lookup = if lookup_missing {
        Err(why_missing)
    } else {
        let ours = Arc::new(lookup_urls(&addrs)?);
        let theirs = Arc::new(
            addrs
                .iter()
                .map(|a| urls(&raw.base, "/raw/users/lookup", &[("email", a.clone())]))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        Ok(compare(&env.api.http, &reader, ours, theirs, plan, "lookup").await?)
    };
    let ours: Vec<reqwest::Url> = ids
        .iter()
        .map(|id| urls(&base, &format!("/api/v1/users/{id}/privileges"), &[]))
        .collect::<anyhow::Result<_>>()?;
    let privileges = if route_missing(&env.api, &reader, &ours[0]).await? {
        Err("not done: GET /api/v1/users/{id}/privileges answers 404 \"no route\" (endpoint not built yet)".to_string())
    } else {
        let theirs = ids
            .iter()
            .map(|id| urls(&raw.base, &format!("/raw/users/{id}/privileges"), &[]))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(compare(
            &env.api.http,
            &reader,
            Arc::new(ours),
            Arc::new(theirs),
            plan,
            "privileges",
        )
        .await?)
    };
    raw.stop().await;
    env.proc.check_alive()?;
    Ok(ApiResult {
        lookup,
        privileges,
        p99,
        users_in_db,
        peak_rss_kib: env.proc.peak_rss_kib()?,
    })
}

/// Median requests per second of dirsync and of the raw server, in alternating rounds.
async fn compare(
    http: &reqwest::Client,
    token: &str,
    ours: Arc<Vec<reqwest::Url>>,
    theirs: Arc<Vec<reqwest::Url>>,
    plan: ApiPlan,
    what: &str,
) -> anyhow::Result<(f64, f64)> {
    let run = |urls: Arc<Vec<reqwest::Url>>, d: Duration| {
        load::get_loop(http, urls, token, plan.concurrency, d, 2_000_000)
    };
    // Warm both up (connections, caches), discarded.
    run(ours.clone(), Duration::from_millis(500)).await?;
    run(theirs.clone(), Duration::from_millis(500)).await?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..plan.rounds {
        // ABBA order, so that a drift in the machine's speed hits both alike.
        if round % 2 == 0 {
            a.push(run(ours.clone(), plan.throughput).await?.rps());
            b.push(run(theirs.clone(), plan.throughput).await?.rps());
        } else {
            b.push(run(theirs.clone(), plan.throughput).await?.rps());
            a.push(run(ours.clone(), plan.throughput).await?.rps());
        }
    }
    let (ours, raw) = (median(&a), median(&b));
    note(format!(
        "{what}: dirsync {a:.0?} req/s, raw SQL {b:.0?} req/s → {:.2}",
        ours / raw
    ));
    Ok((ours, raw))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("Machine: {cores} cores ({cpu}), {mem} memory.\n")
}

fn lat_label(ms: u64) -> String {
    if ms == 0 {
        "no latency".into()
    } else {
        format!("{ms} ms latency")
    }
}

fn rows(
    scales: &[Scale],
    backends: &[Backend],
    reps: &HashMap<(Backend, usize, u64), Vec<Rep>>,
    api: &HashMap<Backend, ApiResult>,
    signin: &HashMap<Backend, SigninResult>,
    bounds: &[crate::google::LowerBound],
    calls_name: &str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let lat_ms: Vec<u64> = LATENCIES.iter().map(|d| d.as_millis() as u64).collect();
    let get = |b: Backend, si: usize, ms: u64| reps.get(&(b, si, ms)).cloned().unwrap_or_default();
    for &b in backends {
        let db = b.name();
        for (si, s) in scales.iter().enumerate() {
            for &ms in &lat_ms {
                let r = get(b, si, ms);
                let target = match (s.headline, ms) {
                    (false, _) => Target::None,
                    (true, 0) => Target::AtMost(1.5),
                    _ => Target::AtMost(1.10),
                };
                rows.push(Row::ratio(
                    "1",
                    format!("full sync ÷ paging floor, {}, {}", s.label(), lat_label(ms)),
                    db,
                    sync_ratio(&r),
                    target,
                ));
            }
        }
        for (si, s) in scales.iter().enumerate() {
            let r = get(b, si, lat_ms[0]);
            let calls = r.first().map(|r| r.calls).unwrap_or(0);
            let tokens = r.first().map(|r| r.tokens).unwrap_or(0);
            rows.push(Row::ratio(
                "2",
                format!(
                    "{calls_name} calls per sync ÷ lower bound ({calls} ÷ {}), {}; token requests not counted: {tokens} per sync",
                    bounds[si].total(),
                    s.label()
                ),
                db,
                calls as f64 / bounds[si].total() as f64,
                if s.headline { Target::AtMost(1.05) } else { Target::None },
            ));
        }
        for (si, s) in scales.iter().enumerate() {
            for &ms in &lat_ms {
                let r = get(b, si, ms);
                rows.push(Row::ratio(
                    "3",
                    format!(
                        "unchanged re-run ÷ paging floor, {}, {}",
                        s.label(),
                        lat_label(ms)
                    ),
                    db,
                    rerun_ratio(&r),
                    if s.headline {
                        Target::AtMost(1.1)
                    } else {
                        Target::None
                    },
                ));
            }
            let all: Vec<Rep> = lat_ms.iter().flat_map(|&ms| get(b, si, ms)).collect();
            let mut row = Row::ratio(
                "3",
                format!(
                    "user rows written by the unchanged re-runs (all {} runs), {}",
                    all.len(),
                    s.label()
                ),
                db,
                all.iter().map(|r| r.rows_written).sum::<usize>() as f64,
                Target::AtMost(0.0),
            );
            row.decimals = 0;
            rows.push(row);
        }
        for (si, s) in scales.iter().enumerate() {
            let r = get(b, si, lat_ms[0]);
            let inc: Vec<&Incremental> = r.iter().filter_map(|r| r.incremental.as_ref()).collect();
            let what = format!(
                "incremental job after 10 changes, {}, {}: ",
                s.label(),
                lat_label(lat_ms[0])
            );
            if inc.is_empty() {
                continue;
            }
            if inc.iter().any(|i| i.fallback.is_some()) {
                rows.push(Row::not_measured(
                    "7",
                    what,
                    db,
                    "MISS: it ran as a full sync (see the log for the reason)".into(),
                ));
                continue;
            }
            let worst = inc
                .iter()
                .max_by(|a, b| (a.calls * b.bound()).cmp(&(b.calls * a.bound())))
                .expect("not empty");
            rows.push(Row::ratio(
                "7",
                format!(
                    "{what}{calls_name} calls ÷ bound ({} ÷ change pages + 3 × 10 = {})",
                    worst.calls,
                    worst.bound()
                ),
                db,
                worst.calls as f64 / worst.bound() as f64,
                Target::AtMost(1.0),
            ));
            let best = |f: &dyn Fn(&Rep) -> Option<f64>| {
                r.iter().filter_map(f).fold(f64::INFINITY, f64::min)
            };
            rows.push(Row::ratio(
                "7",
                format!("{what}full sync ÷ incremental job"),
                db,
                best(&|r| Some(r.sync)) / best(&|r| r.incremental.as_ref().map(|i| i.elapsed)),
                // Issue 15's target is at 100,000 users; below that the incremental job's
                // fixed local work weighs more than the few seconds of paging.
                if s.users >= 100_000 {
                    Target::AtLeast(20.0)
                } else {
                    Target::None
                },
            ));
        }
        if scales.len() >= 2 {
            let (lo, hi) = (scales.len() - 2, scales.len() - 1);
            for &ms in &lat_ms {
                let t =
                    |si: usize| median(&get(b, si, ms).iter().map(|r| r.sync).collect::<Vec<_>>());
                let f = |si: usize| {
                    median(
                        &get(b, si, ms)
                            .iter()
                            .map(|r| r.floors[0])
                            .collect::<Vec<_>>(),
                    )
                };
                rows.push(Row::ratio(
                    "4",
                    format!(
                        "sync time({}) ÷ time({}), {} (floor: {:.2})",
                        scales[hi].label(),
                        scales[lo].label(),
                        lat_label(ms),
                        f(hi) / f(lo)
                    ),
                    db,
                    t(hi) / t(lo),
                    Target::AtMost(11.0),
                ));
            }
            let top = scales[hi];
            let peak = lat_ms
                .iter()
                .flat_map(|&ms| get(b, hi, ms))
                .map(|r| r.peak_rss_kib)
                .max()
                .unwrap_or(0);
            let mem_target = if top.users >= 100_000 {
                Target::AtMost(300.0)
            } else {
                Target::None
            };
            rows.push(Row {
                item: "4",
                what: format!(
                    "server peak RSS (VmHWM, separate process), {}, sync of the 10 % scope",
                    top.label()
                ),
                db: db.into(),
                value: Ok(peak as f64 / 1024.0),
                decimals: 0,
                unit: " MiB",
                target: mem_target,
            });
            if let Some(a) = api.get(&b) {
                rows.push(Row {
                    item: "4",
                    what: format!(
                        "server peak RSS, {}, whole directory synced ({} users) + API load",
                        top.label(),
                        a.users_in_db
                    ),
                    db: db.into(),
                    value: Ok(a.peak_rss_kib as f64 / 1024.0),
                    decimals: 0,
                    unit: " MiB",
                    target: mem_target,
                });
            }
        }
        if let Some(a) = api.get(&b) {
            let n = a.users_in_db;
            for (name, res) in [
                ("GET /api/v1/users/lookup", &a.lookup),
                ("GET /api/v1/users/{id}/privileges", &a.privileges),
            ] {
                let what = format!("{name} req/s ÷ raw SQL, {n} users");
                rows.push(match res {
                    Ok((ours, raw)) => Row::ratio("5", what, db, ours / raw, Target::AtLeast(0.8)),
                    Err(why) => Row::not_measured("5", what, db, why.clone()),
                });
            }
            let top = scales.last().map(Scale::label).unwrap_or_default();
            match &a.p99 {
                Ok((idle, applying, whole)) => {
                    rows.push(Row::ratio(
                        "5",
                        format!("lookup p99 while a {top} whole-directory sync plans and applies ÷ idle p99"),
                        db,
                        secs(*applying) / secs(*idle),
                        Target::AtMost(5.0),
                    ));
                    rows.push(Row::ratio(
                        "5",
                        "lookup p99 over the whole sync job (fetch included) ÷ idle p99".into(),
                        db,
                        secs(*whole) / secs(*idle),
                        Target::None,
                    ));
                }
                Err(why) => rows.push(Row::not_measured(
                    "5",
                    "lookup p99 during a sync ÷ idle p99".into(),
                    db,
                    why.clone(),
                )),
            }
        }
        if let Some(s) = signin.get(&b) {
            rows.push(signin::row(db, s));
        }
    }
    rows
}

/// Absolute figures behind the ratios: context only, not comparable between runs.
fn context(
    scales: &[Scale],
    backends: &[Backend],
    reps: &HashMap<(Backend, usize, u64), Vec<Rep>>,
    api: &HashMap<Backend, ApiResult>,
    signin: &HashMap<Backend, SigninResult>,
) -> String {
    use std::fmt::Write;
    let mut out = String::from(
        "Context — absolute times of this run (best of n; not comparable between runs), and the\n\
         median of the per-repetition ratios (how noisy the run was):\n\n\
         | db | size | latency | reps | floor s | sync s (server) | re-run s (server) | median sync ratio | median re-run ratio | calls sync / re-run |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for &b in backends {
        for (si, s) in scales.iter().enumerate() {
            for d in LATENCIES {
                let ms = d.as_millis() as u64;
                let r = reps.get(&(b, si, ms)).cloned().unwrap_or_default();
                let best = |f: fn(&Rep) -> f64| r.iter().map(f).fold(f64::INFINITY, f64::min);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.2} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.2} | {:.2} | {} / {} |",
                    b.name(),
                    s.label(),
                    lat_label(ms),
                    r.len(),
                    best(|r| r.floors[0].min(r.floors[1])),
                    best(|r| r.sync),
                    best(|r| r.server[0]),
                    best(|r| r.rerun),
                    best(|r| r.server[1]),
                    median_ratio(&r, |r| r.sync, |r| r.floors[0]),
                    median_ratio(&r, |r| r.rerun, |r| r.floors[1]),
                    r.first().map(|r| r.calls).unwrap_or(0),
                    r.first().map(|r| r.rerun_calls).unwrap_or(0),
                );
            }
        }
    }
    for (b, a) in api {
        let _ = writeln!(out);
        if let Ok((o, r)) = a.lookup {
            let _ = writeln!(out, "{}: lookup {o:.0} req/s (raw SQL {r:.0})", b.name());
        }
        if let Ok((o, r)) = a.privileges {
            let _ = writeln!(
                out,
                "{}: privileges {o:.0} req/s (raw SQL {r:.0})",
                b.name()
            );
        }
        if let Ok((i, ap, w)) = a.p99 {
            let _ = writeln!(
                out,
                "{}: lookup p99 idle {:.1} ms, while planning/applying {:.1} ms, over the whole job {:.1} ms",
                b.name(),
                secs(i) * 1e3,
                secs(ap) * 1e3,
                secs(w) * 1e3
            );
        }
    }
    for b in backends {
        if let Some(s) = signin.get(b) {
            let _ = write!(out, "\n{}", signin::context(b.name(), s));
        }
    }
    out
}
