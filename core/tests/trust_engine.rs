//! The engine's side of the trust faults, each as a user of the engine sees it: a server
//! restored from a backup, a byte-limited server, answers that break the protocol, a server
//! outage on a device that stayed online.

use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::outcomes::OutcomeEvent;
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, RequestMeta, Transport, TransportError};
use ferry_core::protocol::{limits, PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::server::{MemoryServer, PullError};
use ferry_core::sim::SimRules;
use ferry_core::state::Status;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How the server misbehaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Healthy,
    /// Every pull answers `has_more` at the same cursor.
    StuckPage,
    /// Every answer is a proxy's HTML error page.
    Html,
    /// Every request answers 503.
    Down,
    /// Every request times out.
    Slow,
}

#[derive(Clone)]
struct Server {
    inner: Rc<RefCell<MemoryServer>>,
    mode: Rc<Cell<Mode>>,
    pulls: Rc<Cell<u32>>,
    max_push_bytes: usize,
}

impl Server {
    fn new() -> Server {
        let mut inner = MemoryServer::default();
        inner.tenant_mut("t").set_epoch("history-1");
        Server {
            inner: Rc::new(RefCell::new(inner)),
            mode: Rc::new(Cell::new(Mode::Healthy)),
            pulls: Rc::new(Cell::new(0)),
            max_push_bytes: limits::MAX_PUSH_BYTES,
        }
    }

    fn failure(&self) -> Option<TransportError> {
        match self.mode.get() {
            Mode::Html => Some(TransportError::Decode(
                "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>".into(),
            )),
            Mode::Down => Some(TransportError::Http {
                status: 503,
                code: "unavailable".into(),
                message: "down".into(),
                retry_after_ms: None,
            }),
            Mode::Slow => Some(TransportError::Timeout),
            _ => None,
        }
    }
}

impl Transport for Server {
    async fn push(
        &self,
        req: &PushRequest,
        _: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let size = serde_json::to_vec(req).unwrap().len();
        if size > self.max_push_bytes {
            return Err(TransportError::Http {
                status: 413,
                code: "too_large".into(),
                message: format!("{size} bytes"),
                retry_after_ms: None,
            });
        }
        Ok(self
            .inner
            .borrow_mut()
            .push("t", req, &SimRules)
            .expect("valid push"))
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        _: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        self.pulls.set(self.pulls.get() + 1);
        if let Some(e) = self.failure() {
            return Err(e);
        }
        if self.mode.get() == Mode::StuckPage {
            return Ok(PullResponse {
                cursor,
                has_more: true,
                head: cursor + 10,
                epoch: "history-1".into(),
                ..PullResponse::default()
            });
        }
        self.inner
            .borrow()
            .pull("t", cursor, limit)
            .map_err(|PullError::CursorExpired { .. }| TransportError::CursorExpired)
    }
}

type Dev = Engine<MemoryStore, Server, NoAuth, ManualClock, SeededEntropy>;

fn device(server: &Server, seed: u64) -> (Dev, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000 + seed);
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    let engine = block_on(Engine::open(
        MemoryStore::new(),
        server.clone(),
        NoAuth,
        clock.clone(),
        SeededEntropy::new(seed),
        config,
    ))
    .unwrap();
    (engine, clock)
}

fn put(engine: &Dev, id: &str, value: serde_json::Value) {
    let (_, ticket) = engine
        .write(
            "notes",
            id,
            Change::Put(value.as_object().cloned().unwrap()),
        )
        .unwrap();
    block_on(engine.flush(ticket)).unwrap();
}

#[test]
fn a_page_that_never_advances_is_a_protocol_error_and_the_client_recovers_when_fixed() {
    let server = Server::new();
    let (a, _) = device(&server, 1);
    put(&a, "n", json!({"v": 1}));
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let cursor = a.replica().cursor();
    server.mode.set(Mode::StuckPage);
    server.pulls.set(0);
    assert!(matches!(block_on(a.sync()), CycleOutcome::Failed(_)));
    assert!(
        server.pulls.get() <= 2,
        "{} pulls in one cycle",
        server.pulls.get()
    );
    let s = a.sync_state();
    assert_eq!(s.status, Status::Backoff);
    assert_eq!(s.last_error_code.as_deref(), Some("protocol_error"));
    assert!(s.last_error.unwrap().contains("did not advance"));
    assert_eq!(a.replica().cursor(), cursor, "the replica is untouched");
    server.mode.set(Mode::Healthy);
    a.nudge();
    assert!(a.is_due());
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    assert_eq!(a.sync_state().last_error_code, None);
}

#[test]
fn html_instead_of_json_is_a_protocol_error_without_the_html() {
    let server = Server::new();
    let (a, _) = device(&server, 1);
    server.mode.set(Mode::Html);
    put(&a, "n", json!({"v": 1}));
    assert!(matches!(block_on(a.sync()), CycleOutcome::Failed(_)));
    let s = a.sync_state();
    assert_eq!(s.last_error_code.as_deref(), Some("protocol_error"));
    let message = s.last_error.unwrap();
    assert!(!message.contains('<'), "{message}");
    assert_eq!(a.replica().outbox_depth(), 1, "the write waits, intact");
}

#[test]
fn after_a_server_outage_a_poke_or_a_write_retries_at_once() {
    let server = Server::new();
    let (a, clock) = device(&server, 1);
    server.mode.set(Mode::Down);
    for _ in 0..12 {
        put(&a, "n", json!({"v": 1}));
        let _ = block_on(a.sync());
    }
    let s = a.sync_state();
    assert_eq!(s.status, Status::Backoff);
    assert!(
        s.next_retry_at_ms.unwrap() <= clock_now(&clock) + 30_000,
        "backoff stays short"
    );
    server.mode.set(Mode::Healthy);
    a.nudge();
    assert!(a.is_due(), "a poke retries at once");
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
}

fn clock_now(clock: &ManualClock) -> u64 {
    use ferry_core::ports::Clock;
    clock.now_ms()
}

#[test]
fn a_timeout_is_not_offline() {
    let server = Server::new();
    let (a, _) = device(&server, 1);
    server.mode.set(Mode::Slow);
    put(&a, "n", json!({"v": 1}));
    let _ = block_on(a.sync());
    assert_eq!(a.sync_state().status, Status::Backoff);
}

#[test]
fn twenty_records_of_230_kib_reach_the_server_and_later_writes_follow() {
    let server = Server::new();
    let (a, _) = device(&server, 1);
    let big = "x".repeat(230 * 1024);
    for i in 0..20 {
        put(&a, &format!("big{i}"), json!({ "body": big }));
    }
    for _ in 0..5 {
        if block_on(a.sync()) == CycleOutcome::Synced {
            break;
        }
    }
    put(&a, "later", json!({"v": 1}));
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let inner = server.inner.borrow();
    let tenant = inner.tenant("t").unwrap();
    assert_eq!(tenant.records().count(), 21);
    assert_eq!(a.replica().outbox_depth(), 0);
}

#[test]
fn a_server_restored_from_a_backup_is_detected_reported_and_repaired() {
    let server = Server::new();
    let (a, _) = device(&server, 1);
    let (b, _) = device(&server, 2);
    put(&a, "kept", json!({"v": 1}));
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let backup = server.inner.borrow().tenant("t").unwrap().clone();
    put(&a, "lost", json!({"v": 2}));
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let _ = a.drain_outcomes();
    server.inner.borrow_mut().restore("t", backup, "history-2");
    // Before: `idle`, no error, and "lost" never came back.
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    let outcomes = a.drain_outcomes();
    assert!(
        outcomes.iter().any(
            |o| matches!(o, OutcomeEvent::RollbackDetected { epoch, .. } if epoch == "history-2")
        ),
        "{outcomes:?}"
    );
    let seen = a
        .sync_state()
        .last_rollback
        .expect("reported in the sync state");
    assert_eq!(
        (seen.previous_epoch.as_str(), seen.epoch.as_str()),
        ("history-1", "history-2")
    );
    assert!(server
        .inner
        .borrow()
        .tenant("t")
        .unwrap()
        .record("notes", "lost")
        .is_some());
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert!(
        b.replica().record("notes", "lost").is_some(),
        "a fresh device sees it"
    );
}
