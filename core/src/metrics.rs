//! Sync health figures an app can show or report: success rate, conflict rate per
//! collection, time to converge and the retry distribution.

use crate::btree::CollectBTree;
use serde::Serialize;
use std::collections::BTreeMap;

/// Keeps the most recent convergence samples, so memory stays bounded.
const MAX_SAMPLES: usize = 1_024;

/// Counters kept by the engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub cycles_ok: u64,
    pub cycles_failed: u64,
    /// Per collection: mutations sent and conflicts answered.
    pub sent_by_collection: BTreeMap<String, u64>,
    pub conflicts_by_collection: BTreeMap<String, u64>,
    /// Milliseconds from a write's entry creation to the server's acknowledgement.
    converge_samples_ms: Vec<u64>,
    /// Pushes an op needed before it was applied → how many ops.
    pub attempts_histogram: BTreeMap<u32, u64>,
}

/// The figures derived from [`Metrics`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsReport {
    pub sync_success_rate: Option<f64>,
    pub conflict_rate_by_collection: BTreeMap<String, f64>,
    pub median_converge_ms: Option<u64>,
    pub retry_distribution: BTreeMap<u32, u64>,
    pub cycles_ok: u64,
    pub cycles_failed: u64,
}

impl Metrics {
    pub fn record_applied(&mut self, attempts: u32, converge_ms: u64) {
        *self.attempts_histogram.entry(attempts).or_default() += 1;
        if self.converge_samples_ms.len() == MAX_SAMPLES {
            self.converge_samples_ms.remove(0);
        }
        self.converge_samples_ms.push(converge_ms);
    }

    pub fn report(&self) -> MetricsReport {
        let total = self.cycles_ok + self.cycles_failed;
        let mut samples = self.converge_samples_ms.clone();
        crate::sorting::sort_stable_by(&mut samples, Ord::cmp);
        MetricsReport {
            sync_success_rate: (total > 0).then(|| self.cycles_ok as f64 / total as f64),
            conflict_rate_by_collection: self
                .sent_by_collection
                .iter()
                .map(|(c, sent)| {
                    let conflicts = self.conflicts_by_collection.get(c).copied().unwrap_or(0);
                    (c.clone(), conflicts as f64 / (*sent).max(1) as f64)
                })
                .collect_btree_map(),
            median_converge_ms: samples.get(samples.len() / 2).copied(),
            retry_distribution: self.attempts_histogram.clone(),
            cycles_ok: self.cycles_ok,
            cycles_failed: self.cycles_failed,
        }
    }
}
