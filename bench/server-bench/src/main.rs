//! ferry-server-bench: load for Ferry's sync server, and the driver baseline.
//!
//! ```text
//! ferry-server-bench http   --url http://127.0.0.1:PORT --token T --clients C --batch 50 --batches B --tag X
//! ferry-server-bench driver --database sqlite://F|postgres://.. --clients C --batch 50 --batches B --tag X --tenant T
//! ferry-server-bench poll   --url http://127.0.0.1:PORT --token T --clients C --requests R --conditional 0|1
//! ferry-server-bench pull   --url http://127.0.0.1:PORT --tokens T1,T2,.. --clients C --rounds R --limit L
//! ferry-server-bench reset  --database postgres://..
//! ```
//!
//! `http`: C concurrent clients, each on its own connection, push B batches of `batch`
//! create mutations one after another (`POST /v1/sync/mutations`).
//! `driver`: C concurrent tasks write the same rows the server writes for such a push
//! (tenant head, idempotency key, and per mutation the record, the op with its user and time,
//! and the client's seq and user),
//! one transaction per batch, straight through sqlx with the server's own pool settings
//! (SQLite: one writer connection, WAL, synchronous=FULL, BEGIN IMMEDIATE; PostgreSQL: a
//! pool of `--pool` connections, the tenant row locked FOR UPDATE), the best way the driver
//! allows: prepared statements reused, the batch's records and ops as one multi-row INSERT
//! each, the client's seq once per batch. It skips the reads the server does to decide each
//! mutation, so it is the limit of the storage layer.
//! `poll`: C clients each send R pulls that find nothing new (the tenant's head as cursor),
//! plain (`--conditional 0`, what clients sent before conditional pulls) or with
//! `If-None-Match` (`--conditional 1`, answered 304). Prints requests per second.
//! `pull`: C clients (client i signs in with token i mod the number of tokens) each pull the
//! whole log from cursor 0, page by page (`limit` L), R times. Prints requests, whole-log
//! pulls and records received per second. With a permissions config on the server and
//! tokens of different users, this measures partial sync's filtering against the same
//! pulls on a server whose reads are open to the tenant.
//! All print one JSON line: rates and request (transaction) latencies.

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn args() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut map = HashMap::new();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        map.insert(k.trim_start_matches("--").to_owned(), v);
    }
    (mode, map)
}

fn get<T: FromStr>(m: &HashMap<String, String>, k: &str, default: Option<T>) -> T {
    match m.get(k) {
        Some(v) => v.parse().unwrap_or_else(|_| panic!("bad --{k}")),
        None => default.unwrap_or_else(|| panic!("--{k} is required")),
    }
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn hlc(client: &str, counter: u64) -> String {
    format!("{:015}-{:010}-{}", now_ms(), counter, client)
}

fn fields(i: u64) -> Value {
    json!({ "title": format!("Note {i}"), "body": "Site visit notes: check the north wall for damp.", "n": i })
}

fn summary(mut lat: Vec<f64>, mutations: u64, secs: f64) -> Value {
    lat.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * lat.len() as f64).ceil() as usize;
        lat[i.clamp(1, lat.len()) - 1]
    };
    json!({
        "mutations": mutations, "seconds": secs, "rate": mutations as f64 / secs,
        "requests": lat.len(), "p50_ms": rank(50.0), "p95_ms": rank(95.0), "p99_ms": rank(99.0),
        "max_ms": lat.last().copied().unwrap_or(0.0),
    })
}

async fn http(m: HashMap<String, String>) -> Res<Value> {
    let url: String = get(&m, "url", None);
    let token: String = get(&m, "token", None);
    let clients: usize = get(&m, "clients", Some(8));
    let batch: u64 = get(&m, "batch", Some(50));
    let batches: u64 = get(&m, "batches", Some(20));
    let tag: String = get(&m, "tag", Some("b".into()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, token, tag) = (url.clone(), token.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            // One client, one connection.
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let client_id = format!("{tag}-c{c}");
            let mut lat = Vec::new();
            let mut rejected = 0u64;
            for b in 0..batches {
                let mutations: Vec<Value> = (0..batch)
                    .map(|k| {
                        let seq = b * batch + k + 1;
                        json!({
                            "op_id": format!("{client_id}.{seq}"), "client_id": client_id, "seq": seq,
                            "collection": "notes", "record_id": format!("{client_id}-r{seq}"), "op": "create",
                            "base_version": 0, "patch": fields(seq), "hlc": hlc(&client_id, seq),
                        })
                    })
                    .collect();
                let body = json!({ "client_id": client_id, "mutations": mutations });
                let t0 = Instant::now();
                let res = client
                    .post(format!("{url}/v1/sync/mutations"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("{client_id}-{b}"))
                    .json(&body)
                    .send()
                    .await?;
                let status = res.status();
                let answer: Value = res.json().await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                if !status.is_success() {
                    return Err(format!("push {status}: {answer}").into());
                }
                let accepted = answer["accepted"].as_array().map_or(0, |a| a.len()) as u64;
                rejected += batch - accepted;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((lat, rejected))
        }));
    }
    let mut lat = Vec::new();
    let mut rejected = 0;
    for t in tasks {
        let (l, r) = t.await??;
        lat.extend(l);
        rejected += r;
    }
    let secs = start.elapsed().as_secs_f64();
    let mut out = summary(lat, clients as u64 * batches * batch, secs);
    out["not_accepted"] = json!(rejected);
    Ok(out)
}

/// The rows of one push, written in one transaction the best way the driver allows: every
/// statement prepared once per connection and reused (sqlx caches them), the batch's records
/// and ops as one multi-row `INSERT` each, and the client's last seq written once (as the
/// server does), so the driver does the same writes as the server with the fewest round trips.
macro_rules! write_batch {
    ($db:ty, $tx:expr, $lock:literal, $tenant:expr, $client:expr, $b:expr, $batch:expr) => {{
        sqlx::query("INSERT INTO tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING")
            .bind($tenant)
            .execute(&mut *$tx)
            .await?;
        let first: i64 = sqlx::query_scalar($lock).bind($tenant).fetch_one(&mut *$tx).await?;
        sqlx::query("INSERT INTO idempotency_keys (tenant, idem_key, body_digest, created_at) VALUES ($1, $2, $3, $4)")
            .bind($tenant)
            .bind(format!("{}-{}", $client, $b))
            .bind("0123456789abcdef0123456789abcdef")
            .bind(now_ms() as i64)
            .execute(&mut *$tx)
            .await?;
        let seqs: Vec<(u64, i64)> = (0..$batch).map(|k| ($b * $batch + k + 1, first + k as i64 + 1)).collect();
        let mut records = sqlx::QueryBuilder::<$db>::new(
            "INSERT INTO records (tenant, collection, id, version, fields, deleted, hlc) ",
        );
        records.push_values(&seqs, |mut row, &(seq, version)| {
            row.push_bind($tenant)
                .push_bind("notes")
                .push_bind(format!("{}-r{}", $client, seq))
                .push_bind(version)
                .push_bind(fields(seq).to_string())
                .push_bind(false)
                .push_bind(hlc(&$client, seq));
        });
        records.push(
            " ON CONFLICT (tenant, collection, id) DO UPDATE SET
               version = excluded.version, fields = excluded.fields,
               deleted = excluded.deleted, hlc = excluded.hlc",
        );
        records.build().persistent(true).execute(&mut *$tx).await?;
        let mut ops = sqlx::QueryBuilder::<$db>::new(
            "INSERT INTO ops (tenant, op_id, digest, outcome, version, code, message, user_id, created_at) ",
        );
        ops.push_values(&seqs, |mut row, &(seq, version)| {
            row.push_bind($tenant)
                .push_bind(format!("{}.{}", $client, seq))
                .push_bind(seq as i64)
                .push_bind("accepted")
                .push_bind(Some(version))
                .push_bind(None::<String>)
                .push_bind(None::<String>)
                .push_bind("bench")
                .push_bind(now_ms() as i64);
        });
        ops.build().persistent(true).execute(&mut *$tx).await?;
        let last = seqs.last().copied().unwrap_or((0, first));
        sqlx::query(
            "INSERT INTO clients (tenant, client_id, last_seq, user_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, client_id) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .bind($tenant)
        .bind(&$client)
        .bind(last.0 as i64)
        .bind("bench")
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE tenants SET head = $2 WHERE tenant = $1")
            .bind($tenant)
            .bind(last.1)
            .execute(&mut *$tx)
            .await?;
    }};
}

async fn driver(m: HashMap<String, String>) -> Res<Value> {
    let database: String = get(&m, "database", None);
    let clients: usize = get(&m, "clients", Some(8));
    let batch: u64 = get(&m, "batch", Some(50));
    let batches: u64 = get(&m, "batches", Some(20));
    let tag: String = get(&m, "tag", Some("d".into()));
    let tenant: String = get(&m, "tenant", Some("bench".into()));
    let pool_size: u32 = get(&m, "pool", Some(10));
    let start;
    let mut tasks = Vec::new();
    if database.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(&database)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        start = Instant::now();
        for c in 0..clients {
            let (pool, tenant) = (pool.clone(), tenant.clone());
            let client = format!("{tag}-c{c}");
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                for b in 0..batches {
                    let t0 = Instant::now();
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    write_batch!(sqlx::Sqlite, tx, "SELECT head FROM tenants WHERE tenant = $1", &tenant, client, b, batch);
                    tx.commit().await?;
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(lat)
            }));
        }
    } else {
        let pool = PgPoolOptions::new().max_connections(pool_size).connect(&database).await?;
        start = Instant::now();
        for c in 0..clients {
            let (pool, tenant) = (pool.clone(), tenant.clone());
            let client = format!("{tag}-c{c}");
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                for b in 0..batches {
                    let t0 = Instant::now();
                    let mut tx = pool.begin().await?;
                    write_batch!(sqlx::Postgres, tx, "SELECT head FROM tenants WHERE tenant = $1 FOR UPDATE", &tenant, client, b, batch);
                    tx.commit().await?;
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(lat)
            }));
        }
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(summary(lat, clients as u64 * batches * batch, secs))
}

/// Idle polls: every pull asks from the tenant's head, so it finds nothing new.
async fn poll(m: HashMap<String, String>) -> Res<Value> {
    let url: String = get(&m, "url", None);
    let token: String = get(&m, "token", None);
    let clients: usize = get(&m, "clients", Some(8));
    let requests: u64 = get(&m, "requests", Some(500));
    let conditional: u8 = get(&m, "conditional", Some(1));
    let probe = reqwest::Client::new();
    let first: Value = probe
        .get(format!("{url}/v1/sync/changes?cursor=0&limit=1"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let head = first["head"].as_u64().ok_or("no head in the pull answer")?;
    let epoch = first["epoch"].as_str().unwrap_or_default().to_owned();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, token, epoch) = (url.clone(), token.clone(), epoch.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let mut lat = Vec::new();
            for _ in 0..requests {
                let mut req = client
                    .get(format!("{url}/v1/sync/changes?cursor={head}&limit=500"))
                    .bearer_auth(&token);
                if conditional == 1 {
                    req = req.header("If-None-Match", format!("\"{epoch}.{head}\""));
                }
                let t0 = Instant::now();
                let res = req.send().await?;
                let status = res.status().as_u16();
                let body = res.bytes().await?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                let expected = if conditional == 1 { 304 } else { 200 };
                if status != expected {
                    return Err(format!("poll answered {status}, expected {expected}: {}", String::from_utf8_lossy(&body)).into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let total = lat.len() as f64;
    let mut out = summary(lat, 0, secs);
    out["requests_per_second"] = json!(total / secs);
    out["conditional"] = json!(conditional == 1);
    Ok(out)
}

/// Whole-log pulls: each client pages from cursor 0 to the head, `rounds` times.
async fn pull(m: HashMap<String, String>) -> Res<Value> {
    let url: String = get(&m, "url", None);
    let tokens: String = get(&m, "tokens", None);
    let tokens: Vec<String> = tokens.split(',').map(str::to_owned).collect();
    let clients: usize = get(&m, "clients", Some(8));
    let rounds: u64 = get(&m, "rounds", Some(5));
    let limit: u64 = get(&m, "limit", Some(500));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (url, token) = (url.clone(), tokens[i % tokens.len()].clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
            let mut lat = Vec::new();
            let mut received = 0u64;
            for _ in 0..rounds {
                let mut cursor = 0u64;
                loop {
                    let t0 = Instant::now();
                    let res = client
                        .get(format!("{url}/v1/sync/changes?cursor={cursor}&limit={limit}"))
                        .bearer_auth(&token)
                        .send()
                        .await?;
                    let status = res.status().as_u16();
                    let body = res.bytes().await?;
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    if status != 200 {
                        return Err(format!("pull answered {status}: {}", String::from_utf8_lossy(&body)).into());
                    }
                    let page: Value = serde_json::from_slice(&body)?;
                    received += page["changes"].as_array().map_or(0, |c| c.len() as u64);
                    cursor = page["cursor"].as_u64().ok_or("no cursor in the pull answer")?;
                    if !page["has_more"].as_bool().unwrap_or(false) {
                        break;
                    }
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((lat, received))
        }));
    }
    let mut lat = Vec::new();
    let mut received = 0;
    for t in tasks {
        let (l, r) = t.await??;
        lat.extend(l);
        received += r;
    }
    let secs = start.elapsed().as_secs_f64();
    let requests = lat.len() as f64;
    let mut out = summary(lat, 0, secs);
    out["requests_per_second"] = json!(requests / secs);
    out["whole_pulls_per_second"] = json!((clients as u64 * rounds) as f64 / secs);
    out["records_received"] = json!(received);
    out["records_per_second"] = json!(received as f64 / secs);
    Ok(out)
}

async fn reset(m: HashMap<String, String>) -> Res<Value> {
    let database: String = get(&m, "database", None);
    let pool = PgPoolOptions::new().max_connections(1).connect(&database).await?;
    for t in [
        "tenants",
        "records",
        "ops",
        "clients",
        "idempotency_keys",
        "tenant_marks",
        "server_meta",
        "ferry_migrations",
    ] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {t} CASCADE")).execute(&pool).await?;
    }
    Ok(json!({ "reset": true }))
}

#[tokio::main]
async fn main() {
    let (mode, m) = args();
    let out = match mode.as_str() {
        "http" => http(m).await,
        "driver" => driver(m).await,
        "poll" => poll(m).await,
        "pull" => pull(m).await,
        "reset" => reset(m).await,
        _ => Err("usage: ferry-server-bench http|driver|poll|pull|reset --key value ...".into()),
    };
    match out {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("ferry-server-bench: {e}");
            std::process::exit(1);
        }
    }
}
