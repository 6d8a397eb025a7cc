//! The seeded simulation: many clients, a faulty network, crashes; then the guarantees.
//!
//! - `cargo test -p ferry-core --test simulation` runs the default seeds (FERRY_SIM_SEEDS,
//!   default 500) of 4 clients × 200 operations.
//! - Replay one seed exactly: `FERRY_SIM_SEED=<seed> cargo test -p ferry-core --test simulation replay -- --nocapture`.
//! - The long run: `FERRY_SIM_SEEDS=100000 cargo test --profile sim -p ferry-core --test simulation -- --nocapture`.

use ferry_core::sim::{run, SimConfig, SimReport, INVARIANTS};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn run_seed(config: SimConfig) -> Result<SimReport, String> {
    match catch_unwind(AssertUnwindSafe(|| run(config))) {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(violation)) => Err(violation.message),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())),
    }
}

fn replay_command(seed: u64) -> String {
    format!(
        "FERRY_SIM_SEED={seed} cargo test -p ferry-core --test simulation replay -- --nocapture"
    )
}

#[test]
fn seeded_simulation_keeps_every_guarantee() {
    let seeds = env_u64("FERRY_SIM_SEEDS").unwrap_or(500);
    let first = env_u64("FERRY_SIM_FIRST_SEED").unwrap_or(1);
    let mut total = SimReport::default();
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        let mut config = SimConfig::new(seed);
        config.follower_tabs = env_u64("FERRY_SIM_TABS") != Some(0);
        match run_seed(config) {
            Ok(r) => total.absorb(&r),
            Err(message) => {
                eprintln!(
                    "seed {seed} FAILED: {message}\n  replay: {}",
                    replay_command(seed)
                );
                failures.push(seed);
                if failures.len() >= 5 {
                    break;
                }
            }
        }
    }
    let c = SimConfig::new(first);
    println!(
        "simulation: {seeds} seeds ({first}..{}), {} clients x {} ops each, fault rate {}%",
        first + seeds - 1,
        c.clients,
        c.ops_per_client,
        c.fault_percent
    );
    println!(
        "  writes {} (durable {}, lost before durable {}), crashes {}, storage failures {}, sync cycles {}",
        total.writes, total.durable_writes, total.lost_on_crash, total.crashes, total.storage_failures, total.sync_cycles
    );
    println!(
        "  ops applied {}, conflicts left for review {}, dead letters left {}",
        total.applied_ops, total.conflicts_seen, total.dead_letters_seen
    );
    let f = &total.faults;
    println!(
        "  network: {} requests, {} dropped requests, {} dropped responses, {} duplicates, {} delayed, {} 5xx, {} 429, {} 401",
        f.requests, f.dropped_requests, f.dropped_responses, f.duplicates, f.delayed, f.server_errors, f.throttled, f.unauthorized
    );
    println!(
        "  beyond the network: {} restores from an older backup, {} protocol-breaking answers, {} pushes refused as too large (413), {} clocks a day wrong, {} stores wiped (unacknowledged writes lost with them {}), {} sync cycles with a failing commit, {} follower tabs opened, {} leader hand-overs",
        f.restores, f.protocol_breaks, f.too_large, f.skewed_clocks, f.store_wipes, total.lost_on_wipe, f.sync_storage_failures, f.follower_tabs, f.leader_handovers
    );
    println!(
        "  partial sync: users {}, {} log rows hidden from pulls, {} removals sent",
        ferry_core::sim::USERS
            .iter()
            .map(|u| if u.manager {
                format!("{} (manager)", u.name)
            } else {
                u.name.to_owned()
            })
            .collect::<Vec<_>>()
            .join(", "),
        f.rows_hidden,
        f.removals
    );
    println!("  invariants checked after every run:");
    for inv in INVARIANTS {
        println!("    - {inv}");
    }
    assert!(
        failures.is_empty(),
        "failing seeds: {failures:?} (replay each with the command printed above)"
    );
}

#[test]
fn replay() {
    let Some(seed) = env_u64("FERRY_SIM_SEED") else {
        println!("set FERRY_SIM_SEED=<seed> to replay one run; nothing to replay");
        return;
    };
    let mut config = SimConfig::new(seed);
    config.follower_tabs = env_u64("FERRY_SIM_TABS") != Some(0);
    let report = run(config).unwrap_or_else(|v| panic!("seed {seed} FAILED: {v}"));
    println!("seed {seed} passed: {report:#?}");
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let a = run(SimConfig::new(42)).expect("seed 42 passes");
    let b = run(SimConfig::new(42)).expect("seed 42 passes");
    assert_eq!(a, b);
    assert!(a.applied_ops > 0 && a.faults.requests > 0);
}
