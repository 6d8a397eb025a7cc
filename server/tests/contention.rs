//! Many clients of one tenant pushing at once (the server benchmark's shape, scaled down):
//! every push is answered, every mutation applied once, and no push is left holding the
//! tenant's lock. On PostgreSQL this is the test for the stall once seen at 32 clients.

mod common;

use common::{batch, mutation, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

on_both_backends!(thirty_two_clients_push_at_once);

const CLIENTS: usize = 32;
const BATCHES: usize = 8;
const BATCH: usize = 25;

async fn thirty_two_clients_push_at_once(backend: &Backend) {
    // The default 2 s acquire timeout: waiting for the tenant's lock must not turn into 503s.
    let s = TestServer::start_with(backend, |c| c.db.max_connections = 10).await;
    let tenant = unique("t");
    let token = s.token(&tenant, "bench");
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, url, token) = (reqwest::Client::new(), s.url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let client = format!("c{c}");
            for b in 0..BATCHES {
                let mutations = (0..BATCH)
                    .map(|i| {
                        let seq = (b * BATCH + i + 1) as u64;
                        let id = format!("{client}-{seq}");
                        mutation(
                            &id,
                            &client,
                            seq,
                            "notes",
                            &id,
                            "create",
                            0,
                            json!({"n": seq}),
                        )
                    })
                    .collect();
                let resp = http
                    .post(format!("{url}/v1/sync/mutations"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("{client}-{b}"))
                    .json(&batch(&client, mutations))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .expect("every push is answered within 30 s");
                let (status, body) = common::read(resp).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["accepted"].as_array().unwrap().len(), BATCH, "{body}");
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("32 clients finish within 120 s");
    let (_, page) = s.pull(&token, 0, 1).await;
    assert_eq!(page["head"], (CLIENTS * BATCHES * BATCH) as u64);
    s.shutdown().await;
}
