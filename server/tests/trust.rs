//! What the server trusts a client with, and what it tells clients about itself: writers
//! bound to their users, stored records within the limits, stamps in canonical form and
//! within the clock bound, and the epoch, head, server time and limits of every answer.

mod common;

use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use ferry_core::protocol::limits;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row as _;

const BIN: &str = env!("CARGO_BIN_EXE_ferry-server");

on_both_backends!(
    a_client_id_belongs_to_its_first_user,
    records_stay_within_the_limits_across_patches,
    stamps_are_canonical_and_within_the_clock_bound,
    answers_carry_epoch_head_time_and_limits,
);

async fn a_client_id_belongs_to_its_first_user(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let tenant = unique("t");
    let alice = s.token(&tenant, "alice");
    let mallory = s.token(&tenant, "mallory");
    let m = mutation(
        "a1",
        "alice-phone",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({}),
    );
    let (status, _) = s.push(&alice, "k1", &batch("alice-phone", vec![m])).await;
    assert_eq!(status, StatusCode::OK);
    // Another user of the tenant pushes as alice's device, with a seq that would block it
    // for good: refused before any effect.
    let mut m = mutation(
        "m1",
        "alice-phone",
        1,
        "notes",
        "n2",
        "create",
        0,
        json!({}),
    );
    m["seq"] = json!(limits::MAX_SAFE_INTEGER);
    let (status, body) = s.push(&mallory, "k2", &batch("mallory-pc", vec![m])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "foreign_client");
    // Nor may a batch of mallory's own device carry one op of alice's device.
    let own = mutation("m2", "mallory-pc", 1, "notes", "n3", "create", 0, json!({}));
    let foreign = mutation(
        "m3",
        "alice-phone",
        9,
        "notes",
        "n4",
        "create",
        0,
        json!({}),
    );
    let (status, body) = s
        .push(
            &mallory,
            "k3",
            &batch("mallory-pc", vec![own.clone(), foreign]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "foreign_client");
    // Alice's device goes on as before; mallory's own device works too.
    let m = mutation(
        "a2",
        "alice-phone",
        2,
        "notes",
        "n1",
        "update",
        1,
        json!({"x": 1}),
    );
    let (status, body) = s.push(&alice, "k4", &batch("alice-phone", vec![m])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = s
        .push(&mallory, "k5", &batch("mallory-pc", vec![own]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1, "{body}");
    // The history says who did what.
    let users = op_users(&s.database, &tenant).await;
    assert_eq!(
        users,
        vec![
            ("a1".to_owned(), "alice".to_owned()),
            ("a2".to_owned(), "alice".to_owned()),
            ("m2".to_owned(), "mallory".to_owned()),
        ]
    );
    s.shutdown().await;
}

/// (op id, user) of every stored op of `tenant`, by op id.
async fn op_users(database: &str, tenant: &str) -> Vec<(String, String)> {
    let q = "SELECT op_id, user_id FROM ops WHERE tenant = $1 ORDER BY op_id";
    let rows: Vec<(String, String)> = if database.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database).await.unwrap();
        let rows = sqlx::query(q).bind(tenant).fetch_all(&pool).await.unwrap();
        rows.iter()
            .map(|r| (r.get("op_id"), r.get("user_id")))
            .collect()
    } else {
        let pool = sqlx::PgPool::connect(database).await.unwrap();
        let rows = sqlx::query(q).bind(tenant).fetch_all(&pool).await.unwrap();
        rows.iter()
            .map(|r| (r.get("op_id"), r.get("user_id")))
            .collect()
    };
    rows
}

async fn records_stay_within_the_limits_across_patches(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let chunk = "x".repeat(100 * 1024);
    let m = mutation(
        "c",
        "c1",
        1,
        "notes",
        "big",
        "create",
        0,
        json!({"f0": chunk}),
    );
    let (_, body) = s.push(&t, "k0", &batch("c1", vec![m])).await;
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1, "{body}");
    // Each patch is within the limits; the third would make a record over 256 KiB. The
    // other record of the batch is applied all the same.
    let grow = |seq: u64, base: u64| {
        mutation(
            &format!("g{seq}"),
            "c1",
            seq,
            "notes",
            "big",
            "update",
            base,
            json!({ format!("f{seq}"): chunk }),
        )
    };
    let (status, body) = s.push(&t, "k1", &batch("c1", vec![grow(2, 1)])).await;
    assert_eq!(status, StatusCode::OK);
    let version = body["accepted"][0]["version"].as_u64().unwrap();
    let other = mutation(
        "o",
        "c1",
        4,
        "notes",
        "small",
        "create",
        0,
        json!({"ok": true}),
    );
    let (status, body) = s
        .push(&t, "k2", &batch("c1", vec![grow(3, version), other]))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "not a 413 of the whole push: {body}"
    );
    assert_eq!(body["rejected"][0]["code"], "record_too_large", "{body}");
    assert_eq!(body["rejected"][0]["retryable"], false);
    assert_eq!(
        body["accepted"].as_array().unwrap().len(),
        1,
        "the rest goes on: {body}"
    );
    let (_, page) = s.pull(&t, 0, 100).await;
    let big = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "big")
        .unwrap();
    assert_eq!(
        big["fields"].as_object().unwrap().len(),
        2,
        "stored record untouched"
    );
    // Fields: create with 600, update with 600 more.
    let many = |prefix: &str| -> Value {
        (0..600)
            .map(|i| (format!("{prefix}{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let m = mutation("w1", "c2", 1, "notes", "wide", "create", 0, many("a"));
    let (_, body) = s.push(&t, "k3", &batch("c2", vec![m])).await;
    let v = body["accepted"][0]["version"].as_u64().unwrap();
    let m = mutation("w2", "c2", 2, "notes", "wide", "update", v, many("b"));
    let (_, body) = s.push(&t, "k4", &batch("c2", vec![m])).await;
    assert_eq!(body["rejected"][0]["code"], "record_too_large", "{body}");
    s.shutdown().await;
}

async fn stamps_are_canonical_and_within_the_clock_bound(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (i, stamp) in [
        format!("+{:014}-0000000000-c1", 1_700_000_000_000u64),
        format!("{:015}-0000000000-", 1_700_000_000_000u64),
        format!("{:015}-0000000000-c 1", 1_700_000_000_000u64),
        format!("{:015}-0000000000-c\u{0}1", 1_700_000_000_000u64),
        format!(
            "{:015}-0000000000-{}",
            1_700_000_000_000u64,
            "n".repeat(129)
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = mutation("a", "c1", 1, "notes", "n", "create", 0, json!({}));
        m["hlc"] = json!(stamp);
        let (status, body) = s.push(&t, &format!("k{i}"), &batch("c1", vec![m])).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{stamp:?} accepted: {body}"
        );
        // Parsing already refuses an over-long node (`malformed_json`); the canonical-form
        // check refuses the rest (`invalid_message`).
        let code = body["error"]["code"].as_str().unwrap();
        assert!(
            code == "invalid_message" || (i == 4 && code == "malformed_json"),
            "{stamp:?}: {body}"
        );
    }
    // The year 33658, and a minute and a bit ahead: refused for good, per mutation.
    let mut far = mutation("far", "c1", 1, "notes", "far", "create", 0, json!({}));
    far["hlc"] = json!("999999999999999-0000000000-c1");
    let mut ahead = mutation("ahead", "c1", 2, "notes", "ahead", "create", 0, json!({}));
    ahead["hlc"] = json!(format!(
        "{:015}-0000000000-c1",
        now + limits::MAX_CLOCK_DRIFT_MS + 5_000
    ));
    let mut fine = mutation("fine", "c1", 3, "notes", "fine", "create", 0, json!({}));
    fine["hlc"] = json!(format!("{:015}-0000000000-c1", now + 1_000));
    let (status, body) = s.push(&t, "kc", &batch("c1", vec![far, ahead, fine])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{body}");
    for r in rejected {
        assert_eq!(r["code"], "clock_ahead");
        assert_eq!(r["retryable"], false);
    }
    assert_eq!(body["accepted"][0]["op_id"], "fine");
    let (_, page) = s.pull(&t, 0, 100).await;
    assert_eq!(page["changes"].as_array().unwrap().len(), 1, "{page}");
    // A stamp is stored exactly as it was sent.
    assert_eq!(
        page["changes"][0]["hlc"],
        json!(format!("{:015}-0000000000-c1", now + 1_000))
    );
    s.shutdown().await;
}

async fn answers_carry_epoch_head_time_and_limits(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let t = s.token(&unique("t"), "alice");
    let m = mutation("a", "c1", 1, "notes", "n", "create", 0, json!({}));
    let (_, push) = s.push(&t, "k", &batch("c1", vec![m])).await;
    let (_, pull) = s.pull(&t, 0, 10).await;
    let epoch = push["epoch"].as_str().unwrap();
    assert!(!epoch.is_empty() && epoch.len() <= limits::MAX_EPOCH_LEN);
    assert_eq!(pull["epoch"], push["epoch"]);
    assert_eq!(pull["head"], 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for answer in [&push, &pull] {
        let time = answer["server_time"].as_u64().unwrap();
        assert!(time.abs_diff(now) < 60_000, "{answer}");
        assert_eq!(
            answer["limits"],
            json!({
                "max_push_bytes": limits::MAX_PUSH_BYTES,
                "max_push_mutations": limits::MAX_MUTATIONS_PER_PUSH,
                "max_record_bytes": limits::MAX_RECORD_BYTES,
                "max_clock_drift_ms": limits::MAX_CLOCK_DRIFT_MS,
            })
        );
    }
    s.shutdown().await;
}

/// A fresh database gets its own epoch, it survives a restart, and `rotate-epoch` (the step
/// of a backup restore) replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_is_per_database_and_rotate_epoch_changes_it() {
    async fn epoch_of(s: &TestServer) -> String {
        let t = s.token(&unique("t"), "alice");
        let (_, page) = s.pull(&t, 0, 1).await;
        page["epoch"].as_str().unwrap().to_owned()
    }
    let a = TestServer::start(&Backend::Sqlite).await;
    let b = TestServer::start(&Backend::Sqlite).await;
    let (epoch_a, epoch_b) = (epoch_of(&a).await, epoch_of(&b).await);
    assert_ne!(epoch_a, epoch_b, "two fresh databases share an epoch");
    b.shutdown().await;
    let (database, dir) = (a.database.clone(), a.dir.clone());
    a.shutdown().await;
    let again = TestServer::start_on(&database, dir.clone(), |_| {}).await;
    assert_eq!(
        epoch_of(&again).await,
        epoch_a,
        "the epoch survives a restart"
    );
    again.shutdown().await;
    let out = std::process::Command::new(BIN)
        .args(["rotate-epoch", "--database", &database])
        .env_remove("FERRY_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = TestServer::start_on(&database, dir, |_| {}).await;
    let epoch_c = epoch_of(&rotated).await;
    assert_ne!(
        epoch_c, epoch_a,
        "rotate-epoch gave the database a new epoch"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&epoch_c));
    rotated.shutdown().await;
}
