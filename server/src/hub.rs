//! The per-process poke fan-out: a tokio broadcast channel that every server-sent-events
//! stream subscribes to.
//!
//! On SQLite a push feeds it directly after its commit; on PostgreSQL every process feeds it
//! from LISTEN/NOTIFY, so a push on one process pokes streams held by all the others.
//! Every poke also raises the process's known [`Heads`] (cheap conditional pulls).

use crate::heads::Heads;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The PostgreSQL NOTIFY channel that carries pokes between processes.
pub const NOTIFY_CHANNEL: &str = "ferry_poke";

/// What a stream learns from the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poke {
    /// `tenant`'s cursor is now `cursor`.
    Cursor { tenant: Arc<str>, cursor: u64 },
    /// Pokes may have been missed (a lost LISTEN connection): every stream re-reads its cursor.
    Resync,
}

/// A cheap-to-clone handle on the channel.
#[derive(Clone, Debug)]
pub struct Hub {
    tx: broadcast::Sender<Poke>,
    heads: Arc<Heads>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(1024)
    }
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
            heads: Arc::default(),
        }
    }

    /// Tells this process's streams that `tenant` advanced to `cursor`.
    pub fn poke(&self, tenant: &str, cursor: u64) {
        self.heads.advance(tenant, cursor);
        // An error only means nobody is listening right now.
        let _ = self.tx.send(Poke::Cursor {
            tenant: tenant.into(),
            cursor,
        });
    }

    pub fn resync(&self) {
        self.heads.forget_all();
        let _ = self.tx.send(Poke::Resync);
    }

    /// The heads the pokes so far vouch for.
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Poke> {
        self.tx.subscribe()
    }

    /// The NOTIFY payload for a poke: `"<cursor> <tenant>"` (tenant ids hold no spaces).
    pub fn encode(tenant: &str, cursor: u64) -> String {
        format!("{cursor} {tenant}")
    }

    /// Parses a NOTIFY payload made by [`Hub::encode`].
    pub fn decode(payload: &str) -> Option<(&str, u64)> {
        let (cursor, tenant) = payload.split_once(' ')?;
        Some((tenant, cursor.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        assert_eq!(Hub::decode(&Hub::encode("acme", 42)), Some(("acme", 42)));
        assert_eq!(Hub::decode("garbage"), None);
    }
}
