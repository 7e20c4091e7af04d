//! A small Prometheus registry: counters and histograms keyed by name and labels, rendered in
//! the text exposition format at `/metrics`. Kept in-process and dependency-free; every instance
//! reports its own numbers, as Prometheus expects.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// Histogram bucket bounds in seconds, from 1 ms to 5 minutes (sync jobs reach minutes).
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

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
    let h = r
        .histograms
        .entry((name, label_string(labels)))
        .or_default();
    if h.counts.is_empty() {
        h.counts = vec![0; BUCKETS.len()];
    }
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            h.counts[i] += 1;
        }
    }
    h.sum += seconds;
    h.count += 1;
}

/// The whole registry in Prometheus text format.
pub fn render() -> String {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
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
    out
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
}
