//! This client among the other tabs of the same database: the notices it sends and gets,
//! taking over as leader, and taking in what another tab committed.
//!
//! A tab that committed says which records it wrote (`changed` with `keys`, from
//! [`ferry_core::engine::Engine::take_committed`]); the others re-read just those, plus the
//! meta, outbox, conflicts and dead letters ([`ferry_core::engine::Engine::refresh`]), so a
//! follower's cost per commit follows what changed, not what is stored. A notice without
//! keys (first contact, a re-created database, a commit of more than
//! [`ferry_core::engine::MAX_COMMITTED_KEYS`] records) makes them reload everything.
//!
//! Notices go out only while other tabs are known (`peers`); a lone tab keeps what it
//! committed (bounded: past [`ferry_core::engine::MAX_COMMITTED_KEYS`] records it becomes
//! "everything") and pays nothing per commit for tabs that are not there. A tab says `hello`
//! when it joins and `bye` when it closes. On the first word from a tab it did not know, a
//! tab announces what it kept, so the other takes in by key what was committed before they
//! knew of each other; this also answers a `hello`, so a joining tab hears from every tab.
//! A tab's channel opens before its load reads anything (in the package entry's early read,
//! or just before the engine's load), and what it hears meanwhile waits in a [`TabInbox`]
//! until the client exists: every commit the load's read may have missed is heard, so a
//! joining tab takes it in by key and never reads everything a second time. (Before, the
//! channel opened after the load and the joining tab read everything again on first contact:
//! a second whole replica beside the first, which at 1,000,000 records ran the wasm memory
//! out.) The tabs already running never reload for a tab that joins either: before, they
//! did, and at 100,000 records the leader's full read (1.8 s) held its commit pipeline, so
//! every write while a second tab opened waited for it.
//!
//! The tab's role is the engine's [`Role`] (coalescing and base ownership follow from it).
//! A new leader first reloads everything from the store and takes the role in the same
//! step ([`ferry_core::engine::Engine::reload`]), so it pushes what the other tabs —
//! including a closed leader — wrote.

use super::Client;
use crate::tabs::{parse_notice, Channel, Leadership};
use ferry_core::engine::{Committed, Role};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};

/// How often a deferred reload checks whether it may run.
const REFRESH_RETRY_MS: u32 = 20;

impl Client {
    /// The leader lock's name for this database.
    pub(super) fn leader_lock(name: &str) -> String {
        format!("ferry:{name}:leader")
    }

    /// Joins the other tabs on `channel` (opened before the load), taking in first what
    /// `inbox` heard while loading. `early` is the leader lock when [`Client::open`] could
    /// take it before loading: then what was loaded is already the leader's view.
    pub(super) fn join_tabs(
        self: &Rc<Self>,
        early: Option<Leadership>,
        inbox: &TabInbox,
        channel: Channel,
    ) {
        let name = &self.options.name;
        *self.channel.borrow_mut() = Some(channel);
        inbox.deliver_to(self);
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
            // First word from this tab (see the module docs): tell it what this tab committed
            // while it did not know it.
            self.announce_commits();
            if self.is_leader() {
                self.tell_peers(
                    serde_json::json!({"t": "state", "from": self.instance, "state": self.own_sync_state()}),
                );
            }
        }
        match message["t"].as_str() {
            Some("changed") => self.request_refresh(told_in(message)),
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
            while !self
                .refresh_from_store(Role::Leader, &Committed::Everything)
                .await
            {
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

    /// Tells the other tabs what this tab's commits wrote since the last notice (see the
    /// module docs). While no other tab is known, nothing is sent and what was committed is
    /// kept for the first tab met.
    pub(super) fn announce_commits(&self) {
        if self.peers.borrow().is_empty() {
            return;
        }
        let told = self.engine.take_committed();
        let message = match told {
            Committed::Keys(keys) => {
                let keys: Vec<[&String; 2]> = keys.iter().map(|(c, i)| [c, i]).collect();
                serde_json::json!({"t": "changed", "from": self.instance, "keys": keys})
            }
            Committed::Everything => serde_json::json!({"t": "changed", "from": self.instance}),
        };
        self.broadcast(message);
    }

    /// Takes in soon what another tab committed (`told`), with whatever else is told
    /// before this tab gets to it.
    pub(super) fn request_refresh(&self, told: Committed) {
        {
            let mut pending = self.refresh_pending.borrow_mut();
            match pending.as_mut() {
                Some(pending) => pending.merge(told),
                None => *pending = Some(told),
            }
        }
        if !self.refresh_running.replace(true) {
            if let Some(me) = self.rc() {
                wasm_bindgen_futures::spawn_local(me.refresh_loop());
            }
        }
    }

    async fn refresh_loop(self: Rc<Self>) {
        loop {
            let Some(mut told) = self.refresh_pending.borrow_mut().take() else {
                break;
            };
            while !self.is_closed() && !self.refresh_from_store(self.engine.role(), &told).await {
                crate::platform::sleep_ms(REFRESH_RETRY_MS).await;
                // What was told meanwhile joins the next attempt.
                if let Some(more) = self.refresh_pending.borrow_mut().take() {
                    told.merge(more);
                }
            }
        }
        self.refresh_running.set(false);
        if self.is_leader() && self.engine.replica().outbox_depth() > 0 {
            self.engine.nudge();
            self.wake_network(false);
        }
    }

    /// Takes in what another tab committed (`told`), taking `role`; false (nothing done)
    /// while local changes are unsaved or a commit or sync cycle is under way.
    async fn refresh_from_store(&self, role: Role, told: &Committed) -> bool {
        if self.is_closed() {
            return true;
        }
        if self.flush_scheduled.get() {
            return false;
        }
        if !matches!(self.engine.refresh(role, told).await, Ok(true)) {
            return false;
        }
        self.changed(true);
        true
    }
}

/// What a `changed` notice says was committed: its keys, or everything when it names none.
fn told_in(message: &serde_json::Value) -> Committed {
    let Some(keys) = message["keys"].as_array() else {
        return Committed::Everything;
    };
    let mut named = BTreeSet::new();
    for key in keys {
        match (key[0].as_str(), key[1].as_str()) {
            (Some(collection), Some(id)) => {
                named.insert((collection.to_owned(), id.to_owned()));
            }
            // A notice this code cannot read: take in everything rather than miss a record.
            _ => return Committed::Everything,
        }
    }
    Committed::Keys(named)
}

/// What other tabs say before the client exists (see the module docs): kept until
/// [`TabInbox::deliver_to`], then passed straight on. Bounded by what other tabs commit
/// during one load: a notice per commit or sync cycle, each naming at most
/// [`ferry_core::engine::MAX_COMMITTED_KEYS`] records.
pub(super) struct TabInbox(RefCell<Inbox>);

enum Inbox {
    Waiting(Vec<serde_json::Value>),
    Open(Weak<Client>),
}

impl TabInbox {
    /// Listens on the channel of database `name` — the package entry's, with what it heard,
    /// when its early read opened one — keeping what is heard until the client exists.
    pub(super) fn listen(
        name: &str,
        early: Option<(web_sys::BroadcastChannel, js_sys::Array)>,
    ) -> (Rc<TabInbox>, Channel) {
        let inbox = Rc::new(TabInbox(RefCell::new(Inbox::Waiting(Vec::new()))));
        let to = inbox.clone();
        let deliver = move |message| to.receive(message);
        let channel = match early {
            Some((channel, heard)) => {
                for data in heard.iter() {
                    if let Some(message) = parse_notice(&data) {
                        inbox.receive(message);
                    }
                }
                Channel::adopt(channel, deliver)
            }
            None => Channel::open(&format!("ferry:{name}"), deliver),
        };
        (inbox, channel)
    }

    fn receive(&self, message: serde_json::Value) {
        let client = match &mut *self.0.borrow_mut() {
            Inbox::Waiting(waiting) => {
                waiting.push(message);
                return;
            }
            Inbox::Open(client) => client.upgrade(),
        };
        if let Some(client) = client {
            client.on_tab_message(&message);
        }
    }

    /// From now on passes every notice to `client`, first the ones kept so far.
    fn deliver_to(&self, client: &Rc<Client>) {
        let kept = std::mem::replace(
            &mut *self.0.borrow_mut(),
            Inbox::Open(Rc::downgrade(client)),
        );
        if let Inbox::Waiting(kept) = kept {
            for message in &kept {
                client.on_tab_message(message);
            }
        }
    }
}
