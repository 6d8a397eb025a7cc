//! The JavaScript API, one file per JS class: [`ferry::Ferry`], [`observable::Observable`],
//! [`conflicts::Conflict`], [`dead_letters::DeadLetter`], [`first_page::FirstPage`]; the support dump in [`inspect`]; the options of `Ferry.open` in
//! [`options`] and the shared TypeScript declarations in [`types`].

pub mod conflicts;
pub mod dead_letters;
pub mod ferry;
pub mod first_page;
pub mod inspect;
pub mod observable;
pub mod options;
pub mod types;

use crate::interop::core_error;
use ferry_core::CoreError;
use js_sys::Promise;
use wasm_bindgen::JsValue;

/// A core result at the JS edge: errors become coded JS `Error`s.
pub(crate) fn js<T>(result: Result<T, CoreError>) -> Result<T, JsValue> {
    result.map_err(|e| core_error(&e))
}

/// The promise a Promise-returning method hands to JS: a failure found before the work
/// starts (a bad argument, a closed database) rejects it instead of throwing, so callers
/// need one error path (`await` / `.catch`) for everything.
pub(crate) fn rejecting(result: Result<Promise, JsValue>) -> Promise {
    result.unwrap_or_else(|e| Promise::reject(&e))
}
