//! The server's apply rules, shared by the reference server and the simulation.
//!
//! [`PullPage`] is the pull rule; [`decide`] is the pure rule for one mutation;
//! [`process_push`] runs a whole push through
//! an [`ApplyTx`] — one storage transaction scoped to one tenant — so the SQL server and the
//! in-memory simulation server apply exactly the same logic.

use crate::protocol::{
    limits, Accepted, Conflict, Fields, Mutation, OpKind, PullResponse, PushRequest, PushResponse,
    Record, Rejected,
};

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

/// One storage transaction of one tenant, as the apply rules need it.
///
/// The implementor serialises pushes of a tenant (a row lock, or SQLite's single writer),
/// so two copies of one batch can never both apply an op.
#[allow(async_fn_in_trait)]
pub trait ApplyTx {
    type Error;
    async fn stored_op(&mut self, op_id: &str) -> Result<Option<StoredOp>, Self::Error>;
    async fn client_last_seq(&mut self, client_id: &str) -> Result<u64, Self::Error>;
    async fn record(&mut self, collection: &str, id: &str) -> Result<Option<Record>, Self::Error>;
    /// Logs the record at the tenant's next cursor position, stores it with that position
    /// as its version, and returns the version. Versions are change positions, so they keep
    /// rising per record even after a tombstone was compacted away and the id reused.
    async fn write_record(&mut self, record: &Record) -> Result<u64, Self::Error>;
    /// Remembers a final outcome and advances the client's last applied seq to `m.seq`.
    async fn store_op(
        &mut self,
        m: &Mutation,
        digest: u64,
        outcome: &StoredOutcome,
    ) -> Result<(), Self::Error>;
    /// The tenant's newest cursor.
    async fn cursor(&mut self) -> Result<u64, Self::Error>;
}

/// Why a whole push is refused before any effect.
#[derive(Debug, PartialEq)]
pub enum PushError<E> {
    /// An op id was seen before with another body (HTTP 422).
    BodyMismatch {
        op_id: String,
    },
    Storage(E),
}

impl<E> From<E> for PushError<E> {
    fn from(e: E) -> Self {
        PushError::Storage(e)
    }
}

/// Runs a validated push through the apply rules inside one tenant transaction.
///
/// Body mismatches are checked before anything is written, so a refused push has no effect.
/// A retryable refusal stops that client's later ops in the batch (`not_attempted`), which
/// keeps each client's ops applied in `seq` order.
///
/// Generic over the validator (rather than `&dyn Validator`) so that a multi-threaded server
/// passing a `Sync` validator gets a `Send` future; `&dyn Validator` still works.
pub async fn process_push<T: ApplyTx, V: Validator + ?Sized>(
    tx: &mut T,
    req: &PushRequest,
    validator: &V,
) -> Result<PushResponse, PushError<T::Error>> {
    process_push_within(tx, req, validator, &Bounds::default()).await
}

/// [`process_push`] with explicit [`Bounds`]: the reference server passes its clock.
pub async fn process_push_within<T: ApplyTx, V: Validator + ?Sized>(
    tx: &mut T,
    req: &PushRequest,
    validator: &V,
    bounds: &Bounds,
) -> Result<PushResponse, PushError<T::Error>> {
    let mut known = Vec::with_capacity(req.mutations.len());
    for m in &req.mutations {
        let stored = tx.stored_op(&m.op_id).await?;
        if stored.as_ref().is_some_and(|s| s.digest != m.body_digest()) {
            return Err(PushError::BodyMismatch {
                op_id: m.op_id.clone(),
            });
        }
        known.push(stored);
    }
    let mut resp = PushResponse::default();
    let mut halted: Vec<&str> = Vec::new();
    for (m, stored) in req.mutations.iter().zip(known) {
        if halted.contains(&m.client_id.as_str()) {
            resp.rejected.push(not_attempted(m));
            continue;
        }
        let last_seq = tx.client_last_seq(&m.client_id).await?;
        let current = tx.record(&m.collection, &m.record_id).await?;
        let digest = m.body_digest();
        let decision = decide_within(
            m,
            stored.as_ref(),
            last_seq,
            current.as_ref(),
            validator,
            bounds,
        );
        match decision {
            Decision::Replay(outcome) => push_outcome(&mut resp, m, outcome, current),
            Decision::BodyMismatch => {
                return Err(PushError::BodyMismatch {
                    op_id: m.op_id.clone(),
                })
            }
            Decision::Write(mut record) => {
                record.version = tx.write_record(&record).await?;
                let outcome = StoredOutcome::Accepted {
                    version: record.version,
                };
                tx.store_op(m, digest, &outcome).await?;
                push_outcome(&mut resp, m, outcome, Some(record));
            }
            Decision::Conflict => {
                tx.store_op(m, digest, &StoredOutcome::Conflict).await?;
                push_outcome(&mut resp, m, StoredOutcome::Conflict, current);
            }
            Decision::Reject {
                code,
                message,
                retryable: false,
            } => {
                let outcome = StoredOutcome::Rejected { code, message };
                tx.store_op(m, digest, &outcome).await?;
                push_outcome(&mut resp, m, outcome, current);
            }
            Decision::Reject {
                code,
                message,
                retryable: true,
            } => {
                halted.push(&m.client_id);
                resp.rejected.push(Rejected {
                    op_id: m.op_id.clone(),
                    code,
                    message,
                    retryable: true,
                });
            }
        }
    }
    resp.cursor = tx.cursor().await?;
    Ok(resp)
}

fn not_attempted(m: &Mutation) -> Rejected {
    Rejected {
        op_id: m.op_id.clone(),
        code: "not_attempted".into(),
        message: "an earlier op of this client in the batch must succeed first".into(),
        retryable: true,
    }
}

fn push_outcome(
    resp: &mut PushResponse,
    m: &Mutation,
    outcome: StoredOutcome,
    current: Option<Record>,
) {
    match outcome {
        StoredOutcome::Accepted { version } => resp.accepted.push(Accepted {
            op_id: m.op_id.clone(),
            version,
        }),
        StoredOutcome::Conflict => match current {
            Some(server) => resp.conflicts.push(Conflict {
                op_id: m.op_id.clone(),
                server,
            }),
            // The record was compacted away since: nothing left to merge with.
            None => resp.rejected.push(Rejected {
                op_id: m.op_id.clone(),
                code: "not_found".into(),
                message: "the record no longer exists on the server".into(),
                retryable: false,
            }),
        },
        StoredOutcome::Rejected { code, message } => resp.rejected.push(Rejected {
            op_id: m.op_id.clone(),
            code,
            message,
            retryable: false,
        }),
    }
}

/// Why a pull is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullError {
    /// Tombstones older than the cursor were compacted away: resync from cursor 0 (HTTP 410).
    CursorExpired { horizon: u64 },
}

/// The pull rule (PROTOCOL.md §4), shared by every store: which cursors may be served, how
/// big a page is, and what the answer says. A store reads, in one snapshot, the tenant's head
/// and horizon, then (if [`PullPage::check`] allows) the first [`PullPage::limit`] records
/// whose last change is after the cursor, in log order, and how many more follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullPage {
    pub cursor: u64,
    /// The page size actually served: the request's, clamped to 1..=MAX_PULL_LIMIT.
    pub limit: u32,
}

impl PullPage {
    pub fn new(cursor: u64, limit: u32) -> Self {
        PullPage {
            cursor,
            limit: limit.clamp(1, limits::MAX_PULL_LIMIT),
        }
    }

    /// A cursor behind the compaction horizon (other than 0, the snapshot) has expired.
    pub fn check(&self, horizon: u64) -> Result<(), PullError> {
        if self.cursor != 0 && self.cursor < horizon {
            return Err(PullError::CursorExpired { horizon });
        }
        Ok(())
    }

    /// The answer: the next cursor is the last change's position (a record's version is its
    /// position), or the request's cursor raised to the horizon when the page is empty.
    pub fn answer(
        &self,
        changes: Vec<Record>,
        remaining: u64,
        head: u64,
        horizon: u64,
    ) -> PullResponse {
        let cursor = changes
            .last()
            .map_or(self.cursor.max(horizon), |r| r.version);
        PullResponse {
            changes,
            cursor,
            has_more: remaining > 0,
            remaining,
            head,
            ..PullResponse::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::server::MemoryServer;
    use serde_json::json;

    fn mutation(seq: u64, op: OpKind, base: u64, patch: serde_json::Value) -> Mutation {
        Mutation {
            op_id: format!("op{seq}"),
            client_id: "c1".into(),
            seq,
            collection: "notes".into(),
            record_id: "n1".into(),
            op,
            base_version: base,
            patch: patch.as_object().unwrap().clone(),
            hlc: Hlc {
                wall_ms: 1_700_000_000_000 + seq,
                counter: 0,
                node: "c1".into(),
            },
        }
    }

    fn push(server: &mut MemoryServer, m: Mutation) -> PushResponse {
        let req = PushRequest {
            client_id: "c1".into(),
            mutations: vec![m],
        };
        server.push("t", &req, &AcceptAll).unwrap()
    }

    fn many_fields(prefix: &str, n: usize) -> serde_json::Value {
        (0..n)
            .map(|i| (format!("{prefix}{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    #[test]
    fn the_pull_rule() {
        let page = PullPage::new(5, 0);
        assert_eq!(page.limit, 1, "the page size is clamped up to 1");
        assert_eq!(PullPage::new(5, u32::MAX).limit, limits::MAX_PULL_LIMIT);
        assert_eq!(page.check(5), Ok(()));
        assert_eq!(page.check(6), Err(PullError::CursorExpired { horizon: 6 }));
        assert_eq!(PullPage::new(0, 10).check(6), Ok(()), "0 is a snapshot");
        // An empty page moves the cursor up to the horizon, never back.
        let empty = PullPage::new(0, 10).answer(Vec::new(), 0, 9, 6);
        assert_eq!((empty.cursor, empty.has_more, empty.head), (6, false, 9));
        let mut m = mutation(1, OpKind::Create, 0, json!({}));
        m.seq = 1;
        let Decision::Write(mut record) = decide(&m, None, 0, None, &AcceptAll) else {
            panic!("a create of a new record is written");
        };
        record.version = 8;
        let full = PullPage::new(6, 1).answer(vec![record], 3, 9, 6);
        assert_eq!((full.cursor, full.has_more, full.remaining), (8, true, 3));
    }

    #[test]
    fn the_stored_record_respects_the_field_limit_across_patches() {
        let mut server = MemoryServer::default();
        let created = push(
            &mut server,
            mutation(1, OpKind::Create, 0, many_fields("a", 600)),
        );
        assert_eq!(created.accepted.len(), 1);
        // Each patch is within the limit; the record after the second would not be.
        let grown = push(
            &mut server,
            mutation(2, OpKind::Update, 1, many_fields("b", 600)),
        );
        assert_eq!(grown.accepted.len(), 0);
        assert_eq!(grown.rejected[0].code, codes::RECORD_TOO_LARGE);
        assert!(
            !grown.rejected[0].retryable,
            "final: the client dead-letters it"
        );
        let stored = server.tenant("t").unwrap().record("notes", "n1").unwrap();
        assert_eq!(stored.fields.len(), 600, "the stored record is untouched");
        // Replacing fields (null removes) keeps a record within the limit: accepted.
        let mut patch = many_fields("b", 300);
        for i in 0..300 {
            patch[format!("a{i}")] = serde_json::Value::Null;
        }
        let swapped = push(&mut server, mutation(3, OpKind::Update, 1, patch));
        assert_eq!(swapped.accepted.len(), 1, "{swapped:?}");
    }

    #[test]
    fn the_stored_record_respects_the_byte_limit_across_patches() {
        let mut server = MemoryServer::default();
        let big = "x".repeat(limits::MAX_RECORD_BYTES / 2);
        assert_eq!(
            push(
                &mut server,
                mutation(1, OpKind::Create, 0, json!({"a": big}))
            )
            .accepted
            .len(),
            1
        );
        let grown = push(
            &mut server,
            mutation(2, OpKind::Update, 1, json!({"b": big})),
        );
        assert_eq!(grown.rejected[0].code, codes::RECORD_TOO_LARGE);
        assert!(grown.rejected[0].message.contains("limit"));
        assert!(
            !grown.rejected[0].message.contains("xxxx"),
            "no payload echoed"
        );
    }

    #[test]
    fn a_stamp_beyond_the_clock_bound_is_refused_for_good() {
        let now = 1_700_000_000_000;
        let bounds = Bounds::at(now);
        let mut m = mutation(1, OpKind::Create, 0, json!({}));
        m.hlc.wall_ms = now + limits::MAX_CLOCK_DRIFT_MS;
        assert!(matches!(
            decide_within(&m, None, 0, None, &AcceptAll, &bounds),
            Decision::Write(_)
        ));
        m.hlc.wall_ms = now + limits::MAX_CLOCK_DRIFT_MS + 1;
        assert_eq!(
            decide_within(&m, None, 0, None, &AcceptAll, &bounds),
            Decision::Reject {
                code: codes::CLOCK_AHEAD.into(),
                message: format!(
                    "the stamp's wall time is {} ms ahead of the server's clock; at most {} ms is accepted",
                    limits::MAX_CLOCK_DRIFT_MS + 1,
                    limits::MAX_CLOCK_DRIFT_MS
                ),
                retryable: false,
            }
        );
        // The year 33658, as one client once sent.
        m.hlc.wall_ms = 1_000_000_000_000_000;
        assert!(matches!(
            decide_within(&m, None, 0, None, &AcceptAll, &bounds),
            Decision::Reject { .. }
        ));
        // Without a clock (the simulation) the stamp is not checked.
        assert!(matches!(
            decide_within(&m, None, 0, None, &AcceptAll, &Bounds::default()),
            Decision::Write(_)
        ));
    }
}
