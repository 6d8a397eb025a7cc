//! The rest of the HTTP surface: server-sent pokes, health, metrics, the demo token, the
//! rate limiter, compression, CORS and static files.

mod common;

use common::events::EventStream;
use common::{assert_error, batch, mutation, unique, Backend, TestServer};
use ferry_server::limiter::LimitConfig;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

on_both_backends!(events_poke_on_push, health_and_metrics);

async fn events_poke_on_push(backend: &Backend) {
    let s = TestServer::start_with(backend, |c| c.keep_alive = Duration::from_millis(50)).await;
    let tenant = unique("t");
    let t = s.token(&tenant, "alice");
    let mut stream = EventStream::open(&s.url, &t).await;
    assert_eq!(
        stream.next_poke().await,
        0,
        "the first poke carries the current cursor"
    );
    // Another tenant's push does not poke this stream; this tenant's does.
    let other = s.token(&unique("o"), "bob");
    let m = mutation("x", "c9", 1, "notes", "n", "create", 0, json!({}));
    assert_eq!(
        s.push(&other, "k", &batch("c9", vec![m])).await.0,
        StatusCode::OK
    );
    let m = mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({}));
    let n = mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({}));
    assert_eq!(
        s.push(&t, "k", &batch("c1", vec![m, n])).await.0,
        StatusCode::OK
    );
    assert_eq!(stream.next_poke().await, 2);
    // Keep-alive comments arrive while nothing changes.
    loop {
        let block = stream.next_block().await;
        if block.starts_with(':') {
            break;
        }
    }
    s.shutdown().await;
    assert!(stream.ended().await, "a shutdown ends open streams cleanly");
}

async fn health_and_metrics(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let resp = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let t = s.token(&unique("t"), "alice");
    let body = batch(
        "c1",
        vec![
            mutation(
                "a",
                "c1",
                1,
                "expenses",
                "e1",
                "create",
                0,
                json!({"amount": 3}),
            ),
            mutation(
                "b",
                "c1",
                2,
                "expenses",
                "e2",
                "create",
                0,
                json!({"amount": -3}),
            ),
        ],
    );
    assert_eq!(s.push(&t, "k", &body).await.0, StatusCode::OK);
    assert_eq!(s.pull(&t, 0, 10).await.0, StatusCode::OK);
    assert_eq!(s.pull(&t, 0, 10).await.0, StatusCode::OK);
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"ferry_http_requests_total{route="/v1/sync/changes",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ferry_http_requests_total{route="/v1/sync/mutations",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(
        "ferry_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/sync/mutations\"} 1"
    ));
    assert!(text.contains("ferry_mutations_applied_total 1"), "{text}");
    assert!(
        text.contains(r#"ferry_rejections_total{code="validation_failed"} 1"#),
        "{text}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn demo_tokens_only_in_demo_mode() {
    let s = TestServer::start_with(&Backend::Sqlite, |c| c.demo = true).await;
    let resp = s
        .http
        .post(format!("{}/v1/demo/token", s.url))
        .json(&json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["tenant"], "demo");
    let token = body["token"].as_str().unwrap();
    let m = mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({"t": 1}));
    assert_eq!(
        s.push(token, "k", &batch("c1", vec![m])).await.0,
        StatusCode::OK
    );
    let (_, page) = s.pull(&s.token("demo", "bob"), 0, 10).await;
    assert_eq!(
        page["changes"].as_array().unwrap().len(),
        1,
        "alice and bob share tenant demo"
    );
    let (status, body) = common::read(
        s.http
            .post(format!("{}/v1/demo/token", s.url))
            .json(&json!({"user": ""}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let limits = LimitConfig {
        max_in_flight: 0,
        rate_per_sec: 0.01,
        burst: 2.0,
    };
    let s = TestServer::start_with(&Backend::Sqlite, |c| c.limits = limits).await;
    let t = s.token(&unique("t"), "alice");
    assert_eq!(s.pull(&t, 0, 10).await.0, StatusCode::OK);
    assert_eq!(s.pull(&t, 0, 10).await.0, StatusCode::OK);
    let resp = s
        .http
        .get(format!("{}/v1/sync/changes", s.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_error(&resp.json().await.unwrap(), "rate_limited");
    // Other tenants are not affected.
    assert_eq!(
        s.pull(&s.token(&unique("u"), "bob"), 0, 10).await.0,
        StatusCode::OK
    );
    s.shutdown().await;
}

#[tokio::test]
async fn compression_cors_and_static_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Ferry sample</title>",
    )
    .unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log('ferry');").unwrap();
    let static_dir = dir.path().to_owned();
    let s = TestServer::start_with(&Backend::Sqlite, |c| c.static_dir = Some(static_dir)).await;
    let get = |path: &str| s.http.get(format!("{}{path}", s.url)).send();
    let index = get("/").await.unwrap().text().await.unwrap();
    assert!(index.contains("Ferry sample"));
    assert_eq!(
        get("/app.js").await.unwrap().text().await.unwrap(),
        "console.log('ferry');"
    );
    let spa = get("/notes/42").await.unwrap();
    assert_eq!(spa.status(), StatusCode::OK);
    assert!(
        spa.text().await.unwrap().contains("Ferry sample"),
        "unknown paths fall back to index.html"
    );
    let (status, body) = common::read(get("/v1/unknown").await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "API paths never fall back to index.html"
    );
    assert_error(&body, "not_found");

    let t = s.token(&unique("t"), "alice");
    let mutations = (1..=50)
        .map(|i| {
            mutation(
                &format!("op{i}"),
                "c1",
                i,
                "notes",
                &format!("n{i}"),
                "create",
                0,
                json!({"body": "text ".repeat(20)}),
            )
        })
        .collect();
    assert_eq!(
        s.push(&t, "k", &batch("c1", mutations)).await.0,
        StatusCode::OK
    );
    for encoding in ["gzip", "br"] {
        let resp = s
            .http
            .get(format!("{}/v1/sync/changes", s.url))
            .bearer_auth(&t)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-encoding"], encoding);
    }
    let preflight = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/sync/mutations", s.url),
        )
        .header("origin", "http://localhost:8080")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,idempotency-key,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert!(preflight
        .headers()
        .contains_key("access-control-allow-origin"));
    s.shutdown().await;
}
