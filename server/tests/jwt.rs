//! Token verification end to end: HS256 with the server secret and its typed refusals
//! (expired, not yet valid, wrong issuer, wrong audience, bad signature, missing), the
//! earlier token format, RS256 keys from a JWKS URL served by a tiny local HTTP server with a
//! key rotation during the run, and ES256/EdDSA keys from PEM files.

mod common;

use common::{Backend, TestServer, SECRET};
use ferry_server::auth::{now_secs, Claims};
use ferry_server::jwt::{AuthConfig, AuthError, Authenticator, ClaimNames};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).unwrap()
}

fn jwk(name: &str) -> Value {
    serde_json::from_slice(&read_key(&format!("{name}.jwk.json"))).unwrap()
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn signed(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims, key).unwrap()
}

fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&read_key(&format!("{name}.pem"))).unwrap()
}

async fn pull_status(s: &TestServer, token: &str) -> (StatusCode, Value) {
    s.pull(token, 0, 10).await
}

fn assert_refused(answer: (StatusCode, Value), code: &str) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_tokens_are_checked_with_typed_refusals() {
    let s = TestServer::start_with(&Backend::Sqlite, |config| {
        config.auth = AuthConfig {
            issuer: Some("https://id.example.test".into()),
            audience: Some("ferry".into()),
            leeway_secs: 5,
            ..AuthConfig::default()
        };
    })
    .await;
    let now = now_secs();
    let claims = |extra: Value| {
        let mut c = json!({
            "tenant": "acme", "sub": "alice", "exp": now + 600,
            "iss": "https://id.example.test", "aud": "ferry",
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let (status, body) = pull_status(&s, &hs256(claims(json!({})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Within the leeway: still accepted.
    let (status, _) = pull_status(&s, &hs256(claims(json!({"exp": now - 2})))).await;
    assert_eq!(status, StatusCode::OK);
    // The signer the server uses for its own tokens follows the config.
    let (status, _) = pull_status(
        &s,
        &s.server
            .state
            .signer
            .issue("acme", "bob", 60, None)
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    assert_refused(
        pull_status(&s, &hs256(claims(json!({"exp": now - 60})))).await,
        "token_expired",
    );
    assert_refused(
        pull_status(&s, &hs256(claims(json!({"nbf": now + 600})))).await,
        "token_not_yet_valid",
    );
    assert_refused(
        pull_status(&s, &hs256(claims(json!({"iss": "https://evil.test"})))).await,
        "wrong_issuer",
    );
    assert_refused(
        pull_status(&s, &hs256(claims(json!({"aud": "another-app"})))).await,
        "wrong_audience",
    );
    let mut no_aud = claims(json!({}));
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_refused(pull_status(&s, &hs256(no_aud)).await, "token_invalid");
    let mut no_tenant = claims(json!({}));
    no_tenant.as_object_mut().unwrap().remove("tenant");
    assert_refused(pull_status(&s, &hs256(no_tenant)).await, "token_invalid");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"not-the-server-secret"),
    )
    .unwrap();
    assert_refused(pull_status(&s, &forged).await, "token_invalid");
    assert_refused(pull_status(&s, "a.b.c").await, "token_invalid");
    let resp = s
        .http
        .get(format!("{}/v1/sync/changes", s.url))
        .send()
        .await
        .unwrap();
    assert_refused(common::read(resp).await, "token_missing");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_earlier_token_format_still_verifies_with_the_server_secret() {
    let s = TestServer::start(&Backend::Sqlite).await;
    let legacy = |exp| {
        s.signer
            .sign_legacy(&Claims {
                tenant: "acme".into(),
                user: "alice".into(),
                exp,
                role: None,
            })
            .unwrap()
    };
    let (status, _) = pull_status(&s, &legacy(now_secs() + 60)).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(pull_status(&s, &legacy(1)).await, "token_expired");
    s.shutdown().await;
}

/// A JWKS endpoint whose key set a test can swap.
async fn serve_jwks(keys: Arc<Mutex<Value>>) -> (String, Arc<Mutex<u32>>) {
    let fetches = Arc::new(Mutex::new(0u32));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let keys = keys.clone();
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                axum::Json(keys.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fetches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_without_a_restart() {
    let keys = Arc::new(Mutex::new(json!({"keys": [jwk("rsa1")]})));
    let (jwks_url, fetches) = serve_jwks(keys.clone()).await;
    let s = TestServer::start_with(&Backend::Sqlite, |config| {
        config.auth = AuthConfig {
            jwks_url: Some(jwks_url),
            jwks_min_refetch_secs: 0,
            accept_server_tokens: false,
            // An identity provider's own claim names, one of them nested.
            claims: ClaimNames {
                tenant: "https://example.test/org".into(),
                user: "email".into(),
                roles: "realm_access.roles".into(),
            },
            ..AuthConfig::default()
        };
    })
    .await;
    let claims = json!({
        "https://example.test/org": "acme", "email": "alice@example.test",
        "realm_access": {"roles": ["manager"]}, "exp": now_secs() + 600,
    });
    let with =
        |kid: &str, key: &str| signed(Algorithm::RS256, Some(kid), &rsa(key), claims.clone());

    let (status, body) = pull_status(&s, &with("rsa1", "rsa1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = pull_status(&s, &with("rsa1", "rsa1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        *fetches.lock().unwrap(),
        1,
        "a known kid is answered from the cache"
    );

    // The provider rotates to a new key; the server learns it on first sight of the new kid.
    *keys.lock().unwrap() = json!({"keys": [jwk("rsa2")]});
    let (status, body) = pull_status(&s, &with("rsa2", "rsa2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(*fetches.lock().unwrap(), 2);

    // A key the set does not have, and a token signed by another key than its kid names.
    assert_refused(pull_status(&s, &with("rsa9", "rsa1")).await, "unknown_key");
    assert_refused(
        pull_status(&s, &with("rsa2", "rsa1")).await,
        "token_invalid",
    );
    // Server-signed tokens are off in this config.
    assert_refused(
        pull_status(&s, &s.signer.issue("acme", "alice", 60, None).unwrap()).await,
        "token_invalid",
    );
    // A token without the configured tenant claim.
    let no_tenant = signed(
        Algorithm::RS256,
        Some("rsa2"),
        &rsa("rsa2"),
        json!({"email": "a@example.test", "exp": now_secs() + 600}),
    );
    assert_refused(pull_status(&s, &no_tenant).await, "token_invalid");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_keeps_cached_keys_and_spaces_refetches() {
    let keys = Arc::new(Mutex::new(json!({"keys": [jwk("rsa1")]})));
    let (jwks_url, fetches) = serve_jwks(keys.clone()).await;
    let auth = Authenticator::new(
        AuthConfig {
            jwks_url: Some(jwks_url),
            // Every use finds the set stale, but refetches are an hour apart.
            jwks_max_age_secs: 0,
            jwks_min_refetch_secs: 3600,
            ..AuthConfig::default()
        },
        SECRET.as_bytes(),
    )
    .unwrap();
    let claims = json!({"tenant": "acme", "sub": "alice", "exp": now_secs() + 600});
    let token = signed(Algorithm::RS256, Some("rsa1"), &rsa("rsa1"), claims.clone());
    auth.verify(&token).await.unwrap();
    // The provider breaks (answers something that is no key set).
    *keys.lock().unwrap() = json!(null);
    for _ in 0..3 {
        auth.verify(&token).await.unwrap();
    }
    let unknown = signed(Algorithm::RS256, Some("rsa2"), &rsa("rsa2"), claims);
    assert!(matches!(
        auth.verify(&unknown).await,
        Err(AuthError::UnknownKey(_))
    ));
    assert_eq!(
        *fetches.lock().unwrap(),
        1,
        "no refetch within the interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_read_from_the_configured_claims() {
    let keys = Arc::new(Mutex::new(json!({"keys": [jwk("rsa1"), jwk("ed")]})));
    let (jwks_url, _) = serve_jwks(keys).await;
    let auth = Authenticator::new(
        AuthConfig {
            jwks_url: Some(jwks_url),
            claims: ClaimNames {
                tenant: "org".into(),
                user: "email".into(),
                roles: "realm_access.roles".into(),
            },
            ..AuthConfig::default()
        },
        SECRET.as_bytes(),
    )
    .unwrap();
    let claims = json!({
        "org": "acme", "email": "alice", "realm_access": {"roles": ["manager", "clerk"]},
        "exp": now_secs() + 600,
    });
    let who = auth
        .verify(&signed(
            Algorithm::RS256,
            Some("rsa1"),
            &rsa("rsa1"),
            claims.clone(),
        ))
        .await
        .unwrap();
    assert_eq!((who.tenant.as_str(), who.user.as_str()), ("acme", "alice"));
    assert_eq!(who.roles, vec!["manager", "clerk"]);
    // EdDSA from the same JWKS.
    let ed = EncodingKey::from_ed_pem(&read_key("ed.pem")).unwrap();
    let who = auth
        .verify(&signed(Algorithm::EdDSA, Some("ed"), &ed, claims.clone()))
        .await
        .unwrap();
    assert_eq!(who.user, "alice");
    // A kid naming an RSA key cannot verify an EdDSA signature.
    assert!(matches!(
        auth.verify(&signed(Algorithm::EdDSA, Some("rsa1"), &ed, claims))
            .await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn es256_and_eddsa_public_keys_from_pem_files() {
    let claims = json!({"tenant": "acme", "sub": "alice", "exp": now_secs() + 600});
    for (alg, name, key) in [
        (
            "ES256",
            "ec",
            EncodingKey::from_ec_pem(&read_key("ec.pem")).unwrap(),
        ),
        (
            "EdDSA",
            "ed",
            EncodingKey::from_ed_pem(&read_key("ed.pem")).unwrap(),
        ),
        ("RS256", "rsa1", rsa("rsa1")),
    ] {
        let auth = Authenticator::new(
            AuthConfig {
                public_key_pem: Some(key_path(&format!("{name}.pub.pem"))),
                public_key_algorithm: Some(alg.into()),
                ..AuthConfig::default()
            },
            SECRET.as_bytes(),
        )
        .unwrap();
        let algorithm: Algorithm = alg.parse().unwrap();
        let who = auth
            .verify(&signed(algorithm, None, &key, claims.clone()))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(who.user, "alice");
        // A token of another key with the same algorithm is refused.
        if alg == "RS256" {
            let other = signed(algorithm, None, &rsa("rsa2"), claims.clone());
            assert!(matches!(
                auth.verify(&other).await,
                Err(AuthError::Invalid(_))
            ));
        }
    }
    // The PEM's algorithm must be named, and must be a public-key one.
    let bad = Authenticator::new(
        AuthConfig {
            public_key_pem: Some(key_path("ec.pub.pem")),
            public_key_algorithm: Some("HS256".into()),
            ..AuthConfig::default()
        },
        SECRET.as_bytes(),
    );
    assert!(bad.is_err());
    let none = Authenticator::new(
        AuthConfig {
            accept_server_tokens: false,
            ..AuthConfig::default()
        },
        SECRET.as_bytes(),
    );
    assert!(none.is_err());
}
