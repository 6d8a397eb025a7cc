//! One simulated device: an engine over a persistent in-memory store, and the random
//! things its user does — writing, going offline, crashing, resolving conflicts.

use super::check::{ShownAfterWrite, Violation};
use super::fates::FateBook;
use super::net::{SimTokens, SimTransport, World};
use super::tabs::FollowerTab;
use super::SimReport;
use crate::engine::{block_on, CycleOutcome, Engine, Role, WriteTicket};
use crate::memory::{ManualClock, MemoryStore, SeededEntropy};
use crate::policy::{Policy, State};
use crate::ports::{Clock, StoreError};
use crate::protocol::Fields;
use crate::replica::{Change, Choice, Replica, ReplicaConfig};
use serde_json::{json, Value};
use std::cell::Cell;
use std::rc::Rc;

pub type SimEngine = Engine<MemoryStore, SimTransport, SimTokens, ManualClock, SeededEntropy>;

/// The collections of the simulation, one per policy.
pub const COLLECTIONS: [(&str, Policy); 3] = [
    ("notes", Policy::MergeFields),
    ("tasks", Policy::LastWriterWins),
    ("expenses", Policy::ServerWinsReview),
];

/// Record ids are drawn from a small shared pool, so clients edit the same records.
const SHARED_IDS: u64 = 12;

const WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "fox", "golf", "hotel", "india", "kilo", "lima",
    "mike",
];

pub struct SimClient {
    pub index: usize,
    pub(super) world: Rc<World>,
    pub store: MemoryStore,
    pub clock: ManualClock,
    /// How wrong this device's clock is (its clock minus the true time), in ms.
    pub skew_ms: i64,
    /// Op ids of writes this device acknowledged before its store was wiped, and the client
    /// ids it had: the server applied them, and no live fate book accounts for them.
    pub retired_ops: Vec<String>,
    pub retired_clients: Vec<String>,
    pub online: Rc<Cell<bool>>,
    entropy: SeededEntropy,
    engine: Option<SimEngine>,
    pub fates: FateBook,
    /// Writes not yet known durable: (entry id, ticket).
    pub(super) pending: Vec<(String, WriteTicket)>,
    /// Records written and not yet known durable, with what the device showed after the
    /// write: once durable, that is the person's newest intent for the restore watch.
    pub(super) unsaved_shown: Vec<ShownAfterWrite>,
    last_cursor: u64,
    last_epoch: String,
    /// The device's other tabs (see `tabs.rs`); `engine` is the leader's.
    pub(super) followers: Vec<FollowerTab>,
    /// Another tab committed since the leader last loaded the store.
    /// What the leader tab must take in from the followers' commits (`None`: nothing).
    pub(super) leader_stale: Option<crate::engine::Committed>,
    pub(super) tabs_opened: u64,
}

impl SimClient {
    pub fn new(index: usize, world: &Rc<World>, seed: u64) -> SimClient {
        let mut c = SimClient {
            index,
            world: world.clone(),
            store: MemoryStore::new(),
            clock: ManualClock::new(1_700_000_000_000 + index as u64 * 7),
            skew_ms: 0,
            retired_ops: Vec::new(),
            retired_clients: Vec::new(),
            online: Rc::new(Cell::new(true)),
            entropy: SeededEntropy::new(seed.wrapping_mul(31).wrapping_add(index as u64 + 1)),
            engine: None,
            fates: FateBook::default(),
            pending: Vec::new(),
            unsaved_shown: Vec::new(),
            last_cursor: 0,
            last_epoch: String::new(),
            followers: Vec::new(),
            leader_stale: None,
            tabs_opened: 0,
        };
        c.start().expect("a fresh in-memory store opens");
        c
    }

    fn start(&mut self) -> Result<(), Violation> {
        self.close_followers();
        self.engine = Some(self.open_engine(Role::Leader, "")?);
        Ok(())
    }

    /// An engine over this device's store: the leader tab's, or a follower's (`instance`
    /// names its outbox entries apart).
    pub(super) fn open_engine(&self, role: Role, instance: &str) -> Result<SimEngine, Violation> {
        let mut config = ReplicaConfig::new(COLLECTIONS.iter().map(|(c, p)| (c.to_string(), *p)));
        config.coalesce = role.coalesces();
        config.instance = instance.to_owned();
        // One critical collection, so every first sync and every restart from cursor 0 runs
        // the critical-first pass (and pushes order by priority) under the simulated faults.
        config
            .priorities
            .insert("tasks".into(), crate::priority::Priority::Critical);
        let transport = SimTransport {
            world: self.world.clone(),
            online: self.online.clone(),
            user: super::perms::user_of(self.index),
        };
        let tokens = SimTokens {
            world: self.world.clone(),
            cached: Cell::new(0),
        };
        let engine = block_on(Engine::open(
            self.store.clone(),
            transport,
            tokens,
            self.clock.clone(),
            self.entropy.clone(),
            config,
        ))
        .map_err(|e| Violation::new(format!("client {} failed to open: {e}", self.index)))?;
        Ok(engine)
    }

    /// A follower took over as the leader.
    pub(super) fn replace_leader(&mut self, engine: SimEngine) {
        self.engine = Some(engine);
        self.leader_stale = None;
    }

    pub fn engine(&self) -> &SimEngine {
        self.engine.as_ref().expect("the client is running")
    }

    /// Sets this device's clock wrong by `skew_ms` (before it has written anything).
    pub fn skew_clock(&mut self, skew_ms: i64) {
        self.skew_ms = skew_ms;
        self.clock
            .set(self.clock.now_ms().saturating_add_signed(skew_ms));
    }

    /// The true time on this device (its clock without the skew).
    pub fn true_now(&self) -> u64 {
        self.clock.now_ms().saturating_add_signed(-self.skew_ms)
    }

    /// The user clears site data: the store is emptied and the app restarts as a new
    /// device. What it had not pushed is gone with the storage (counted, not a violation);
    /// what the server acknowledged stays accounted for.
    pub fn wipe_and_restart(&mut self, report: &mut SimReport) -> Result<(), Violation> {
        self.settle_writes(report)?;
        self.retired_ops.extend(self.fates.applied_ops().cloned());
        let client_id = self.engine().replica().client_id().to_owned();
        self.retired_clients.push(client_id);
        let unacked = self
            .fates
            .entries()
            .filter(|e| self.fates.final_fate(e) == super::fates::Fate::Pending)
            .count();
        report.lost_on_wipe += unacked as u64 + self.pending.len() as u64;
        self.fates = FateBook::default();
        self.pending.clear();
        self.unsaved_shown.clear();
        self.world.faults.borrow_mut().store_wipes += 1;
        self.engine = None;
        self.store.wipe();
        self.last_cursor = 0;
        self.start()?;
        let online = self.online.get();
        self.set_online(online);
        Ok(())
    }

    /// What the app shows equals what is stored, once nothing is unsaved: a write storage
    /// refused is never visible, and nothing stored is hidden.
    pub fn check_memory_matches_storage(&self) -> Result<(), Violation> {
        let engine = self.engine();
        // A leader that has not reloaded another tab's commit yet shows less, not wrongly.
        if self.leader_stale.is_some()
            || engine.is_committing()
            || engine.replica().has_unsaved_changes()
        {
            return Ok(());
        }
        let stored = self.store.snapshot();
        let replica = engine.replica();
        let shown: Vec<_> = replica.all_records().collect();
        let same = shown.len() == stored.records.len()
            && shown
                .iter()
                .zip(stored.records.iter())
                .all(|(a, b)| a.collection == b.collection && a.id == b.id && a.state == b.state);
        if !same {
            return Err(Violation::new(format!(
                "client {} shows {} records that differ from the {} it stored",
                self.index,
                shown.len(),
                stored.records.len()
            )));
        }
        Ok(())
    }

    pub fn set_online(&mut self, online: bool) {
        self.online.set(online);
        if online {
            self.engine().network_up();
        } else {
            self.engine().network_down();
        }
    }

    /// Moves writes to durable once their commit is done, or forgets rolled-back ones.
    pub(super) fn settle_writes(&mut self, report: &mut SimReport) -> Result<(), Violation> {
        let engine = self.engine.as_ref().expect("running");
        let current = engine.ticket();
        let unsaved = engine.replica().has_unsaved_changes();
        let mut keep = Vec::new();
        for (entry, ticket) in self.pending.drain(..) {
            if ticket != current {
                report.lost_on_crash += 1; // rolled back by a failed commit: the caller got an error
            } else if unsaved {
                keep.push((entry, ticket));
            } else {
                report.durable_writes += 1;
                self.fates.note_write(&entry);
            }
        }
        self.pending = keep;
        let shown = std::mem::take(&mut self.unsaved_shown);
        self.unsaved_shown = self
            .world
            .watch
            .borrow_mut()
            .wrote_if_durable(self.index, shown, current, unsaved);
        for event in engine.take_events() {
            self.fates
                .apply(&event)
                .map_err(|e| Violation::new(format!("client {}: {e}", self.index)))?;
        }
        Ok(())
    }

    pub fn flush(&mut self, report: &mut SimReport) -> Result<(), Violation> {
        let ticket = self.engine().ticket();
        if self.entropy.chance(3) && self.engine().replica().has_unsaved_changes() {
            self.store
                .fail_next_commit(StoreError::QuotaExceeded("simulated".into()));
            report.storage_failures += 1;
        }
        let result = block_on(self.engine().flush(ticket));
        {
            let engine = self.engine();
            let replica = engine.replica();
            let counted = replica.outbox().filter(|e| e.is_sent()).count();
            if replica.in_flight() != counted {
                return Err(Violation::new(format!(
                    "the replica counts {} sent entries but holds {counted}",
                    replica.in_flight()
                )));
            }
        }
        if result.is_err() && self.leader_stale.is_none() {
            // The engine rolled back to the stored state; the stored outbox must be intact.
            let stored = self.store.snapshot().outbox.len();
            if stored != self.engine().replica().outbox_depth() {
                return Err(Violation::new(
                    "a failed commit left memory and storage apart",
                ));
            }
        }
        self.check_memory_matches_storage()?;
        self.settle_writes(report)?;
        self.leader_committed()
    }

    pub fn random_write(
        &mut self,
        rng: &SeededEntropy,
        report: &mut SimReport,
    ) -> Result<(), Violation> {
        let (collection, id, change) = random_change(&self.engine().replica(), rng);
        report.writes += 1;
        if change == Change::Delete {
            self.world.watch.borrow_mut().deleted(collection, &id);
        }
        let (entry, ticket) = self.engine().write(collection, &id, change).map_err(|e| {
            Violation::new(format!("client {}: a valid write failed: {e}", self.index))
        })?;
        if let Some(entry) = entry {
            self.pending.push((entry, ticket));
        }
        let shown = (self.engine().replica())
            .record(collection, &id)
            .map(|r| r.state.clone());
        if let Some(shown) = shown {
            self.unsaved_shown.push(((collection, id), shown, ticket));
        }
        if rng.chance(70) {
            self.flush(report)?;
        }
        Ok(())
    }

    pub fn sync_if_due(
        &mut self,
        rng: &SeededEntropy,
        report: &mut SimReport,
    ) -> Result<(), Violation> {
        if self.engine().is_due() || rng.chance(30) {
            self.sync_now(report)?;
        }
        Ok(())
    }

    /// Runs a cycle; `true` when it synced fully.
    pub fn sync_now(&mut self, report: &mut SimReport) -> Result<bool, Violation> {
        report.sync_cycles += 1;
        let outcome = block_on(self.engine().sync());
        self.settle_writes(report)?;
        self.check_cursor()?;
        self.check_memory_matches_storage()?;
        self.leader_committed()?;
        Ok(outcome == CycleOutcome::Synced)
    }

    /// Runs a cycle with one of its commits failing (freezing a batch, folding an ack or a
    /// page): the cycle stops, memory goes back to what is stored, nothing is lost.
    pub fn sync_with_a_failing_commit(
        &mut self,
        rng: &SeededEntropy,
        report: &mut SimReport,
    ) -> Result<bool, Violation> {
        self.world.faults.borrow_mut().sync_storage_failures += 1;
        self.store.fail_commit_after(
            rng.below(4),
            StoreError::QuotaExceeded("simulated, mid-cycle".into()),
        );
        let synced = self.sync_now(report)?;
        if self.store.has_pending_failure() {
            // The cycle committed less than planned: the failure is not left for a flush.
            self.store.wipe_pending_failure();
        }
        Ok(synced)
    }

    pub fn crash_and_restart(&mut self, report: &mut SimReport) -> Result<(), Violation> {
        report.crashes += 1;
        self.settle_writes(report)?;
        report.lost_on_crash += self.pending.len() as u64;
        self.pending.clear();
        self.unsaved_shown.clear();
        self.engine = None;
        self.start()?;
        let online = self.online.get();
        self.set_online(online);
        Ok(())
    }

    /// Resolves a conflict or handles a dead letter, as a person in the app would.
    pub fn act_like_a_person(&mut self, rng: &SeededEntropy) -> Result<(), Violation> {
        let now = self.clock.now_ms();
        let conflict = self
            .engine()
            .replica()
            .conflicts()
            .next()
            .map(|c| (c.conflict_id.clone(), c.local.clone(), c.server.clone()));
        let letter = self
            .engine()
            .replica()
            .dead_letters()
            .next()
            .map(|d| (d.letter_id.clone(), d.desired.clone()));
        let engine = self.engine.as_ref().expect("running");
        let result = if let Some((id, local, server)) = conflict.filter(|_| rng.chance(50)) {
            let choice = match rng.below(3) {
                0 => Choice::Local,
                1 => Choice::Server,
                _ => {
                    let mut merged = server.fields.clone();
                    merged.extend(local.fields.into_iter().filter(|(k, _)| k.starts_with('t')));
                    Choice::Merged(State::live(merged))
                }
            };
            engine
                .replica_mut()
                .resolve_conflict(&id, choice, now)
                .map(|_| ())
        } else if let Some((id, mut desired)) = letter {
            if rng.chance(30) {
                engine.replica_mut().discard_dead_letter(&id)
            } else {
                if let Some(Value::Number(n)) = desired.fields.get("amount") {
                    let fixed = n.as_f64().unwrap_or(0.0).abs();
                    desired.fields.insert("amount".into(), json!(fixed));
                }
                engine
                    .replica_mut()
                    .retry_dead_letter(&id, Some(desired), now)
                    .map(|_| ())
            }
        } else {
            Ok(())
        };
        result.map_err(|e| {
            Violation::new(format!(
                "client {}: a person's action failed: {e}",
                self.index
            ))
        })?;
        let ticket = engine.ticket();
        let _ = block_on(engine.flush(ticket));
        Ok(())
    }

    /// Cursors never move backwards (except to 0 when the server expired them, or within a
    /// new history after the server lost some of the old one).
    pub fn check_cursor(&mut self) -> Result<(), Violation> {
        let (cursor, resyncing, epoch) = {
            let r = self.engine().replica();
            (r.cursor(), r.meta().resyncing, r.meta().epoch.clone())
        };
        if epoch != self.last_epoch {
            self.last_epoch = epoch;
            self.last_cursor = cursor;
            return Ok(());
        }
        if cursor < self.last_cursor && !(cursor == 0 && resyncing) {
            return Err(Violation::new(format!(
                "client {}: cursor moved back from {} to {cursor}",
                self.index, self.last_cursor
            )));
        }
        self.last_cursor = cursor;
        Ok(())
    }
}

/// What a person writes next in `replica`: a new record, an edit, now and then a delete.
pub(super) fn random_change(
    replica: &Replica,
    rng: &SeededEntropy,
) -> (&'static str, String, Change) {
    let (collection, _) = COLLECTIONS[rng.below(3) as usize];
    let id = format!("{collection}-{}", rng.below(SHARED_IDS));
    let existing = replica
        .record(collection, &id)
        .map(|r| r.state.clone())
        .filter(|s| !s.deleted);
    let change = match existing {
        // Now and then a note too large for a server with a small byte limit.
        None if collection == "notes" && rng.chance(3) => {
            let mut fields = new_fields(collection, rng);
            fields.insert("body".into(), json!(sentence(rng, 700)));
            Change::Put(fields)
        }
        None => Change::Put(new_fields(collection, rng)),
        Some(_) if rng.chance(8) => Change::Delete,
        Some(state) => Change::Patch(edit(collection, &state.fields, rng)),
    };
    (collection, id, change)
}

fn sentence(rng: &SeededEntropy, words: u64) -> String {
    (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn new_fields(collection: &str, rng: &SeededEntropy) -> Fields {
    let v = match collection {
        "notes" => {
            json!({"title": sentence(rng, 2), "body": sentence(rng, 8), "shared_with": share_list(rng)})
        }
        "tasks" => json!({"title": sentence(rng, 3), "done": rng.chance(50)}),
        _ => json!({"amount": amount(rng), "note": sentence(rng, 3)}),
    };
    v.as_object().cloned().unwrap_or_default()
}

/// Whom a note is shared with: nobody half the time, else some of the users (`perms.rs`).
fn share_list(rng: &SeededEntropy) -> Value {
    let names: Vec<&str> = super::perms::USERS
        .iter()
        .map(|u| u.name)
        .filter(|_| rng.chance(40))
        .collect();
    json!(names)
}

fn amount(rng: &SeededEntropy) -> f64 {
    let cents = rng.below(10_000) as f64 / 100.0;
    if rng.chance(10) {
        -cents - 1.0
    } else {
        cents
    }
}

/// A small edit of one field, the way a person edits: a word replaced or added.
fn edit(collection: &str, fields: &Fields, rng: &SeededEntropy) -> Fields {
    let mut patch = Fields::new();
    // Shared notes are shared further or unshared (also by a user unsharing themself).
    if collection == "notes" && rng.chance(25) {
        patch.insert("shared_with".into(), share_list(rng));
        return patch;
    }
    match (collection, rng.below(2)) {
        ("tasks", 0) => {
            let done = fields.get("done").and_then(Value::as_bool).unwrap_or(false);
            patch.insert("done".into(), json!(!done));
        }
        ("expenses", 0) => {
            patch.insert("amount".into(), json!(amount(rng)));
        }
        _ => {
            let field = match collection {
                "notes" if rng.chance(50) => "title",
                "notes" => "body",
                "tasks" => "title",
                _ => "note",
            };
            let text = fields.get(field).and_then(Value::as_str).unwrap_or("");
            let mut words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
            let word = WORDS[rng.below(WORDS.len() as u64) as usize];
            let at = rng.below(words.len() as u64 + 1) as usize;
            if rng.chance(50) && at < words.len() {
                words[at] = word;
            } else {
                words.insert(at, word);
            }
            patch.insert(field.into(), json!(words.join(" ")));
        }
    }
    patch
}
