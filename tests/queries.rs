//! Queries in a real browser: conditions (equality, `in`, ranges, `prefix`) answered through
//! declared single and compound indexes, keyset paging with `after`, typed errors for
//! malformed queries, and live queries that follow local writes, pulled pages and another
//! tab's writes without being answered again from scratch.
#![cfg(target_arch = "wasm32")]

mod common;

use common::server::FakeServer;
use common::{code, done, js, options, snapshot, unique_name, until};
use ferry::api::ferry::Ferry;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn open_indexed(name: &str, server: &FakeServer) -> Ferry {
    let collections = json!({"collections": {
        "tasks": {"policy": "last-writer-wins", "indexes": ["at", ["assignee", "done", "at"], "title"]},
        "notes": {"policy": "merge-fields"},
        "expenses": {"policy": "server-wins-review"}
    }});
    Ferry::open(options(name, server, collections))
        .await
        .expect("Ferry.open")
}

fn task(i: u64) -> Value {
    let assignee = ["ann", "bob", "cy"][(i % 3) as usize];
    json!({
        "id": format!("t{i:03}"),
        "assignee": assignee,
        "done": i.is_multiple_of(4),
        "at": (i * 37) % 101,
        "title": format!("task {}", i % 17),
    })
}

fn ids(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn query(f: &Ferry, options: Value) -> JsValue {
    f.query(js(json!("tasks")), Some(js(options))).unwrap()
}

/// Subscribes and keeps every value seen.
fn watch(observable: &JsValue) -> Rc<RefCell<Vec<Value>>> {
    let seen: Rc<RefCell<Vec<Value>>> = Rc::default();
    let log = seen.clone();
    let on_next =
        Closure::<dyn Fn(JsValue)>::new(move |v: JsValue| log.borrow_mut().push(common::json(&v)))
            .into_js_value();
    let subscribe: js_sys::Function = js_sys::Reflect::get(observable, &"subscribe".into())
        .unwrap()
        .into();
    subscribe.call1(observable, &on_next).unwrap();
    seen
}

#[wasm_bindgen_test]
async fn indexed_queries_answer_ranges_compound_indexes_prefixes_and_pages() {
    let server = FakeServer::default();
    server.set_offline(true);
    let f = open_indexed(&unique_name("indexed"), &server).await;
    let all: Vec<Value> = (0..120).map(task).collect();
    for t in &all {
        let _ = f.put(js(json!("tasks")), js(t.clone())).unwrap();
    }
    // Brute force over the same rows: filter, order by (field, id), limit.
    let expect = |keep: &dyn Fn(&Value) -> bool, by: &str, desc: bool, limit: usize| {
        let mut rows: Vec<&Value> = all.iter().filter(|t| keep(t)).collect();
        rows.sort_by(|a, b| {
            let o = ferry_core::query::compare_values(a.get(by), b.get(by))
                .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        rows.into_iter()
            .take(limit)
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let at = |t: &Value| t["at"].as_u64().unwrap();
    // A range on a single-field index, both directions (written this tick: not yet durable).
    let q = query(
        &f,
        json!({"where": {"at": {"gte": 20, "lt": 60}}, "orderBy": "at", "limit": 10}),
    );
    assert_eq!(
        ids(&snapshot(&q)),
        expect(&|t| (20..60).contains(&at(t)), "at", false, 10)
    );
    let q = query(
        &f,
        json!({"where": {"at": {"gt": 90}}, "orderBy": ["at", "desc"], "limit": 4}),
    );
    assert_eq!(ids(&snapshot(&q)), expect(&|t| at(t) > 90, "at", true, 4));
    let q = query(&f, json!({"where": {"at": {"between": [10, 12]}}}));
    assert_eq!(
        ids(&snapshot(&q)),
        expect(&|t| (10..=12).contains(&at(t)), "id", false, 99)
    );
    // A compound index: equalities (one of them `in`) then the order field.
    let q = query(
        &f,
        json!({"where": {"assignee": {"in": ["ann", "cy"]}, "done": false, "at": {"lte": 50}}, "orderBy": ["at", "desc"], "limit": 7}),
    );
    assert_eq!(
        ids(&snapshot(&q)),
        expect(
            &|t| t["assignee"] != "bob" && t["done"] == false && at(t) <= 50,
            "at",
            true,
            7
        )
    );
    // A prefix.
    let q = query(
        &f,
        json!({"where": {"title": {"prefix": "task 1"}}, "orderBy": "title", "limit": 9}),
    );
    assert_eq!(
        ids(&snapshot(&q)),
        expect(
            &|t| t["title"].as_str().unwrap().starts_with("task 1"),
            "title",
            false,
            9
        )
    );
    // Paging with `after` walks the whole result exactly once.
    let want = expect(&|t| t["assignee"] == "bob", "at", false, 999);
    let mut seen: Vec<String> = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut options = json!({"where": {"assignee": "bob"}, "orderBy": "at", "limit": 6});
        if !after.is_null() {
            options["after"] = after.clone();
        }
        let page = snapshot(&query(&f, options));
        let rows = page.as_array().unwrap();
        let Some(last) = rows.last() else { break };
        seen.extend(ids(&page));
        after = last.clone();
    }
    assert_eq!(seen, want);
    // Malformed queries are typed errors; nothing was written by them.
    for bad in [
        json!({"where": {"at": {"gt": 1, "gte": 2}}}),
        json!({"where": {"at": {"in": 5}}}),
        json!({"after": {"title": "no id"}}),
    ] {
        let e = f.query(js(json!("tasks")), Some(js(bad))).unwrap_err();
        assert_eq!(code(&e), "invalid_query");
    }
    assert_eq!(
        snapshot(&query(&f, json!({}))).as_array().unwrap().len(),
        120
    );
    done(f.close()).await;
}

#[wasm_bindgen_test]
async fn live_queries_follow_writes_pulls_and_another_tabs_writes() {
    let server = FakeServer::default();
    let name = unique_name("live");
    let f = open_indexed(&name, &server).await;
    for i in 0..60 {
        let _ = f.put(js(json!("tasks")), js(task(i))).unwrap();
    }
    let page = query(
        &f,
        json!({"where": {"done": false}, "orderBy": "at", "limit": 5}),
    );
    let seen = watch(&page);
    let answered = f.query_computations("tasks");
    let first = ids(&snapshot(&page));
    assert_eq!(first.len(), 5);

    // A row enters at the top: followed, not answered again.
    done(
        f.put(
            js(json!("tasks")),
            js(json!({"id": "new", "done": false, "at": -1})),
        )
        .unwrap(),
    )
    .await;
    let now = ids(&snapshot(&page));
    assert_eq!(now[0], "new");
    assert_eq!(&now[1..], &first[..4]);
    // A row moves within the page, and one outside the page changes: followed.
    let second_at = snapshot(&page)[2]["at"].clone();
    let _ = f
        .patch(
            js(json!("tasks")),
            js(json!("new")),
            js(json!({"at": second_at})),
        )
        .unwrap();
    let mut moved = first[..4].to_vec();
    moved.insert(1, "new".to_owned());
    assert_eq!(ids(&snapshot(&page)), moved);
    let values_before = seen.borrow().len();
    let _ = f
        .patch(
            js(json!("tasks")),
            js(json!("t059")),
            js(json!({"title": "far away"})),
        )
        .unwrap();
    assert_eq!(
        seen.borrow().len(),
        values_before,
        "a change outside the page is not published"
    );
    assert_eq!(
        f.query_computations("tasks"),
        answered,
        "followed, never answered again"
    );
    // A row leaves the full page: the page is read again (through the index).
    let _ = f
        .delete(js(json!("tasks")), js(json!(first[0].clone())))
        .unwrap();
    let after_delete = ids(&snapshot(&page));
    assert_eq!(&after_delete[..4], &moved[1..]);
    assert_eq!(after_delete.len(), 5);
    assert_eq!(f.query_computations("tasks"), answered + 1);

    // A pulled page: another device writes a row that enters the page.
    let other = open_indexed(&unique_name("other-device"), &server).await;
    done(
        other
            .put(
                js(json!("tasks")),
                js(json!({"id": "pulled", "done": false, "at": -5})),
            )
            .unwrap(),
    )
    .await;
    other.sync_now();
    until("the other device pushed", || {
        server.record("tasks", "pulled").is_some()
    })
    .await;
    f.sync_now();
    until("the pulled row enters the live page", || {
        ids(&snapshot(&page)).first().map(String::as_str) == Some("pulled")
    })
    .await;
    assert_eq!(&ids(&snapshot(&page))[1..], &after_delete[..4]);

    // Another tab of this database writes: the page follows.
    let tab = open_indexed(&name, &server).await;
    done(
        tab.put(
            js(json!("tasks")),
            js(json!({"id": "from-tab", "done": false, "at": -9})),
        )
        .unwrap(),
    )
    .await;
    until("the other tab's row enters the live page", || {
        ids(&snapshot(&page)).first().map(String::as_str) == Some("from-tab")
    })
    .await;
    assert_eq!(ids(&snapshot(&page))[1], "pulled");
    done(tab.close()).await;
    done(other.close()).await;
    done(f.close()).await;
}

#[wasm_bindgen_test]
async fn malformed_index_declarations_are_refused_when_opening() {
    let server = FakeServer::default();
    for indexes in [
        json!("at"),
        json!([["a", 1]]),
        json!([[]]),
        json!(["id"]),
        json!([{}]),
    ] {
        let collections = json!({"collections": {"tasks": {"indexes": indexes.clone()}}});
        let Err(e) = Ferry::open(options(&unique_name("bad-index"), &server, collections)).await
        else {
            panic!("indexes {indexes} must be refused");
        };
        assert_eq!(code(&e), "invalid_options", "{indexes}");
    }
}
