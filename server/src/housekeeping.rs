//! Housekeeping over months of operation: scheduled tombstone compaction with a horizon in
//! time, and retention of idempotency keys and op records. One pass runs every
//! [`Housekeeping::interval`] on a task of the server; what it did shows in `/metrics`.
//!
//! Compaction needs "the tenant's cursor as it was a horizon ago", which the log does not
//! keep (records carry positions, not times). So each pass marks every tenant whose head moved
//! with (now, head) in `tenant_marks`, and compacts each tenant up to its newest head marked
//! at or before now − horizon. Consequences for clients are in PROTOCOL.md §9.
//!
//! Several processes on one PostgreSQL database each run passes; that is harmless: marks are
//! keyed by (tenant, time), compaction takes the tenant's lock, and deletes are idempotent.

use crate::db::{now_ms, Db, DbError};
use crate::state::AppState;
use std::time::Duration;

/// What housekeeping keeps, and how often it runs. `None` keeps for ever / never compacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Housekeeping {
    /// How long an Idempotency-Key stays claimed.
    pub idempotency_retention: Option<Duration>,
    /// How long an op's outcome is remembered for replays.
    pub op_retention: Option<Duration>,
    /// Tombstones older than this are compacted away.
    pub compaction_horizon: Option<Duration>,
    /// Time between two passes (the first one runs one interval after start).
    pub interval: Duration,
}

impl Default for Housekeeping {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Housekeeping {
            idempotency_retention: Some(Duration::from_secs(7 * DAY)),
            op_retention: Some(Duration::from_secs(90 * DAY)),
            compaction_horizon: Some(Duration::from_secs(30 * DAY)),
            interval: Duration::from_secs(3600),
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub tenants_compacted: u64,
    pub tombstones_removed: u64,
    pub idempotency_keys_pruned: u64,
    pub ops_pruned: u64,
}

fn before(now_ms: u64, age: Option<Duration>) -> Option<u64> {
    age.map(|age| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)))
}

/// One pass, as if the clock read `now_ms` (tests pass a later time to age the data).
pub async fn run_once(db: &Db, config: &Housekeeping, now_ms: u64) -> Result<PassReport, DbError> {
    let mut report = PassReport::default();
    db.mark_heads(now_ms).await?;
    if let Some(cutoff) = before(now_ms, config.compaction_horizon) {
        for (tenant, upto) in db.compaction_targets(cutoff).await? {
            let compacted = db.compact(&tenant, upto).await?;
            db.drop_marks(&tenant, upto).await?;
            report.tenants_compacted += 1;
            report.tombstones_removed += compacted.removed;
            tracing::info!(%tenant, removed = compacted.removed, horizon = compacted.horizon, "scheduled compaction");
        }
    }
    let (keys, ops) = db
        .prune(
            before(now_ms, config.idempotency_retention),
            before(now_ms, config.op_retention),
        )
        .await?;
    report.idempotency_keys_pruned = keys;
    report.ops_pruned = ops;
    Ok(report)
}

/// Runs a pass every interval until the task is aborted; failures are logged and counted.
pub async fn run_forever(state: AppState, config: Housekeeping) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.tick().await; // the first tick is immediate: skip it
    loop {
        ticks.tick().await;
        match run_once(&state.db, &config, now_ms()).await {
            Ok(report) => state.metrics.record_housekeeping(&report),
            Err(e) => {
                state.metrics.record_housekeeping_failure();
                tracing::warn!(error = %e, "housekeeping pass failed");
            }
        }
    }
}
