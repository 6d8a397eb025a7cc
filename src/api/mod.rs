//! The JavaScript API, one file per JS class: [`ferry::Ferry`], [`observable::Observable`],
//! [`conflicts::Conflict`], [`dead_letters::DeadLetter`]; the options of `Ferry.open` in
//! [`options`] and the shared TypeScript declarations in [`types`].

pub mod conflicts;
pub mod dead_letters;
pub mod ferry;
pub mod observable;
pub mod options;
pub mod types;

use crate::interop::core_error;
use ferry_core::CoreError;
use wasm_bindgen::JsValue;

/// A core result at the JS edge: errors become coded JS `Error`s.
pub(crate) fn js<T>(result: Result<T, CoreError>) -> Result<T, JsValue> {
    result.map_err(|e| core_error(&e))
}
