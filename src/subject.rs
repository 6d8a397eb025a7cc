//! The value behind every observable: the current JS value, a fingerprint of it (so an
//! unchanged value keeps its reference, as `getSnapshot()` requires) and the subscribers.
//! A subscriber is a function or an object with `next`; one that throws is reported on
//! the console and does not stop the others.

use std::cell::{Cell, RefCell};
use wasm_bindgen::JsValue;

/// A current value and the subscribers told when it changes.
pub struct Subject {
    value: RefCell<JsValue>,
    fingerprint: RefCell<Option<String>>,
    subscribers: RefCell<Vec<(u32, JsValue)>>,
    next_id: Cell<u32>,
}

impl Default for Subject {
    fn default() -> Self {
        Subject::new(JsValue::UNDEFINED)
    }
}

impl Subject {
    pub fn new(value: JsValue) -> Self {
        Subject {
            value: RefCell::new(value),
            fingerprint: RefCell::new(None),
            subscribers: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
        }
    }

    pub fn get(&self) -> JsValue {
        self.value.borrow().clone()
    }

    /// Sets a new value unless `fingerprint` equals the current one's; `make` builds it.
    pub fn set_if_changed(&self, fingerprint: String, make: impl FnOnce() -> JsValue) {
        if self.fingerprint.borrow().as_deref() == Some(fingerprint.as_str()) {
            return;
        }
        *self.fingerprint.borrow_mut() = Some(fingerprint);
        *self.value.borrow_mut() = make();
        self.notify();
    }

    /// Adds a subscriber and calls it at once with the current value.
    pub fn subscribe(&self, observer: JsValue) -> u32 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.subscribers.borrow_mut().push((id, observer.clone()));
        deliver(&observer, &self.get());
        id
    }

    pub fn unsubscribe(&self, id: u32) {
        self.subscribers.borrow_mut().retain(|(i, _)| *i != id);
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.borrow().len()
    }

    fn notify(&self) {
        let value = self.get();
        let subscribers: Vec<JsValue> = self
            .subscribers
            .borrow()
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        for s in subscribers {
            deliver(&s, &value);
        }
    }
}

fn deliver(observer: &JsValue, value: &JsValue) {
    use wasm_bindgen::JsCast;
    let result = if let Some(f) = observer.dyn_ref::<js_sys::Function>() {
        f.call1(&JsValue::UNDEFINED, value)
    } else {
        match js_sys::Reflect::get(observer, &"next".into())
            .ok()
            .and_then(|n| n.dyn_into::<js_sys::Function>().ok())
        {
            Some(next) => next.call1(observer, value),
            None => Ok(JsValue::UNDEFINED),
        }
    };
    if let Err(e) = result {
        web_sys::console::error_2(&"ferry: a subscriber threw".into(), &e);
    }
}
