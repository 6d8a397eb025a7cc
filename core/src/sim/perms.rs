//! Users with different permissions in the simulation, and the simulated server's partial
//! sync, modelled on ferry-server's (`server/src/permissions.rs`, `permissions_filter.rs`):
//!
//! | collection | read (and update, delete) | create |
//! |------------|---------------------------|--------|
//! | `notes`    | the owner, users listed in `shared_with` | anyone |
//! | `expenses` | the owner, role `manager` | anyone |
//! | `tasks`    | the whole tenant | anyone |
//!
//! The owner is set by the server on create and may not change. A pull shows each log row
//! as ferry-server does: readable → whole; not readable but once read by the user (the
//! record's *readers*, the union over every version) → a removal (a tombstone is sent
//! whole); otherwise hidden, its position passed. Devices are given users in turn
//! ([`user_of`]), so two devices share a user and one user is a manager.

use super::check::Violation;
use super::client::SimClient;
use super::net::{SimRules, World};
use crate::apply::{Refusal, Validator};
use crate::protocol::{Fields, Mutation, OpKind, PullResponse, Record, Revoked};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Who a device syncs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub name: &'static str,
    pub manager: bool,
}

/// The simulation's users; device `i` signs in as `USERS[i % USERS.len()]`.
pub const USERS: [SimUser; 3] = [
    SimUser {
        name: "ann",
        manager: false,
    },
    SimUser {
        name: "ben",
        manager: false,
    },
    SimUser {
        name: "cat",
        manager: true,
    },
];

/// The user of device `index`.
pub fn user_of(index: usize) -> SimUser {
    USERS[index % USERS.len()]
}

const OWNER: &str = "owner";
const SHARED_WITH: &str = "shared_with";

fn names(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether `user` may read a live record of `collection` holding `fields`.
pub fn may_read(user: SimUser, collection: &str, fields: &Fields) -> bool {
    let owner = fields.get(OWNER).and_then(Value::as_str) == Some(user.name);
    match collection {
        "notes" => owner || names(fields.get(SHARED_WITH)).contains(&user.name),
        "expenses" => owner || user.manager,
        _ => true,
    }
}

/// Whether `user` may read `record` as stored (a tombstone is readable by nobody).
pub fn may_read_record(user: SimUser, record: &Record) -> bool {
    !record.deleted && may_read(user, &record.collection, &record.fields)
}

/// Who may read a record holding `fields`, as subjects (`user:<name>`, `role:<name>`,
/// `tenant`), as ferry-server keeps them in its `readers` column.
fn subjects(collection: &str, fields: &Fields) -> BTreeSet<String> {
    let owner = names(fields.get(OWNER)).into_iter();
    match collection {
        "notes" => owner
            .chain(names(fields.get(SHARED_WITH)))
            .map(|u| format!("user:{u}"))
            .collect(),
        "expenses" => owner
            .map(|u| format!("user:{u}"))
            .chain(["role:manager".to_owned()])
            .collect(),
        _ => BTreeSet::from(["tenant".to_owned()]),
    }
}

fn subjects_of(user: SimUser) -> BTreeSet<String> {
    let mut out = BTreeSet::from([format!("user:{}", user.name), "tenant".to_owned()]);
    if user.manager {
        out.insert("role:manager".into());
    }
    out
}

/// Every subject that could read some version of each record (kept across restores: a
/// superset only adds removals, which are no-ops on devices that never held the record).
#[derive(Default)]
pub struct Readers(HashMap<(String, String), BTreeSet<String>>);

impl Readers {
    /// Adds the readers of the current state of every record `mutations` touched.
    pub fn note_push(&mut self, mutations: &[Mutation], world: &World) {
        let server = world.server.borrow();
        let Some(tenant) = server.tenant(&world.tenant) else {
            return;
        };
        for m in mutations {
            if let Some(r) = tenant.record(&m.collection, &m.record_id) {
                self.0
                    .entry((r.collection.clone(), r.id.clone()))
                    .or_default()
                    .extend(subjects(&r.collection, &r.fields));
            }
        }
    }

    fn once_read_by(&self, user: SimUser, record: &Record) -> bool {
        self.0
            .get(&(record.collection.clone(), record.id.clone()))
            .is_some_and(|set| !set.is_disjoint(&subjects_of(user)))
    }

    /// `page` (unfiltered, straight from the log) as `user` sees it, and how many rows it
    /// hid. The cursor stays the position of the last row scanned, so hidden rows are
    /// passed, never lost.
    pub fn filter(&self, user: SimUser, page: PullResponse) -> (PullResponse, u64) {
        let mut hidden = 0;
        let mut changes = Vec::new();
        let mut revoked = page.revoked.clone();
        for record in page.changes {
            if may_read_record(user, &record) {
                changes.push(record);
            } else if self.once_read_by(user, &record) {
                if record.deleted {
                    changes.push(record);
                } else {
                    revoked.push(Revoked {
                        collection: record.collection,
                        id: record.id,
                        version: record.version,
                    });
                }
            } else {
                hidden += 1;
            }
        }
        let page = PullResponse {
            changes,
            revoked,
            ..page
        };
        (page, hidden)
    }
}

fn forbidden(message: String) -> Refusal {
    Refusal {
        code: "forbidden".into(),
        message,
    }
}

/// The server's rules for pushes of `user`: the permissions above, then the demo schema.
pub struct UserRules(pub SimUser);

impl Validator for UserRules {
    fn check(&self, collection: &str, fields: &Fields) -> Result<(), Refusal> {
        SimRules.check(collection, fields)
    }

    fn authorize(&self, m: &Mutation, current: Option<&Record>) -> Result<(), Refusal> {
        let what = format!("`{}` record `{}`", m.collection, m.record_id);
        let live = current.filter(|r| !r.deleted);
        if let Some(record) = live {
            // Update and delete follow read; a create of a live record is a conflict, which
            // would show the record, so it needs read too.
            if !may_read(self.0, &record.collection, &record.fields) {
                return Err(forbidden(format!("you may not read {what}")));
            }
        }
        if m.op != OpKind::Delete {
            if let Some(value) = m.patch.get(OWNER) {
                let unchanged = live
                    .filter(|_| m.op == OpKind::Update)
                    .and_then(|r| r.fields.get(OWNER));
                let own = m.op == OpKind::Create && value.as_str() == Some(self.0.name);
                if unchanged != Some(value) && !own {
                    return Err(forbidden(format!(
                        "`{OWNER}` is set by the server on create and cannot change"
                    )));
                }
            }
        }
        Ok(())
    }

    fn complete(&self, m: &Mutation, fields: &mut Fields) {
        if m.op == OpKind::Create && m.collection != "tasks" {
            fields.insert(OWNER.into(), self.0.name.into());
        }
    }

    fn hides(&self, record: &Record) -> Option<Refusal> {
        (!record.deleted && !may_read_record(self.0, record)).then(|| {
            forbidden(format!(
                "you may not read `{}` record `{}`",
                record.collection, record.id
            ))
        })
    }
}

/// No device stores a record its user could not read at that moment: within the server's
/// current history, a record the device took from the server at a position it has pulled
/// past was readable in that version, and a record whose newest change it has pulled past
/// is readable now (else the removal was missed).
pub fn check_device_holds_only_readable(
    world: &World,
    client: &SimClient,
) -> Result<(), Violation> {
    let user = user_of(client.index);
    let engine = client.engine();
    let replica = engine.replica();
    let server = world.server.borrow();
    let Some(tenant) = server.tenant(&world.tenant) else {
        return Ok(());
    };
    let meta = replica.meta();
    // Pulled from another history (before a restore was noticed), or mid-resync: the
    // positions do not compare.
    if meta.epoch != tenant.epoch() || meta.restoring || meta.resyncing {
        return Ok(());
    }
    let cursor = replica.cursor();
    for r in replica.all_records() {
        let Some(base) = r.base.as_ref().filter(|b| !b.deleted) else {
            continue;
        };
        if base.version <= cursor && !may_read_record(user, base) {
            return Err(Violation::new(format!(
                "client {} ({}) stores {}/{} v{}, which its user may not read: {:?}",
                client.index, user.name, r.collection, r.id, base.version, base.fields
            )));
        }
        if let Some(now) = tenant.record(&r.collection, &r.id) {
            if now.version <= cursor && !now.deleted && !may_read_record(user, now) {
                return Err(Violation::new(format!(
                    "client {} ({}) pulled past v{} of {}/{}, which took it out of its view, yet still stores it",
                    client.index, user.name, now.version, r.collection, r.id
                )));
            }
        }
    }
    Ok(())
}
