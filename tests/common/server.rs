//! An in-page sync server for the browser tests: ferry-core's `MemoryServer` behind a
//! fetch-compatible function (`Ferry.open({fetch})`), with switches for going offline,
//! requiring a token and refusing a collection for good.

use ferry_core::apply::{Refusal, Validator};
use ferry_core::protocol::{Fields, PushRequest};
use ferry_core::server::{MemoryServer, PullError};
use js_sys::{Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;

const TENANT: &str = "t";

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub traceparent: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    server: MemoryServer,
    offline: bool,
    token: Option<String>,
    refuse: Option<String>,
    seen: Vec<Seen>,
}

struct Refuse(Option<String>);

impl Validator for Refuse {
    fn check(&self, collection: &str, _: &Fields) -> Result<(), Refusal> {
        match self.0.as_deref() == Some(collection) {
            true => Err(Refusal {
                code: "validation_failed".into(),
                message: format!("{collection} is read-only here"),
            }),
            false => Ok(()),
        }
    }
}

/// The fake server; clones share it.
#[derive(Clone, Default)]
pub struct FakeServer(Rc<RefCell<State>>);

impl FakeServer {
    pub fn set_offline(&self, offline: bool) {
        self.0.borrow_mut().offline = offline;
    }

    /// Only `Bearer {token}` is accepted from now on.
    pub fn require_token(&self, token: &str) {
        self.0.borrow_mut().token = Some(token.to_owned());
    }

    /// Mutations of `collection` are refused for good.
    pub fn refuse(&self, collection: Option<&str>) {
        self.0.borrow_mut().refuse = collection.map(str::to_owned);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.0.borrow().seen.clone()
    }

    /// The server's copy of a record's fields (`None`: absent or deleted).
    pub fn record(&self, collection: &str, id: &str) -> Option<Fields> {
        let s = self.0.borrow();
        s.server
            .tenant(TENANT)?
            .record(collection, id)
            .filter(|r| !r.deleted)
            .map(|r| r.fields.clone())
    }

    /// The fetch-compatible function to give `Ferry.open`.
    pub fn fetch(&self) -> JsValue {
        let me = self.clone();
        Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |url: JsValue, init: JsValue| {
            me.handle(url, init)
        })
        .into_js_value()
    }

    fn handle(&self, url: JsValue, init: JsValue) -> Promise {
        let get =
            |o: &JsValue, k: &str| Reflect::get(o, &k.into()).ok().and_then(|v| v.as_string());
        let headers = Reflect::get(&init, &"headers".into()).unwrap_or(JsValue::UNDEFINED);
        let url = url.as_string().unwrap_or_default();
        let method = get(&init, "method").unwrap_or_else(|| "GET".into());
        let mut seen = Seen {
            method: method.clone(),
            path: url.clone(),
            authorization: get(&headers, "authorization"),
            idempotency_key: get(&headers, "idempotency-key"),
            traceparent: get(&headers, "traceparent"),
            status: 0,
        };
        let mut state = self.0.borrow_mut();
        if state.offline {
            state.seen.push(seen);
            return Promise::reject(&js_sys::TypeError::new("Failed to fetch").into());
        }
        let (status, body) = if state
            .token
            .as_ref()
            .is_some_and(|t| seen.authorization.as_deref() != Some(&format!("Bearer {t}")))
        {
            (
                401,
                r#"{"error":{"code":"unauthorized","message":"bad token"}}"#.to_owned(),
            )
        } else if method == "POST" && url.ends_with("/sync/mutations") {
            let body = get(&init, "body").unwrap_or_default();
            let req = PushRequest::decode(body.as_bytes()).expect("the client sends valid pushes");
            let refuse = Refuse(state.refuse.clone());
            match state.server.push(TENANT, &req, &refuse) {
                Ok(resp) => (200, serde_json::to_string(&resp).unwrap()),
                Err(e) => (
                    422,
                    format!(r#"{{"error":{{"code":"op_id_reused","message":"{e:?}"}}}}"#),
                ),
            }
        } else if let Some(query) = url.split("/sync/changes?").nth(1) {
            let param = |k: &str| {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(&format!("{k}=")))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            // `collections=` as ferry-server reads it (a first sync's critical-first pass).
            let collections = query
                .split('&')
                .find_map(|p| p.strip_prefix("collections="))
                .map(|v| ferry_core::protocol::parse_pull_collections(v).expect("valid names"))
                .unwrap_or_default();
            match state.server.pull_filtered(
                TENANT,
                param("cursor").unwrap_or(0),
                param("limit").unwrap_or(100) as u32,
                &collections,
            ) {
                Ok(page) => (200, serde_json::to_string(&page).unwrap()),
                Err(PullError::CursorExpired { .. }) => (
                    410,
                    r#"{"error":{"code":"cursor_expired","message":"resync"}}"#.into(),
                ),
            }
        } else {
            (
                404,
                r#"{"error":{"code":"not_found","message":"no such route"}}"#.into(),
            )
        };
        seen.status = status;
        state.seen.push(seen);
        let init = web_sys::ResponseInit::new();
        init.set_status(status);
        let response = web_sys::Response::new_with_opt_str_and_init(Some(&body), &init).unwrap();
        Promise::resolve(&JsValue::from(response))
    }
}
