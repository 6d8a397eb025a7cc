//! What the browser says about the connection (`navigator.connection`, where it exists:
//! Chromium): save-data and a metered or slow link make the engine treat the network as poor,
//! so critical collections go first (`ferry_core::priority`). Read at open and on every
//! `change` of the connection.

use super::network::listen;
use super::Client;
use crate::platform::global_property;
use ferry_core::priority::LinkHints;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

/// The connection object, when the browser has one.
fn connection() -> Option<JsValue> {
    let c = Reflect::get(&global_property("navigator"), &"connection".into()).ok()?;
    (!c.is_undefined() && !c.is_null()).then_some(c)
}

/// The hints of `navigator.connection` now.
pub fn hints() -> LinkHints {
    let Some(c) = connection() else {
        return LinkHints::default();
    };
    let text = |k: &str| Reflect::get(&c, &k.into()).ok().and_then(|v| v.as_string());
    let save_data = Reflect::get(&c, &"saveData".into()).is_ok_and(|v| v.is_truthy());
    // `metered` is not standard everywhere; the cellular type and a 2g-class effective type
    // say the same in practice.
    let metered = Reflect::get(&c, &"metered".into()).is_ok_and(|v| v.is_truthy())
        || text("type").as_deref() == Some("cellular")
        || matches!(text("effectiveType").as_deref(), Some("slow-2g" | "2g"));
    LinkHints { save_data, metered }
}

impl Client {
    /// Tells the engine the link's hints now and on every change (call after
    /// `listen_to_browser`: the listener joins the client's, removed with them).
    pub(super) fn watch_link(&self) {
        self.engine.set_link_hints(hints());
        let Some(target) = connection().and_then(|c| c.dyn_into::<web_sys::EventTarget>().ok())
        else {
            return;
        };
        let me = self.me.clone();
        let listener = listen(target, "change", move || {
            if let Some(c) = me.upgrade() {
                c.engine.set_link_hints(hints());
                c.publish_sync_state();
            }
        });
        self.listeners.borrow_mut().push(listener);
    }
}
