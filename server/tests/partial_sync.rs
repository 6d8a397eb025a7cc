//! Partial sync on both backends: a pull shows only what its user may read, cursors pass
//! hidden positions without losing any, a record that leaves a user's view is sent to them
//! as a removal and one that enters it arrives whole, a role change takes effect on the next
//! pull, tombstones go to former readers only, and neither `remaining` nor a conflict answer
//! (fresh or replayed) reveals what the user may not read.

mod common;

use common::{batch, mutation, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[collections.notes]
read = ["owner", "users_in:shared_with", "role:manager"]
update = ["owner", "users_in:shared_with"]
"#;

struct Tenant<'a> {
    s: &'a TestServer,
    name: String,
}

/// One pulled page, decoded.
struct Page {
    ids: Vec<String>,
    revoked: Vec<String>,
    deleted: Vec<String>,
    cursor: u64,
    has_more: bool,
    remaining: u64,
    head: u64,
    raw: Value,
}

impl Tenant<'_> {
    fn token(&self, user: &str, roles: &[&str]) -> String {
        self.s.token_with_roles(&self.name, user, roles)
    }

    /// Pushes one mutation as `user` (client `<user>-c`, op id and key `<user>-<seq>`).
    async fn write(
        &self,
        user: &str,
        seq: u64,
        id: &str,
        op: &str,
        base: u64,
        patch: Value,
    ) -> Value {
        let client = format!("{user}-c");
        let op_id = format!("{user}-{seq}");
        let body = batch(
            &client,
            vec![mutation(&op_id, &client, seq, "notes", id, op, base, patch)],
        );
        let (status, answer) = self.s.push(&self.token(user, &[]), &op_id, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    async fn create(&self, user: &str, seq: u64, id: &str, shared_with: &[&str]) -> u64 {
        let answer = self
            .write(
                user,
                seq,
                id,
                "create",
                0,
                json!({"title": format!("secret {id}"), "shared_with": shared_with}),
            )
            .await;
        version(&answer)
    }

    async fn pull_status(
        &self,
        user: &str,
        roles: &[&str],
        cursor: u64,
        limit: u32,
    ) -> (StatusCode, Value) {
        self.s.pull(&self.token(user, roles), cursor, limit).await
    }

    /// A pull that sends back the view fingerprint of an earlier page, as clients do.
    async fn pull_with_view(
        &self,
        user: &str,
        roles: &[&str],
        cursor: u64,
        view: &str,
    ) -> (StatusCode, Value) {
        let resp = self
            .s
            .http
            .get(format!(
                "{}/v1/sync/changes?cursor={cursor}&limit=100&view={view}",
                self.s.url
            ))
            .bearer_auth(self.token(user, roles))
            .send()
            .await
            .unwrap();
        common::read(resp).await
    }

    async fn pull(&self, user: &str, roles: &[&str], cursor: u64, limit: u32) -> Page {
        let (status, raw) = self.pull_status(user, roles, cursor, limit).await;
        assert_eq!(status, StatusCode::OK, "{raw}");
        let list = |key: &str, deleted: Option<bool>| -> Vec<String> {
            raw[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| {
                            deleted.is_none_or(|d| r["deleted"].as_bool().unwrap_or(false) == d)
                        })
                        .map(|r| r["id"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        Page {
            ids: list("changes", Some(false)),
            deleted: list("changes", Some(true)),
            revoked: list("revoked", None),
            cursor: raw["cursor"].as_u64().unwrap(),
            has_more: raw["has_more"].as_bool().unwrap(),
            remaining: raw["remaining"].as_u64().unwrap(),
            head: raw["head"].as_u64().unwrap(),
            raw,
        }
    }

    /// Pages from `cursor` to the end; every id received (changes and removals), in order.
    async fn pull_all(
        &self,
        user: &str,
        roles: &[&str],
        mut cursor: u64,
        limit: u32,
    ) -> (Vec<String>, Vec<String>, u64) {
        let (mut ids, mut revoked) = (Vec::new(), Vec::new());
        loop {
            let page = self.pull(user, roles, cursor, limit).await;
            assert!(page.cursor >= cursor, "{}", page.raw);
            assert!(
                page.cursor > cursor || !page.has_more,
                "a page must advance: {}",
                page.raw
            );
            ids.extend(page.ids);
            revoked.extend(page.revoked);
            cursor = page.cursor;
            if !page.has_more {
                return (ids, revoked, cursor);
            }
        }
    }
}

fn version(answer: &Value) -> u64 {
    assert_eq!(answer["accepted"].as_array().unwrap().len(), 1, "{answer}");
    answer["accepted"][0]["version"].as_u64().unwrap()
}

async fn start(backend: &Backend) -> TestServer {
    TestServer::start_with_rules(backend, CONFIG).await
}

fn tenant(s: &TestServer) -> Tenant<'_> {
    Tenant {
        s,
        name: unique("partial"),
    }
}

async fn a_pull_shows_only_what_its_user_may_read(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    t.create("alice", 1, "private", &[]).await;
    t.create("alice", 2, "for-bob", &["bob"]).await;
    t.create("bob", 1, "bobs", &[]).await;
    let bob = t.pull("bob", &[], 0, 100).await;
    assert_eq!(bob.ids, ["for-bob", "bobs"], "{}", bob.raw);
    assert!(
        !bob.raw.to_string().contains("secret private"),
        "{}",
        bob.raw
    );
    assert!(bob.revoked.is_empty(), "{}", bob.raw);
    // The scan reached the end: the cursor is the head, past the hidden positions.
    assert_eq!(bob.cursor, bob.head);
    assert!(!bob.has_more);
    let carol = t.pull("carol", &[], 0, 100).await;
    assert!(
        carol.ids.is_empty() && carol.revoked.is_empty(),
        "{}",
        carol.raw
    );
    let manager = t.pull("carol", &["manager"], 0, 100).await;
    assert_eq!(
        manager.ids,
        ["private", "for-bob", "bobs"],
        "{}",
        manager.raw
    );
    s.shutdown().await;
}

async fn cursors_pass_hidden_positions_and_lose_none(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    // Bob may read every third note: pages of 1 scan past the hidden ones.
    let mut readable = Vec::new();
    for i in 0..30u64 {
        let id = format!("n{i:02}");
        let shared: &[&str] = if i % 3 == 2 { &["bob"] } else { &[] };
        if i % 3 == 2 {
            readable.push(id.clone());
        }
        t.create("alice", i + 1, &id, shared).await;
    }
    let (ids, revoked, _) = t.pull_all("bob", &[], 0, 1).await;
    assert_eq!(ids, readable);
    assert!(revoked.is_empty());
    // A user who may read nothing of a long log gets bounded pages that still advance.
    for i in 30..45u64 {
        t.create("alice", i + 1, &format!("n{i:02}"), &[]).await;
    }
    let first = t.pull("carol", &[], 0, 1).await;
    assert!(first.ids.is_empty());
    assert!(
        first.has_more,
        "a scan of 8 rows stops before the end: {}",
        first.raw
    );
    assert_eq!(first.cursor, 8, "{}", first.raw);
    let (ids, _, end) = t.pull_all("carol", &[], first.cursor, 1).await;
    assert!(ids.is_empty());
    // Nothing was lost on the way: a note shared now reaches carol from where she stopped.
    let answer = t
        .write(
            "alice",
            100,
            "n00",
            "update",
            1,
            json!({"shared_with": ["carol"]}),
        )
        .await;
    version(&answer);
    let next = t.pull("carol", &[], end, 10).await;
    assert_eq!(next.ids, ["n00"], "{}", next.raw);
    s.shutdown().await;
}

async fn remaining_counts_nothing_hidden(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    for i in 0..12u64 {
        let shared: &[&str] = if i < 3 { &["bob"] } else { &[] };
        t.create("alice", i + 1, &format!("n{i:02}"), shared).await;
    }
    let (mut cursor, mut received) = (0, 0u64);
    loop {
        let page = t.pull("bob", &[], cursor, 1).await;
        received += page.ids.len() as u64;
        assert!(
            page.remaining <= 3 - received.min(3) + u64::from(page.has_more),
            "remaining {} after {received} of 3 readable: {}",
            page.remaining,
            page.raw
        );
        cursor = page.cursor;
        if !page.has_more {
            assert_eq!(page.remaining, 0);
            break;
        }
    }
    assert_eq!(received, 3);
    s.shutdown().await;
}

async fn unsharing_sends_a_removal_and_resharing_the_whole_record(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    let v1 = t.create("alice", 1, "n1", &["bob"]).await;
    let bob = t.pull("bob", &[], 0, 100).await;
    assert_eq!(bob.ids, ["n1"]);
    let carol = t.pull("carol", &[], 0, 100).await;
    let v2 = version(
        &t.write(
            "alice",
            2,
            "n1",
            "update",
            v1,
            json!({"shared_with": [], "title": "now private"}),
        )
        .await,
    );
    let after = t.pull("bob", &[], bob.cursor, 100).await;
    assert!(after.ids.is_empty(), "{}", after.raw);
    assert_eq!(after.revoked, ["n1"], "{}", after.raw);
    assert_eq!(after.raw["revoked"][0]["version"], v2);
    assert!(
        !after.raw.to_string().contains("now private"),
        "{}",
        after.raw
    );
    // Someone who never could read it learns nothing, not even the id.
    let never = t.pull("carol", &[], carol.cursor, 100).await;
    assert!(
        never.ids.is_empty() && never.revoked.is_empty(),
        "{}",
        never.raw
    );
    assert!(!never.raw.to_string().contains("n1"), "{}", never.raw);
    // Shared again: it arrives whole.
    t.write(
        "alice",
        3,
        "n1",
        "update",
        v2,
        json!({"shared_with": ["bob"]}),
    )
    .await;
    let back = t.pull("bob", &[], after.cursor, 100).await;
    assert_eq!(back.ids, ["n1"], "{}", back.raw);
    assert_eq!(back.raw["changes"][0]["fields"]["title"], "now private");
    s.shutdown().await;
}

async fn tombstones_go_to_former_readers_only(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    let v1 = t.create("alice", 1, "n1", &["bob"]).await;
    let bob = t.pull("bob", &[], 0, 100).await;
    let carol = t.pull("carol", &[], 0, 100).await;
    t.write("alice", 2, "n1", "delete", v1, json!({})).await;
    let bob = t.pull("bob", &[], bob.cursor, 100).await;
    assert_eq!(bob.deleted, ["n1"], "{}", bob.raw);
    let carol = t.pull("carol", &[], carol.cursor, 100).await;
    assert!(!carol.raw.to_string().contains("n1"), "{}", carol.raw);
    s.shutdown().await;
}

async fn a_role_change_takes_effect_on_the_next_pull(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    t.create("alice", 1, "private", &[]).await;
    let as_manager = t.pull("carol", &["manager"], 0, 100).await;
    assert_eq!(as_manager.ids, ["private"]);
    let view = as_manager.raw["view"].as_str().unwrap().to_owned();
    assert!(!view.is_empty());
    // Same roles: the view holds.
    let (status, same) = t
        .pull_with_view("carol", &["manager"], as_manager.cursor, &view)
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["view"], view.as_str());
    // A role that opens nothing changes nothing.
    let (status, _) = t
        .pull_with_view("carol", &["manager", "clerk"], as_manager.cursor, &view)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The role is taken away: the device that holds the note must start over.
    let (status, body) = t
        .pull_with_view("carol", &[], as_manager.cursor, &view)
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"]["code"], "permissions_changed", "{body}");
    let resync = t.pull("carol", &[], 0, 100).await;
    assert!(resync.ids.is_empty(), "{}", resync.raw);
    let new_view = resync.raw["view"].as_str().unwrap().to_owned();
    assert_ne!(new_view, view);
    // After the resync the device is not asked again.
    let (status, next) = t
        .pull_with_view("carol", &[], resync.cursor, &new_view)
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    // And the role given back shows the note again, after a resync of its own.
    let (status, _) = t
        .pull_with_view("carol", &["manager"], resync.cursor, &new_view)
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(t.pull("carol", &["manager"], 0, 100).await.ids, ["private"]);
    s.shutdown().await;
}

async fn a_conflict_answer_for_a_record_the_pusher_may_not_read_reveals_nothing(backend: &Backend) {
    let s = start(backend).await;
    let t = tenant(&s);
    let v1 = t.create("alice", 1, "n1", &["bob"]).await;
    let v2 = version(
        &t.write("alice", 2, "n1", "update", v1, json!({"title": "v2 draft"}))
            .await,
    );
    // Bob, who may read it, writes on a stale base: a conflict showing the record.
    let client = "bob-c";
    let body = batch(
        client,
        vec![mutation(
            "bob-1",
            client,
            1,
            "notes",
            "n1",
            "update",
            v1,
            json!({"title": "bob's"}),
        )],
    );
    let (status, answer) = s.push(&t.token("bob", &[]), "bob-key", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["conflicts"].as_array().unwrap().len(), 1, "{answer}");
    // Alice unshares it and writes a secret; bob's retry of the same batch (replayed from
    // the stored outcome) must not show the record any more.
    let v3 = version(
        &t.write(
            "alice",
            3,
            "n1",
            "update",
            v2,
            json!({"shared_with": [], "title": "salary talk"}),
        )
        .await,
    );
    let (status, replay) = s.push(&t.token("bob", &[]), "bob-key", &body).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert!(
        replay["conflicts"].as_array().unwrap().is_empty(),
        "{replay}"
    );
    assert_eq!(replay["rejected"][0]["code"], "forbidden", "{replay}");
    assert!(!replay.to_string().contains("salary"), "{replay}");
    // A fresh stale write is refused the same way.
    let fresh = batch(
        client,
        vec![mutation(
            "bob-2",
            client,
            2,
            "notes",
            "n1",
            "update",
            v1,
            json!({"title": "again"}),
        )],
    );
    let (_, answer) = s.push(&t.token("bob", &[]), "bob-key-2", &fresh).await;
    assert_eq!(answer["rejected"][0]["code"], "forbidden", "{answer}");
    assert!(!answer.to_string().contains("salary"), "{answer}");
    let _ = v3;
    s.shutdown().await;
}

on_both_backends!(
    a_pull_shows_only_what_its_user_may_read,
    cursors_pass_hidden_positions_and_lose_none,
    remaining_counts_nothing_hidden,
    unsharing_sends_a_removal_and_resharing_the_whole_record,
    tombstones_go_to_former_readers_only,
    a_role_change_takes_effect_on_the_next_pull,
    a_conflict_answer_for_a_record_the_pusher_may_not_read_reveals_nothing,
);
