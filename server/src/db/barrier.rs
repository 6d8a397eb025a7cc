//! A NOTIFY barrier (PostgreSQL): proof that this process has received every poke committed
//! before a moment, so its in-memory [`Heads`](crate::heads::Heads) may answer a conditional
//! pull with `304`.
//!
//! PostgreSQL delivers the notifications of committed transactions in commit order. A
//! barrier is a `pg_notify` of our own on the poke channel, sent after the poll arrived:
//! once the LISTEN loop sees it come back, every push committed before the poll — on any
//! process — has been folded into the heads. One barrier covers every poll that took a
//! ticket before it was sent, so many idle pollers share one tiny round trip that touches
//! no table. A barrier that does not come back in time means "in doubt": the caller reads
//! the head from the database instead.

use crate::hub::NOTIFY_CHANNEL;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Marks a barrier's payload; poke payloads start with a digit.
const PREFIX: &str = "barrier ";

/// The barrier state one process shares between its pollers, its sender and its listener.
#[derive(Debug)]
pub struct Barrier {
    /// Tells this process's barriers from other processes' on the shared channel.
    process: u64,
    /// The highest ticket taken.
    requested: AtomicU64,
    /// Wakes the sender.
    wake: Notify,
    /// The highest barrier that came back.
    arrived: watch::Sender<u64>,
}

impl Default for Barrier {
    fn default() -> Self {
        Barrier {
            process: rand::random(),
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            arrived: watch::channel(0).0,
        }
    }
}

impl Barrier {
    fn payload(&self, ticket: u64) -> String {
        format!("{PREFIX}{:x} {ticket}", self.process)
    }

    /// Called by the LISTEN loop for every notification, in delivery order: `true` when it
    /// was a barrier (ours or another process's), which is then not a poke.
    pub fn on_notification(&self, payload: &str) -> bool {
        let Some(rest) = payload.strip_prefix(PREFIX) else {
            return false;
        };
        let ours = format!("{:x}", self.process);
        if let Some((process, ticket)) = rest.split_once(' ') {
            if let (true, Ok(ticket)) = (process == ours, ticket.parse::<u64>()) {
                self.arrived.send_if_modified(|seen| {
                    let raised = ticket > *seen;
                    *seen = (*seen).max(ticket);
                    raised
                });
            }
        }
        true
    }

    /// Waits until a barrier sent after this call came back: `true` when it did within
    /// `timeout` (every poke committed before the call has then been received).
    pub async fn pass(&self, timeout: Duration) -> bool {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut arrived = self.arrived.subscribe();
        self.wake.notify_one();
        tokio::time::timeout(timeout, arrived.wait_for(|&seen| seen >= ticket))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Sends barriers while the process runs: each covers every ticket taken before it.
pub async fn send_loop(barrier: Arc<Barrier>, pool: PgPool) {
    let mut sent = 0;
    loop {
        barrier.wake.notified().await;
        if pool.is_closed() {
            return;
        }
        let upto = barrier.requested.load(Ordering::SeqCst);
        if upto <= sent {
            continue;
        }
        let notified = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(barrier.payload(upto))
            .execute(&pool)
            .await;
        match notified {
            Ok(_) => sent = upto,
            // The waiting pollers time out and read the database; the next poll retries.
            Err(e) => tracing::debug!(error = %e, "could not send a NOTIFY barrier"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_our_own_later_barrier_lets_a_poll_pass() {
        let barrier = Barrier::default();
        assert!(!barrier.on_notification("12 acme"), "a poke");
        assert!(barrier.on_notification("barrier 0 1"), "another process's");
        assert!(
            !barrier.pass(Duration::from_millis(20)).await,
            "nothing came back"
        );
        // The first ticket was 1; this poll takes 2, so barrier 1 does not cover it.
        let own = barrier.payload(1);
        let poll = barrier.pass(Duration::from_millis(200));
        tokio::pin!(poll);
        assert!(barrier.on_notification(&own));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut poll)
                .await
                .is_err(),
            "an older barrier must not let a newer poll pass"
        );
        assert!(barrier.on_notification(&barrier.payload(2)));
        assert!(poll.await);
    }
}
