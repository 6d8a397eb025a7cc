//! The head start the package entry gives `Ferry.open`: while the WebAssembly module is
//! fetched and compiled, `earlyOpen` (in `store/commit.js`) takes the leader lock if it is
//! free and reads every stored row, with the tabs' channel already open (what other tabs say
//! after the read began is kept for the engine: see `tabs.rs`). [`EarlyOpen`] is what it
//! found, handed over with the options under the symbol `Symbol.for('ferry.earlyOpen')`.

use crate::store::IdbStore;
use crate::tabs::Leadership;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The key of the early read's promise in the options object.
pub const OPTION_KEY: &str = "ferry.earlyOpen";

/// What `earlyOpen` found: the leader lock (its release function), the rows, and the tabs'
/// channel with what it heard since it opened (before the read).
#[derive(Default)]
pub struct EarlyOpen {
    release: Option<Function>,
    version: f64,
    raw: JsValue,
    channel: Option<web_sys::BroadcastChannel>,
    heard: Option<Array>,
}

impl EarlyOpen {
    /// The early read's promise in `options`, if the package entry started one.
    pub fn promise_in(options: &JsValue) -> Option<Promise> {
        let key = js_sys::Symbol::for_(OPTION_KEY);
        Reflect::get(options, &key.into())
            .ok()?
            .dyn_into::<Promise>()
            .ok()
    }

    /// Waits for the early read; nothing when there was none (or it failed).
    pub async fn settle(promise: Option<Promise>) -> EarlyOpen {
        let Some(promise) = promise else {
            return EarlyOpen::default();
        };
        let Ok(found) = JsFuture::from(promise).await else {
            return EarlyOpen::default();
        };
        let get = |name: &str| Reflect::get(&found, &name.into()).unwrap_or(JsValue::UNDEFINED);
        EarlyOpen {
            release: get("release").dyn_into::<Function>().ok(),
            version: get("version").as_f64().unwrap_or(0.0),
            raw: get("raw"),
            channel: get("channel").dyn_into().ok(),
            heard: get("heard").dyn_into().ok(),
        }
    }

    /// The tabs' channel opened before the read, and the notices it heard meanwhile.
    pub fn take_channel(&mut self) -> Option<(web_sys::BroadcastChannel, Array)> {
        let channel = self.channel.take()?;
        Some((channel, self.heard.take().unwrap_or_default()))
    }

    /// The leader lock, if the early read took it; its rows go to `store`'s first load when
    /// they fit (see [`IdbStore::adopt_early_read`]).
    pub fn take_lock(&mut self, store: &IdbStore) -> Option<Leadership> {
        let release = self.release.clone()?;
        store.adopt_early_read(self.version, std::mem::take(&mut self.raw));
        Some(Leadership::adopt(release))
    }

    /// Gives the lock up, when the open failed (a no-op once the leader released it), and
    /// closes the channel if the engine did not take it over.
    pub fn release(&self) {
        if let Some(release) = &self.release {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
        if let Some(channel) = &self.channel {
            channel.close();
        }
    }
}
