//! The identity provider's signing keys, fetched from its JWKS URL and cached.
//!
//! A token names its key by `kid`. A known kid is answered from the cache; an unknown one
//! refetches the set, which is how a key rotation at the provider is picked up without a
//! restart. The set is also refetched once it is older than `max_age`, so a key the provider
//! withdrew stops being accepted. Fetches (failed ones too) are at least `min_refetch`
//! apart, so neither a flood of forged kids nor a provider outage turns into a request to
//! the provider per request to Ferry.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Why no key could be had for a kid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The set (freshly fetched) has no key with this kid.
    #[error("the token's key `{0}` is not among the identity provider's keys")]
    UnknownKey(String),
    /// The key exists but cannot verify this algorithm (or is a shared secret, which a JWKS
    /// must never supply).
    #[error("the token's key cannot verify {0}")]
    WrongKeyType(String),
    /// The JWKS URL could not be fetched or parsed.
    #[error("the identity provider's keys could not be fetched: {0}")]
    Unreachable(String),
}

/// How a [`Jwks`] cache refreshes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksOptions {
    pub url: String,
    /// The set is refetched when older than this.
    pub max_age: Duration,
    /// An unknown kid refetches at most this often.
    pub min_refetch: Duration,
    /// How long one fetch may take.
    pub timeout: Duration,
}

impl JwksOptions {
    pub fn new(url: impl Into<String>) -> Self {
        JwksOptions {
            url: url.into(),
            max_age: Duration::from_secs(600),
            min_refetch: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

struct Cached {
    keys: JwkSet,
    fetched_at: Option<Instant>,
    /// The last fetch, successful or not: fetches are spaced by `min_refetch` either way, so
    /// an unreachable provider costs one timeout per interval, not one per request.
    attempted_at: Option<Instant>,
}

/// A cached JWKS.
pub struct Jwks {
    options: JwksOptions,
    http: reqwest::Client,
    // One mutex also serialises fetches: concurrent requests with a new kid wait for one fetch.
    cache: Mutex<Cached>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.options.url)
            .finish()
    }
}

impl Jwks {
    pub fn new(options: JwksOptions) -> Self {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        Jwks {
            options,
            http,
            cache: Mutex::new(Cached {
                keys: JwkSet { keys: Vec::new() },
                fetched_at: None,
                attempted_at: None,
            }),
        }
    }

    /// The key with `kid` for verifying `alg`, fetching the set when it is stale or lacks the kid.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, JwksError> {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.options.max_age);
        let may_refetch = cache
            .attempted_at
            .is_none_or(|t| t.elapsed() >= self.options.min_refetch);
        if may_refetch && (stale || cache.keys.find(kid).is_none()) {
            cache.attempted_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
                // A stale set still verifies the keys it has while the provider is down.
                Err(e) if cache.keys.find(kid).is_some() => {
                    tracing::warn!(error = %e, "JWKS refresh failed; using the cached keys");
                }
                Err(e) => return Err(e),
            }
        }
        let jwk = cache
            .keys
            .find(kid)
            .ok_or_else(|| JwksError::UnknownKey(kid.to_owned()))?;
        decoding_key(jwk, alg)
    }

    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        let unreachable = |e: reqwest::Error| JwksError::Unreachable(e.without_url().to_string());
        let response = self
            .http
            .get(&self.options.url)
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(unreachable)?;
        let set: JwkSet = response.json().await.map_err(unreachable)?;
        tracing::info!(
            keys = set.keys.len(),
            "fetched the identity provider's keys"
        );
        Ok(set)
    }
}

/// The verifying key of `jwk` for `alg`: only public keys, and only of the algorithm's family
/// (and of the key's declared algorithm, when it declares one).
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> Result<DecodingKey, JwksError> {
    let wrong = || JwksError::WrongKeyType(format!("{alg:?}"));
    let family_fits = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    if !family_fits {
        return Err(wrong());
    }
    if let Some(declared) = jwk.common.key_algorithm {
        if format!("{declared:?}") != format!("{alg:?}") {
            return Err(wrong());
        }
    }
    DecodingKey::from_jwk(jwk).map_err(|_| wrong())
}
