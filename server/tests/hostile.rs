//! A hostile client against the server: stalled connections (slowloris), a database that
//! drops away, and the body of every error path. Each test here failed before the fix it
//! guards (see the commit that added it).

mod common;

use common::proxy::{reroute, CuttableProxy};
use common::writes::create;
use common::{assert_error, batch, mutation, read, unique, Backend, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens `n` connections that send the start of a request's headers and then nothing.
async fn stalled_sockets(url: &str, n: usize) -> Vec<TcpStream> {
    let addr = url.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        s.write_all(b"GET /v1/sync/changes HTTP/1.1\r\nHost: ferry\r\nX-Slow: ")
            .await
            .expect("write");
        sockets.push(s);
    }
    sockets
}

/// Whether the server closed the socket within `within`.
async fn closed_by_server(socket: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // hyper may answer 408 before closing: keep reading to the end.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn tight_connections(c: &mut ferry_server::ServerConfig) {
    c.connections.header_read_timeout = Duration::from_secs(1);
    c.connections.max_connections = 64;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_cannot_make_a_normal_request_fail() {
    let s = TestServer::start_with(&Backend::Sqlite, tight_connections).await;
    let token = s.token(&unique("t"), "alice");
    // Far more stalled sockets than the server keeps open: the rest wait in the backlog.
    let mut stalled = stalled_sockets(&s.url, 300).await;
    let started = Instant::now();
    let resp = s
        .http
        .get(format!("{}/v1/sync/changes?cursor=0", s.url))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("a normal request gets through a slowloris attack");
    assert_eq!(resp.status(), StatusCode::OK);
    eprintln!("normal request answered after {:?}", started.elapsed());
    // The stalled sockets the server accepted were closed by the header-read timeout.
    assert!(
        closed_by_server(&mut stalled[0], Duration::from_secs(5)).await,
        "a connection that never finishes its headers is closed"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let s = TestServer::start_with(&Backend::Sqlite, tight_connections).await;
    let mut socket = TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(b"GET /livez HTTP/1.1\r\nHost: ferry\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_by_server(&mut socket, Duration::from_secs(4)).await,
        "an idle keep-alive connection is closed after the header-read timeout"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_stalled_sockets_at_once() {
    let s = TestServer::start(&Backend::Sqlite).await; // default timeouts: 10 s headers, 10 s grace
    let mut stalled = stalled_sockets(&s.url, 50).await;
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    s.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}: stalled sockets held it for the grace period",
        started.elapsed()
    );
    assert!(closed_by_server(&mut stalled[0], Duration::from_secs(1)).await);
}

/// `postgres_outage_is_answered_fast` needs PostgreSQL; it is skipped (with a note) without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_answered_fast() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        eprintln!("skipped: FERRY_TEST_POSTGRES_URL is not set");
        return;
    };
    let (_, target) = reroute(&url, "127.0.0.1:1".parse().unwrap());
    let proxy = CuttableProxy::start(target).await;
    let (proxied, _) = reroute(&url, proxy.addr);
    let s = TestServer::start_on(&proxied, None, |_| {}).await;
    let tenant = unique("t");
    let token = s.token(&tenant, "alice");
    let m = mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({"t": 1}));
    assert_eq!(
        s.push(&token, "k1", &batch("c1", vec![m])).await.0,
        StatusCode::OK
    );

    proxy.cut();
    let m = mutation("b", "c1", 2, "notes", "n2", "create", 0, json!({"t": 2}));
    let push = s
        .http
        .post(format!("{}/v1/sync/mutations", s.url))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k2")
        .json(&batch("c1", vec![m.clone()]));
    let pull = s
        .http
        .get(format!("{}/v1/sync/changes?cursor=0", s.url))
        .bearer_auth(&token);
    let events = s
        .http
        .get(format!("{}/v1/sync/events", s.url))
        .bearer_auth(&token);
    let ready = s.http.get(format!("{}/readyz", s.url));
    for (what, request) in [
        ("push", push),
        ("pull", pull),
        ("events", events),
        ("readyz", ready),
    ] {
        let started = Instant::now();
        let resp = request
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let retry_after = resp.headers().get("retry-after").cloned();
        let (status, body) = read(resp).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} during the outage: {body}"
        );
        assert_error(&body, "unavailable");
        assert!(retry_after.is_some(), "{what}: a 503 carries Retry-After");
        assert!(
            elapsed < Duration::from_secs(4),
            "{what} took {elapsed:?} to fail during the outage"
        );
    }
    let live = s.http.get(format!("{}/livez", s.url)).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process itself is alive");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = s.push(&token, "k2", &batch("c1", vec![m.clone()])).await;
        if status == StatusCode::OK {
            assert_eq!(body["accepted"].as_array().unwrap().len(), 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the outage: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.shutdown().await;
}

const SECRET_VALUE: &str = "PAYLOAD-SECRET-4242";

fn assert_not_echoed(body: &Value) {
    assert!(
        !body.to_string().contains(SECRET_VALUE),
        "the error echoes a payload value: {body}"
    );
}

on_both_backends!(error_bodies_are_typed_and_never_echo_payloads);

async fn error_bodies_are_typed_and_never_echo_payloads(backend: &Backend) {
    let s = TestServer::start(backend).await;
    let token = s.token(&unique("t"), "alice");
    let post = |body: Value| {
        let (s, token) = (&s, &token);
        async move { s.push(token, "k", &body).await }
    };
    // A string where the protocol has a number (`seq`), a malformed clock stamp (`hlc`), an
    // unknown op kind (`op`): each field of an otherwise valid mutation in turn.
    for field in ["seq", "hlc", "op"] {
        let mut m = create("notes", "n1", json!({})).mutation("a", "c1", 1);
        m[field] = json!(SECRET_VALUE);
        let (status, body) = post(batch("c1", vec![m])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_error(&body, "malformed_json");
        assert_not_echoed(&body);
    }
    // Not JSON at all.
    let resp = s
        .http
        .post(format!("{}/v1/sync/mutations", s.url))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .body(format!("{{\"client_id\": {SECRET_VALUE}"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    assert_not_echoed(&body);
    // The demo token endpoint (off here: 404 JSON) and the admin endpoint's body.
    let resp = s
        .http
        .post(format!("{}/v1/admin/compact", s.url))
        .bearer_auth(s.admin_token("x"))
        .json(&json!({"before_cursor": SECRET_VALUE}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "malformed_json");
    assert_not_echoed(&body);

    // Query strings: pull and events answer JSON, never echo, and a cursor beyond 2^53 - 1
    // gets the documented `invalid_message`.
    for (query, code) in [
        ("cursor=9007199254740992", "invalid_message"),
        ("cursor=123456789012345678901234567890", "invalid_message"),
        (&*format!("cursor={SECRET_VALUE}"), "invalid_request"),
        (&*format!("limit={SECRET_VALUE}"), "invalid_request"),
    ] {
        let resp = s
            .http
            .get(format!("{}/v1/sync/changes?{query}", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_error(&body, code);
        assert_not_echoed(&body);
    }
    let resp = s
        .http
        .get(format!(
            "{}/v1/sync/events?token={SECRET_VALUE}&token={SECRET_VALUE}",
            s.url
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "events query: {body}");
    assert_error(&body, "invalid_request");
    assert_not_echoed(&body);

    // 404 and 405 are JSON with their documented codes.
    let resp = s
        .http
        .get(format!("{}/v1/nothing-here", s.url))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let resp = s
        .http
        .delete(format!("{}/v1/sync/mutations", s.url))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");

    // A body over the push limit: 413 naming the limit.
    let resp = s
        .http
        .post(format!("{}/v1/sync/mutations", s.url))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .body(vec![b' '; 4 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "too_large");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&(4 * 1024 * 1024).to_string()));
    s.shutdown().await;
}
