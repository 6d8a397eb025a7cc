//! The client side of cheap polling: once the engine knows the server's epoch it sends its
//! pull as a conditional request, folds a `304` as the empty page it stands for (nothing
//! lost, the cursor kept), and still gets every change when there is news.

use ferry_core::conditional::{not_modified_page, parse_pull_etag};
use ferry_core::engine::{block_on, CycleOutcome, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, RequestMeta, Transport, TransportError};
use ferry_core::protocol::{Fields, PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::server::MemoryServer;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

/// A server that answers conditional pulls the way ferry-server does: 304 when the
/// validator names its epoch and the request's cursor is the tenant's head.
#[derive(Clone)]
struct Conditional {
    server: Rc<RefCell<MemoryServer>>,
    /// Every pull's validator, in order.
    validators: Rc<RefCell<Vec<Option<String>>>>,
    not_modified: Rc<RefCell<u32>>,
}

impl Transport for Conditional {
    async fn push(
        &self,
        req: &PushRequest,
        _: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        Ok(self
            .server
            .borrow_mut()
            .push("t", req, &ferry_core::apply::AcceptAll)
            .expect("no reused op ids"))
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        self.validators
            .borrow_mut()
            .push(meta.if_none_match.clone());
        let server = self.server.borrow();
        let page = server
            .pull("t", cursor, limit)
            .map_err(|_| TransportError::CursorExpired)?;
        let validator = meta.if_none_match.as_deref().and_then(parse_pull_etag);
        if let Some((epoch, named)) = validator {
            let current = server.tenant("t").map_or("", |t| t.epoch());
            if epoch == current && named == cursor && page.head == cursor {
                *self.not_modified.borrow_mut() += 1;
                return Ok(not_modified_page(epoch, cursor));
            }
        }
        Ok(page)
    }
}

type Dev = Engine<MemoryStore, Conditional, NoAuth, ManualClock, SeededEntropy>;

fn device(transport: &Conditional, seed: u64) -> Dev {
    let config = ReplicaConfig::new([("notes".to_string(), Policy::MergeFields)]);
    block_on(Engine::open(
        MemoryStore::new(),
        transport.clone(),
        NoAuth,
        ManualClock::new(1_000 + seed),
        SeededEntropy::new(seed),
        config,
    ))
    .unwrap()
}

fn put(d: &Dev, id: &str, title: &str) {
    let fields: Fields = json!({ "title": title }).as_object().cloned().unwrap();
    let (_, t) = d.write("notes", id, Change::Put(fields)).unwrap();
    block_on(d.flush(t)).unwrap();
}

fn transport(epoch: &str) -> Conditional {
    let mut server = MemoryServer::default();
    server.tenant_mut("t").set_epoch(epoch);
    Conditional {
        server: Rc::new(RefCell::new(server)),
        validators: Rc::default(),
        not_modified: Rc::default(),
    }
}

#[test]
fn an_idle_poll_is_conditional_and_a_not_modified_answer_loses_nothing() {
    let net = transport("e1");
    let (a, b) = (device(&net, 1), device(&net, 2));
    put(&a, "n1", "first");
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    let seen = net.validators.borrow().clone();
    assert_eq!(
        seen.last(),
        Some(&None),
        "a first pull knows no epoch: unconditional"
    );

    // Nothing new: B's poll names (epoch, cursor) and the 304 keeps everything as it was.
    let cursor = b.replica().cursor();
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert_eq!(
        net.validators.borrow().last().cloned().flatten().as_deref(),
        Some(format!("\"e1.{cursor}\"").as_str())
    );
    assert_eq!(*net.not_modified.borrow(), 1);
    assert_eq!(b.replica().cursor(), cursor);
    assert_eq!(b.replica().meta().epoch, "e1");
    assert!(b.replica().record("notes", "n1").is_some());

    // News: the same conditional poll gets the page.
    put(&a, "n2", "second");
    assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    assert_eq!(block_on(b.sync()), CycleOutcome::Synced);
    assert_eq!(*net.not_modified.borrow(), 1, "no 304 while there is news");
    assert!(b.replica().record("notes", "n2").is_some());
    assert!(b.replica().cursor() > cursor);
}

#[test]
fn a_server_without_an_epoch_is_never_polled_conditionally() {
    let net = transport("");
    let a = device(&net, 1);
    put(&a, "n1", "x");
    for _ in 0..3 {
        assert_eq!(block_on(a.sync()), CycleOutcome::Synced);
    }
    assert!(net.validators.borrow().iter().all(Option::is_none));
    assert_eq!(*net.not_modified.borrow(), 0);
}
