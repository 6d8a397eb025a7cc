//! Collection priorities on a constrained network, against the in-memory server: critical
//! writes reach the server before normal and background ones, background writes wait while
//! critical ones do on a poor network, each push names its most urgent priority, and nothing
//! starves: every write converges in the end.

use ferry_core::engine::{block_on, Engine};
use ferry_core::memory::{ManualClock, MemoryStore, SeededEntropy};
use ferry_core::policy::Policy;
use ferry_core::ports::{NoAuth, RequestMeta, Transport, TransportError};
use ferry_core::priority::{LinkHints, Priority};
use ferry_core::protocol::{PullResponse, PushRequest, PushResponse};
use ferry_core::replica::{Change, ReplicaConfig};
use ferry_core::server::MemoryServer;
use ferry_core::sim::SimRules;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

/// What one push that got through carried: its collections and the priority it named.
type PushSeen = (Vec<String>, Option<Priority>);

/// A link that refuses pushes with 503 on a seeded schedule and logs what each push carried.
#[derive(Clone)]
struct Constrained {
    server: Rc<RefCell<MemoryServer>>,
    /// One answer per push attempt: `true` refuses it (503); beyond the list every push passes.
    refusals: Rc<RefCell<Vec<bool>>>,
    /// Per push that got through: the collections it carried and the priority it named.
    pushes: Rc<RefCell<Vec<PushSeen>>>,
}

impl Transport for Constrained {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        let refused = {
            let mut r = self.refusals.borrow_mut();
            if r.is_empty() {
                false
            } else {
                r.remove(0)
            }
        };
        if refused {
            return Err(TransportError::Http {
                status: 503,
                code: "unavailable".into(),
                message: "shedding load".into(),
                retry_after_ms: None,
            });
        }
        let collections = req.mutations.iter().map(|m| m.collection.clone()).collect();
        self.pushes.borrow_mut().push((collections, meta.priority));
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
        _: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        Ok(self
            .server
            .borrow()
            .pull("t", cursor, limit)
            .expect("cursor is fresh"))
    }
}

type Dev = Engine<MemoryStore, Constrained, NoAuth, ManualClock, SeededEntropy>;

fn device(link: &Constrained, batch_size: usize) -> (Dev, ManualClock) {
    let mut config = ReplicaConfig::new([
        ("alerts".to_string(), Policy::LastWriterWins),
        ("notes".to_string(), Policy::MergeFields),
        ("photos".to_string(), Policy::LastWriterWins),
    ]);
    config.batch_size = batch_size;
    config
        .priorities
        .insert("alerts".into(), Priority::Critical);
    config
        .priorities
        .insert("photos".into(), Priority::Background);
    let clock = ManualClock::new(1_000_000);
    let dev = block_on(Engine::open(
        MemoryStore::new(),
        link.clone(),
        NoAuth,
        clock.clone(),
        SeededEntropy::new(3),
        config,
    ))
    .unwrap();
    (dev, clock)
}

fn write(dev: &Dev, collection: &str, id: &str) {
    let fields = json!({"v": id}).as_object().unwrap().clone();
    let (_, ticket) = dev.write(collection, id, Change::Put(fields)).unwrap();
    block_on(dev.flush(ticket)).unwrap();
}

fn link(refusals: Vec<bool>) -> Constrained {
    Constrained {
        server: Rc::new(RefCell::new(MemoryServer::default())),
        refusals: Rc::new(RefCell::new(refusals)),
        pushes: Rc::default(),
    }
}

/// The collection of every op the server applied, in order.
fn applied_order(link: &Constrained) -> Vec<String> {
    link.pushes
        .borrow()
        .iter()
        .flat_map(|(c, _)| c.clone())
        .collect()
}

#[test]
fn on_a_constrained_network_critical_writes_converge_first_and_nothing_starves() {
    for seed in 0..40u64 {
        // A seeded schedule of refusals: about half the attempts fail, then the link heals.
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let refusals = (0..30)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) % 2 == 0
            })
            .collect();
        let link = link(refusals);
        let (dev, clock) = device(&link, 2);
        // Background first, then normal, then critical: creation order is the opposite of urgency.
        for i in 0..5 {
            write(&dev, "photos", &format!("p{i}"));
        }
        for i in 0..3 {
            write(&dev, "notes", &format!("n{i}"));
        }
        for i in 0..4 {
            write(&dev, "alerts", &format!("a{i}"));
        }
        let mut cycles = 0;
        while dev.replica().outbox_depth() > 0 {
            cycles += 1;
            assert!(
                cycles < 200,
                "seed {seed}: the outbox never emptied (starvation)"
            );
            let _ = block_on(dev.sync());
            clock.advance(60_000);
        }
        let order = applied_order(&link);
        assert_eq!(
            order.len(),
            12,
            "seed {seed}: every write converged: {order:?}"
        );
        let last = |c: &str| order.iter().rposition(|x| x == c).unwrap();
        let first = |c: &str| order.iter().position(|x| x == c).unwrap();
        assert!(
            last("alerts") < first("notes"),
            "seed {seed}: critical first: {order:?}"
        );
        assert!(
            last("notes") < first("photos"),
            "seed {seed}: background last: {order:?}"
        );
        let srv = link.server.borrow();
        assert_eq!(
            srv.tenant("t").unwrap().records().count(),
            12,
            "seed {seed}"
        );
    }
}

#[test]
fn while_the_network_is_poor_background_waits_for_the_critical_outbox_to_empty() {
    let link = link(vec![]);
    // Room for everything in one push: only the priority rule can hold background back.
    let (dev, _clock) = device(&link, 50);
    dev.set_link_hints(LinkHints {
        save_data: true,
        metered: false,
    });
    write(&dev, "photos", "p0");
    write(&dev, "notes", "n0");
    write(&dev, "alerts", "a0");
    let state = dev.waiting_by_priority();
    assert_eq!(state, [1, 1, 1], "what waits, per priority");
    let _ = block_on(dev.sync());
    let pushes = link.pushes.borrow().clone();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert_eq!(
        pushes[0],
        (
            vec!["alerts".to_string(), "notes".to_string()],
            Some(Priority::Critical)
        )
    );
    assert_eq!(
        pushes[1],
        (vec!["photos".to_string()], Some(Priority::Background))
    );
    assert_eq!(dev.waiting_by_priority(), [0, 0, 0]);
}

#[test]
fn a_healthy_network_sends_everything_at_once_most_urgent_first() {
    let link = link(vec![]);
    let (dev, _clock) = device(&link, 50);
    write(&dev, "photos", "p0");
    write(&dev, "alerts", "a0");
    let _ = block_on(dev.sync());
    let pushes = link.pushes.borrow().clone();
    assert_eq!(
        pushes,
        vec![(
            vec!["alerts".to_string(), "photos".to_string()],
            Some(Priority::Critical)
        )]
    );
}
