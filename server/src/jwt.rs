//! Verifying the app's JWTs: which keys are trusted, which claims are checked and where the
//! tenant, the user and the roles are read from ([`AuthConfig`], the `[auth]` table of the
//! server config file), and the typed reasons a token is refused ([`AuthError`]).
//!
//! Keys: the server secret for HS256 (tokens minted by `ferry-server token` and the demo
//! endpoint, or by an identity provider sharing the secret); a PEM public key (RS256, ES256 or
//! EdDSA); and a JWKS URL ([`crate::jwks`]). The signature and `exp`, `nbf`, `iss`, `aud`
//! (with a small leeway) are checked by the `jsonwebtoken` crate.

use crate::auth::{Claims, Identity, TokenSigner};
use crate::jwks::{Jwks, JwksError, JwksOptions};
use ferry_core::protocol::validate_id;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where the identity is read from in a token's claims. A name is first looked up as a key
/// (`https://example.com/tenant` is one claim); failing that, a dotted name is a path into
/// nested objects (`realm_access.roles`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimNames {
    pub tenant: String,
    pub user: String,
    pub roles: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            tenant: "tenant".into(),
            user: "sub".into(),
            roles: "roles".into(),
        }
    }
}

/// The `[auth]` table of the server config file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss` (none: not checked).
    pub issuer: Option<String>,
    /// Required `aud` (none: not checked, and a token carrying one is still accepted).
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
    pub claims: ClaimNames,
    /// Every user of the server belongs to this tenant (when the provider has no tenant claim).
    pub tenant: Option<String>,
    /// Accept HS256 tokens signed with the server secret (and Ferry's earlier token format).
    pub accept_server_tokens: bool,
    /// A PEM public key file and its algorithm (`RS256`, `ES256`, `EdDSA`).
    pub public_key_pem: Option<PathBuf>,
    pub public_key_algorithm: Option<String>,
    /// The identity provider's JWKS.
    pub jwks_url: Option<String>,
    /// Seconds before the cached key set is refetched.
    pub jwks_max_age_secs: u64,
    /// An unknown kid refetches the key set at most this often (seconds).
    pub jwks_min_refetch_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: None,
            audience: None,
            leeway_secs: 30,
            claims: ClaimNames::default(),
            tenant: None,
            accept_server_tokens: true,
            public_key_pem: None,
            public_key_algorithm: None,
            jwks_url: None,
            jwks_max_age_secs: 600,
            jwks_min_refetch_secs: 10,
        }
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.public_key_algorithm must be RS256, RS384, RS512, PS256, ES256, ES384 or EdDSA")]
    Algorithm,
    #[error("auth.public_key_pem needs auth.public_key_algorithm")]
    MissingAlgorithm,
    #[error("auth.public_key_pem {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("no key would verify any token: set auth.jwks_url or auth.public_key_pem, or keep auth.accept_server_tokens")]
    NoKeys,
}

/// Why a request's token was refused: each has a stable code (PROTOCOL.md §7), all are 401
/// except an identity provider that cannot be reached (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("{0}")]
    UnknownKey(String),
    #[error("{0}")]
    KeysUnavailable(String),
}

impl AuthError {
    /// The error code of the 401 answer.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Invalid(_) => "token_invalid",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::KeysUnavailable(_) => "unavailable",
        }
    }
}

/// Verifies tokens as an [`AuthConfig`] says.
pub struct Authenticator {
    config: AuthConfig,
    server_secret: Option<DecodingKey>,
    legacy: Option<TokenSigner>,
    pem: Option<(Algorithm, DecodingKey)>,
    jwks: Option<Jwks>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn parse_algorithm(name: &str) -> Result<Algorithm, AuthConfigError> {
    let alg: Algorithm = name.parse().map_err(|_| AuthConfigError::Algorithm)?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(AuthConfigError::Algorithm),
        alg => Ok(alg),
    }
}

fn pem_key(alg: Algorithm, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
}

impl Authenticator {
    /// Loads the keys `config` names; `secret` is the server secret.
    pub fn new(config: AuthConfig, secret: &[u8]) -> Result<Self, AuthConfigError> {
        let pem = match &config.public_key_pem {
            None => None,
            Some(path) => {
                let alg = parse_algorithm(
                    config
                        .public_key_algorithm
                        .as_deref()
                        .ok_or(AuthConfigError::MissingAlgorithm)?,
                )?;
                let pem_error = |message: String| AuthConfigError::Pem {
                    path: path.clone(),
                    message,
                };
                let text = std::fs::read(path).map_err(|e| pem_error(e.to_string()))?;
                Some((
                    alg,
                    pem_key(alg, &text).map_err(|e| pem_error(e.to_string()))?,
                ))
            }
        };
        let jwks = config.jwks_url.as_ref().map(|url| {
            Jwks::new(JwksOptions {
                max_age: Duration::from_secs(config.jwks_max_age_secs),
                min_refetch: Duration::from_secs(config.jwks_min_refetch_secs),
                ..JwksOptions::new(url.clone())
            })
        });
        let (server_secret, legacy) = if config.accept_server_tokens {
            (
                Some(DecodingKey::from_secret(secret)),
                Some(TokenSigner::new(secret)),
            )
        } else {
            (None, None)
        };
        if server_secret.is_none() && pem.is_none() && jwks.is_none() {
            return Err(AuthConfigError::NoKeys);
        }
        Ok(Authenticator {
            config,
            server_secret,
            legacy,
            pem,
            jwks,
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The identity a token speaks for, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        // Ferry's earlier format has one dot; a JWT has two.
        if token.matches('.').count() == 1 {
            let legacy = self
                .legacy
                .as_ref()
                .ok_or_else(|| AuthError::Invalid("not a JWT".into()))?;
            return Ok(legacy.verify(token).map(legacy_identity)?);
        }
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let alg = header.alg;
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => self
                .server_secret
                .clone()
                .ok_or_else(|| AuthError::Invalid(format!("{alg:?} is not accepted")))?,
            _ => match (&header.kid, &self.jwks, &self.pem) {
                (Some(kid), Some(jwks), _) => jwks.key(kid, alg).await.map_err(|e| match e {
                    JwksError::UnknownKey(_) => AuthError::UnknownKey(e.to_string()),
                    JwksError::WrongKeyType(_) => AuthError::Invalid(e.to_string()),
                    JwksError::Unreachable(_) => AuthError::KeysUnavailable(e.to_string()),
                })?,
                (_, _, Some((pem_alg, key))) if *pem_alg == alg => key.clone(),
                (None, Some(_), _) => {
                    return Err(AuthError::Invalid("the token names no key (`kid`)".into()))
                }
                _ => return Err(AuthError::Invalid(format!("{alg:?} is not accepted"))),
            },
        };
        let claims = decode::<Map<String, Value>>(token, &key, &self.validation(alg))
            .map_err(|e| match e.into_kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::Invalid(format!("the `{claim}` claim is missing"))
                }
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                ErrorKind::InvalidAlgorithm => {
                    AuthError::Invalid("the key does not fit the algorithm".into())
                }
                _ => AuthError::Invalid("malformed".into()),
            })?
            .claims;
        self.identity(&claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway_secs;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.config.issuer {
            v.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.config.audience {
            Some(audience) => {
                v.set_audience(&[audience]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Reads tenant, user and roles from verified claims.
    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let names = &self.config.claims;
        let text = |name: &str| {
            claim(claims, name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| AuthError::Invalid(format!("the `{name}` claim is missing")))
        };
        let tenant = match &self.config.tenant {
            Some(fixed) => fixed.clone(),
            None => text(&names.tenant)?,
        };
        let user = text(&names.user)?;
        let roles = match claim(claims, &names.roles) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(_) => {
                return Err(AuthError::Invalid(format!(
                    "the `{}` claim must be a list of role names",
                    names.roles
                )))
            }
        };
        let identity = Identity {
            tenant,
            user,
            roles,
        };
        check_identity(&identity)?;
        Ok(identity)
    }
}

fn check_identity(identity: &Identity) -> Result<(), AuthError> {
    validate_id("tenant", &identity.tenant).map_err(|e| AuthError::Invalid(e.to_string()))?;
    validate_id("user", &identity.user).map_err(|e| AuthError::Invalid(e.to_string()))?;
    Ok(())
}

fn legacy_identity(claims: Claims) -> Identity {
    Identity {
        tenant: claims.tenant,
        user: claims.user,
        roles: claims.role.into_iter().collect(),
    }
}

impl From<crate::auth::TokenError> for AuthError {
    fn from(e: crate::auth::TokenError) -> Self {
        match e {
            crate::auth::TokenError::Expired => AuthError::Expired,
            other => AuthError::Invalid(other.to_string()),
        }
    }
}

/// A claim by key, or by dotted path into nested objects.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for part in parts {
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_by_key_then_by_path() {
        let claims = json!({
            "https://example.com/tenant": "acme",
            "realm_access": {"roles": ["manager"]},
        });
        let claims = claims.as_object().unwrap();
        assert_eq!(
            claim(claims, "https://example.com/tenant"),
            Some(&json!("acme"))
        );
        assert_eq!(
            claim(claims, "realm_access.roles"),
            Some(&json!(["manager"]))
        );
        assert_eq!(claim(claims, "realm_access.nope"), None);
    }

    #[test]
    fn symmetric_algorithms_are_no_public_keys() {
        assert!(parse_algorithm("HS256").is_err());
        assert!(parse_algorithm("none").is_err());
        assert_eq!(parse_algorithm("EdDSA").unwrap(), Algorithm::EdDSA);
    }
}
