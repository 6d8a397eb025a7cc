//! Follower tabs of a simulated device: more engines over the device's one store, as more
//! tabs of one app share one IndexedDB database. The device's main engine
//! ([`SimClient::engine`]) is the leader, the one tab that syncs; a follower writes
//! append-only through the shared store (its [`Role`] says so) and follows the other tabs'
//! commits as a browser tab does when another tab says it committed: it re-reads the
//! records they name ([`crate::engine::Engine::refresh`]). Every tab's commits are
//! announced to every other tab, and after each refresh the tab must hold exactly what a
//! reopen from the store would give it.
//!
//! Leadership changes hands as in the browser: the leader tab closes or dies — right after
//! a cycle that stopped half-way (entries frozen, a push still delayed in the network, its
//! answer never heard) or at any quiet moment — and a follower reloads as the new leader and
//! retries the frozen entries under their original op ids. Every tab's events go to the
//! device's one fate book, so the invariants (nothing acknowledged lost, exactly once,
//! convergence) cover the writes of every tab; after the heal each follower must show what
//! the leader shows.

use super::check::{ShownAfterWrite, Violation};
use super::client::{SimClient, SimEngine};
use super::SimReport;
use crate::engine::{block_on, Committed, Role, WriteTicket};
use crate::memory::SeededEntropy;
use crate::replica::Replica;

/// A tab without the leader lock.
pub struct FollowerTab {
    pub engine: SimEngine,
    /// Writes not yet known durable: (entry id, ticket).
    pending: Vec<(String, WriteTicket)>,
    /// Its writes not yet known durable, for the restore watch (see `SimClient`'s).
    unsaved_shown: Vec<ShownAfterWrite>,
    /// What the other tabs committed since this tab last took it in (`None`: nothing).
    stale: Option<Committed>,
}

/// Most follower tabs a device keeps open.
const MAX_FOLLOWERS: usize = 2;

impl SimClient {
    /// The user opens another tab of the app: a follower over the device's store.
    pub fn open_follower(&mut self) -> Result<(), Violation> {
        if self.followers.len() >= MAX_FOLLOWERS {
            return Ok(());
        }
        self.tabs_opened += 1;
        let instance = format!("-t{}", self.tabs_opened);
        let engine = self.open_engine(Role::Follower, &instance)?;
        self.world.faults.borrow_mut().follower_tabs += 1;
        self.followers.push(FollowerTab {
            engine,
            pending: Vec::new(),
            unsaved_shown: Vec::new(),
            stale: None,
        });
        Ok(())
    }

    /// A follower tab writes (when the device has one) and commits; the other tabs hear of
    /// it and reload.
    pub fn follower_write(
        &mut self,
        rng: &SeededEntropy,
        report: &mut SimReport,
    ) -> Result<bool, Violation> {
        if self.followers.is_empty() {
            return Ok(false);
        }
        let t = rng.below(self.followers.len() as u64) as usize;
        let (collection, id, change) = {
            let replica = self.followers[t].engine.replica();
            super::client::random_change(&replica, rng)
        };
        report.writes += 1;
        if change == crate::replica::Change::Delete {
            self.world.watch.borrow_mut().deleted(collection, &id);
        }
        let tab = &mut self.followers[t];
        let (entry, ticket) = tab.engine.write(collection, &id, change).map_err(|e| {
            Violation::new(format!(
                "client {} follower: a valid write failed: {e}",
                self.index
            ))
        })?;
        if let Some(entry) = entry {
            tab.pending.push((entry, ticket));
        }
        if let Some(shown) = tab.engine.replica().record(collection, &id) {
            let shown = shown.state.clone();
            tab.unsaved_shown.push(((collection, id), shown, ticket));
        }
        let _ = block_on(tab.engine.flush(tab.engine.ticket()));
        self.settle_follower(t, report)?;
        self.reload_tabs()?;
        Ok(true)
    }

    /// The leader tab committed: every follower reloads when it can (a tab busy with its own
    /// commit tries again later, as the browser's does).
    pub fn leader_committed(&mut self) -> Result<(), Violation> {
        self.reload_tabs()
    }

    /// Every tab's commits since the last notice, told to the other tabs (a browser tab
    /// announces each commit with the keys it wrote).
    fn announce_commits(&mut self) {
        if self.followers.is_empty() {
            return;
        }
        let from_leader = self.engine().take_committed();
        let from_followers: Vec<Committed> = self
            .followers
            .iter()
            .map(|tab| tab.engine.take_committed())
            .collect();
        for (i, tab) in self.followers.iter_mut().enumerate() {
            mark(&mut tab.stale, from_leader.clone());
            for (j, told) in from_followers.iter().enumerate() {
                if j != i {
                    mark(&mut tab.stale, told.clone());
                }
            }
        }
        for told in from_followers {
            mark(&mut self.leader_stale, told);
        }
    }

    /// Takes the other tabs' commits into every tab that is not busy, checking that each
    /// refreshed follower holds what a reopen from the store would give it.
    pub fn reload_tabs(&mut self) -> Result<(), Violation> {
        self.announce_commits();
        if let Some(told) = self.leader_stale.take() {
            let done = block_on(self.engine().refresh(Role::Leader, &told))
                .map_err(|e| Violation::new(format!("client {}: refresh: {e}", self.index)))?;
            if !done {
                self.leader_stale = Some(told);
            }
        }
        for tab in &mut self.followers {
            let Some(told) = tab.stale.take() else {
                continue;
            };
            let done = block_on(tab.engine.refresh(Role::Follower, &told)).map_err(|e| {
                Violation::new(format!("client {} follower: refresh: {e}", self.index))
            })?;
            if done {
                check_refresh_equals_reopen(self.index, &tab.engine.replica(), &self.store)?;
            } else {
                tab.stale = Some(told);
            }
        }
        Ok(())
    }

    /// The leader tab closes or dies (its unsaved writes die with it, like a crash's; a push
    /// it sent may still be delayed in the network). The oldest follower takes the lock:
    /// it reloads as the leader, holding every entry earlier leaders froze.
    pub fn hand_over_leadership(&mut self, report: &mut SimReport) -> Result<bool, Violation> {
        if self.followers.is_empty() {
            return Ok(false);
        }
        self.settle_writes(report)?;
        report.lost_on_crash += self.pending.len() as u64;
        self.pending.clear();
        self.unsaved_shown.clear();
        let mut next = self.followers.remove(0);
        self.settle_follower_tab(&mut next, report)?;
        report.lost_on_crash += next.pending.len() as u64;
        let reloaded = block_on(next.engine.reload(Role::Leader))
            .map_err(|e| Violation::new(format!("client {}: take-over: {e}", self.index)))?;
        if !reloaded {
            return Err(Violation::new(format!(
                "client {}: a follower with nothing unsaved could not take over",
                self.index
            )));
        }
        self.replace_leader(next.engine);
        self.world.faults.borrow_mut().leader_handovers += 1;
        let online = self.online.get();
        self.set_online(online);
        for tab in &mut self.followers {
            mark(&mut tab.stale, Committed::Everything);
        }
        self.reload_tabs()?;
        Ok(true)
    }

    /// The device's tabs all die with it (a crash, a wipe).
    pub fn close_followers(&mut self) {
        self.followers.clear();
        self.leader_stale = None;
    }

    /// After the heal: every follower, reloaded, shows exactly what the leader shows.
    pub fn check_followers_follow(&mut self) -> Result<(), Violation> {
        for tab in &mut self.followers {
            mark(&mut tab.stale, Committed::Everything);
        }
        self.reload_tabs()?;
        let leader = self.engine().replica();
        for tab in &self.followers {
            if tab.stale.is_some() {
                return Err(Violation::new(format!(
                    "client {}: a follower tab could not reload after the heal",
                    self.index
                )));
            }
            let follower = tab.engine.replica();
            let same = follower.all_records().count() == leader.all_records().count()
                && follower.all_records().all(|r| {
                    leader
                        .record(&r.collection, &r.id)
                        .is_some_and(|l| l.state == r.state && l.version() == r.version())
                });
            if !same {
                return Err(Violation::new(format!(
                    "client {}: a follower tab shows other records than its leader after the heal",
                    self.index
                )));
            }
        }
        Ok(())
    }

    fn settle_follower(&mut self, t: usize, report: &mut SimReport) -> Result<(), Violation> {
        let mut tab = self.followers.remove(t);
        let result = self.settle_follower_tab(&mut tab, report);
        self.followers.insert(t, tab);
        result
    }

    /// [`SimClient::settle_writes`] for a follower: its durable writes and events go to the
    /// device's fate book.
    fn settle_follower_tab(
        &mut self,
        tab: &mut FollowerTab,
        report: &mut SimReport,
    ) -> Result<(), Violation> {
        let current = tab.engine.ticket();
        let unsaved = tab.engine.replica().has_unsaved_changes();
        let mut keep = Vec::new();
        for (entry, ticket) in tab.pending.drain(..) {
            if ticket != current {
                report.lost_on_crash += 1;
            } else if unsaved {
                keep.push((entry, ticket));
            } else {
                report.durable_writes += 1;
                self.fates.note_write(&entry);
            }
        }
        tab.pending = keep;
        let shown = std::mem::take(&mut tab.unsaved_shown);
        tab.unsaved_shown =
            (self.world.watch.borrow_mut()).wrote_if_durable(self.index, shown, current, unsaved);
        for event in tab.engine.take_events() {
            self.fates
                .apply(&event)
                .map_err(|e| Violation::new(format!("client {} follower: {e}", self.index)))?;
        }
        Ok(())
    }
}

/// Adds `told` to what a tab must take in.
fn mark(stale: &mut Option<Committed>, told: Committed) {
    match stale {
        Some(pending) => pending.merge(told),
        None => *stale = Some(told),
    }
}

/// A tab that took in the others' commits by key holds what a reopen from the store gives.
fn check_refresh_equals_reopen(
    client: usize,
    refreshed: &Replica,
    store: &crate::memory::MemoryStore,
) -> Result<(), Violation> {
    let reopened = Replica::open(store.snapshot(), refreshed.config().clone(), || {
        refreshed.meta().client_id.clone()
    });
    let differs = |what: &str| {
        Err(Violation::new(format!(
            "client {client}: a follower tab refreshed by key holds other {what} than a reopen from the store"
        )))
    };
    if !refreshed.all_records().eq(reopened.all_records()) {
        return differs("records");
    }
    if !refreshed.outbox().eq(reopened.outbox()) {
        return differs("outbox entries");
    }
    if !refreshed.conflicts().eq(reopened.conflicts()) {
        return differs("conflicts");
    }
    if !refreshed.dead_letters().eq(reopened.dead_letters()) {
        return differs("dead letters");
    }
    let (a, b) = (refreshed.meta(), reopened.meta());
    if (
        a.cursor,
        &a.client_id,
        &a.epoch,
        &a.view,
        a.resyncing,
        a.data_version,
    ) != (
        b.cursor,
        &b.client_id,
        &b.epoch,
        &b.view,
        b.resyncing,
        b.data_version,
    ) {
        return differs("sync state (meta)");
    }
    Ok(())
}
