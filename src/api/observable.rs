//! `Observable<T>`: one object that works with every framework without an adapter.
//!
//! - `subscribe(fn | {next})` calls at once with the current value and returns an
//!   unsubscribe function (that also has `.unsubscribe()`, like an RxJS subscription);
//! - `getSnapshot()` returns the same reference until the value changes (React's
//!   `useSyncExternalStore`);
//! - `[Symbol.observable]()` (and `"@@observable"`) return the observable itself (RxJS `from()`).

use crate::client::Query;
use crate::subject::Subject;
use js_sys::{Function, Reflect};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;

/// A live value (its TypeScript type is declared generically in [`super::types`]).
#[wasm_bindgen(skip_typescript)]
pub struct Observable {
    subject: Rc<Subject>,
    _query: Option<Rc<Query>>,
}

impl Observable {
    /// The JS object for `subject`, with the interop symbols set.
    pub fn create(subject: Rc<Subject>, query: Option<Rc<Query>>) -> JsValue {
        let object: JsValue = Observable {
            subject,
            _query: query,
        }
        .into();
        // `this`, not a Rust closure holding the object: a closure would keep the object
        // reachable from wasm for ever, so it could never be collected.
        let itself: JsValue = Function::new_no_args("return this").into();
        let _ = Reflect::set(&object, &"@@observable".into(), &itself);
        let symbol_ctor = crate::platform::global_property("Symbol");
        let observable_symbol =
            Reflect::get(&symbol_ctor, &"observable".into()).unwrap_or(JsValue::UNDEFINED);
        if observable_symbol.is_symbol() {
            let _ = Reflect::set(&object, &observable_symbol, &itself);
        }
        object
    }
}

#[wasm_bindgen]
impl Observable {
    /// Calls `observer` now and on every change; returns the unsubscribe function.
    pub fn subscribe(&self, observer: JsValue) -> Result<Function, JsValue> {
        if let Some(query) = &self._query {
            query.refresh_if_stale();
        }
        let callable = observer.is_function()
            || Reflect::get(&observer, &"next".into())
                .map(|n| n.is_function())
                .unwrap_or(false);
        if !callable {
            return Err(crate::interop::js_error(
                "invalid_argument",
                "subscribe needs a function or an object with next()",
            ));
        }
        let id = self.subject.subscribe(observer);
        if let Some(query) = &self._query {
            query.hold();
        }
        let subject = Rc::downgrade(&self.subject);
        let query = self._query.as_ref().map(Rc::downgrade);
        let unsubscribe: Function = Closure::<dyn Fn()>::new(move || {
            if let Some(s) = subject.upgrade() {
                s.unsubscribe(id);
            }
            if let Some(q) = query.as_ref().and_then(|q| q.upgrade()) {
                q.release_if_unwatched();
            }
        })
        .into_js_value()
        .unchecked_into();
        let _ = Reflect::set(&unsubscribe, &"unsubscribe".into(), &unsubscribe);
        Ok(unsubscribe)
    }

    /// The current value; the same reference until it changes.
    #[wasm_bindgen(js_name = getSnapshot)]
    pub fn get_snapshot(&self) -> JsValue {
        if let Some(query) = &self._query {
            query.refresh_if_stale();
        }
        self.subject.get()
    }
}
