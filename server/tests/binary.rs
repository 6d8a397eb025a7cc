//! The real binary: an acknowledged push survives SIGKILL (SQLite, `synchronous=FULL`), and
//! the `token` and `compact` subcommands work on the same database and secret file.

mod common;

use common::{batch, mutation};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-server");

/// A server process and its address.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    /// Starts `ferry-server` on `database` (no --secret: the secret file beside the database).
    fn start(database: &str) -> Proc {
        let mut child = Command::new(BIN)
            .args(["--database", database, "--listen", "127.0.0.1:0"])
            .env_remove("FERRY_SECRET")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("startup line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address")
            .to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected startup line: {line}"
        );
        Proc { child, url }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a subcommand to completion; its stdout.
fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("FERRY_SECRET")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn push(url: &str, token: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/sync/mutations"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    common::read(resp).await
}

async fn pull(url: &str, token: &str, cursor: u64) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{url}/v1/sync/changes?cursor={cursor}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    common::read(resp).await
}

#[tokio::test]
async fn acknowledged_push_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("durable.db").display());
    let server = Proc::start(&database);
    let token = run(&[
        "token",
        "--database",
        &database,
        "--tenant",
        "acme",
        "--user",
        "alice",
    ])
    .trim()
    .to_owned();
    let m = mutation(
        "op1",
        "c1",
        1,
        "notes",
        "n1",
        "create",
        0,
        json!({"title": "must survive"}),
    );
    let (status, resp) = push(&server.url, &token, "k1", &batch("c1", vec![m])).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["accepted"][0]["version"], 1);
    server.kill();

    let server = Proc::start(&database);
    let (status, page) = pull(&server.url, &token, 0).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the token still verifies: the secret file was kept"
    );
    assert_eq!(
        page["changes"][0]["fields"],
        json!({"title": "must survive"})
    );
    assert_eq!(page["cursor"], 1);
    server.kill();
}

#[tokio::test]
async fn compact_subcommand_expires_old_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("compact.db").display());
    let token = run(&[
        "--database",
        &database,
        "token",
        "--tenant",
        "acme",
        "--user",
        "alice",
        "--ttl-hours",
        "1",
    ])
    .trim()
    .to_owned();
    let server = Proc::start(&database);
    let body = batch(
        "c1",
        vec![
            mutation("a", "c1", 1, "notes", "n1", "create", 0, json!({})),
            mutation("b", "c1", 2, "notes", "n1", "delete", 1, json!({})),
            mutation("c", "c1", 3, "notes", "n2", "create", 0, json!({})),
        ],
    );
    assert_eq!(
        push(&server.url, &token, "k", &body).await.0,
        StatusCode::OK
    );
    let out = run(&[
        "compact",
        "--database",
        &database,
        "--tenant",
        "acme",
        "--before-cursor",
        "2",
    ]);
    assert_eq!(out.trim(), "removed 1 tombstones; horizon is now 2");
    let (status, body) = pull(&server.url, &token, 1).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["code"], "cursor_expired");
    let (status, page) = pull(&server.url, &token, 0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
    server.kill();
}

#[test]
fn postgres_without_a_secret_is_refused() {
    let out = Command::new(BIN)
        .args([
            "--database",
            "postgres://nobody@127.0.0.1:1/none",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("FERRY_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("required with PostgreSQL"));
}
