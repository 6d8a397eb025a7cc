//! `DeadLetter`: a mutation the server refused for good, with `retry(edited?)` and
//! `discard()`.

use super::{js, rejecting};
use crate::client::Client;
use crate::interop::{fields_from_js, row_value, to_js};
use ferry_core::policy::State;
use ferry_core::replica::DeadLetter as Letter;
use js_sys::Promise;
use std::rc::Weak;
use wasm_bindgen::prelude::*;

/// A refused mutation.
#[wasm_bindgen]
pub struct DeadLetter {
    client: Weak<Client>,
    letter: Letter,
}

impl DeadLetter {
    pub fn new(client: Weak<Client>, letter: Letter) -> DeadLetter {
        DeadLetter { client, letter }
    }
}

#[wasm_bindgen]
impl DeadLetter {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.letter.letter_id.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn collection(&self) -> String {
        self.letter.collection.clone()
    }

    #[wasm_bindgen(getter, js_name = recordId)]
    pub fn record_id(&self) -> String {
        self.letter.record_id.clone()
    }

    /// The server's error code (for example `validation_failed`).
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.letter.code.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.letter.message.clone()
    }

    /// The record as the user wanted it (`null`: a delete).
    #[wasm_bindgen(getter, unchecked_return_type = "FerryRecord | null")]
    pub fn desired(&self) -> JsValue {
        match self.letter.desired.deleted {
            true => JsValue::NULL,
            false => to_js(&row_value(
                &self.letter.record_id,
                &self.letter.desired.fields,
            )),
        }
    }

    #[wasm_bindgen(getter, js_name = failedAt)]
    pub fn failed_at(&self) -> f64 {
        self.letter.failed_at_ms as f64
    }

    /// Sends it again, as it was or as `edited`; resolves when durable. A bad edit or a
    /// closed database rejects the promise.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn retry(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "FerryRecord")] edited: Option<JsValue>,
    ) -> Promise {
        rejecting(self.try_retry(edited))
    }

    /// Drops it; the record stays as the server has it. Resolves when durable.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn discard(&self) -> Promise {
        rejecting(self.try_discard())
    }
}

impl DeadLetter {
    fn try_retry(&self, edited: Option<JsValue>) -> Result<Promise, JsValue> {
        let edited = match edited.filter(|e| !e.is_undefined() && !e.is_null()) {
            None => None,
            Some(edited) => {
                let mut fields = js(fields_from_js(&edited, "the edited record"))?;
                fields.remove("id");
                Some(State::live(fields))
            }
        };
        let client = js(crate::client::upgrade(&self.client))?;
        let id = self.letter.letter_id.clone();
        js(client.act(move |replica, now| replica.retry_dead_letter(&id, edited, now).map(|_| ())))
    }

    fn try_discard(&self) -> Result<Promise, JsValue> {
        let client = js(crate::client::upgrade(&self.client))?;
        let id = self.letter.letter_id.clone();
        js(client.act(move |replica, _| replica.discard_dead_letter(&id)))
    }
}
