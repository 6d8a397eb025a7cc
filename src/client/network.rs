//! The network loop (leader only) and the browser signals that drive it.
//!
//! The loop runs `engine.sync()` whenever the engine says a cycle is due, then sleeps until
//! the engine's next attempt time, a poke, a write (debounced), `online`, the tab becoming
//! visible, or — while the live stream is down — the polling interval. Whether the network
//! works is decided by the outcome of real requests (the core's state machine);
//! `online`/`offline` events only make it try sooner or show offline sooner.

use super::Client;
use crate::platform::{document, global_target, navigator_online, JsTokens};
use crate::transport::LiveStream;
use ferry_core::ports::TokenSource;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Polling interval while the live stream is unavailable.
pub const POLL_MS: u64 = 30_000;
/// How long the loop waits after a write for more writes before it pushes.
pub const WRITE_DEBOUNCE_MS: u32 = 25;
/// Longest single sleep (timers drift; the loop re-checks after it).
const MAX_SLEEP_MS: u64 = 60 * 60 * 1000;

/// An event listener, removed when dropped.
pub struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    closure: Closure<dyn FnMut()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.event, self.closure.as_ref().unchecked_ref());
    }
}

pub(super) fn listen(
    target: web_sys::EventTarget,
    event: &'static str,
    f: impl FnMut() + 'static,
) -> Listener {
    let closure = Closure::<dyn FnMut()>::new(f);
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    Listener {
        target,
        event,
        closure,
    }
}

impl Client {
    /// `online`, `offline` and `visibilitychange`.
    pub(super) fn listen_to_browser(&self) {
        let mut listeners = Vec::new();
        let me = self.me.clone();
        listeners.push(listen(global_target(), "online", move || {
            if let Some(c) = me.upgrade() {
                c.engine.network_up();
                c.wake_network(false);
                c.publish_sync_state();
            }
        }));
        let me = self.me.clone();
        listeners.push(listen(global_target(), "offline", move || {
            if let Some(c) = me.upgrade() {
                c.engine.network_down();
                c.publish_sync_state();
            }
        }));
        if let Some(doc) = document() {
            let me = self.me.clone();
            let d = doc.clone();
            listeners.push(listen(doc.into(), "visibilitychange", move || {
                if let Some(c) = me.upgrade() {
                    if d.visibility_state() == web_sys::VisibilityState::Visible {
                        c.engine.nudge();
                        c.wake_network(false);
                    }
                }
            }));
        }
        *self.listeners.borrow_mut() = listeners;
        if !navigator_online() {
            self.engine.network_down();
        }
    }

    /// Wakes the loop; `debounce` after a write, so a burst goes out as one push.
    pub(super) fn wake_network(&self, debounce: bool) {
        if debounce {
            // One timer for a burst of commits, not one per commit.
            if self.wake_pending.replace(true) {
                return;
            }
            if let Some(me) = self.rc() {
                wasm_bindgen_futures::spawn_local(async move {
                    crate::platform::sleep_ms(WRITE_DEBOUNCE_MS).await;
                    me.wake_pending.set(false);
                    me.wake.notify();
                });
            }
        } else {
            self.wake.notify();
        }
    }

    /// Runs the network loop while this tab leads and is open.
    pub(super) async fn run_network(self: Rc<Self>) {
        let hook = Rc::downgrade(&self);
        self.transport.set_on_request(Rc::new(move || {
            if let Some(c) = hook.upgrade() {
                c.publish_sync_state();
            }
        }));
        while self.is_leader() && !self.is_closed() {
            if self.engine.is_due() {
                self.engine.sync().await;
                // Only the live queries of collections the cycle changed are recomputed.
                self.changed(true);
                self.announce_commits();
                self.tell_peers(
                    serde_json::json!({"t": "state", "from": self.instance, "state": self.own_sync_state()}),
                );
                self.clone().after_cycle().await;
                continue;
            }
            let now = self.engine.now_ms();
            let live = self.live.borrow().as_ref().is_some_and(LiveStream::is_open);
            let mut sleep = self
                .engine
                .next_attempt_at_ms()
                .map_or(MAX_SLEEP_MS, |t| t.saturating_sub(now));
            if !live {
                sleep = sleep.min(POLL_MS);
            }
            let notified = self.wake.wait(sleep.min(MAX_SLEEP_MS) as u32).await;
            if !notified && !live {
                self.engine.nudge();
            }
        }
    }

    /// After a cycle: reconnect the live stream, refresh the storage estimate.
    async fn after_cycle(self: Rc<Self>) {
        let connected = self.live.borrow().as_ref().is_some_and(LiveStream::is_open);
        if self.options.live && !connected && self.engine.sync_state().last_error.is_none() {
            self.connect_live().await;
        }
        self.clone().spawn_storage_check(false);
    }

    async fn connect_live(&self) {
        let token = JsTokens::new(self.options.get_token.clone())
            .token(false)
            .await
            .ok()
            .flatten();
        let poke = self.me.clone();
        let on_poke = move |cursor: u64| {
            if let Some(c) = poke.upgrade() {
                if cursor == 0 || cursor > c.engine.replica().cursor() {
                    c.engine.nudge();
                    c.wake_network(false);
                }
            }
        };
        let fail = self.me.clone();
        let on_fail = move || {
            if let Some(c) = fail.upgrade() {
                c.wake.notify(); // re-plan the sleep: polling takes over
            }
        };
        *self.live.borrow_mut() =
            LiveStream::connect(&self.options.url, token.as_deref(), on_poke, on_fail);
    }

    /// Reads `navigator.storage` (asking for persistence on open) into the sync state.
    pub(super) fn spawn_storage_check(self: Rc<Self>, ask_persist: bool) {
        wasm_bindgen_futures::spawn_local(async move {
            let info = crate::platform::storage_info(ask_persist).await;
            *self.storage.borrow_mut() = info;
            self.publish_sync_state();
        });
    }
}
