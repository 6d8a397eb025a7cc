//! The live stream: `GET {url}/sync/events?token=…` as server-sent events. Each `poke`
//! event (`{"cursor": N}`) calls back so the leader syncs. When the stream fails for good
//! (the browser closes it), [`LiveStream::is_open`] turns false and the caller polls instead.

use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// An open `EventSource`; closed when dropped.
pub struct LiveStream {
    source: web_sys::EventSource,
    failed: Rc<Cell<bool>>,
    _on_poke: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl LiveStream {
    /// Connects; `on_poke` gets the server's cursor, `on_fail` runs once if the stream closes.
    pub fn connect(
        base_url: &str,
        token: Option<&str>,
        on_poke: impl Fn(u64) + 'static,
        on_fail: impl Fn() + 'static,
    ) -> Option<LiveStream> {
        let mut url = format!("{base_url}/sync/events");
        if let Some(token) = token {
            url.push_str(&format!(
                "?token={}",
                String::from(js_sys::encode_uri_component(token))
            ));
        }
        let source = web_sys::EventSource::new(&url).ok()?;
        let on_poke = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                let cursor = event
                    .data()
                    .as_string()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
                    .and_then(|v| v.get("cursor").and_then(|c| c.as_u64()))
                    .unwrap_or(0);
                on_poke(cursor);
            },
        );
        let failed = Rc::new(Cell::new(false));
        let on_error = {
            let (failed, source) = (failed.clone(), source.clone());
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                // The browser retries a dropped stream by itself; CLOSED means it gave up.
                if source.ready_state() == web_sys::EventSource::CLOSED && !failed.replace(true) {
                    on_fail();
                }
            })
        };
        let _ = source.add_event_listener_with_callback("poke", on_poke.as_ref().unchecked_ref());
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Some(LiveStream {
            source,
            failed,
            _on_poke: on_poke,
            _on_error: on_error,
        })
    }

    /// Whether the stream is connected or reconnecting (not given up).
    pub fn is_open(&self) -> bool {
        !self.failed.get() && self.source.ready_state() != web_sys::EventSource::CLOSED
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.source.close();
    }
}
