//! Declared permissions on every push, on both backends: the owner is set on create from the
//! token and cannot change, each grant (`owner`, `users_in:<field>`, `role:<name>`) admits
//! exactly whom it names, a refused write is a final `forbidden` rejection that shows nothing
//! of the record (not even as a conflict answer), the JSON Schema replaces code-level
//! validation, and undeclared collections can be closed.

mod common;

use common::writes::{create, delete, update, Write};
use common::{batch, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[collections.notes]
read = ["owner", "users_in:shared_with", "role:manager"]
update = ["owner", "users_in:shared_with"]
delete = ["owner"]

[collections.expenses]
read = ["owner", "role:manager"]
create = ["role:employee", "role:manager"]
update = ["owner"]

[collections.expenses.schema]
type = "object"
required = ["amount"]
properties.amount = { type = "number", minimum = 0 }

[collections.expenses.messages]
"/properties/amount/minimum" = "`amount` must not be negative"
"#;

struct Tenant<'a> {
    s: &'a TestServer,
    name: String,
}

impl Tenant<'_> {
    fn token(&self, user: &str, roles: &[&str]) -> String {
        self.s.token_with_roles(&self.name, user, roles)
    }

    /// Pushes one mutation as `user` (client `<user>-c`), returning the whole answer.
    async fn write(&self, user: &str, roles: &[&str], seq: u64, write: Write) -> Value {
        let client = format!("{user}-c");
        let op_id = format!("{user}-{seq}");
        let body = batch(&client, vec![write.mutation(&op_id, &client, seq)]);
        let (status, answer) = self.s.push(&self.token(user, roles), &op_id, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// The stored record, as a pull by `reader` shows it.
    async fn stored(&self, reader: &str, collection: &str, id: &str) -> Option<Value> {
        let (status, page) = self.s.pull(&self.token(reader, &[]), 0, 1000).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["collection"] == collection && r["id"] == id)
            .cloned()
    }
}

fn accepted_version(answer: &Value) -> u64 {
    assert_eq!(answer["accepted"].as_array().unwrap().len(), 1, "{answer}");
    answer["accepted"][0]["version"].as_u64().unwrap()
}

/// Asserts a final `forbidden` rejection that does not quote `secret`.
fn assert_forbidden(answer: &Value, secret: &str) {
    let rejected = &answer["rejected"];
    assert_eq!(rejected.as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(rejected[0]["code"], "forbidden", "{answer}");
    assert_eq!(rejected[0]["retryable"], false, "{answer}");
    assert!(
        answer["conflicts"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    assert!(!answer.to_string().contains(secret), "{answer}");
}

async fn start(backend: &Backend) -> TestServer {
    TestServer::start_with_rules(backend, CONFIG).await
}

async fn the_owner_is_set_on_create_and_immutable(backend: &Backend) {
    let s = start(backend).await;
    let t = Tenant {
        s: &s,
        name: unique("perm"),
    };
    let created = t
        .write(
            "alice",
            &[],
            1,
            create("notes", "n1", json!({"title": "mine"})),
        )
        .await;
    let v1 = accepted_version(&created);
    let note = t.stored("alice", "notes", "n1").await.unwrap();
    assert_eq!(note["fields"]["owner"], "alice", "{note}");

    let takeover = t
        .write(
            "alice",
            &[],
            2,
            update("notes", "n1", v1, json!({"owner": "bob"})),
        )
        .await;
    assert_forbidden(&takeover, "mine");
    let removal = t
        .write(
            "alice",
            &[],
            3,
            update("notes", "n1", v1, json!({"owner": null})),
        )
        .await;
    assert_forbidden(&removal, "mine");
    // Creating on someone else's behalf is refused; naming oneself is harmless.
    let forged = t
        .write(
            "alice",
            &[],
            4,
            create("notes", "n2", json!({"owner": "bob"})),
        )
        .await;
    assert_forbidden(&forged, "mine");
    let own = t
        .write(
            "alice",
            &[],
            5,
            create("notes", "n3", json!({"owner": "alice"})),
        )
        .await;
    accepted_version(&own);
    // An update that leaves the owner alone keeps it.
    let retitled = t
        .write(
            "alice",
            &[],
            6,
            update("notes", "n1", v1, json!({"title": "still mine"})),
        )
        .await;
    accepted_version(&retitled);
    let note = t.stored("alice", "notes", "n1").await.unwrap();
    assert_eq!(note["fields"]["owner"], "alice");
    assert_eq!(note["fields"]["title"], "still mine");
    s.shutdown().await;
}

async fn grants_admit_exactly_whom_they_name(backend: &Backend) {
    let s = start(backend).await;
    let t = Tenant {
        s: &s,
        name: unique("perm"),
    };
    let v1 = accepted_version(
        &t.write(
            "alice",
            &[],
            1,
            create("notes", "n1", json!({"title": "plans"})),
        )
        .await,
    );
    // bob is not on the share list: no update, no delete.
    let denied = t
        .write(
            "bob",
            &[],
            1,
            update("notes", "n1", v1, json!({"title": "x"})),
        )
        .await;
    assert_forbidden(&denied, "plans");
    // Shared with bob: bob may update, but only the owner may delete.
    let v2 = accepted_version(
        &t.write(
            "alice",
            &[],
            2,
            update("notes", "n1", v1, json!({"shared_with": ["bob"]})),
        )
        .await,
    );
    let v3 = accepted_version(
        &t.write(
            "bob",
            &[],
            2,
            update("notes", "n1", v2, json!({"title": "our plans"})),
        )
        .await,
    );
    assert_forbidden(
        &t.write("bob", &[], 3, delete("notes", "n1", v3)).await,
        "our plans",
    );
    // A manager reads every note but is not granted updates.
    assert_forbidden(
        &t.write(
            "carol",
            &["manager"],
            1,
            update("notes", "n1", v3, json!({"title": "m"})),
        )
        .await,
        "our plans",
    );
    // Unshared again, bob loses the note: update grants are judged on the stored record, so
    // he cannot put himself back on the list.
    let v4 = accepted_version(
        &t.write(
            "alice",
            &[],
            3,
            update("notes", "n1", v3, json!({"shared_with": []})),
        )
        .await,
    );
    assert_forbidden(
        &t.write(
            "bob",
            &[],
            4,
            update("notes", "n1", v4, json!({"shared_with": ["bob"]})),
        )
        .await,
        "our plans",
    );
    accepted_version(&t.write("alice", &[], 4, delete("notes", "n1", v4)).await);

    // Expenses: creating needs a role; the schema still applies.
    assert_forbidden(
        &t.write(
            "bob",
            &[],
            5,
            create("expenses", "e1", json!({"amount": 5})),
        )
        .await,
        "\"amount\"",
    );
    let e1 = accepted_version(
        &t.write(
            "bob",
            &["employee"],
            6,
            create("expenses", "e1", json!({"amount": 5})),
        )
        .await,
    );
    let negative = t
        .write(
            "bob",
            &["employee"],
            7,
            update("expenses", "e1", e1, json!({"amount": -3})),
        )
        .await;
    assert_eq!(
        negative["rejected"][0]["code"], "validation_failed",
        "{negative}"
    );
    assert_eq!(
        negative["rejected"][0]["message"], "`amount` must not be negative",
        "{negative}"
    );
    assert_eq!(negative["rejected"][0]["retryable"], false);
    s.shutdown().await;
}

async fn a_refused_write_reveals_nothing_even_when_stale(backend: &Backend) {
    let s = start(backend).await;
    let t = Tenant {
        s: &s,
        name: unique("perm"),
    };
    let v1 = accepted_version(
        &t.write(
            "alice",
            &[],
            1,
            create("notes", "n1", json!({"title": "salary talk"})),
        )
        .await,
    );
    accepted_version(
        &t.write(
            "alice",
            &[],
            2,
            update("notes", "n1", v1, json!({"body": "confidential"})),
        )
        .await,
    );
    // A stale base would be a conflict carrying the record; a user who may not read the
    // record gets `forbidden` instead, with nothing of it.
    let stale = t
        .write(
            "mallory",
            &[],
            1,
            update("notes", "n1", v1, json!({"title": "x"})),
        )
        .await;
    assert_forbidden(&stale, "salary");
    assert_forbidden(&stale, "confidential");
    // Creating over an existing id is a conflict too: the same.
    let clash = t
        .write(
            "mallory",
            &[],
            2,
            create("notes", "n1", json!({"title": "x"})),
        )
        .await;
    assert_forbidden(&clash, "confidential");
    // The refusal is final and stored: a replay answers the same, and the record is intact.
    let client = "mallory-c";
    let body = batch(
        client,
        vec![update("notes", "n1", v1, json!({"title": "x"})).mutation("mallory-1", client, 1)],
    );
    let (status, replay) = s.push(&t.token("mallory", &[]), "mallory-1", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay["rejected"], stale["rejected"]);
    let note = t.stored("alice", "notes", "n1").await.unwrap();
    assert_eq!(note["fields"]["title"], "salary talk");
    // Someone who may write it gets the ordinary conflict answer.
    let shared = t
        .write(
            "alice",
            &[],
            3,
            update("notes", "n1", v1, json!({"title": "x"})),
        )
        .await;
    assert_eq!(shared["conflicts"].as_array().unwrap().len(), 1, "{shared}");
    s.shutdown().await;
}

async fn undeclared_collections_can_be_closed(backend: &Backend) {
    let s =
        TestServer::start_with_rules(backend, &format!("undeclared = \"deny\"\n{CONFIG}")).await;
    let t = Tenant {
        s: &s,
        name: unique("perm"),
    };
    let other = t
        .write("alice", &[], 1, create("scratch", "s1", json!({"x": 1})))
        .await;
    assert_forbidden(&other, "\"x\"");
    accepted_version(
        &t.write("alice", &[], 2, create("notes", "n1", json!({"x": 1})))
            .await,
    );
    s.shutdown().await;
    // By default they stay open to the whole tenant, as before permissions existed.
    let s = start(backend).await;
    let t = Tenant {
        s: &s,
        name: unique("perm"),
    };
    accepted_version(
        &t.write("alice", &[], 1, create("scratch", "s1", json!({"x": 1})))
            .await,
    );
    s.shutdown().await;
}

on_both_backends!(
    the_owner_is_set_on_create_and_immutable,
    grants_admit_exactly_whom_they_name,
    a_refused_write_reveals_nothing_even_when_stale,
    undeclared_collections_can_be_closed,
);
