//! This client among the other tabs of the same database: the notices it sends and gets,
//! taking over as leader, and reloading the replica after another tab committed.
//!
//! Notices go out only while other tabs are known (`peers`): a tab says `hello` when it
//! joins and `bye` when it closes, and the first message from an unknown tab makes both
//! reload once, so nothing committed before they knew of each other is missed. A lone tab
//! then pays nothing per commit for tabs that are not there.
//!
//! A follower writes append-only (`coalesce = false`), so it never rewrites an entry the
//! leader may be freezing; the leader coalesces. A new leader first reloads everything
//! from the store, so it pushes what the other tabs — including a closed leader — wrote.

use super::views::RefreshState;
use super::Client;
use crate::tabs::{Channel, Leadership};
use ferry_core::ports::Store;
use ferry_core::replica::Replica;
use ferry_core::state::Status;
use std::rc::Rc;

/// How often a deferred reload checks whether it may run.
const REFRESH_RETRY_MS: u32 = 20;

impl Client {
    /// The leader lock's name for this database.
    pub(super) fn leader_lock(name: &str) -> String {
        format!("ferry:{name}:leader")
    }

    /// Joins the other tabs. `early` is the leader lock when [`Client::open`] could take it
    /// before loading: then what was loaded is already the leader's view.
    pub(super) fn join_tabs(&self, early: Option<Leadership>) {
        let name = &self.options.name;
        let me = self.me.clone();
        let channel = Channel::open(&format!("ferry:{name}"), move |message| {
            if let Some(c) = me.upgrade() {
                c.on_tab_message(&message);
            }
        });
        *self.channel.borrow_mut() = Some(channel);
        self.broadcast(serde_json::json!({"t": "hello", "from": self.instance}));
        if let Some(lock) = early {
            *self.leadership.borrow_mut() = Some(lock);
            if let Some(me) = self.rc() {
                wasm_bindgen_futures::spawn_local(me.become_leader(false));
            }
            return;
        }
        let me = self.me.clone();
        let leadership = Leadership::request(&Self::leader_lock(name), move || {
            if let Some(c) = me.upgrade() {
                wasm_bindgen_futures::spawn_local(c.become_leader(true));
            }
        });
        *self.leadership.borrow_mut() = Some(leadership);
    }

    fn on_tab_message(&self, message: &serde_json::Value) {
        let Some(from) = message["from"].as_str() else {
            return;
        };
        if self.is_closed() || from == self.instance {
            return;
        }
        if message["t"].as_str() == Some("bye") {
            self.peers.borrow_mut().remove(from);
            return;
        }
        if self.peers.borrow_mut().insert(from.to_owned()) {
            // First word from this tab. Until now this tab's commits were not announced to
            // it, nor its to this one: reload, and tell it to reload (which, the other way
            // round, makes it do the same once for this tab).
            self.request_refresh();
            self.broadcast(serde_json::json!({"t": "changed", "from": self.instance}));
            if self.is_leader() {
                self.tell_peers(
                    serde_json::json!({"t": "state", "from": self.instance, "state": self.own_sync_state()}),
                );
            }
        }
        match message["t"].as_str() {
            Some("changed") => self.request_refresh(),
            Some("state") if !self.is_leader() => {
                *self.leader_state.borrow_mut() = Some(message["state"].clone());
                self.publish_sync_state();
            }
            Some("sync") if self.is_leader() => {
                self.engine.nudge();
                self.wake_network(false);
            }
            _ => {}
        }
    }

    /// Runs this tab as the leader; `reload`: first replace the replica with what is stored
    /// (the lock came after the load, so earlier leaders may have committed since).
    async fn become_leader(self: Rc<Self>, reload: bool) {
        if self.is_closed() {
            return;
        }
        self.leader.set(true);
        *self.leader_state.borrow_mut() = None;
        while reload && !self.refresh_from_store().await {
            crate::platform::sleep_ms(REFRESH_RETRY_MS).await;
        }
        // Reloaded after every earlier leader's last commit (the lock is held), and no other
        // tab pulls while this one leads: no stored base can be newer than this tab's.
        if !self.is_closed() {
            self.store.set_bases_are_mine(true);
        }
        self.engine.nudge();
        self.changed(true);
        self.run_network().await;
    }

    /// Reloads the replica soon (another tab committed).
    pub(super) fn request_refresh(&self) {
        match self.refresh.get() {
            RefreshState::Idle => {
                self.refresh.set(RefreshState::Running);
                if let Some(me) = self.rc() {
                    wasm_bindgen_futures::spawn_local(me.refresh_loop());
                }
            }
            RefreshState::Running => self.refresh.set(RefreshState::Again),
            RefreshState::Again => {}
        }
    }

    async fn refresh_loop(self: Rc<Self>) {
        loop {
            while !self.is_closed() && !self.refresh_from_store().await {
                crate::platform::sleep_ms(REFRESH_RETRY_MS).await;
            }
            if self.refresh.get() == RefreshState::Again {
                self.refresh.set(RefreshState::Running);
                continue;
            }
            self.refresh.set(RefreshState::Idle);
            break;
        }
        if self.is_leader() && self.engine.replica().outbox_depth() > 0 {
            self.engine.nudge();
            self.wake_network(false);
        }
    }

    /// Replaces the replica with what is stored; false (nothing done) while local changes
    /// are unsaved or a commit or sync cycle is under way.
    async fn refresh_from_store(&self) -> bool {
        if self.is_closed() {
            return true;
        }
        self.store.barrier().await;
        let Ok(stored) = self.store.load().await else {
            return false;
        };
        let busy = self.engine.replica().has_unsaved_changes()
            || self.store.is_committing()
            || self.engine.is_committing()
            || self.flush_scheduled.get()
            || self.engine.sync_state().status == Status::Syncing;
        if busy {
            return false;
        }
        let client_id = self.engine.replica().client_id().to_owned();
        let mut config = self.config.clone();
        config.coalesce = self.is_leader();
        *self.engine.replica_mut() = Replica::open(stored, config, || client_id);
        self.changed(true);
        true
    }
}
