//! The server's apply rules, shared by the reference server and the simulation.
//!
//! [`PullPage`] is the pull rule; [`decide`] is the pure rule for one mutation;
//! [`process_push`] runs a whole push through
//! an [`ApplyTx`] — one storage transaction scoped to one tenant — so the SQL server and the
//! in-memory simulation server apply exactly the same logic. This file holds the per-mutation
//! rule; `push.rs` the push run, `pull.rs` the pull rule.

use crate::protocol::{
    limits, Accepted, Conflict, Fields, Mutation, OpKind, PushRequest, PushResponse, Record,
    Rejected,
};

mod pull;
mod push;
#[cfg(test)]
mod tests;

pub use pull::{PullError, PullPage};
pub use push::*;

/// Per-mutation rejection codes the apply rules produce (PROTOCOL.md §3).
pub mod codes {
    /// The record as it would be after the patch is over the field-count or byte limit.
    /// Final: the same patch on the same record will never fit.
    pub const RECORD_TOO_LARGE: &str = "record_too_large";
    /// The stamp's wall time is more than the clock bound ahead of the server's clock.
    /// Final: a sent mutation is frozen, so waiting would not change the stamp.
    pub const CLOCK_AHEAD: &str = "clock_ahead";
}

/// What the apply rules bound beyond a mutation's own shape: the record it would leave, and
/// how far ahead of the server's clock its stamp may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Most fields of a stored record.
    pub max_fields: usize,
    /// Largest stored record: its fields encoded as JSON, in bytes.
    pub max_record_bytes: usize,
    /// The server's clock (ms since the Unix epoch) and the clock bound in ms; `None` skips
    /// the clock check (the simulation, whose clocks are virtual).
    pub clock: Option<(u64, u64)>,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_fields: limits::MAX_FIELDS,
            max_record_bytes: limits::MAX_RECORD_BYTES,
            clock: None,
        }
    }
}

impl Bounds {
    /// The protocol's limits, with the clock bound checked against `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Bounds {
            clock: Some((now_ms, limits::MAX_CLOCK_DRIFT_MS)),
            ..Bounds::default()
        }
    }

    /// Why a record with these fields may not be stored, if it may not.
    pub fn check_record(&self, fields: &Fields) -> Result<(), String> {
        if fields.len() > self.max_fields {
            return Err(format!(
                "the record would have {} fields; the limit is {}",
                fields.len(),
                self.max_fields
            ));
        }
        let bytes = serde_json::to_vec(fields).map_or(usize::MAX, |v| v.len());
        if bytes > self.max_record_bytes {
            return Err(format!(
                "the record would be {bytes} bytes; the limit is {} bytes",
                self.max_record_bytes
            ));
        }
        Ok(())
    }
}

/// What the server remembers about an op id it has processed for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOp {
    /// [`Mutation::body_digest`] of the body first seen with this op id.
    pub digest: u64,
    pub outcome: StoredOutcome,
}

/// The final result of a processed op. Retryable refusals are never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredOutcome {
    Accepted {
        version: u64,
    },
    /// The base version was stale; a replay answers with the record as it is now.
    Conflict,
    Rejected {
        code: String,
        message: String,
    },
}

/// A refusal from an application's validation hook: always final (not retryable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

/// A per-collection validation hook run on the record a create or update would produce.
///
/// A server that knows who pushes also decides here who may write what: [`authorize`] runs
/// before the conflict check (so a conflict answer never shows a record to a user who may
/// not read it), and [`complete`] may add server-set fields (the owner) to a new record
/// before the limits and [`check`] see it. Both default to allowing everything.
///
/// [`authorize`]: Validator::authorize
/// [`complete`]: Validator::complete
/// [`check`]: Validator::check
pub trait Validator {
    fn check(&self, collection: &str, fields: &Fields) -> Result<(), Refusal>;

    /// May the pusher make `m`, given the stored record (`None`: never written)?
    fn authorize(&self, _m: &Mutation, _current: Option<&Record>) -> Result<(), Refusal> {
        Ok(())
    }

    /// Completes the fields a create or update would store.
    fn complete(&self, _m: &Mutation, _fields: &mut Fields) {}

    /// Why the pusher may not see `record` now, if they may not: a replayed conflict answer
    /// (stored when they could) is then refused with this instead of showing the record.
    fn hides(&self, _record: &Record) -> Option<Refusal> {
        None
    }
}

/// Accepts everything.
pub struct AcceptAll;

impl Validator for AcceptAll {
    fn check(&self, _: &str, _: &Fields) -> Result<(), Refusal> {
        Ok(())
    }
}

/// The outcome [`decide`] chose for one mutation.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// The op id was processed before with the same body: answer as then.
    Replay(StoredOutcome),
    /// The op id was processed before with a different body: the push is refused (422).
    BodyMismatch,
    /// Apply: write `record` and log the change. Its `version` is a placeholder: the store
    /// assigns the tenant's next change position (see [`ApplyTx::write_record`]).
    Write(Record),
    /// Stale base version: answer with the authoritative record.
    Conflict,
    /// Refuse; final ones are stored, retryable ones stop the rest of this client's batch.
    Reject {
        code: String,
        message: String,
        retryable: bool,
    },
}

/// Applies a patch: each field is set, and `null` removes it.
pub fn apply_patch(fields: &mut Fields, patch: &Fields) {
    for (k, v) in patch {
        if v.is_null() {
            fields.remove(k);
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
}

/// The rule for one mutation, given what the tenant's store holds, with the protocol's
/// record limits and no clock check.
pub fn decide<V: Validator + ?Sized>(
    m: &Mutation,
    known: Option<&StoredOp>,
    client_last_seq: u64,
    current: Option<&Record>,
    validator: &V,
) -> Decision {
    decide_within(
        m,
        known,
        client_last_seq,
        current,
        validator,
        &Bounds::default(),
    )
}

fn reject(code: &str, message: String) -> Decision {
    Decision::Reject {
        code: code.into(),
        message,
        retryable: false,
    }
}

/// The rule for one mutation, given what the tenant's store holds and the [`Bounds`].
pub fn decide_within<V: Validator + ?Sized>(
    m: &Mutation,
    known: Option<&StoredOp>,
    client_last_seq: u64,
    current: Option<&Record>,
    validator: &V,
    bounds: &Bounds,
) -> Decision {
    if let Some(stored) = known {
        return if stored.digest == m.body_digest() {
            Decision::Replay(stored.outcome.clone())
        } else {
            Decision::BodyMismatch
        };
    }
    if m.seq <= client_last_seq {
        return Decision::Reject {
            code: "out_of_order".into(),
            message: format!(
                "seq {} is not after {}, the last seq applied for this client",
                m.seq, client_last_seq
            ),
            retryable: false,
        };
    }
    if let Some((now_ms, drift_ms)) = bounds.clock {
        if m.hlc.wall_ms > now_ms.saturating_add(drift_ms) {
            return reject(
                codes::CLOCK_AHEAD,
                format!(
                    "the stamp's wall time is {} ms ahead of the server's clock; at most {drift_ms} ms is accepted",
                    m.hlc.wall_ms - now_ms
                ),
            );
        }
    }
    if let Err(refusal) = validator.authorize(m, current) {
        return reject(&refusal.code, refusal.message);
    }
    let current_version = current.map_or(0, |r| r.version);
    let is_live = current.is_some_and(|r| !r.deleted);
    if m.base_version != current_version {
        if current.is_none() {
            return Decision::Reject {
                code: "not_found".into(),
                message: format!(
                    "record {}/{} does not exist on the server",
                    m.collection, m.record_id
                ),
                retryable: false,
            };
        }
        return Decision::Conflict;
    }
    let mut fields = match (m.op, current) {
        (OpKind::Create, Some(r)) if !r.deleted => return Decision::Conflict,
        (OpKind::Create, _) => Fields::new(),
        (OpKind::Update | OpKind::Delete, _) if !is_live => {
            return match current {
                Some(_) => Decision::Conflict,
                None => Decision::Reject {
                    code: "not_found".into(),
                    message: format!(
                        "record {}/{} does not exist on the server",
                        m.collection, m.record_id
                    ),
                    retryable: false,
                },
            };
        }
        (_, Some(r)) => r.fields.clone(),
        (_, None) => Fields::new(),
    };
    let deleted = m.op == OpKind::Delete;
    if deleted {
        fields.clear();
    } else {
        apply_patch(&mut fields, &m.patch);
        validator.complete(m, &mut fields);
        if let Err(message) = bounds.check_record(&fields) {
            return reject(codes::RECORD_TOO_LARGE, message);
        }
        if let Err(refusal) = validator.check(&m.collection, &fields) {
            return Decision::Reject {
                code: refusal.code,
                message: refusal.message,
                retryable: false,
            };
        }
    }
    Decision::Write(Record {
        collection: m.collection.clone(),
        id: m.record_id.clone(),
        version: current_version + 1, // placeholder; the store assigns the real one
        fields,
        deleted,
        hlc: m.hlc.clone(),
    })
}
