//! Months of operation in a few calls: scheduled compaction with a horizon in time, and
//! retention of idempotency keys and op records, run by `housekeeping::run_once` with a clock
//! moved forward; and the scheduled task itself, seen through `/metrics`.

mod common;

use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use ferry_server::db::now_ms;
use ferry_server::housekeeping::{run_once, Housekeeping};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

on_both_backends!(
    retention_and_scheduled_compaction,
    the_schedule_runs_and_shows_in_metrics
);

// A pass with a clock moved forward ages every tenant's data, not only this test's: on a
// shared PostgreSQL database, no other test of this binary may rely on old ops or keys.
const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;

async fn retention_and_scheduled_compaction(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let config = Housekeeping {
        idempotency_retention: Some(HOUR),
        op_retention: Some(3 * HOUR),
        compaction_horizon: Some(2 * HOUR),
        interval: 100 * HOUR,
    };
    let t = s.token(&unique("t"), "alice");
    let create = mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({"x": 1}));
    let keep = mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({"x": 2}));
    let body = batch("c1", vec![create.clone(), keep]);
    assert_eq!(s.push(&t, "k1", &body).await.0, StatusCode::OK);
    let delete = mutation("c", "c1", 3, "notes", "n1", "delete", 1, json!({}));
    assert_eq!(
        s.push(&t, "k2", &batch("c1", vec![delete])).await.0,
        StatusCode::OK
    );
    let db = &s.server.state.db;
    let t0 = now_ms();

    // Now: the heads are marked, nothing is old enough to go.
    let report = run_once(db, &config, t0).await.unwrap();
    assert_eq!(report.tombstones_removed, 0);
    assert_eq!(s.pull(&t, 1, 10).await.0, StatusCode::OK);
    // Past the key retention: the key may be used for another body again.
    let report = run_once(db, &config, t0 + HOUR_MS + 1_000).await.unwrap();
    assert!(report.idempotency_keys_pruned >= 2, "{report:?}");
    assert_eq!(
        report.tombstones_removed, 0,
        "the horizon is not reached yet"
    );
    // Past the compaction horizon: the tombstone goes, older cursors get 410.
    let report = run_once(db, &config, t0 + 2 * HOUR_MS + 1_000)
        .await
        .unwrap();
    assert!(report.tombstones_removed >= 1, "{report:?}");
    let (status, body) = s.pull(&t, 1, 10).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_error(&body, "cursor_expired");
    let (_, page) = s.pull(&t, 0, 10).await;
    let ids: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["n2"], "live records stay");
    // The op outcome is still remembered: a replay answers as then.
    let again = s.push(&t, "k9", &batch("c1", vec![create.clone()])).await.1;
    assert_eq!(again["accepted"][0]["op_id"], "a", "{again}");
    // Past the op retention: the replay of a forgotten op is refused as out of order (the
    // consequence PROTOCOL.md §9 documents), and nothing is applied twice.
    let report = run_once(db, &config, t0 + 3 * HOUR_MS + 1_000)
        .await
        .unwrap();
    assert!(report.ops_pruned >= 3, "{report:?}");
    let late = s.push(&t, "k10", &batch("c1", vec![create])).await.1;
    assert_eq!(late["rejected"][0]["code"], "out_of_order", "{late}");
    s.shutdown().await;
}

async fn the_schedule_runs_and_shows_in_metrics(backend: &Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.housekeeping.interval = Duration::from_millis(100);
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = s
            .http
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let runs = text
            .lines()
            .find_map(|l| l.strip_prefix("ferry_housekeeping_runs_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .expect("the metric is rendered");
        if runs >= 2 {
            assert!(text.contains("ferry_tombstones_compacted_total "));
            assert!(text.contains("ferry_ops_pruned_total "));
            assert!(text.contains("ferry_idempotency_keys_pruned_total "));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no housekeeping pass ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}
