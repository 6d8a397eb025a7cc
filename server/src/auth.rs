//! Bearer tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, claims part))`.
//!
//! Claims are `{tenant, user, exp}` (plus an optional `role`). The server signs them itself
//! (`ferry-server token`, or `POST /v1/demo/token` in demo mode) and checks the signature in
//! constant time on every request. Tokens are never logged.

use crate::errors::ApiError;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferry_core::protocol::validate_id;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Every query of the request is scoped to this tenant.
    pub tenant: String,
    pub user: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// `admin` may call the admin endpoints of its tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.role.as_deref() == Some("admin")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
}

/// Signs and verifies tokens with one server secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        TokenSigner {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// A token for `tenant`/`user` valid for `ttl_secs` from now.
    pub fn issue(
        &self,
        tenant: &str,
        user: &str,
        ttl_secs: u64,
        role: Option<&str>,
    ) -> Result<String, TokenError> {
        let claims = Claims {
            tenant: tenant.to_owned(),
            user: user.to_owned(),
            exp: now_secs().saturating_add(ttl_secs),
            role: role.map(str::to_owned),
        };
        self.sign(&claims)
    }

    /// Signs explicit claims (checked like incoming ones).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        check_claims(claims)?;
        let json =
            serde_json::to_vec(claims).map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{sig}"))
    }

    /// Checks the signature (constant time), the expiry and the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        check_claims(&claims)?;
        Ok(claims)
    }
}

fn check_claims(claims: &Claims) -> Result<(), TokenError> {
    validate_id("tenant", &claims.tenant).map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
    validate_id("user", &claims.user).map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
    Ok(())
}

/// The bearer token of a request's `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates a request from its `Authorization` header, or from `query_token` where the
/// route allows one (server-sent events: `EventSource` cannot set headers).
pub fn authenticate(
    signer: &TokenSigner,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Claims, ApiError> {
    let token = bearer(headers)
        .or(query_token)
        .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
    signer
        .verify(token)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let signer = TokenSigner::new(b"secret");
        let token = signer.issue("acme", "alice", 60, None).unwrap();
        let claims = signer.verify(&token).unwrap();
        assert_eq!(
            (claims.tenant.as_str(), claims.user.as_str()),
            ("acme", "alice")
        );
        assert_eq!(
            TokenSigner::new(b"other").verify(&token),
            Err(TokenError::BadSignature)
        );
        let forged =
            URL_SAFE_NO_PAD.encode(br#"{"tenant":"evil","user":"alice","exp":99999999999}"#);
        let sig = token.split_once('.').unwrap().1;
        assert_eq!(
            signer.verify(&format!("{forged}.{sig}")),
            Err(TokenError::BadSignature)
        );
        assert_eq!(signer.verify("nonsense"), Err(TokenError::Malformed));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let signer = TokenSigner::new(b"secret");
        let claims = Claims {
            tenant: "t".into(),
            user: "u".into(),
            exp: 1,
            role: None,
        };
        let token = signer.sign(&claims).unwrap();
        assert_eq!(signer.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn bearer_header_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc.def"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
