//! `Ferry.inspect()`'s engine half: what support staff need to see of one replica — the
//! outbox entry by entry (sent or queued, attempts, last error), the conflicts and dead
//! letters, the cursor and whether this tab leads. The package's JS layer adds the sync
//! state, recent sync cycles (with their trace ids) and the conflict history it observed.

use crate::client::Client;
use serde_json::{json, Value};

/// A snapshot of `client`'s replica as plain JSON (no record payloads beyond the outbox's).
pub(crate) fn dump(client: &Client) -> Value {
    let replica = client.engine.replica();
    let meta = replica.meta();
    let outbox: Vec<Value> = replica
        .outbox()
        .map(|e| {
            json!({
                "entryId": e.entry_id,
                "collection": e.collection,
                "recordId": e.record_id,
                "op": e.op,
                "state": if e.is_sent() { "sent" } else { "queued" },
                "opId": e.sent.as_ref().map(|s| s.op_id.clone()),
                "seq": e.sent.as_ref().map(|s| s.seq),
                "baseVersion": e.sent.as_ref().map(|s| s.base_version),
                "attempts": e.attempts,
                "writes": e.writes,
                "lastError": e.last_error,
                "createdAt": e.created_at_ms,
                "fields": e.patch.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    let conflicts: Vec<Value> = replica
        .conflicts()
        .map(|c| {
            json!({
                "conflictId": c.conflict_id,
                "collection": c.collection,
                "recordId": c.record_id,
                "policy": c.policy,
                "fields": c.fields,
                "serverVersion": c.server.version,
                "createdAt": c.created_at_ms,
            })
        })
        .collect();
    let dead_letters: Vec<Value> = replica
        .dead_letters()
        .map(|d| {
            json!({
                "letterId": d.letter_id,
                "opId": d.op_id,
                "collection": d.collection,
                "recordId": d.record_id,
                "op": d.op,
                "code": d.code,
                "message": d.message,
                "attempts": d.attempts,
                "failedAt": d.failed_at_ms,
            })
        })
        .collect();
    json!({
        "clientId": meta.client_id,
        "cursor": meta.cursor,
        "nextSeq": meta.next_seq,
        "resyncing": meta.resyncing,
        "lastSyncedAt": meta.last_synced_at_ms,
        "isLeader": client.is_leader(),
        "outbox": outbox,
        "conflicts": conflicts,
        "deadLetters": dead_letters,
    })
}
