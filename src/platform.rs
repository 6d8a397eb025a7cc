//! The browser behind the core's small ports: `Date.now()` as the clock,
//! `crypto.getRandomValues` as entropy, the app's `getToken(refresh)` callback as the token
//! source, plus access to the global scope (window or worker) and a sleep.

use ferry_core::ports::{Clock, Entropy, TokenSource};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `Date.now()`.
#[derive(Clone, Copy, Default)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }
}

/// `crypto.getRandomValues`.
#[derive(Clone, Copy, Default)]
pub struct CryptoEntropy;

impl Entropy for CryptoEntropy {
    fn next_u64(&self) -> u64 {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes);
        u64::from_le_bytes(bytes)
    }
}

/// Fills `bytes` from the platform's cryptographic random source.
pub fn fill_random(bytes: &mut [u8]) {
    let crypto: web_sys::Crypto = global_property("crypto").unchecked_into();
    crypto
        .get_random_values_with_u8_array(bytes)
        .expect("crypto.getRandomValues is available");
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A property of the global scope (`window` or a worker's `self`); `undefined` if absent.
pub fn global_property(name: &str) -> JsValue {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The global scope as an event target (for `online`, `offline`).
pub fn global_target() -> web_sys::EventTarget {
    js_sys::global().unchecked_into()
}

/// `document`, when running in a window.
pub fn document() -> Option<web_sys::Document> {
    let doc = global_property("document");
    (!doc.is_undefined()).then(|| doc.unchecked_into())
}

/// `navigator.onLine`; `true` when unknown.
pub fn navigator_online() -> bool {
    let nav = global_property("navigator");
    Reflect::get(&nav, &"onLine".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(true)
}

/// Resolves after `ms` milliseconds.
pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Awaits a value that may be a promise (or a plain value).
pub async fn resolve(value: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(Promise::resolve(&value)).await
}

/// The app's `getToken(refresh: boolean): Promise<string | null>`; no callback means no token.
#[derive(Clone, Default)]
pub struct JsTokens {
    callback: Option<Function>,
}

impl JsTokens {
    pub fn new(callback: Option<Function>) -> Self {
        JsTokens { callback }
    }
}

impl TokenSource for JsTokens {
    async fn token(&self, refresh: bool) -> Result<Option<String>, String> {
        let Some(callback) = &self.callback else {
            return Ok(None);
        };
        let returned = callback
            .call1(&JsValue::NULL, &JsValue::from_bool(refresh))
            .map_err(|e| js_message(&e))?;
        let value = resolve(returned).await.map_err(|e| js_message(&e))?;
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        value
            .as_string()
            .map(Some)
            .ok_or_else(|| "getToken must resolve to a string or null".to_owned())
    }
}

/// The message of a thrown JS value.
pub fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", String::from(e.name()), String::from(e.message()));
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// The `name` of a thrown DOMException or Error (`"AbortError"`, `"QuotaExceededError"`).
pub fn js_error_name(value: &JsValue) -> String {
    Reflect::get(value, &"name".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// `navigator.storage`: asks for persistence when `ask_persist`, then reads
/// `{persisted, usage, quota}` (nulls where the browser does not tell).
pub async fn storage_info(ask_persist: bool) -> serde_json::Value {
    let storage = Reflect::get(&global_property("navigator"), &"storage".into())
        .unwrap_or(JsValue::UNDEFINED);
    let call = |name: &str| -> Option<Promise> {
        let f: Function = Reflect::get(&storage, &name.into()).ok()?.dyn_into().ok()?;
        f.call0(&storage).ok()?.dyn_into().ok()
    };
    if storage.is_undefined() {
        return serde_json::json!({"persisted": false, "usage": null, "quota": null});
    }
    let method = if ask_persist { "persist" } else { "persisted" };
    let persisted = match call(method) {
        Some(p) => JsFuture::from(p)
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        None => false,
    };
    let estimate = match call("estimate") {
        Some(p) => JsFuture::from(p).await.unwrap_or(JsValue::UNDEFINED),
        None => JsValue::UNDEFINED,
    };
    let number = |k: &str| {
        Reflect::get(&estimate, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
    };
    serde_json::json!({"persisted": persisted, "usage": number("usage"), "quota": number("quota")})
}
