//! PostgreSQL under SERIALIZABLE (how CockroachDB and YugabyteDB run by default): concurrent
//! pushes of one tenant hit serialization failures (SQLSTATE 40001), which the server retries,
//! so every push still succeeds exactly once. Skipped without `FERRY_TEST_POSTGRES_URL`.

mod common;

use common::{batch, mutation, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

/// Concurrent pushes: each of them can fail at most once per other push that commits during
/// its attempt, so 6 pushes need at most 5 retries, within the server's 8.
const PUSHES: u64 = 6;
const PER_PUSH: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_serializable_pushes_are_retried() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: FERRY_TEST_POSTGRES_URL is not set");
        return;
    };
    let a = TestServer::start_with(&backend, |c| c.db.serializable = true).await;
    let b = TestServer::start_on(&a.database, None, |c| c.db.serializable = true).await;
    let token = a.token(&unique("t"), "alice");
    let mut tasks = Vec::new();
    for p in 0..PUSHES {
        let client = format!("c{p}");
        let mutations = (1..=PER_PUSH)
            .map(|i| {
                mutation(
                    &format!("{client}-{i}"),
                    &client,
                    i,
                    "notes",
                    &format!("{client}-{i}"),
                    "create",
                    0,
                    json!({"i": i}),
                )
            })
            .collect();
        let body = batch(&client, mutations);
        let url = if p % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{url}/v1/sync/mutations"))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("batch-{p}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            common::read(resp).await
        }));
    }
    for task in tasks {
        let (status, resp) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{resp}");
        assert_eq!(
            resp["accepted"].as_array().unwrap().len() as u64,
            PER_PUSH,
            "{resp}"
        );
    }
    let (_, page) = a.pull(&token, 0, 1000).await;
    assert_eq!(
        page["cursor"].as_u64(),
        Some(PUSHES * PER_PUSH),
        "every push applied once: {page}"
    );
    let mut versions: Vec<u64> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    versions.dedup();
    assert_eq!(
        versions,
        (1..=PUSHES * PER_PUSH).collect::<Vec<_>>(),
        "positions are dense and unique"
    );
    eprintln!(
        "transactions retried in this process: {}",
        ferry_server::db::retry::retries_total()
    );
    b.shutdown().await;
    a.shutdown().await;
}
