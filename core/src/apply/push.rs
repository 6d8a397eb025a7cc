//! A whole push through the apply rules: the storage port ([`ApplyTx`]), the order and
//! idempotency checks, and the answer.

use super::*;

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
    process_digested_push(tx, &DigestedPush::new(req), validator, bounds).await
}

/// A push with each mutation's [`Mutation::body_digest`] computed, which the apply rules
/// compare with stored ops and store. Computing it means encoding every mutation, so a server
/// builds this before it takes the tenant's lock, which pushes of the tenant wait for.
#[derive(Debug)]
pub struct DigestedPush<'a> {
    req: &'a PushRequest,
    /// `digests[i]` is `req.mutations[i].body_digest()`.
    digests: Vec<u64>,
}

impl<'a> DigestedPush<'a> {
    pub fn new(req: &'a PushRequest) -> Self {
        DigestedPush {
            req,
            digests: req.mutations.iter().map(Mutation::body_digest).collect(),
        }
    }

    pub fn req(&self) -> &'a PushRequest {
        self.req
    }
}

/// [`process_push_within`] for a push whose digests were computed beforehand.
pub async fn process_digested_push<T: ApplyTx, V: Validator + ?Sized>(
    tx: &mut T,
    push: &DigestedPush<'_>,
    validator: &V,
    bounds: &Bounds,
) -> Result<PushResponse, PushError<T::Error>> {
    let req = push.req;
    let mut known = Vec::with_capacity(req.mutations.len());
    for (m, &digest) in req.mutations.iter().zip(&push.digests) {
        let stored = tx.stored_op(&m.op_id).await?;
        if stored.as_ref().is_some_and(|s| s.digest != digest) {
            return Err(PushError::BodyMismatch {
                op_id: m.op_id.clone(),
            });
        }
        known.push(stored);
    }
    let mut resp = PushResponse::default();
    let mut halted: Vec<&str> = Vec::new();
    for ((m, stored), &digest) in req.mutations.iter().zip(known).zip(&push.digests) {
        if halted.contains(&m.client_id.as_str()) {
            resp.rejected.push(not_attempted(m));
            continue;
        }
        let last_seq = tx.client_last_seq(&m.client_id).await?;
        let current = tx.record(&m.collection, &m.record_id).await?;
        let decision = decide_within(
            m,
            stored.as_ref(),
            last_seq,
            current.as_ref(),
            validator,
            bounds,
        );
        match decision {
            Decision::Replay(StoredOutcome::Conflict) => {
                // The stored answer shows the record as it is now: only if the pusher may
                // still read it (partial sync); otherwise the refusal, final.
                match current.as_ref().and_then(|r| validator.hides(r)) {
                    Some(refusal) => resp.rejected.push(Rejected {
                        op_id: m.op_id.clone(),
                        code: refusal.code,
                        message: refusal.message,
                        retryable: false,
                    }),
                    None => push_outcome(&mut resp, m, StoredOutcome::Conflict, current),
                }
            }
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
