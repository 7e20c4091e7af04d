//! A small Prometheus registry: counters and histograms keyed by name and labels, rendered in
//! the text exposition format at `/metrics`. Kept in-process and dependency-free; every instance
//! reports its own numbers, as Prometheus expects.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

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

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

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

/// Adds one to a counter.
pub fn inc(name: &'static str, help: &'static str, labels: &[(&str, &str)]) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.help.entry(name).or_insert((help, "counter"));
    *r.counters.entry((name, label_string(labels))).or_default() += 1;
}

/// Records one observation (seconds) in a histogram.
pub fn observe(name: &'static str, help: &'static str, labels: &[(&str, &str)], seconds: f64) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.help.entry(name).or_insert((help, "histogram"));
    r.histograms
        .entry((name, label_string(labels)))
        .or_default()
        .record(seconds);
}

/// Counts one HTTP request in `dirsync_http_requests_total` (by method, route and status) and
/// its latency in `dirsync_http_request_duration_seconds` (by method and route). Every
/// request comes here: it takes the lock once and allocates only for a route, method or
/// status not seen before.
///
/// `route` must be a route pattern of the server (or a fixed name such as `unmatched`), never
/// the request's path; the method is reduced by [`method_label`]. So the label values are
/// bounded by the server's routes, not by what callers send.
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    let method = method_label(method);
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
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

/// The whole registry in Prometheus text format.
pub fn render() -> String {
    // A copy, taken under the lock, is rendered without it: every request records into the
    // registry, and none should wait while a scrape formats text. The copy is small — its label
    // values are bounded (see `http_request`).
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).clone();
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
        inc("test_things_total", "Things.", &[("kind", "a\"b")]);
        inc("test_things_total", "Things.", &[("kind", "a\"b")]);
        observe("test_latency_seconds", "Latency.", &[("route", "/x")], 0.02);
        let text = render();
        assert!(text.contains("# TYPE test_things_total counter"));
        assert!(text.contains("test_things_total{kind=\"a\\\"b\"} 2"));
        assert!(text.contains("test_latency_seconds_bucket{route=\"/x\",le=\"0.025\"} 1"));
        assert!(text.contains("test_latency_seconds_bucket{route=\"/x\",le=\"0.01\"} 0"));
        assert!(text.contains("test_latency_seconds_count{route=\"/x\"} 1"));
    }

    #[test]
    fn renders_http_requests_by_route_method_and_status() {
        http_request("GET", "/test/{id}", 200, 0.003);
        http_request("GET", "/test/{id}", 200, 0.02);
        http_request("GET", "/test/{id}", 404, 0.001);
        http_request("PUT", "/test/{id}", 200, 0.2);
        let text = render();
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
        let invented = "X".repeat(300);
        http_request(&invented, "/test/methods", 405, 0.001);
        http_request("PROPFIND", "/test/methods", 405, 0.001);
        let text = render();
        assert!(!text.contains(&invented) && !text.contains("PROPFIND"));
        assert!(text.contains(
            "dirsync_http_requests_total{method=\"other\",route=\"/test/methods\",status=\"405\"} 2"
        ));
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), "other");
    }
}
