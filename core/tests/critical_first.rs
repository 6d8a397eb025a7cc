//! A first sync pulls the critical collections first (PROTOCOL.md §4, `collections=`):
//! against the in-memory server, a device whose first download is cut off after two pages
//! already holds every critical record (in log order it would hold only the oldest normal
//! ones); once the link is back the full pass converges to exactly the server's records and
//! one cursor at the head, and a later sync never filters again.

use ferry_core::engine::{block_on, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, RequestMeta, Transport, TransportError};
use ferry_core::priority::Priority;
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::server::MemoryServer;
use ferry_core::sim::SimRules;
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// One pull request as the link saw it: its cursor and the collections it named.
type PullSeen = (u64, Vec<String>);

/// A link that answers a set number of pulls and then drops, logging each pull it saw.
#[derive(Clone)]
struct Link {
    server: Rc<RefCell<MemoryServer>>,
    /// Pulls still answered before the link drops (`u32::MAX`: never drops).
    pulls_left: Rc<Cell<u32>>,
    /// Each pull request: (cursor, collections named).
    pulls: Rc<RefCell<Vec<PullSeen>>>,
}

impl Transport for Link {
    async fn push(
        &self,
        req: &PushRequest,
        _: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        Ok(self
            .server
            .borrow_mut()
            .push("t", req, &SimRules)
            .expect("valid push"))
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        self.pulls
            .borrow_mut()
            .push((cursor, meta.collections.clone()));
        let left = self.pulls_left.get();
        if left == 0 {
            return Err(TransportError::Network("the link dropped".into()));
        }
        self.pulls_left.set(left.saturating_sub(1));
        Ok(self
            .server
            .borrow()
            .pull_filtered("t", cursor, limit, &meta.collections)
            .expect("cursor is fresh"))
    }
}

type Dev = Engine<MemoryStore, Link, NoAuth, ManualClock, SeededEntropy>;

fn device(link: &Link, critical: bool) -> Dev {
    let mut config = ReplicaConfig::new([
        ("alerts".to_string(), Policy::LastWriterWins),
        ("notes".to_string(), Policy::MergeFields),
    ]);
    config.pull_limit = 5;
    if critical {
        config
            .priorities
            .insert("alerts".into(), Priority::Critical);
    }
    block_on(Engine::open(
        MemoryStore::new(),
        link.clone(),
        NoAuth,
        ManualClock::new(1_000_000),
        SeededEntropy::new(7),
        config,
    ))
    .unwrap()
}

fn write(dev: &Dev, collection: &str, id: &str) {
    let fields = json!({"v": id}).as_object().unwrap().clone();
    let (_, ticket) = dev.write(collection, id, Change::Put(fields)).unwrap();
    block_on(dev.flush(ticket)).unwrap();
}

/// A server whose log holds 20 notes, then 3 alerts, then 10 more notes (pushed by a writer).
fn seeded_server() -> Rc<RefCell<MemoryServer>> {
    let server = Rc::new(RefCell::new(MemoryServer::default()));
    let link = Link {
        server: server.clone(),
        pulls_left: Rc::new(Cell::new(u32::MAX)),
        pulls: Rc::default(),
    };
    // No priorities on the writer: its pushes keep creation order, so the log does too.
    let writer = device(&link, false);
    for i in 0..20 {
        write(&writer, "notes", &format!("n{i:02}"));
    }
    for i in 0..3 {
        write(&writer, "alerts", &format!("a{i}"));
    }
    for i in 20..30 {
        write(&writer, "notes", &format!("n{i:02}"));
    }
    block_on(writer.sync());
    assert_eq!(server.borrow().tenant("t").unwrap().records().count(), 33);
    server
}

fn held(dev: &Dev, collection: &str) -> usize {
    dev.replica().live_records(collection).count()
}

#[test]
fn a_first_sync_cut_short_already_holds_every_critical_record() {
    let server = seeded_server();
    let link = Link {
        server: server.clone(),
        pulls_left: Rc::new(Cell::new(2)),
        pulls: Rc::default(),
    };
    let dev = device(&link, true);
    let _ = block_on(dev.sync());
    // Two pages got through: the critical pass (all 3 alerts in one page), then the first
    // page of the full pass.
    assert_eq!(
        held(&dev, "alerts"),
        3,
        "every critical record arrived first"
    );
    assert_eq!(held(&dev, "notes"), 5);
    let pulls = link.pulls.borrow().clone();
    assert_eq!(
        pulls[0],
        (0, vec!["alerts".to_string()]),
        "the first pull names the critical collections"
    );
    assert_eq!(pulls[1], (0, vec![]), "then the full pass from 0");
    // The critical pass left the one cursor alone; the full pass's first page moved it.
    assert_eq!(dev.replica().cursor(), 5);

    // The link is back: the full pass resumes from its cursor (no second critical pass).
    link.pulls_left.set(u32::MAX);
    link.pulls.borrow_mut().clear();
    assert!(matches!(
        block_on(dev.sync()),
        ferry_core::engine::CycleOutcome::Synced
    ));
    assert!(
        link.pulls.borrow().iter().all(|(_, c)| c.is_empty()),
        "{:?}",
        link.pulls.borrow()
    );
    assert_eq!(
        link.pulls.borrow()[0].0,
        5,
        "resumed where the full pass stopped"
    );
    assert_eq!(held(&dev, "alerts"), 3);
    assert_eq!(held(&dev, "notes"), 30);
    let head = server.borrow().tenant("t").unwrap().cursor();
    assert_eq!(dev.replica().cursor(), head, "one cursor, at the head");
    for r in server.borrow().tenant("t").unwrap().records() {
        let mine = dev
            .replica()
            .record(&r.collection, &r.id)
            .map(|l| l.version());
        assert_eq!(mine, Some(r.version), "{}/{}", r.collection, r.id);
    }
}

#[test]
fn without_critical_collections_the_first_sync_is_one_pass_in_log_order() {
    let server = seeded_server();
    let link = Link {
        server,
        pulls_left: Rc::new(Cell::new(2)),
        pulls: Rc::default(),
    };
    let dev = device(&link, false);
    let _ = block_on(dev.sync());
    // What the critical pass changes: in log order two pages hold only the oldest notes.
    assert_eq!(held(&dev, "alerts"), 0);
    assert_eq!(held(&dev, "notes"), 10);
    assert!(link.pulls.borrow().iter().all(|(_, c)| c.is_empty()));
}
