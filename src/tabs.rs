//! Tabs of one app share one database: one of them leads (runs the network loop), chosen
//! with the Web Locks API, and all of them tell each other about committed changes on a
//! BroadcastChannel.
//!
//! The lock is held for as long as the leading Ferry is open: its callback returns a
//! promise that only [`Leadership::release`] (or the tab going away) settles. Without Web
//! Locks (an insecure context or an old browser) the tab leads at once.

use crate::platform::global_property;
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A pending or held leader lock.
pub struct Leadership {
    release: Rc<RefCell<Option<Function>>>,
    abort: Option<web_sys::AbortController>,
}

/// `navigator.locks` and its `request` method, when the browser has Web Locks.
fn web_locks() -> Option<(JsValue, Function)> {
    let locks =
        Reflect::get(&global_property("navigator"), &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    let request = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|r| r.dyn_into::<Function>().ok())?;
    Some((locks, request))
}

/// What a granted lock's callback returns: a promise that stays pending, holding the lock,
/// until the function it leaves in `release` is called.
fn hold(release: &Rc<RefCell<Option<Function>>>) -> JsValue {
    Promise::new(&mut |resolve, _| *release.borrow_mut() = Some(resolve)).into()
}

/// `locks.request(name, options, callback)`; false when the call itself threw. The request's
/// own promise rejects when it is aborted before being granted, which is expected (on close)
/// and ignored.
fn request_lock(
    locks: &JsValue,
    request: &Function,
    name: &str,
    options: &Object,
    callback: &JsValue,
) -> bool {
    let Ok(p) = request.call3(locks, &name.into(), options, callback) else {
        return false;
    };
    let ignore = Closure::<dyn FnMut(JsValue)>::new(|_| {});
    if let Ok(p) = p.dyn_into::<Promise>() {
        let _ = p.catch(&ignore);
    }
    ignore.forget();
    true
}

impl Leadership {
    /// Asks for the lock `name`; `on_granted` runs when this tab becomes the leader.
    pub fn request(name: &str, on_granted: impl FnOnce() + 'static) -> Leadership {
        let release: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let Some((locks, request)) = web_locks() else {
            on_granted();
            return Leadership {
                release,
                abort: None,
            };
        };
        let abort = web_sys::AbortController::new().ok();
        let options = Object::new();
        let _ = Reflect::set(&options, &"mode".into(), &"exclusive".into());
        if let Some(a) = &abort {
            let _ = Reflect::set(&options, &"signal".into(), &a.signal());
        }
        let held = release.clone();
        let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
            let holding = hold(&held);
            on_granted();
            holding
        });
        // A call that throws leaves the tab a follower, as a lock never granted would.
        request_lock(&locks, &request, name, &options, &callback);
        Leadership { release, abort }
    }

    /// Takes the lock `name` if no tab holds it, without waiting: `None` when another tab
    /// leads (or Web Locks are missing; [`Leadership::request`] handles that case). Taking
    /// it before loading lets a lone tab load once, as the leader.
    pub async fn try_now(name: &str) -> Option<Leadership> {
        let (locks, request) = web_locks()?;
        let release: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let options = Object::new();
        let _ = Reflect::set(&options, &"mode".into(), &"exclusive".into());
        let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
        let mut decide: Option<Function> = None;
        let decided = Promise::new(&mut |resolve, _| decide = Some(resolve));
        let decide = decide?;
        let held = release.clone();
        let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
            if lock.is_null() {
                let _ = decide.call1(&JsValue::UNDEFINED, &JsValue::FALSE);
                return JsValue::UNDEFINED;
            }
            let holding = hold(&held);
            let _ = decide.call1(&JsValue::UNDEFINED, &JsValue::TRUE);
            holding
        });
        if !request_lock(&locks, &request, name, &options, &callback) {
            return None;
        }
        let granted = wasm_bindgen_futures::JsFuture::from(decided).await.ok()?;
        granted.is_truthy().then_some(Leadership {
            release,
            abort: None,
        })
    }

    /// A lock already held, given up by calling `release` (see `client/early.rs`).
    pub fn adopt(release: Function) -> Leadership {
        Leadership {
            release: Rc::new(RefCell::new(Some(release))),
            abort: None,
        }
    }

    /// Gives the lock up (or stops waiting for it).
    pub fn release(&self) {
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        } else if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

/// The change notices between tabs of one database.
pub struct Channel {
    channel: Option<web_sys::BroadcastChannel>,
    _on_message: Option<Closure<dyn FnMut(web_sys::MessageEvent)>>,
}

impl Channel {
    /// Joins the channel `name`; `on_message` gets every other tab's JSON message.
    pub fn open(name: &str, on_message: impl Fn(serde_json::Value) + 'static) -> Channel {
        match web_sys::BroadcastChannel::new(name) {
            Ok(channel) => Channel::adopt(channel, on_message),
            Err(_) => Channel {
                channel: None,
                _on_message: None,
            },
        }
    }

    /// Takes over a channel opened elsewhere (the package entry's early read, which kept
    /// what it heard meanwhile: see `client/early.rs`).
    pub fn adopt(
        channel: web_sys::BroadcastChannel,
        on_message: impl Fn(serde_json::Value) + 'static,
    ) -> Channel {
        let closure = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(message) = parse_notice(&event.data()) {
                    on_message(message);
                }
            },
        );
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Channel {
            channel: Some(channel),
            _on_message: Some(closure),
        }
    }

    pub fn post(&self, message: &serde_json::Value) {
        if let Some(channel) = &self.channel {
            let _ = channel.post_message(&message.to_string().into());
        }
    }

    pub fn close(&self) {
        if let Some(channel) = &self.channel {
            channel.set_onmessage(None);
            channel.close();
        }
    }
}

/// A notice as sent by [`Channel::post`] (JSON text); `None` for anything else.
pub fn parse_notice(data: &JsValue) -> Option<serde_json::Value> {
    data.as_string()
        .and_then(|text| serde_json::from_str(&text).ok())
}
