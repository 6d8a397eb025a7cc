//! Identifiers: client ids, op ids and trace ids, made from the ports' entropy and clock.

use crate::ports::{Clock, Entropy};

/// A new client id: 16 random bytes as hex. Made once per replica and stored.
pub fn new_client_id(entropy: &dyn Entropy) -> String {
    format!("{:016x}{:016x}", entropy.next_u64(), entropy.next_u64())
}

/// An op id: the writer's id and its seq. Unique because seqs are durable and never reused.
pub fn op_id(client_id: &str, seq: u64) -> String {
    format!("{client_id}.{seq}")
}

/// A UUIDv7-formatted record id: time-ordered, so new records sort after old ones.
pub fn new_record_id(clock: &dyn Clock, entropy: &dyn Entropy) -> String {
    let ms = clock.now_ms() & 0xffff_ffff_ffff;
    let (a, b) = (entropy.next_u64(), entropy.next_u64());
    let hi = (ms << 16) | 0x7000 | (a & 0x0fff);
    let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A W3C `traceparent` for one sync cycle.
pub fn traceparent(entropy: &dyn Entropy) -> String {
    let (t1, t2, span) = (entropy.next_u64(), entropy.next_u64(), entropy.next_u64());
    format!("00-{t1:016x}{t2:016x}-{span:016x}-01")
}
