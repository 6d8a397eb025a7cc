//! Prometheus metrics in the text exposition format, hand-written (no extra dependency):
//! requests by route and status, request latency histograms by route, mutations applied,
//! conflicts, rejections by code, open event streams and transaction retries; label values
//! are escaped.
//!
//! The [`track`] middleware also writes the one log line per request: method, path (never
//! the query string, which may hold a token), status and latency.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ferry_core::protocol::PushResponse;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Http {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    rejections: BTreeMap<String, u64>,
}

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    http: Mutex<Http>,
    applied: AtomicU64,
    conflicts: AtomicU64,
    pokes: AtomicU64,
    streams: AtomicI64,
    housekeeping_runs: AtomicU64,
    housekeeping_failures: AtomicU64,
    tombstones_compacted: AtomicU64,
    keys_pruned: AtomicU64,
    ops_pruned: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record_request(&self, route: &str, status: u16, secs: f64) {
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *http.requests.entry((route.to_owned(), status)).or_default() += 1;
        http.latency
            .entry(route.to_owned())
            .or_default()
            .observe(secs);
    }

    /// Counts the outcomes of one push.
    pub fn record_push(&self, resp: &PushResponse) {
        self.applied
            .fetch_add(resp.accepted.len() as u64, Ordering::Relaxed);
        self.conflicts
            .fetch_add(resp.conflicts.len() as u64, Ordering::Relaxed);
        if !resp.rejected.is_empty() {
            let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner());
            for r in &resp.rejected {
                *http.rejections.entry(r.code.clone()).or_default() += 1;
            }
        }
    }

    /// One housekeeping pass done.
    pub fn record_housekeeping(&self, report: &crate::housekeeping::PassReport) {
        self.housekeeping_runs.fetch_add(1, Ordering::Relaxed);
        self.tombstones_compacted
            .fetch_add(report.tombstones_removed, Ordering::Relaxed);
        self.keys_pruned
            .fetch_add(report.idempotency_keys_pruned, Ordering::Relaxed);
        self.ops_pruned
            .fetch_add(report.ops_pruned, Ordering::Relaxed);
    }

    /// One housekeeping pass failed.
    pub fn record_housekeeping_failure(&self) {
        self.housekeeping_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// One poke sent on an event stream.
    pub fn record_poke(&self) {
        self.pokes.fetch_add(1, Ordering::Relaxed);
    }

    /// An event stream opened (+1) or closed (-1).
    pub fn stream_delta(&self, delta: i64) {
        self.streams.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let http = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ferry_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE ferry_http_requests_total counter");
        for ((route, status), n) in &http.requests {
            let route = escape_label(route);
            let _ = writeln!(
                out,
                "ferry_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ferry_http_request_duration_seconds Request latency by route."
        );
        let _ = writeln!(out, "# TYPE ferry_http_request_duration_seconds histogram");
        for (route, h) in &http.latency {
            let route = escape_label(route);
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "ferry_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "ferry_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "ferry_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "ferry_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let counters = [
            (
                "ferry_mutations_applied_total",
                "Mutations applied.",
                self.applied.load(Ordering::Relaxed),
            ),
            (
                "ferry_conflicts_total",
                "Mutations answered with a conflict.",
                self.conflicts.load(Ordering::Relaxed),
            ),
            (
                "ferry_pokes_total",
                "Pokes sent on event streams.",
                self.pokes.load(Ordering::Relaxed),
            ),
            (
                "ferry_transaction_retries_total",
                "Transactions run again after a serialization failure, deadlock or busy database.",
                crate::db::retry::retries_total(),
            ),
            (
                "ferry_housekeeping_runs_total",
                "Housekeeping passes (scheduled compaction and retention) completed.",
                self.housekeeping_runs.load(Ordering::Relaxed),
            ),
            (
                "ferry_housekeeping_failures_total",
                "Housekeeping passes that failed.",
                self.housekeeping_failures.load(Ordering::Relaxed),
            ),
            (
                "ferry_tombstones_compacted_total",
                "Tombstones removed by scheduled compaction.",
                self.tombstones_compacted.load(Ordering::Relaxed),
            ),
            (
                "ferry_idempotency_keys_pruned_total",
                "Idempotency keys deleted by retention.",
                self.keys_pruned.load(Ordering::Relaxed),
            ),
            (
                "ferry_ops_pruned_total",
                "Op records deleted by retention.",
                self.ops_pruned.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ferry_rejections_total Mutations rejected, by code."
        );
        let _ = writeln!(out, "# TYPE ferry_rejections_total counter");
        for (code, n) in &http.rejections {
            let code = escape_label(code);
            let _ = writeln!(out, "ferry_rejections_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP ferry_event_streams Open server-sent-event streams."
        );
        let _ = writeln!(out, "# TYPE ferry_event_streams gauge");
        let _ = writeln!(
            out,
            "ferry_event_streams {}",
            self.streams.load(Ordering::Relaxed)
        );
        out
    }
}

/// A label value as the text format needs it: backslash, double quote and newline escaped
/// (rejection codes come from application validation hooks, so they may hold anything).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: counts and times every request, and logs it without its query string.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(&route, status, elapsed.as_secs_f64());
    tracing::info!(%method, %path, status, latency_ms = elapsed.as_micros() as f64 / 1000.0, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record_request("/v1/sync/changes", 200, 0.003);
        m.record_request("/v1/sync/changes", 200, 0.2);
        let text = m.render();
        assert!(
            text.contains("ferry_http_requests_total{route=\"/v1/sync/changes\",status=\"200\"} 2")
        );
        assert!(text.contains(
            "ferry_http_request_duration_seconds_bucket{route=\"/v1/sync/changes\",le=\"0.005\"} 1"
        ));
        assert!(text
            .contains("ferry_http_request_duration_seconds_count{route=\"/v1/sync/changes\"} 2"));
        assert!(text.contains("ferry_mutations_applied_total 0"));
        assert!(text.contains("# TYPE ferry_transaction_retries_total counter"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        let resp = PushResponse {
            rejected: vec![ferry_core::protocol::Rejected {
                op_id: "a".into(),
                code: "bad\"code\\\nx".into(),
                message: String::new(),
                retryable: false,
            }],
            ..PushResponse::default()
        };
        m.record_push(&resp);
        let text = m.render();
        assert!(
            text.contains(r#"ferry_rejections_total{code="bad\"code\\\nx"} 1"#),
            "{text}"
        );
    }
}
