//! The binary with a config file: `token` mints a JWT that passes the configured checks
//! (claim names, issuer, audience, roles), `serve --config` enforces the declared
//! permissions, and a bad file stops the server at start with a message naming the problem.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-server");
const SECRET: &str = "config-file-secret-0123456789";

const CONFIG: &str = r#"
[auth]
issuer = "https://id.example.test"
audience = "ferry"

[auth.claims]
tenant = "org"
user = "email"
roles = "groups"

[collections.notes]
read = ["owner", "role:manager"]
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ferry(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--database",
        &format!("sqlite://{}", dir.join("f.db").display()),
        "--secret",
        SECRET,
        "--config",
        &dir.join("ferry.toml").display().to_string(),
    ])
    .args(args)
    .env_remove("FERRY_SECRET")
    .env_remove("FERRY_CONFIG")
    .env("RUST_LOG", "warn");
    cmd
}

fn token(dir: &std::path::Path, user: &str, roles: &[&str]) -> String {
    let mut args = vec!["token", "--tenant", "acme", "--user", user];
    for role in roles {
        args.extend(["--role", role]);
    }
    let out = ferry(dir, &args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn tokens_and_permissions_follow_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), CONFIG).unwrap();
    let alice = token(dir.path(), "alice", &[]);
    let manager = token(dir.path(), "mia", &["manager"]);
    // A JWT carrying the configured claim names, issuer and audience.
    let payload = alice.split('.').nth(1).expect("a JWT has three parts");
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["org"], "acme", "{claims}");
    assert_eq!(claims["email"], "alice");
    assert_eq!(claims["iss"], "https://id.example.test");
    assert_eq!(claims["aud"], "ferry");

    let mut child = ferry(dir.path(), &["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    let http = reqwest::Client::new();

    let body = json!({"client_id": "alice-c", "mutations": [{
        "op_id": "a1", "client_id": "alice-c", "seq": 1, "collection": "notes",
        "record_id": "n1", "op": "create", "base_version": 0, "patch": {"title": "mine"},
        "hlc": "001700000000000-0000000000-alice-c",
    }]});
    let resp = http
        .post(format!("{url}/v1/sync/mutations"))
        .bearer_auth(&alice)
        .header("Idempotency-Key", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"].as_array().unwrap().len(), 1, "{answer}");

    // Omitted `update` and `delete` follow `read`: the manager may delete the note.
    let body = json!({"client_id": "mia-c", "mutations": [{
        "op_id": "m1", "client_id": "mia-c", "seq": 1, "collection": "notes",
        "record_id": "n1", "op": "delete", "base_version": 1, "patch": {},
        "hlc": "001700000000001-0000000000-mia-c",
    }]});
    let resp = http
        .post(format!("{url}/v1/sync/mutations"))
        .bearer_auth(&manager)
        .header("Idempotency-Key", "k2")
        .json(&body)
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["accepted"].as_array().unwrap().len(),
        1,
        "manager may delete (read grant): {answer}"
    );

    // A token with the default claim names lacks the configured ones.
    let default_names = {
        let out = Command::new(BIN)
            .args([
                "--secret", SECRET, "token", "--tenant", "acme", "--user", "eve",
            ])
            .env_remove("FERRY_CONFIG")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let resp = http
        .get(format!("{url}/v1/sync/changes"))
        .bearer_auth(&default_names)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    // It has no `iss` either, which this config requires.
    assert_eq!(body["error"]["code"], "token_invalid", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("iss"),
        "{body}"
    );
}

#[test]
fn a_bad_config_file_stops_the_server_with_a_reason() {
    for (text, expected) in [
        ("[collections.notes]\nread = [\"everyone\"]\n", "everyone"),
        ("[auth]\naudiance = \"ferry\"\n", "audiance"),
        (
            "[auth]\npublic_key_pem = \"/nonexistent.pem\"\npublic_key_algorithm = \"RS256\"\n",
            "/nonexistent.pem",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ferry.toml"), text).unwrap();
        let out = ferry(dir.path(), &["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
}
