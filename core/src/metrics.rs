//! Prometheus metrics of one server instance, rendered in the text exposition format at
//! `/metrics`.
//!
//! Two kinds of figure, kept apart on purpose:
//! - what this process saw (requests, sign-ins, Google calls, the jobs it ran): counters and
//!   histograms in a [`Metrics`] registry, one per server, summed across instances by Prometheus;
//! - what the installation is (users, the last sync, the schedule): read from the database at
//!   scrape time by [`Metrics::scrape`], so every instance on one PostgreSQL reports the same,
//!   right, value — whichever instance ran the job.
//!
//! The registry is dependency-free; the process figures are read from `/proc/self` on Linux.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use dirsync_entity::{directory_config, sync_jobs, users};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Histogram bucket bounds in seconds, from 1 ms to 5 minutes (sync jobs reach minutes).
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn record(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Default, Clone)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
    http: HashMap<String, HttpRoute>,
}

/// The request metrics of one route: recorded on every request, so found by the route's
/// name without building label strings, under one lock.
#[derive(Default, Clone)]
struct HttpRoute {
    /// (method, status) → requests.
    requests: Vec<((&'static str, u16), u64)>,
    /// method → latency.
    latency: Vec<(&'static str, Histogram)>,
}

/// The method as a label: the standard methods by name, anything else `other`. A method is any
/// token the caller likes, of any length; as a label each new one would be kept forever.
pub fn method_label(method: &str) -> &'static str {
    const STANDARD: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// `dirsync_http_requests_total` by method, route and status.
const HTTP_REQUESTS: &str = "dirsync_http_requests_total";
/// `dirsync_http_request_duration_seconds` by method and route.
const HTTP_DURATION: &str = "dirsync_http_request_duration_seconds";

fn label_string(labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"");
        // Escaped in place rather than with a new string per replacement: this runs twice a
        // request.
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s
}

/// The counters and histograms of one server instance (cheap to clone: one shared registry).
/// Each server builds its own, so that two servers in one process — tests, above all — never
/// count each other's requests.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)]) {
        let mut r = self.lock();
        r.help.entry(name).or_insert((help, "counter"));
        *r.counters.entry((name, label_string(labels))).or_default() += 1;
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        seconds: f64,
    ) {
        let mut r = self.lock();
        r.help.entry(name).or_insert((help, "histogram"));
        r.histograms
            .entry((name, label_string(labels)))
            .or_default()
            .record(seconds);
    }

    /// One request to Google: `dirsync_google_requests_total` by endpoint and status (0: no
    /// answer) and, for answered ones, `dirsync_google_request_duration_seconds` by endpoint.
    pub fn google_request(&self, endpoint: &str, status: u16, seconds: f64) {
        self.inc(
            "dirsync_google_requests_total",
            "Requests to Google by endpoint and status (0: no answer).",
            &[("endpoint", endpoint), ("status", &status.to_string())],
        );
        self.observe(
            "dirsync_google_request_duration_seconds",
            "Time to Google's answer (headers), by endpoint; transport failures included.",
            &[("endpoint", endpoint)],
            seconds,
        );
    }

    /// One request to Microsoft (the token endpoint and Graph):
    /// `dirsync_microsoft_requests_total` by endpoint and status (0: no answer) and
    /// `dirsync_microsoft_request_duration_seconds` by endpoint, as Google's are counted.
    pub fn microsoft_request(&self, endpoint: &str, status: u16, seconds: f64) {
        self.inc(
            "dirsync_microsoft_requests_total",
            "Requests to Microsoft (token endpoint, Graph) by endpoint and status (0: no answer).",
            &[("endpoint", endpoint), ("status", &status.to_string())],
        );
        self.observe(
            "dirsync_microsoft_request_duration_seconds",
            "Time to Microsoft's answer (headers), by endpoint; transport failures included.",
            &[("endpoint", endpoint)],
            seconds,
        );
    }

    /// One finished sign-in: `dirsync_signins_total` by method (`google`, `password`) and
    /// outcome (`success`, or the refusal's stable code such as `user_disabled`). The codes are
    /// the server's own, a bounded set.
    pub fn signin(&self, method: &'static str, outcome: &str) {
        self.inc(
            "dirsync_signins_total",
            "Finished sign-ins by method and outcome (success or the refusal's code).",
            &[("method", method), ("outcome", outcome)],
        );
    }

    /// Counts one HTTP request in `dirsync_http_requests_total` (by method, route and status)
    /// and its latency in `dirsync_http_request_duration_seconds` (by method and route). Every
    /// request comes here: it takes the lock once and allocates only for a route, method or
    /// status not seen before.
    ///
    /// `route` must be a route pattern of the server (or a fixed name such as `unmatched`),
    /// never the request's path; the method is reduced by [`method_label`]. So the label values
    /// are bounded by the server's routes, not by what callers send.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let mut r = self.lock();
        let entry = match r.http.get_mut(route) {
            Some(e) => e,
            None => r.http.entry(route.to_string()).or_default(),
        };
        match entry
            .requests
            .iter_mut()
            .find(|((m, s), _)| *m == method && *s == status)
        {
            Some((_, n)) => *n += 1,
            None => entry.requests.push(((method, status), 1)),
        }
        match entry.latency.iter_mut().find(|(m, _)| *m == method) {
            Some((_, h)) => h.record(seconds),
            None => {
                let mut h = Histogram::default();
                h.record(seconds);
                entry.latency.push((method, h));
            }
        }
    }

    /// This process's registry in Prometheus text format.
    pub fn render(&self) -> String {
        // A copy, taken under the lock, is rendered without it: every request records into the
        // registry, and none should wait while a scrape formats text. The copy is small — its
        // label values are bounded (see `http_request`).
        let r = self.lock().clone();
        let mut out = String::new();
        for (name, (help, kind)) in &r.help {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in r.counters.range((*name, String::new())..) {
                if n != name {
                    break;
                }
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
            for ((n, labels), h) in r.histograms.range((*name, String::new())..) {
                if n != name {
                    break;
                }
                let sep = if labels.is_empty() { "" } else { "," };
                for (bound, c) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {c}");
                }
                let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        render_http(&r, &mut out);
        out
    }

    /// Everything `/metrics` shows: this process's registry, the installation's figures read
    /// from the database now, the build and the process. A database that does not answer
    /// leaves its figures out (and says so in `dirsync_database_up`), never the rest.
    pub async fn scrape(&self, db: &DatabaseConnection) -> String {
        let mut out = self.render();
        let mut gauges = String::new();
        let up = match database_gauges(db, &mut gauges).await {
            Ok(()) => {
                out.push_str(&gauges);
                1
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: could not read the database figures");
                0
            }
        };
        gauge(
            &mut out,
            "dirsync_database_up",
            "Whether the database answered this scrape's queries.",
            &[("", up as f64)],
        );
        gauge(
            &mut out,
            "dirsync_build_info",
            "The running build; always 1.",
            &[(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), 1.0)],
        );
        process_metrics(&mut out);
        out
    }
}

/// One gauge family: `(labels, value)` per series (labels already formatted, `""` for none).
fn gauge(out: &mut String, name: &str, help: &str, series: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// The job states, in their wire names, for the state set of the last job's status.
const JOB_STATES: [&str; 4] = ["succeeded", "failed", "blocked", "cancelled"];

/// The installation's figures, from the database. Each is one small query: the users are
/// counted by one grouped COUNT (an index holds both columns), never loaded.
async fn database_gauges(db: &DatabaseConnection, out: &mut String) -> crate::Result<()> {
    let counts: Vec<(String, bool, i64)> = users::Entity::find()
        .select_only()
        .column(users::Column::AuthMethod)
        .column(users::Column::Disabled)
        .column_as(users::Column::Id.count(), "n")
        .group_by(users::Column::AuthMethod)
        .group_by(users::Column::Disabled)
        .into_tuple()
        .all(db)
        .await?;
    // Every combination is shown, zeros included: a series that vanishes at zero breaks
    // alerts and graphs that compare it.
    let mut series: BTreeMap<(String, bool), i64> = BTreeMap::new();
    for method in ["directory", "local"] {
        for disabled in [false, true] {
            series.insert((method.to_string(), disabled), 0);
        }
    }
    for (method, disabled, n) in counts {
        series.insert((method, disabled), n);
    }
    let labels: Vec<(String, f64)> = series
        .into_iter()
        .map(|((m, d), n)| {
            (
                label_string(&[
                    ("auth_method", &m),
                    ("disabled", if d { "true" } else { "false" }),
                ]),
                n as f64,
            )
        })
        .collect();
    let refs: Vec<(&str, f64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    gauge(
        out,
        "dirsync_users",
        "Users by auth method and disabled state.",
        &refs,
    );

    // Dry runs change nothing: "the last sync" is the last real run.
    let last_ok: Option<Option<chrono::DateTime<chrono::Utc>>> = sync_jobs::Entity::find()
        .select_only()
        .column(sync_jobs::Column::FinishedAt)
        .filter(sync_jobs::Column::Status.eq("succeeded"))
        .filter(sync_jobs::Column::DryRun.eq(false))
        .filter(sync_jobs::Column::FinishedAt.is_not_null())
        .order_by_desc(sync_jobs::Column::FinishedAt)
        .into_tuple()
        .one(db)
        .await?;
    if let Some(Some(t)) = last_ok {
        gauge(
            out,
            "dirsync_last_successful_sync_timestamp_seconds",
            "When the last successful sync (not a dry run) ended, in Unix seconds; absent before the first.",
            &[("", t.timestamp_millis() as f64 / 1000.0)],
        );
    }

    let last: Option<String> = sync_jobs::Entity::find()
        .select_only()
        .column(sync_jobs::Column::Status)
        .filter(sync_jobs::Column::DryRun.eq(false))
        .filter(sync_jobs::Column::FinishedAt.is_not_null())
        .order_by_desc(sync_jobs::Column::FinishedAt)
        .into_tuple()
        .one(db)
        .await?;
    if let Some(last) = last {
        let labels: Vec<String> = JOB_STATES
            .iter()
            .map(|s| format!("status=\"{s}\""))
            .collect();
        let series: Vec<(&str, f64)> = JOB_STATES
            .iter()
            .zip(&labels)
            .map(|(s, l)| (l.as_str(), if *s == last { 1.0 } else { 0.0 }))
            .collect();
        gauge(
            out,
            "dirsync_last_sync_job_status",
            "The status of the last ended sync (not a dry run): 1 for its status, 0 for the others.",
            &series,
        );
    }

    let schedule = directory_config::Entity::find_by_id(crate::directory::ROW_ID)
        .one(db)
        .await?
        .and_then(|c| c.schedule_minutes)
        .filter(|m| *m > 0)
        .unwrap_or(0);
    gauge(
        out,
        "dirsync_sync_schedule_seconds",
        "The sync schedule's interval in seconds; 0 when no schedule is set.",
        &[("", f64::from(schedule) * 60.0)],
    );

    // The newest admin event applied (a full sync counts as applying every event before it
    // began): how far behind Google dirsync may be. Not the snapshot: that column is large.
    let newest: Option<Option<chrono::DateTime<chrono::Utc>>> =
        dirsync_entity::directory_state::Entity::find()
            .select_only()
            .column(dirsync_entity::directory_state::Column::NewestEventAt)
            .into_tuple()
            .one(db)
            .await?;
    if let Some(Some(t)) = newest {
        let age = (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0;
        gauge(
            out,
            "dirsync_directory_event_age_seconds",
            "Seconds since the newest directory change dirsync has applied (the newest admin-log \
             event of an incremental job, or the start of a full sync); absent before the first sync.",
            &[("", age)],
        );
    }
    Ok(())
}

/// The usual `process_*` figures, read from `/proc/self` (Linux only; elsewhere none).
fn process_metrics(out: &mut String) {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |field: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(field))?;
            let n: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(n * 1024.0)
        };
        if let Some(rss) = kib("VmRSS:") {
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[("", rss)],
            );
        }
        if let Some(vsz) = kib("VmSize:") {
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[("", vsz)],
            );
        }
        // Fields 14 and 15 (utime, stime) and 22 (starttime) of /proc/self/stat, counted after
        // the command name, which is in parentheses and may hold spaces. They are in clock ticks
        // of USER_HZ, which the kernel's ABI fixes at 100 on every architecture Linux exports it
        // on (Prometheus's own procfs reader assumes the same).
        const USER_HZ: f64 = 100.0;
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // `rest` starts at field 3 (state).
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
        if let (Some(u), Some(s)) = (field(14), field(15)) {
            let _ = writeln!(
                out,
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
                 # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                (u + s) / USER_HZ
            );
        }
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        if let (Some(start), Some(boot)) = (field(22), boot_time) {
            gauge(
                out,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
                &[("", boot + start / USER_HZ)],
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                out,
                "process_open_fds",
                "Number of open file descriptors.",
                &[("", dir.count() as f64)],
            );
        }
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse::<f64>().ok())
            });
        if let Some(max) = max_fds {
            gauge(
                out,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &[("", max)],
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

/// The HTTP request families, in the same form and order as the others.
fn render_http(r: &Registry, out: &mut String) {
    if r.http.is_empty() {
        return;
    }
    let mut routes: Vec<(&String, &HttpRoute)> = r.http.iter().collect();
    routes.sort_by(|a, b| a.0.cmp(b.0));
    let _ = writeln!(
        out,
        "# HELP {HTTP_DURATION} HTTP request latency by method and route.\n# TYPE {HTTP_DURATION} histogram"
    );
    let mut latency: Vec<(String, &Histogram)> = routes
        .iter()
        .flat_map(|(route, e)| {
            e.latency
                .iter()
                .map(move |(m, h)| (label_string(&[("method", m), ("route", route)]), h))
        })
        .collect();
    latency.sort_by(|a, b| a.0.cmp(&b.0));
    for (labels, h) in latency {
        for (bound, c) in BUCKETS.iter().zip(&h.counts) {
            let _ = writeln!(out, "{HTTP_DURATION}_bucket{{{labels},le=\"{bound}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{HTTP_DURATION}_bucket{{{labels},le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{HTTP_DURATION}_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "{HTTP_DURATION}_count{{{labels}}} {}", h.count);
    }
    let _ = writeln!(
        out,
        "# HELP {HTTP_REQUESTS} HTTP requests by method, route and status.\n# TYPE {HTTP_REQUESTS} counter"
    );
    let mut requests: Vec<(String, u64)> = routes
        .iter()
        .flat_map(|(route, e)| {
            e.requests.iter().map(move |((m, status), n)| {
                let status = status.to_string();
                (
                    label_string(&[("method", m), ("route", route), ("status", &status)]),
                    *n,
                )
            })
        })
        .collect();
    requests.sort();
    for (labels, n) in requests {
        let _ = writeln!(out, "{HTTP_REQUESTS}{{{labels}}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.inc("test_things_total", "Things.", &[("kind", "a\"b")]);
        m.inc("test_things_total", "Things.", &[("kind", "a\"b")]);
        m.observe("test_latency_seconds", "Latency.", &[("route", "/x")], 0.02);
        let text = m.render();
        assert!(text.contains("# TYPE test_things_total counter"));
        assert!(text.contains("test_things_total{kind=\"a\\\"b\"} 2"));
        assert!(text.contains("test_latency_seconds_bucket{route=\"/x\",le=\"0.025\"} 1"));
        assert!(text.contains("test_latency_seconds_bucket{route=\"/x\",le=\"0.01\"} 0"));
        assert!(text.contains("test_latency_seconds_count{route=\"/x\"} 1"));
    }

    #[test]
    fn renders_http_requests_by_route_method_and_status() {
        let m = Metrics::new();
        m.http_request("GET", "/test/{id}", 200, 0.003);
        m.http_request("GET", "/test/{id}", 200, 0.02);
        m.http_request("GET", "/test/{id}", 404, 0.001);
        m.http_request("PUT", "/test/{id}", 200, 0.2);
        let text = m.render();
        assert_eq!(
            text.matches("# TYPE dirsync_http_requests_total counter")
                .count(),
            1
        );
        assert!(text.contains(
            "dirsync_http_requests_total{method=\"GET\",route=\"/test/{id}\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "dirsync_http_requests_total{method=\"GET\",route=\"/test/{id}\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "dirsync_http_request_duration_seconds_bucket{method=\"GET\",route=\"/test/{id}\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "dirsync_http_request_duration_seconds_count{method=\"PUT\",route=\"/test/{id}\"} 1"
        ));
    }

    #[test]
    fn invented_methods_are_counted_as_other() {
        let m = Metrics::new();
        let invented = "X".repeat(300);
        m.http_request(&invented, "/test/methods", 405, 0.001);
        m.http_request("PROPFIND", "/test/methods", 405, 0.001);
        let text = m.render();
        assert!(!text.contains(&invented) && !text.contains("PROPFIND"));
        assert!(text.contains(
            "dirsync_http_requests_total{method=\"other\",route=\"/test/methods\",status=\"405\"} 2"
        ));
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), "other");
    }

    #[test]
    fn two_registries_do_not_see_each_other() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.http_request("GET", "/only/a", 200, 0.001);
        b.signin("password", "success");
        assert!(a.render().contains("route=\"/only/a\""));
        assert!(!b.render().contains("/only/a"));
        assert!(!a.render().contains("dirsync_signins_total"));
        assert!(b
            .render()
            .contains("dirsync_signins_total{method=\"password\",outcome=\"success\"} 1"));
    }

    #[test]
    fn process_figures_are_read_on_linux() {
        let mut out = String::new();
        process_metrics(&mut out);
        if cfg!(target_os = "linux") {
            for name in [
                "process_resident_memory_bytes",
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_start_time_seconds",
            ] {
                let line = out
                    .lines()
                    .find(|l| l.starts_with(name) && !l.starts_with('#'))
                    .unwrap_or_else(|| panic!("no {name} in {out}"));
                let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                // A young process may not have used a whole clock tick of CPU yet.
                let least = if name == "process_cpu_seconds_total" {
                    0.0
                } else {
                    1.0
                };
                assert!(v >= least, "{line}");
            }
        }
    }
}
