//! `Conflict`: one entry of the conflict inbox — a local edit that met a different server
//! state and needs a person — with `resolve('local' | 'server' | merged)`.

use super::{js, rejecting};
use crate::client::Client;
use crate::interop::{fields_from_js, invalid, row_value, to_js};
use ferry_core::policy::State;
use ferry_core::replica::Choice;
use ferry_core::replica::ConflictEntry;
use js_sys::Promise;
use std::rc::Weak;
use wasm_bindgen::prelude::*;

/// A conflict waiting for a decision.
#[wasm_bindgen]
pub struct Conflict {
    client: Weak<Client>,
    entry: ConflictEntry,
}

impl Conflict {
    pub fn new(client: Weak<Client>, entry: ConflictEntry) -> Conflict {
        Conflict { client, entry }
    }
}

fn state_value(id: &str, state: &State) -> JsValue {
    if state.deleted {
        JsValue::NULL
    } else {
        to_js(&row_value(id, &state.fields))
    }
}

#[wasm_bindgen]
impl Conflict {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.entry.conflict_id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn collection(&self) -> String {
        self.entry.collection.clone()
    }

    #[wasm_bindgen(getter, js_name = recordId)]
    pub fn record_id(&self) -> String {
        self.entry.record_id.clone()
    }

    /// The collection's policy.
    #[wasm_bindgen(getter, unchecked_return_type = "Policy")]
    pub fn policy(&self) -> String {
        self.entry.policy.name().to_owned()
    }

    /// What both sides started from (`null`: new on this device, or deleted).
    #[wasm_bindgen(getter, unchecked_return_type = "FerryRecord | null")]
    pub fn base(&self) -> JsValue {
        self.entry
            .base
            .as_ref()
            .map_or(JsValue::NULL, |b| state_value(&self.entry.record_id, b))
    }

    /// This device's version (`null`: deleted here).
    #[wasm_bindgen(getter, unchecked_return_type = "FerryRecord | null")]
    pub fn local(&self) -> JsValue {
        state_value(&self.entry.record_id, &self.entry.local)
    }

    /// The server's version (`null`: deleted on the server).
    #[wasm_bindgen(getter, unchecked_return_type = "FerryRecord | null")]
    pub fn server(&self) -> JsValue {
        state_value(&self.entry.record_id, &State::of(&self.entry.server))
    }

    /// The fields that clashed; empty when the whole record did.
    #[wasm_bindgen(getter, unchecked_return_type = "string[]")]
    pub fn fields(&self) -> JsValue {
        to_js(&self.entry.fields)
    }

    #[wasm_bindgen(getter, js_name = createdAt)]
    pub fn created_at(&self) -> f64 {
        self.entry.created_at_ms as f64
    }

    /// Keeps `'local'`, takes `'server'`, or stores a merged record; resolves when durable.
    /// A bad choice or a closed database rejects the promise.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn resolve(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ConflictChoice")] choice: JsValue,
    ) -> Promise {
        rejecting(self.try_resolve(&choice))
    }
}

impl Conflict {
    fn try_resolve(&self, choice: &JsValue) -> Result<Promise, JsValue> {
        let choice = match choice.as_string().as_deref() {
            Some("local") => Choice::Local,
            Some("server") => Choice::Server,
            Some(other) => {
                return Err(crate::interop::core_error(&invalid(format!(
                    "unknown choice `{other}`: use 'local', 'server' or a merged record"
                ))))
            }
            None => {
                let mut fields = js(fields_from_js(choice, "the merged record"))?;
                fields.remove("id");
                Choice::Merged(State::live(fields))
            }
        };
        let client = js(crate::client::upgrade(&self.client))?;
        let id = self.entry.conflict_id.clone();
        js(client.act(move |replica, now| replica.resolve_conflict(&id, choice, now).map(|_| ())))
    }
}
