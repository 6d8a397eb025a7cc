//! Prometheus metrics, rendered by `prometheus-client` in the OpenMetrics text format:
//! requests by route and status, request latency histograms by route, mutations applied,
//! conflicts, rejections by code, open event streams, transaction retries and housekeeping.
//! The library keeps the exposition format right; label values are escaped here ([`LabelText`]),
//! because the library writes them as they are.
//!
//! The [`track`] middleware also writes the one log line per request: method, path (never
//! the query string, which may hold a token), status and latency.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ferry_core::protocol::PushResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value escaped as the exposition format requires (backslash, double quote, line
/// feed). `prometheus-client` 0.24 writes label values as they are, and rejection codes come
/// from application validation, so they may hold anything.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct LabelText(String);

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: LabelText,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: LabelText,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: LabelText,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Transaction retries are counted where they happen (`db::retry`, shared by every pool of
/// the process), so they are read at scrape time rather than mirrored into a counter.
#[derive(Debug)]
struct TransactionRetries;

impl Collector for TransactionRetries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(crate::db::retry::retries_total());
        let metric = encoder.encode_descriptor(
            "ferry_transaction_retries",
            "Transactions run again after a serialization failure, deadlock or busy database.",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    rejections: Family<CodeLabels, Counter>,
    applied: Counter,
    conflicts: Counter,
    pokes: Counter,
    streams: Gauge,
    housekeeping_runs: Counter,
    housekeeping_failures: Counter,
    tombstones_compacted: Counter,
    keys_pruned: Counter,
    ops_pruned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let rejections = Family::<CodeLabels, Counter>::default();
        let m = Metrics {
            requests: requests.clone(),
            latency: latency.clone(),
            rejections: rejections.clone(),
            applied: Counter::default(),
            conflicts: Counter::default(),
            pokes: Counter::default(),
            streams: Gauge::default(),
            housekeeping_runs: Counter::default(),
            housekeeping_failures: Counter::default(),
            tombstones_compacted: Counter::default(),
            keys_pruned: Counter::default(),
            ops_pruned: Counter::default(),
            registry: Registry::default(),
        };
        // Counters are registered without `_total`: the library appends it.
        registry.register(
            "ferry_http_requests",
            "HTTP requests by route and status",
            requests,
        );
        registry.register(
            "ferry_http_request_duration_seconds",
            "Request latency by route",
            latency,
        );
        registry.register(
            "ferry_rejections",
            "Mutations rejected, by code",
            rejections,
        );
        // (name, help, counter): one line a metric, so the table reads as the list it is.
        #[rustfmt::skip]
        let counters: [(&str, &str, &Counter); 8] = [
            ("ferry_mutations_applied", "Mutations applied", &m.applied),
            ("ferry_conflicts", "Mutations answered with a conflict", &m.conflicts),
            ("ferry_pokes", "Pokes sent on event streams", &m.pokes),
            ("ferry_housekeeping_runs", "Housekeeping passes (scheduled compaction and retention) completed", &m.housekeeping_runs),
            ("ferry_housekeeping_failures", "Housekeeping passes that failed", &m.housekeeping_failures),
            ("ferry_tombstones_compacted", "Tombstones removed by scheduled compaction", &m.tombstones_compacted),
            ("ferry_idempotency_keys_pruned", "Idempotency keys deleted by retention", &m.keys_pruned),
            ("ferry_ops_pruned", "Op records deleted by retention", &m.ops_pruned),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "ferry_event_streams",
            "Open server-sent-event streams",
            m.streams.clone(),
        );
        registry.register_collector(Box::new(TransactionRetries));
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn record_request(&self, route: &str, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: LabelText(route.to_owned()),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: LabelText(route.to_owned()),
            })
            .observe(secs);
    }

    /// Counts the outcomes of one push.
    pub fn record_push(&self, resp: &PushResponse) {
        self.applied.inc_by(resp.accepted.len() as u64);
        self.conflicts.inc_by(resp.conflicts.len() as u64);
        for r in &resp.rejected {
            self.rejections
                .get_or_create(&CodeLabels {
                    code: LabelText(r.code.clone()),
                })
                .inc();
        }
    }

    /// One housekeeping pass done.
    pub fn record_housekeeping(&self, report: &crate::housekeeping::PassReport) {
        self.housekeeping_runs.inc();
        self.tombstones_compacted.inc_by(report.tombstones_removed);
        self.keys_pruned.inc_by(report.idempotency_keys_pruned);
        self.ops_pruned.inc_by(report.ops_pruned);
    }

    /// One housekeeping pass failed.
    pub fn record_housekeeping_failure(&self) {
        self.housekeeping_failures.inc();
    }

    /// One poke sent on an event stream.
    pub fn record_poke(&self) {
        self.pokes.inc();
    }

    /// An event stream opened (+1) or closed (-1).
    pub fn stream_delta(&self, delta: i64) {
        self.streams.inc_by(delta);
    }

    /// The exposition text, of type [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("rendering metrics failed: {e}");
        }
        out
    }
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
        assert!(
            text.contains(
                "ferry_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/v1/sync/changes\"} 1"
            ),
            "{text}"
        );
        assert!(text
            .contains("ferry_http_request_duration_seconds_count{route=\"/v1/sync/changes\"} 2"));
        assert!(text.contains("ferry_mutations_applied_total 0"));
        assert!(text.contains("# TYPE ferry_transaction_retries counter"));
        assert!(text.contains("ferry_transaction_retries_total "));
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
