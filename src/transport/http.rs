//! Push and pull over `fetch` (or an app-supplied fetch-compatible function).
//!
//! Headers: `Idempotency-Key` (push), `traceparent`, `Authorization: Bearer`, `Ferry-Data-Version`
//! (when the app migrated its data), `Ferry-Priority` (push). Each request is
//! cut off by an `AbortController` after the timeout. Statuses map to [`TransportError`]:
//! 401 → `Unauthorized`, 410 → `CursorExpired`, other non-2xx → `Http` with the server's
//! `{error: {code, message}}` and `Retry-After`; a request that never got an answer → `Network`.
//! A pull sent with `If-None-Match` that gets `304` is the empty page the validator names
//! (`ferry_core::conditional`).

use crate::platform::{global_property, js_message};
use ferry_core::conditional::{not_modified_page, parse_pull_etag};
use ferry_core::ports::{RequestMeta, Transport, TransportError};
use ferry_core::protocol::{ErrorBody, PullResponse, PushRequest, PushResponse};
use js_sys::{Function, Object, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Default time a request may take.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// The sync server at `base_url` (for example `https://example.com/v1`). Clones share the hook.
#[derive(Clone)]
pub struct FetchTransport {
    base_url: String,
    fetch: Option<Function>,
    timeout_ms: u32,
    on_request: Rc<RefCell<Option<Hook>>>,
}

/// Called when a request starts and ends.
type Hook = Rc<dyn Fn()>;

/// A 2xx body, or `304` to a conditional request.
enum Answer {
    Body(Vec<u8>),
    NotModified,
}

impl Answer {
    /// The body of a request that was not conditional (a 304 to it is a broken answer).
    fn body(self) -> Result<Vec<u8>, TransportError> {
        match self {
            Answer::Body(bytes) => Ok(bytes),
            Answer::NotModified => Err(TransportError::Decode(
                "304 to a request that named no validator".into(),
            )),
        }
    }
}

impl FetchTransport {
    /// `fetch`: a fetch-compatible function to use instead of the global one.
    pub fn new(base_url: &str, fetch: Option<Function>, timeout_ms: u32) -> Self {
        FetchTransport {
            base_url: base_url.trim_end_matches('/').to_owned(),
            fetch,
            timeout_ms,
            on_request: Rc::new(RefCell::new(None)),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Called when a request starts and when it ends (the client publishes progress).
    pub fn set_on_request(&self, hook: Rc<dyn Fn()>) {
        *self.on_request.borrow_mut() = Some(hook);
    }

    fn hook(&self) {
        let hook = self.on_request.borrow().clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        meta: &RequestMeta,
    ) -> Result<Answer, TransportError> {
        self.hook();
        let result = self.exchange(method, path, body, meta).await;
        self.hook();
        result
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        meta: &RequestMeta,
    ) -> Result<Answer, TransportError> {
        let headers = Object::new();
        let set = |o: &Object, k: &str, v: &str| {
            let _ = Reflect::set(o, &k.into(), &v.into());
        };
        set(&headers, "accept", "application/json");
        set(&headers, "traceparent", &meta.traceparent);
        if !meta.idempotency_key.is_empty() {
            set(&headers, "idempotency-key", &meta.idempotency_key);
        }
        if let Some(priority) = meta.priority {
            set(&headers, "ferry-priority", priority.as_str());
        }
        if meta.data_version > 0 {
            set(
                &headers,
                "ferry-data-version",
                &meta.data_version.to_string(),
            );
        }
        if let Some(token) = &meta.token {
            set(&headers, "authorization", &format!("Bearer {token}"));
        }
        if let Some(tag) = &meta.if_none_match {
            set(&headers, "if-none-match", tag);
        }
        let init = Object::new();
        set(&init, "method", method);
        if let Some(body) = &body {
            set(&headers, "content-type", "application/json");
            set(&init, "body", body);
        }
        let _ = Reflect::set(&init, &"headers".into(), &headers);
        let controller =
            web_sys::AbortController::new().map_err(|e| TransportError::Network(js_message(&e)))?;
        let _ = Reflect::set(&init, &"signal".into(), &controller.signal());
        let timed_out = Rc::new(Cell::new(false));
        let _timer = {
            let (timed_out, controller) = (timed_out.clone(), controller.clone());
            gloo_timers::callback::Timeout::new(self.timeout_ms, move || {
                timed_out.set(true);
                controller.abort();
            })
        };
        let failed = |e: JsValue| match timed_out.get() {
            true => TransportError::Timeout,
            false => TransportError::Network(js_message(&e)),
        };
        let fetch = match &self.fetch {
            Some(f) => f.clone(),
            None => global_property("fetch")
                .dyn_into::<Function>()
                .map_err(|_| TransportError::Network("fetch is not available".into()))?,
        };
        let url = format!("{}{path}", self.base_url);
        let promise = fetch
            .call2(&js_sys::global(), &url.into(), &init)
            .map_err(failed)?;
        let response: web_sys::Response = JsFuture::from(js_sys::Promise::resolve(&promise))
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| TransportError::Decode("fetch did not resolve to a Response".into()))?;
        let text_promise = response.text().map_err(failed)?;
        let text = JsFuture::from(text_promise)
            .await
            .map_err(failed)?
            .as_string()
            .unwrap_or_default();
        let status = response.status();
        if (200..300).contains(&status) {
            return Ok(Answer::Body(text.into_bytes()));
        }
        if status == 304 && meta.if_none_match.is_some() {
            return Ok(Answer::NotModified);
        }
        Err(http_error(
            status,
            &text,
            response.headers().get("retry-after").ok().flatten(),
        ))
    }
}

/// `&view=<fingerprint>` for a pull, when the replica holds one that is safe in a URL (the
/// server sends hex digits; anything else is not sent back).
pub fn view_param(view: &str) -> String {
    if !view.is_empty() && view.len() <= 64 && view.bytes().all(|b| b.is_ascii_alphanumeric()) {
        format!("&view={view}")
    } else {
        String::new()
    }
}

/// The transport error of a non-2xx answer.
pub fn http_error(status: u16, body: &str, retry_after: Option<String>) -> TransportError {
    if status == 410 {
        return TransportError::CursorExpired;
    }
    let parsed = serde_json::from_str::<ErrorBody>(body);
    if status == 401 {
        // The server's typed code and message (`token_expired`, …) reach `auth-required`.
        return match parsed {
            Ok(b) => TransportError::Unauthorized {
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => TransportError::unauthorized(),
        };
    }
    let (code, message) = match parsed {
        Ok(b) => (b.error.code, b.error.message),
        Err(_) => (format!("http_{status}"), body.chars().take(200).collect()),
    };
    TransportError::Http {
        status,
        code,
        message,
        retry_after_ms: retry_after.as_deref().and_then(parse_retry_after),
    }
}

/// The longest wait a `Retry-After` can impose: a proxy's absurd value must not silence a
/// client for good (the header comes from whatever answered, not necessarily the server).
pub const MAX_RETRY_AFTER_MS: u64 = 10 * 60 * 1000;

/// `Retry-After`: delay seconds or an HTTP date, capped at [`MAX_RETRY_AFTER_MS`].
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let ms = if let Ok(seconds) = value.trim().parse::<u64>() {
        seconds.saturating_mul(1000)
    } else {
        let at = js_sys::Date::parse(value);
        if !at.is_finite() {
            return None;
        }
        (at - js_sys::Date::now()).max(0.0) as u64
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

impl Transport for FetchTransport {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        let body = serde_json::to_string(req).map_err(|e| TransportError::Decode(e.to_string()))?;
        let bytes = self
            .send("POST", "/sync/mutations", Some(body), meta)
            .await?
            .body()?;
        PushResponse::decode(&bytes).map_err(|e| TransportError::Decode(e.to_string()))
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        let answer = self
            .send(
                "GET",
                &format!(
                    "/sync/changes?cursor={cursor}&limit={limit}{}{}",
                    view_param(&meta.view),
                    ferry_core::protocol::pull_collections_param(&meta.collections)
                ),
                None,
                meta,
            )
            .await?;
        let bytes = match answer {
            Answer::Body(bytes) => bytes,
            Answer::NotModified => {
                // The request named this validator, so it parses; a 304 to another cursor
                // than the one asked for would be a broken answer.
                let validator = meta.if_none_match.as_deref().and_then(parse_pull_etag);
                return match validator {
                    Some((epoch, named)) if named == cursor => Ok(not_modified_page(epoch, cursor)),
                    _ => Err(TransportError::Decode(
                        "304 without a matching validator".into(),
                    )),
                };
            }
        };
        PullResponse::decode(&bytes).map_err(|e| TransportError::Decode(e.to_string()))
    }
}
