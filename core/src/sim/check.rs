//! The guarantees a healed run must show, checked against the server's own records.

use super::client::SimClient;
use super::fates::Fate;
use super::net::World;
use super::SimReport;
use crate::policy::State;
use std::collections::{HashMap, HashSet};
use std::fmt;

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
pub const INVARIANTS: [&str; 6] = [
    "every client's records equal the server's (conflicts wait in the inbox with both sides)",
    "no durable local write is lost: each is applied, settled by policy, in the inbox or a dead letter",
    "no op is applied twice",
    "each client's ops are applied in its seq order",
    "every op the server applied belongs to exactly one durable write",
    "cursors never move backwards",
];

pub fn all(world: &World, clients: &[SimClient], report: &mut SimReport) -> Result<(), Violation> {
    let server = world.server.borrow();
    let Some(tenant) = server.tenant(&world.tenant) else {
        return Ok(());
    };
    // No op applied twice; each client's ops in seq order.
    let mut seen_ops = HashSet::new();
    let mut last_seq: HashMap<&str, u64> = HashMap::new();
    for op in tenant.applied() {
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
    report.applied_ops = seen_ops.len() as u64;
    let mut claimed: HashSet<String> = HashSet::new();
    for c in clients {
        let engine = c.engine();
        let replica = engine.replica();
        if replica.outbox_depth() != 0 {
            return Err(Violation::new(format!(
                "client {} still has {} queued ops after the heal",
                c.index,
                replica.outbox_depth()
            )));
        }
        // Records equal the server's.
        for server_rec in tenant.records() {
            let local = replica.record(&server_rec.collection, &server_rec.id);
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
    if let Some(orphan) = seen_ops.iter().find(|op| !claimed.contains(**op)) {
        return Err(Violation::new(format!(
            "the server applied op {orphan}, which no durable write accounts for"
        )));
    }
    Ok(())
}
