//! The simulated network between clients and the in-memory server: it drops requests and
//! responses, duplicates and delays pushes, answers 5xx and 429, and expires tokens. The
//! server may take pushes only up to a byte limit (413 above it), break the protocol for a
//! while (pages that do not advance, cursors that go backwards, HTML instead of JSON), and
//! be restored from an older backup under a new epoch.

use super::perms::{Readers, SimUser, UserRules};
use crate::apply::{Refusal, Validator};
use crate::memory::SeededEntropy;
use crate::ports::{RequestMeta, TokenSource, Transport, TransportError};
use crate::protocol::{Fields, PullResponse, PushRequest, PushResponse, ServerLimits};
use crate::server::{AppliedOp, MemoryServer, PullError, TenantState};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// The demo rule the simulation's server enforces: an expense's amount is not negative.
pub struct SimRules;

impl Validator for SimRules {
    fn check(&self, collection: &str, fields: &Fields) -> Result<(), Refusal> {
        if collection == "expenses"
            && fields
                .get("amount")
                .and_then(|a| a.as_f64())
                .is_some_and(|a| a < 0.0)
        {
            return Err(Refusal {
                code: "validation_failed".into(),
                message: "amount must not be negative".into(),
            });
        }
        Ok(())
    }
}

/// Counts of what the network did, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub dropped_requests: u64,
    pub dropped_responses: u64,
    pub duplicates: u64,
    pub delayed: u64,
    pub server_errors: u64,
    pub throttled: u64,
    pub unauthorized: u64,
    /// Pushes refused with 413 for their size.
    pub too_large: u64,
    /// Answers that broke the protocol on purpose.
    pub protocol_breaks: u64,
    /// Restores of the server from an older backup.
    pub restores: u64,
    /// Clients whose clock is wrong by a day.
    pub skewed_clocks: u64,
    /// Client stores wiped between steps.
    pub store_wipes: u64,
    /// Storage failures injected into a sync cycle's commits.
    pub sync_storage_failures: u64,
    /// Follower tabs opened (see `sim/tabs.rs`).
    pub follower_tabs: u64,
    /// Leader tabs that closed or died, a follower taking over.
    pub leader_handovers: u64,
    /// Log rows a pull passed without showing them to its user (`perms.rs`).
    pub rows_hidden: u64,
    /// Removals sent: records taken out of a user's view.
    pub removals: u64,
}

impl FaultCounts {
    /// Adds another run's counts to these.
    pub fn absorb(&mut self, g: &FaultCounts) {
        self.requests += g.requests;
        self.dropped_requests += g.dropped_requests;
        self.dropped_responses += g.dropped_responses;
        self.duplicates += g.duplicates;
        self.delayed += g.delayed;
        self.server_errors += g.server_errors;
        self.throttled += g.throttled;
        self.unauthorized += g.unauthorized;
        self.too_large += g.too_large;
        self.protocol_breaks += g.protocol_breaks;
        self.restores += g.restores;
        self.skewed_clocks += g.skewed_clocks;
        self.store_wipes += g.store_wipes;
        self.sync_storage_failures += g.sync_storage_failures;
        self.follower_tabs += g.follower_tabs;
        self.leader_handovers += g.leader_handovers;
        self.rows_hidden += g.rows_hidden;
        self.removals += g.removals;
    }
}

/// The shared world: server, tenant, fault switches and the queue of delayed pushes.
pub struct World {
    pub server: RefCell<MemoryServer>,
    pub tenant: String,
    pub entropy: SeededEntropy,
    /// Percent chance of a fault per request while faults are on.
    pub fault_percent: Cell<u64>,
    /// The token generation the server accepts.
    pub token_generation: Cell<u64>,
    /// Pushes on their way late, with the user who sent them.
    pub delayed: RefCell<Vec<(PushRequest, SimUser)>>,
    pub faults: RefCell<FaultCounts>,
    /// The server's clock (the latest true time of any client), sent as `server_time`.
    pub server_now: Cell<u64>,
    /// Largest push body the server takes (413 above it).
    pub max_push_bytes: Cell<usize>,
    /// Whether answers advertise the limits (else clients learn them from 413s).
    pub advertise_limits: Cell<bool>,
    /// How the server breaks the protocol now (0: it does not).
    pub broken: Cell<u8>,
    /// The last backup of the tenant, for a restore.
    pub backup: RefCell<Option<TenantState>>,
    /// Ops applied in histories a restore threw away, one list per lost history.
    pub lost_histories: RefCell<Vec<Vec<AppliedOp>>>,
    /// What devices held at each restore, checked after the heal.
    pub watch: RefCell<super::check::Watch>,
    /// Who could once read each record, for the removals of partial sync (`perms.rs`).
    pub readers: RefCell<Readers>,
}

/// How a broken server answers (see [`World::broken`]).
pub const BREAK_MODES: u8 = 3;

impl World {
    pub fn new(seed: u64) -> Rc<World> {
        let world = Rc::new(World {
            server: RefCell::new(MemoryServer::default()),
            tenant: "sim".into(),
            entropy: SeededEntropy::new(seed ^ 0x0005_eed0_f4e7),
            fault_percent: Cell::new(0),
            token_generation: Cell::new(1),
            delayed: RefCell::new(Vec::new()),
            faults: RefCell::new(FaultCounts::default()),
            server_now: Cell::new(0),
            max_push_bytes: Cell::new(crate::protocol::limits::MAX_PUSH_BYTES),
            advertise_limits: Cell::new(true),
            broken: Cell::new(0),
            backup: RefCell::new(None),
            lost_histories: RefCell::new(Vec::new()),
            watch: RefCell::new(super::check::Watch::default()),
            readers: RefCell::new(Readers::default()),
        });
        world
            .server
            .borrow_mut()
            .tenant_mut(&world.tenant)
            .set_epoch("epoch-0");
        world
    }

    fn limits(&self) -> Option<ServerLimits> {
        self.advertise_limits.get().then(|| ServerLimits {
            max_push_bytes: self.max_push_bytes.get() as u64,
            ..ServerLimits::default()
        })
    }

    fn apply(&self, req: &PushRequest, user: SimUser) -> PushResponse {
        let result = self
            .server
            .borrow_mut()
            .push(&self.tenant, req, &UserRules(user));
        self.readers.borrow_mut().note_push(&req.mutations, self);
        match result {
            Ok(resp) => PushResponse {
                server_time: self.server_now.get(),
                limits: self.limits(),
                ..resp
            },
            Err(e) => panic!("the server refused a push the client built: {e:?}"),
        }
    }

    /// Takes a backup of the tenant (what a later restore goes back to).
    pub fn back_up(&self) {
        let state = self.server.borrow().tenant(&self.tenant).cloned();
        *self.backup.borrow_mut() = state;
    }

    /// Restores the last backup under a new epoch: every change since is lost. Requests in
    /// flight to the old server die with it.
    pub fn restore(&self) -> bool {
        let Some(backup) = self.backup.borrow().clone() else {
            return false;
        };
        let lost = self
            .server
            .borrow()
            .tenant(&self.tenant)
            .map(|t| t.applied().to_vec())
            .unwrap_or_default();
        self.lost_histories.borrow_mut().push(lost);
        let restores = {
            let mut f = self.faults.borrow_mut();
            f.restores += 1;
            f.restores
        };
        self.server
            .borrow_mut()
            .restore(&self.tenant, backup, format!("epoch-{restores}"));
        self.delayed.borrow_mut().clear();
        true
    }

    /// A broken server's answer to a pull at `cursor`, if it is broken now.
    fn broken_pull(&self, cursor: u64) -> Option<Result<PullResponse, TransportError>> {
        let mode = self.broken.get();
        if mode == 0 {
            return None;
        }
        self.faults.borrow_mut().protocol_breaks += 1;
        let epoch = self
            .server
            .borrow()
            .tenant(&self.tenant)
            .map(|t| t.epoch().to_owned())
            .unwrap_or_default();
        let head = self
            .server
            .borrow()
            .tenant(&self.tenant)
            .map_or(0, |t| t.cursor());
        Some(match mode {
            1 => Ok(PullResponse {
                cursor,
                has_more: true,
                head,
                epoch,
                ..PullResponse::default()
            }),
            2 if cursor > 0 => Ok(PullResponse {
                cursor: cursor - 1,
                has_more: false,
                head,
                epoch,
                ..PullResponse::default()
            }),
            _ => Err(TransportError::Decode(
                "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
            )),
        })
    }

    /// Delivers one delayed push (a stale duplicate arriving late), if any.
    pub fn deliver_one_delayed(&self) {
        let (next, user) = {
            let mut queue = self.delayed.borrow_mut();
            if queue.is_empty() {
                return;
            }
            let i = self.entropy.below(queue.len() as u64) as usize;
            queue.remove(i)
        };
        self.apply(&next, user);
    }

    pub fn deliver_all_delayed(&self) {
        while !self.delayed.borrow().is_empty() {
            self.deliver_one_delayed();
        }
    }

    fn check_token(&self, meta: &RequestMeta) -> Result<(), TransportError> {
        let valid = format!("token-{}", self.token_generation.get());
        if meta.token.as_deref() != Some(valid.as_str()) {
            self.faults.borrow_mut().unauthorized += 1;
            return Err(TransportError::Unauthorized {
                code: "token_expired".into(),
                message: "the token expired".into(),
            });
        }
        Ok(())
    }

    /// Rolls for a fault before the server sees the request.
    fn fault_before(&self) -> Result<(), TransportError> {
        self.faults.borrow_mut().requests += 1;
        if !self.entropy.chance(self.fault_percent.get()) {
            return Ok(());
        }
        let mut f = self.faults.borrow_mut();
        match self.entropy.below(3) {
            0 => {
                f.dropped_requests += 1;
                Err(TransportError::Network("request dropped".into()))
            }
            1 => {
                f.server_errors += 1;
                Err(TransportError::Http {
                    status: 503,
                    code: "unavailable".into(),
                    message: "try later".into(),
                    retry_after_ms: None,
                })
            }
            _ => {
                f.throttled += 1;
                let after = 1_000 + self.entropy.below(5_000);
                Err(TransportError::Http {
                    status: 429,
                    code: "rate_limited".into(),
                    message: "slow down".into(),
                    retry_after_ms: Some(after),
                })
            }
        }
    }
}

/// One client's connection to the world.
pub struct SimTransport {
    pub world: Rc<World>,
    pub online: Rc<Cell<bool>>,
    /// Who the device signs in as: its pushes are judged, its pulls filtered, for them.
    pub user: SimUser,
}

impl Transport for SimTransport {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let w = &self.world;
        w.fault_before()?;
        w.check_token(meta)?;
        if w.broken.get() == BREAK_MODES {
            w.faults.borrow_mut().protocol_breaks += 1;
            return Err(TransportError::Decode(
                "<!DOCTYPE html><html><body>Service Unavailable</body></html>".into(),
            ));
        }
        let size = serde_json::to_vec(req).map_or(usize::MAX, |v| v.len());
        if size > w.max_push_bytes.get() {
            w.faults.borrow_mut().too_large += 1;
            return Err(TransportError::Http {
                status: 413,
                code: "too_large".into(),
                message: format!("push body of {size} bytes"),
                retry_after_ms: None,
            });
        }
        let faulty = w.entropy.chance(w.fault_percent.get());
        let fault = if faulty { w.entropy.below(3) } else { 99 };
        if fault == 0 {
            // Delayed: a copy reaches the server later, after newer requests.
            w.faults.borrow_mut().delayed += 1;
            w.delayed.borrow_mut().push((req.clone(), self.user));
        }
        let resp = w.apply(req, self.user);
        match fault {
            1 => {
                w.faults.borrow_mut().duplicates += 1;
                let again = w.apply(req, self.user);
                assert_eq!(
                    again,
                    PushResponse {
                        cursor: again.cursor,
                        ..resp.clone()
                    },
                    "a duplicate push must replay the same results"
                );
                Ok(resp)
            }
            2 => {
                w.faults.borrow_mut().dropped_responses += 1;
                Err(TransportError::Timeout)
            }
            _ => Ok(resp),
        }
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let w = &self.world;
        w.fault_before()?;
        w.check_token(meta)?;
        if let Some(broken) = w.broken_pull(cursor) {
            return broken;
        }
        let page = w
            .server
            .borrow()
            .pull_filtered(&w.tenant, cursor, limit, &meta.collections);
        let page = page.map_err(|PullError::CursorExpired { .. }| TransportError::CursorExpired)?;
        let (page, hidden) = w.readers.borrow().filter(self.user, page);
        {
            let mut f = w.faults.borrow_mut();
            f.rows_hidden += hidden;
            f.removals += page.revoked.len() as u64;
        }
        if w.entropy.chance(w.fault_percent.get() / 2) {
            w.faults.borrow_mut().dropped_responses += 1;
            return Err(TransportError::Timeout);
        }
        Ok(PullResponse {
            server_time: w.server_now.get(),
            limits: w.limits(),
            ..page
        })
    }
}

/// Hands out the token generation the server currently accepts (after a refresh).
pub struct SimTokens {
    pub world: Rc<World>,
    pub cached: Cell<u64>,
}

impl TokenSource for SimTokens {
    async fn token(&self, refresh: bool) -> Result<Option<String>, String> {
        if refresh || self.cached.get() == 0 {
            self.cached.set(self.world.token_generation.get());
        }
        Ok(Some(format!("token-{}", self.cached.get())))
    }
}
