//! A seeded, deterministic simulation of many clients syncing through a faulty network.
//!
//! Clients write at random (creates, concurrent edits of shared records, deletes) into three
//! collections, one per policy; they go offline, crash and restart (losing only what was not
//! durable), resolve conflicts and dead letters like a person would; the network drops,
//! duplicates, delays and refuses requests. Then the network heals and [`check`] verifies
//! the guarantees. One seed replays one run exactly.

mod check;
mod client;
mod fates;
mod net;

pub use check::{Violation, INVARIANTS};
pub use net::{FaultCounts, SimRules};

use crate::memory::SeededEntropy;
use client::SimClient;
use net::World;

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub clients: usize,
    /// Local operations per client.
    pub ops_per_client: usize,
    /// Percent chance of a network fault per request before the heal.
    pub fault_percent: u64,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            clients: 4,
            ops_per_client: 200,
            fault_percent: 20,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    pub writes: u64,
    pub durable_writes: u64,
    pub lost_on_crash: u64,
    pub crashes: u64,
    pub sync_cycles: u64,
    pub applied_ops: u64,
    pub conflicts_seen: u64,
    pub dead_letters_seen: u64,
    pub storage_failures: u64,
    pub faults: FaultCounts,
}

impl SimReport {
    /// Adds another run's counts to these (for totals over many seeds).
    pub fn absorb(&mut self, r: &SimReport) {
        self.writes += r.writes;
        self.durable_writes += r.durable_writes;
        self.lost_on_crash += r.lost_on_crash;
        self.crashes += r.crashes;
        self.sync_cycles += r.sync_cycles;
        self.applied_ops += r.applied_ops;
        self.conflicts_seen += r.conflicts_seen;
        self.dead_letters_seen += r.dead_letters_seen;
        self.storage_failures += r.storage_failures;
        self.faults.absorb(&r.faults);
    }
}

/// Runs one seed and checks every invariant after the heal.
pub fn run(config: SimConfig) -> Result<SimReport, Violation> {
    let rng = SeededEntropy::new(config.seed);
    let world = World::new(config.seed);
    world.fault_percent.set(config.fault_percent);
    let mut clients: Vec<SimClient> = (0..config.clients)
        .map(|i| SimClient::new(i, &world, config.seed))
        .collect();
    let mut report = SimReport::default();
    let total_ops = config.clients * config.ops_per_client;
    let mut done = vec![0usize; config.clients];
    let mut steps = 0usize;
    while done.iter().sum::<usize>() < total_ops {
        steps += 1;
        let i = rng.below(config.clients as u64) as usize;
        clients[i].clock.advance(rng.below(3_000));
        let roll = rng.below(100);
        match roll {
            0..=54 if done[i] < config.ops_per_client => {
                clients[i].random_write(&rng, &mut report)?;
                done[i] += 1;
            }
            0..=54 => {}
            55..=79 => clients[i].sync_if_due(&rng, &mut report)?,
            80..=84 => {
                let online = clients[i].online.get();
                clients[i].set_online(!online);
            }
            85..=86 => clients[i].crash_and_restart(&mut report)?,
            87..=90 => clients[i].act_like_a_person(&rng)?,
            91..=93 => world.deliver_one_delayed(),
            94 => world.token_generation.set(world.token_generation.get() + 1),
            95 => {
                // The server compacts tombstones behind a recent cursor.
                let cursor = world
                    .server
                    .borrow()
                    .tenant(&world.tenant)
                    .map_or(0, |t| t.cursor());
                world
                    .server
                    .borrow_mut()
                    .tenant_mut(&world.tenant)
                    .compact(cursor.saturating_sub(rng.below(50)));
            }
            _ => clients[i].flush(&mut report)?,
        }
        for c in &mut clients {
            c.check_cursor()?;
        }
        if steps > total_ops * 20 {
            return Err(Violation::new("the run did not finish its operations"));
        }
    }
    heal(&world, &mut clients, &mut report)?;
    report.faults = world.faults.borrow().clone();
    check::all(&world, &clients, &mut report)?;
    Ok(report)
}

/// Brings every client online with a perfect network and syncs until nothing changes.
fn heal(world: &World, clients: &mut [SimClient], report: &mut SimReport) -> Result<(), Violation> {
    world.fault_percent.set(0);
    world.deliver_all_delayed();
    for c in clients.iter_mut() {
        c.set_online(true);
        c.flush(report)?;
    }
    for _round in 0..50 {
        let before = world
            .server
            .borrow()
            .tenant(&world.tenant)
            .map_or(0, |t| t.cursor());
        for c in clients.iter_mut() {
            for _ in 0..5 {
                if c.sync_now(report)? {
                    break;
                }
            }
        }
        let after = world
            .server
            .borrow()
            .tenant(&world.tenant)
            .map_or(0, |t| t.cursor());
        let all_current = clients.iter().all(|c| {
            c.engine().replica().cursor() >= after && c.engine().replica().outbox_depth() == 0
        });
        if before == after && all_current {
            return Ok(());
        }
    }
    Err(Violation::new(
        "the clients did not converge within 50 rounds after the heal",
    ))
}
