//! The guarantees a healed run must show, checked against the server's own records.

use super::client::SimClient;
use super::fates::Fate;
use super::net::World;
use super::SimReport;
use crate::engine::WriteTicket;
use crate::hlc::Hlc;
use crate::policy::State;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// How far ahead of the true time a device with a right clock may stamp: the clock bound,
/// plus the spread of the simulated devices' clocks (each moves only when its device acts).
const DRAGGED_MS: u64 = 3_600_000;

/// A broken guarantee, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub message: String,
}

impl Violation {
    pub fn new(message: impl Into<String>) -> Self {
        Violation {
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The invariants, in the words the run prints.
pub const INVARIANTS: [&str; 14] = [
    "every client's records equal the server's records its user may read, and it holds no other (conflicts wait in the inbox with both sides)",
    "no durable local write is lost: each is applied, settled by policy, in the inbox or a dead letter",
    "no acknowledged write vanishes: each was applied in the server's history, or in one a restore threw away",
    "no op is applied twice within one history",
    "each client's ops are applied in its seq order within one history",
    "every op the server applied belongs to exactly one durable write (or to a wiped device)",
    "cursors never move backwards (except to 0 for a resync)",
    "after a restore, every record a device held comes back: the server has it, with a stamp no older than the one held (or a conflict for a person)",
    "a write storage refused is never visible: what a client shows equals what it stored",
    "a device with a right clock is never dragged ahead by another's wrong clock",
    "live queries that follow each step's change set through declared indexes equal a brute-force answer over the device's records",
    "every follower tab, reloaded after the heal, shows what its device's leader tab shows",
    "a tab that takes in another tab's commit by the keys it wrote holds what a reopen from the store gives",
    "no device ever stores a record its user could not read at that moment (users with owner, shared-with and manager reads; removals when readability is lost)",
];

/// The ops of one history: none twice, each client's in seq order.
fn check_history(applied: &[crate::server::AppliedOp]) -> Result<HashSet<&str>, Violation> {
    let mut seen_ops = HashSet::new();
    let mut last_seq: HashMap<&str, u64> = HashMap::new();
    for op in applied {
        if !seen_ops.insert(op.op_id.as_str()) {
            return Err(Violation::new(format!("op {} was applied twice", op.op_id)));
        }
        let prev = last_seq.insert(op.client_id.as_str(), op.seq).unwrap_or(0);
        if op.seq <= prev {
            return Err(Violation::new(format!(
                "client {}'s op seq {} was applied after seq {prev}",
                op.client_id, op.seq
            )));
        }
    }
    Ok(seen_ops)
}

/// One device's record at a restore: the stamp and state it held as synced, and the state
/// it showed (with its own pending edit, which may undo what it held; after a durable write
/// of its person since the restore, what that write left).
struct Held {
    hlc: Hlc,
    base: State,
    shown: State,
}

/// A record a person wrote on a tab, what the tab showed of it right after, and the write's
/// ticket (durable once the tab's store holds that ticket's commit).
pub type ShownAfterWrite = ((&'static str, String), State, WriteTicket);

/// What devices held when the server was restored, to check that it came back.
#[derive(Default)]
pub struct Watch {
    /// Record → what each device held of it.
    held: HashMap<(String, String), HashMap<usize, Held>>,
    /// The restored history's head: a record version above it was written after the restore.
    restored_head: u64,
}

impl Watch {
    /// Notes every live record the devices hold as synced, just before a restore to a
    /// backup whose head is `restored_head`.
    pub fn before_restore(&mut self, clients: &[SimClient], restored_head: u64) {
        // What devices hold now includes what they still owe from an earlier restore (a
        // re-push not yet sent stays in their outbox, a record not yet repaired keeps its
        // base), so each restore starts the watch afresh.
        self.held.clear();
        self.restored_head = restored_head;
        for c in clients {
            let engine = c.engine();
            let replica = engine.replica();
            for r in replica.all_records() {
                let Some(base) = r.base.as_ref().filter(|b| !b.deleted) else {
                    continue;
                };
                if r.state.deleted {
                    // The person deleted it already; its absence is what they asked for.
                    continue;
                }
                self.held
                    .entry((r.collection.clone(), r.id.clone()))
                    .or_default()
                    .insert(
                        c.index,
                        Held {
                            hlc: base.hlc.clone(),
                            base: State::of(base),
                            shown: r.state.clone(),
                        },
                    );
            }
        }
    }

    /// A person deleted the record: its absence later is what they asked for.
    pub fn deleted(&mut self, collection: &str, id: &str) {
        self.held.remove(&(collection.to_owned(), id.to_owned()));
    }

    /// A person on device `index` wrote the record after the restore, durably, and the
    /// device then showed `shown`: that is the person's newest intent for it, so the server
    /// holding it is not a loss (a write equal to the restored server state pushes nothing,
    /// so the version stays at or below the restored head).
    pub fn wrote(&mut self, collection: &str, id: &str, index: usize, shown: State) {
        let key = (collection.to_owned(), id.to_owned());
        if let Some(held) = self.held.get_mut(&key).and_then(|h| h.get_mut(&index)) {
            held.shown = shown;
        }
    }

    /// [`Watch::wrote`] for each of a tab's writes that its store now holds (the write's
    /// ticket is the tab's `current` one and nothing is `unsaved`); returns those still
    /// unsaved. Writes a failed commit rolled back are dropped: the person never kept them.
    pub fn wrote_if_durable(
        &mut self,
        index: usize,
        writes: Vec<ShownAfterWrite>,
        current: WriteTicket,
        unsaved: bool,
    ) -> Vec<ShownAfterWrite> {
        let mut keep = Vec::new();
        for ((collection, id), shown, ticket) in writes {
            if ticket != current {
                continue;
            }
            if unsaved {
                keep.push(((collection, id), shown, ticket));
            } else {
                self.wrote(collection, &id, index, shown);
            }
        }
        keep
    }

    /// A wiped device holds nothing any more.
    pub fn forget_holder(&mut self, index: usize) {
        for holders in self.held.values_mut() {
            holders.remove(&index);
        }
        self.held.retain(|_, holders| !holders.is_empty());
    }

    /// Tombstones are about to be compacted away: a held record deleted on the server since
    /// cannot be told from a lost one afterwards, so it is no longer watched.
    pub fn before_compaction(&mut self, world: &World) {
        let server = world.server.borrow();
        let Some(tenant) = server.tenant(&world.tenant) else {
            return;
        };
        self.held
            .retain(|(c, id), _| tenant.record(c, id).is_none_or(|r| !r.deleted));
    }

    pub fn check(&self, world: &World, clients: &[SimClient]) -> Result<(), Violation> {
        let server = world.server.borrow();
        let Some(tenant) = server.tenant(&world.tenant) else {
            return Ok(());
        };
        let right_clocks = clients.iter().all(|c| c.skew_ms == 0);
        for ((collection, id), holders) in &self.held {
            let Some(Held {
                hlc: held,
                base: held_state,
                shown,
            }) = holders.values().max_by(|a, b| a.hlc.cmp(&b.hlc))
            else {
                continue;
            };
            // Still held for a person: in the conflict inbox, or a dead letter to retry.
            let in_review = clients.iter().any(|c| {
                let engine = c.engine();
                let r = engine.replica();
                let conflicted = r
                    .conflicts()
                    .any(|x| x.collection == *collection && x.record_id == *id);
                conflicted
                    || r.dead_letters()
                        .any(|d| d.collection == *collection && d.record_id == *id)
            });
            match tenant.record(collection, id) {
                None if in_review => {}
                None => {
                    return Err(Violation::new(format!(
                        "after a restore the server lost {collection}/{id} for good, though a device held it"
                    )))
                }
                // Written after the restore (re-pushed, or edited since), or at least as new
                // as what was held: not lost. Else the server still has the backup's state.
                // Stamps order writes as time only while clocks are right: with a device a day
                // off before its first sync, an older write may carry the later stamp, so
                // such runs check that the record came back, not which state won.
                Some(r)
                    if right_clocks
                        && r.version <= self.restored_head
                        && r.hlc < *held
                        && State::of(r) != *held_state
                        && State::of(r) != *shown
                        && !in_review =>
                {
                    return Err(Violation::new(format!(
                        "after a restore the server holds {collection}/{id} at {}, older than the {held} a device held",
                        r.hlc
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

pub fn all(world: &World, clients: &[SimClient], report: &mut SimReport) -> Result<(), Violation> {
    let server = world.server.borrow();
    let Some(tenant) = server.tenant(&world.tenant) else {
        return Ok(());
    };
    // No op applied twice within one history; each client's ops in seq order. A restore
    // starts a new history in which ops of the lost one may apply again.
    let mut seen_ops = check_history(tenant.applied())?;
    report.applied_ops = seen_ops.len() as u64;
    let lost = world.lost_histories.borrow();
    for history in lost.iter() {
        seen_ops.extend(check_history(history)?);
    }
    let server_now = world.server_now.get();
    let mut claimed: HashSet<String> = HashSet::new();
    let mut retired_clients: HashSet<&str> = HashSet::new();
    for c in clients {
        claimed.extend(c.retired_ops.iter().cloned());
        retired_clients.extend(c.retired_clients.iter().map(String::as_str));
        let engine = c.engine();
        let replica = engine.replica();
        // The stamps of this device's own writes (the ones last-writer-wins compares).
        let own_latest = replica
            .all_records()
            .map(|r| &r.hlc)
            .chain(replica.outbox().map(|e| &e.hlc))
            .filter(|h| h.node == replica.client_id())
            .map(|h| h.wall_ms)
            .max()
            .unwrap_or(0);
        if c.skew_ms <= 0 && own_latest > server_now.saturating_add(DRAGGED_MS) {
            return Err(Violation::new(format!(
                "client {}'s clock is right, yet it stamped a write at {own_latest}, {} ms ahead of the true time",
                c.index,
                own_latest - server_now
            )));
        }
        if replica.outbox_depth() != 0 {
            return Err(Violation::new(format!(
                "client {} still has {} queued ops after the heal",
                c.index,
                replica.outbox_depth()
            )));
        }
        // Records equal the server's, as far as the device's user may read them (partial
        // sync, `perms.rs`): exactly the readable set, and tombstones of what it held.
        let user = super::perms::user_of(c.index);
        for server_rec in tenant.records() {
            let local = replica.record(&server_rec.collection, &server_rec.id);
            if !super::perms::may_read_record(user, server_rec) {
                // A local tombstone without a live base (a refused create of an id someone
                // else owns, undone) holds nothing of the record.
                let held = local
                    .filter(|l| !l.state.deleted || l.base.as_ref().is_some_and(|b| !b.deleted));
                if let Some(held) = held {
                    return Err(Violation::new(format!(
                        "client {} ({}) holds {}/{}, which its user may not read: local {:?}, server v{} {:?}",
                        c.index,
                        user.name,
                        server_rec.collection,
                        server_rec.id,
                        (held.version(), &held.state),
                        server_rec.version,
                        State::of(server_rec)
                    )));
                }
                continue;
            }
            let same = local.is_some_and(|l| {
                l.state == State::of(server_rec) && l.version() == server_rec.version
            });
            if !same {
                return Err(Violation::new(format!(
                    "client {} differs from the server on {}/{}: local {:?}, server v{} {:?}",
                    c.index,
                    server_rec.collection,
                    server_rec.id,
                    local.map(|l| (l.version(), &l.state)),
                    server_rec.version,
                    State::of(server_rec)
                )));
            }
        }
        for local in replica.all_records() {
            let on_server = tenant.record(&local.collection, &local.id).is_some();
            let gone_everywhere =
                local.state.deleted && local.base.as_ref().is_none_or(|b| b.deleted);
            if !on_server && !gone_everywhere {
                return Err(Violation::new(format!(
                    "client {} holds {}/{} that the server does not have: {local:?}",
                    c.index, local.collection, local.id
                )));
            }
        }
        // Every durable write reached an end the user can see.
        let conflicts: HashSet<&str> = replica
            .conflicts()
            .map(|c| c.conflict_id.as_str())
            .collect();
        let letters: HashSet<&str> = replica
            .dead_letters()
            .map(|d| d.letter_id.as_str())
            .collect();
        report.conflicts_seen += conflicts.len() as u64;
        report.dead_letters_seen += letters.len() as u64;
        for entry in c.fates.entries() {
            match c.fates.final_fate(entry) {
                Fate::Applied { op_id } if seen_ops.contains(op_id.as_str()) => {}
                Fate::Applied { op_id } => {
                    return Err(Violation::new(format!(
                        "entry {entry} was acknowledged as {op_id}, which the server never applied"
                    )))
                }
                Fate::InConflict(id) if conflicts.contains(id.as_str()) => {}
                Fate::DeadLetter(id) if letters.contains(id.as_str()) => {}
                Fate::Superseded | Fate::Cancelled | Fate::DroppedByPerson => {}
                other => {
                    return Err(Violation::new(format!(
                        "client {}: durable write in entry {entry} ended as {other:?}",
                        c.index
                    )))
                }
            }
        }
        for op in c.fates.applied_ops() {
            if !claimed.insert(op.clone()) {
                return Err(Violation::new(format!("op {op} is claimed by two writes")));
            }
        }
    }
    // Only the current history's ops need a write: an op applied in a history a restore
    // threw away may end otherwise when sent again (a conflict in the new history).
    let orphan = tenant.applied().iter().find(|op| {
        !claimed.contains(&op.op_id) && !retired_clients.contains(op.client_id.as_str())
    });
    if let Some(orphan) = orphan {
        return Err(Violation::new(format!(
            "the server applied op {}, which no durable write accounts for",
            orphan.op_id
        )));
    }
    Ok(())
}
