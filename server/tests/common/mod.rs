//! Shared test helpers: servers on SQLite (always) or PostgreSQL (when
//! `FERRY_TEST_POSTGRES_URL` is set), bound to `127.0.0.1:0`, and a small HTTP client.
#![allow(dead_code)]

pub mod events;
pub mod proxy;
pub mod transport;
pub mod writes;

use ferry_server::auth::TokenSigner;
use ferry_server::{RunningServer, ServerConfig};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

pub const SECRET: &str = "test-secret-0123456789abcdef";

/// Where a test server keeps its data.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `FERRY_TEST_POSTGRES_URL` is set. When it is not, the PostgreSQL half
    /// of a test passes with a note — unless `FERRY_TEST_REQUIRE_POSTGRES=1` says the test
    /// command expected PostgreSQL (scripts/test.sh sets it), which fails the test loudly.
    pub fn postgres() -> Option<Backend> {
        let url = std::env::var("FERRY_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty());
        if url.is_none() && std::env::var("FERRY_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("FERRY_TEST_REQUIRE_POSTGRES=1 but FERRY_TEST_POSTGRES_URL is not set");
        }
        url.map(Backend::Postgres)
    }
}

/// Runs a scenario `async fn name(backend: &Backend)` as two tests: `name::sqlite` and
/// `name::postgres` (which passes with a note when PostgreSQL is not configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(&$crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::common::Backend::postgres() {
                    Some(backend) => super::$name(&backend).await,
                    None => eprintln!("skipped: FERRY_TEST_POSTGRES_URL is not set"),
                }
            }
        }
    )*};
}

/// A tenant name no other test (or earlier run on the same PostgreSQL) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::thread_rng().gen::<u64>())
}

/// A running in-process server and what a test needs to talk to it.
pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    pub http: reqwest::Client,
    pub signer: TokenSigner,
    /// The database URL (shared by a second server in scale-out tests).
    pub database: String,
    pub dir: Option<std::sync::Arc<TempDir>>,
}

impl TestServer {
    pub async fn start(backend: &Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server after `tune` adjusted its config.
    pub async fn start_with(backend: &Backend, tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let (database, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                (
                    format!("sqlite://{}", dir.path().join("ferry.db").display()),
                    Some(std::sync::Arc::new(dir)),
                )
            }
            Backend::Postgres(url) => (url.clone(), None),
        };
        Self::start_on(&database, dir, tune).await
    }

    /// Starts a server on an existing database.
    pub async fn start_on(
        database: &str,
        dir: Option<std::sync::Arc<TempDir>>,
        tune: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let mut config = ServerConfig::new(database, SECRET.as_bytes().to_vec());
        config.rules = ferry_server::validation::Rules::new().with_demo_rules();
        config.db.max_connections = 4;
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let server = ferry_server::start(config, listener)
            .await
            .unwrap_or_else(|e| panic!("the test server did not start (is the database up?): {e}"));
        TestServer {
            url: server.url(),
            server,
            http: reqwest::Client::new(),
            signer: TokenSigner::new(SECRET.as_bytes()),
            database: database.to_owned(),
            dir,
        }
    }

    /// A second server (own pools, own hub) on the same database.
    pub async fn sibling(&self) -> TestServer {
        Self::start_on(&self.database, self.dir.clone(), |_| {}).await
    }

    /// Starts a server whose `[collections]` rules are `config` (TOML: permissions, schemas).
    pub async fn start_with_rules(backend: &Backend, config: &str) -> TestServer {
        let rules = ferry_server::validation::Rules::from_toml(config)
            .unwrap_or_else(|e| panic!("the test's collections config is invalid: {e}"));
        Self::start_with(backend, |c| c.rules = rules).await
    }

    pub fn token(&self, tenant: &str, user: &str) -> String {
        self.signer.issue(tenant, user, 3600, None).unwrap()
    }

    /// A token of `user` in `tenant` carrying `roles`.
    pub fn token_with_roles(&self, tenant: &str, user: &str, roles: &[&str]) -> String {
        self.signer
            .issue_with_roles(tenant, user, 3600, roles)
            .unwrap()
    }

    pub fn admin_token(&self, tenant: &str) -> String {
        self.signer
            .issue(tenant, "admin", 3600, Some("admin"))
            .unwrap()
    }

    /// POSTs a push body with an Idempotency-Key.
    pub async fn push(&self, token: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        self.push_with_headers(token, key, body, &[]).await
    }

    /// [`TestServer::push`] with more request headers (`Ferry-Data-Version`,
    /// `Ferry-Priority`, …).
    pub async fn push_with_headers(
        &self,
        token: &str,
        key: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/sync/mutations", self.url))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        read(req.send().await.expect("push request")).await
    }

    pub async fn pull(&self, token: &str, cursor: u64, limit: u32) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!(
                "{}/v1/sync/changes?cursor={cursor}&limit={limit}",
                self.url
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("pull request");
        read(resp).await
    }

    /// A pull with a query string of the test's own (`cursor=…&collections=…`).
    pub async fn pull_query(&self, token: &str, query: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}/v1/sync/changes?{query}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("pull request");
        read(resp).await
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Status and JSON body (Null when the body is not JSON).
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// One mutation as JSON.
#[allow(clippy::too_many_arguments)]
pub fn mutation(
    op_id: &str,
    client: &str,
    seq: u64,
    collection: &str,
    id: &str,
    op: &str,
    base: u64,
    patch: Value,
) -> Value {
    json!({
        "op_id": op_id, "client_id": client, "seq": seq, "collection": collection, "record_id": id,
        "op": op, "base_version": base, "patch": patch,
        "hlc": format!("{:015}-{:010}-{client}", 1_700_000_000_000u64 + seq, 0),
    })
}

/// A push body of one client.
pub fn batch(client: &str, mutations: Vec<Value>) -> Value {
    json!({"client_id": client, "mutations": mutations})
}

/// Asserts the error body shape and code.
pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "unexpected error body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

/// A push or pull answer without `server_time`, the one field that differs between two
/// answers to the same request (the server's clock when it answered).
pub fn sans_clock(answer: &Value) -> Value {
    let mut answer = answer.clone();
    if let Some(map) = answer.as_object_mut() {
        map.remove("server_time");
    }
    answer
}
