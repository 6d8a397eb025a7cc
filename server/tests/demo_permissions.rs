//! The sample app's permissions as `ferry-server --demo` ships them: team records open to the
//! tenant, private notes read by owner and sharees only, expense claims read by their author
//! and a manager, and demo tokens that may carry the `manager` role (and no other).

mod common;

use common::{assert_error, batch, mutation, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn demo_token(s: &TestServer, body: Value) -> (StatusCode, Value) {
    common::read(
        s.http
            .post(format!("{}/v1/demo/token", s.url))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn token(s: &TestServer, user: &str, roles: &[&str]) -> String {
    let (status, body) = demo_token(s, json!({"user": user, "roles": roles})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// The ids of the records a pull from 0 shows.
async fn visible(s: &TestServer, token: &str) -> Vec<String> {
    let (status, page) = s.pull(token, 0, 1000).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut ids: Vec<String> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["collection"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_demo_config_keeps_private_notes_and_claims_to_their_readers() {
    // The rules `ferry-server --demo` runs with (ServerConfig::from_args).
    let s = TestServer::start_with(&Backend::Sqlite, |c| {
        c.demo = true;
        c.rules = ferry_server::validation::Rules::new().with_demo_permissions();
    })
    .await;
    let alice = token(&s, "alice", &[]).await;
    let bob = token(&s, "bob", &[]).await;
    let carol = token(&s, "carol", &["manager"]).await;
    let writes = vec![
        mutation(
            "a1",
            "ca",
            1,
            "notes",
            "team",
            "create",
            0,
            json!({"title": "for all"}),
        ),
        mutation(
            "a2",
            "ca",
            2,
            "private_notes",
            "mine",
            "create",
            0,
            json!({"title": "only me"}),
        ),
        mutation(
            "a3",
            "ca",
            3,
            "private_notes",
            "ours",
            "create",
            0,
            json!({"title": "for bob", "shared_with": ["bob"]}),
        ),
        mutation(
            "a4",
            "ca",
            4,
            "claims",
            "taxi",
            "create",
            0,
            json!({"amount": 12}),
        ),
    ];
    let (status, resp) = s.push(&alice, "k1", &batch("ca", writes)).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"].as_array().unwrap().len(), 4, "{resp}");

    assert_eq!(
        visible(&s, &alice).await,
        [
            "claims/taxi",
            "notes/team",
            "private_notes/mine",
            "private_notes/ours"
        ]
    );
    assert_eq!(
        visible(&s, &bob).await,
        ["notes/team", "private_notes/ours"]
    );
    assert_eq!(visible(&s, &carol).await, ["claims/taxi", "notes/team"]);

    // Bob reads the shared note but may not change it; a negative claim is refused.
    let refused = vec![
        mutation(
            "b1",
            "cb",
            1,
            "private_notes",
            "ours",
            "update",
            3,
            json!({"title": "bob's"}),
        ),
        mutation(
            "b2",
            "cb",
            2,
            "claims",
            "refund",
            "create",
            0,
            json!({"amount": -5}),
        ),
    ];
    let (status, resp) = s.push(&bob, "k2", &batch("cb", refused)).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let rejected = resp["rejected"].as_array().unwrap();
    assert_eq!(rejected[0]["code"], "forbidden", "{resp}");
    assert!(
        rejected[0]["message"]
            .as_str()
            .unwrap()
            .contains("may not update"),
        "{resp}"
    );
    assert_eq!(rejected[1]["code"], "validation_failed", "{resp}");
    assert!(
        rejected[1]["message"].as_str().unwrap().contains("amount"),
        "{resp}"
    );

    // Demo tokens carry `manager` at most: never `admin`.
    let (status, body) = demo_token(&s, json!({"user": "mallory", "roles": ["admin"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );
    s.shutdown().await;
}
