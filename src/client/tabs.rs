//! This client among the other tabs of the same database: the notices it sends and gets,
//! taking over as leader, and reloading the replica after another tab committed.
//!
//! Notices go out only while other tabs are known (`peers`): a tab says `hello` when it
//! joins and `bye` when it closes, and the first message from an unknown tab makes both
//! reload once, so nothing committed before they knew of each other is missed. A lone tab
//! then pays nothing per commit for tabs that are not there.
//!
//! The tab's role is the engine's [`Role`] (coalescing and base ownership follow from it).
//! A new leader first reloads everything from the store and takes the role in the same
//! step ([`ferry_core::engine::Engine::reload`]), so it pushes what the other tabs —
//! including a closed leader — wrote.

use super::views::RefreshState;
use super::Client;
use crate::tabs::{Channel, Leadership};
use ferry_core::engine::Role;
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
        // Reloaded after every earlier leader's last commit (the lock is held), and no other
        // tab pulls while this one leads: no stored base can be newer than this tab's.
        if reload {
            while !self.refresh_from_store(Role::Leader).await {
                crate::platform::sleep_ms(REFRESH_RETRY_MS).await;
            }
        } else if !self.is_closed() {
            self.engine.set_role(Role::Leader);
        }
        if self.is_closed() {
            return;
        }
        *self.leader_state.borrow_mut() = None;
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
            while !self.is_closed() && !self.refresh_from_store(self.engine.role()).await {
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

    /// Replaces the replica with what is stored, taking `role`; false (nothing done) while
    /// local changes are unsaved or a commit or sync cycle is under way.
    async fn refresh_from_store(&self, role: Role) -> bool {
        if self.is_closed() {
            return true;
        }
        if self.flush_scheduled.get() {
            return false;
        }
        if !matches!(self.engine.reload(role).await, Ok(true)) {
            return false;
        }
        self.changed(true);
        true
    }
}
