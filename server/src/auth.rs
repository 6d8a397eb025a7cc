//! Bearer tokens: who a request speaks for ([`Identity`]), minting the server's own HS256
//! JWTs ([`TokenSigner`]: `ferry-server token` and `POST /v1/demo/token`), and reading the
//! token of a request ([`authenticate`], verified by [`crate::jwt::Authenticator`]).
//!
//! Ferry's earlier token format, `base64url(claims JSON) "." base64url(HMAC-SHA256(secret,
//! claims part))` with claims `{tenant, user, exp, role?}`, is still accepted with the
//! server secret (development tools sign it themselves), checked in constant time. Tokens
//! are never logged.

use crate::errors::ApiError;
use crate::jwt::{AuthError, Authenticator, ClaimNames};
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferry_core::protocol::validate_id;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Every query of the request is scoped to this tenant.
    pub tenant: String,
    pub user: String,
    /// Role names; `admin` may call the admin endpoints of its tenant.
    pub roles: Vec<String>,
}

impl Identity {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }
}

/// The claims of Ferry's earlier token format.
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

/// Mints HS256 JWTs with the server secret (and verifies the earlier format).
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
    claims: ClaimNames,
    issuer: Option<String>,
    audience: Option<String>,
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
            claims: ClaimNames::default(),
            issuer: None,
            audience: None,
        }
    }

    /// A signer whose tokens pass the checks `auth` configures (claim names, `iss`, `aud`).
    pub fn for_config(secret: &[u8], auth: &crate::jwt::AuthConfig) -> Self {
        TokenSigner {
            claims: auth.claims.clone(),
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            ..TokenSigner::new(secret)
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// An HS256 JWT for `tenant`/`user` valid for `ttl_secs` from now.
    pub fn issue(
        &self,
        tenant: &str,
        user: &str,
        ttl_secs: u64,
        role: Option<&str>,
    ) -> Result<String, TokenError> {
        let roles: Vec<&str> = role.into_iter().collect();
        self.issue_with_roles(tenant, user, ttl_secs, &roles)
    }

    /// An HS256 JWT for `tenant`/`user` with `roles`, valid for `ttl_secs` from now.
    pub fn issue_with_roles(
        &self,
        tenant: &str,
        user: &str,
        ttl_secs: u64,
        roles: &[&str],
    ) -> Result<String, TokenError> {
        let now = now_secs();
        self.mint(serde_json::Map::from_iter([
            (self.claims.tenant.clone(), tenant.into()),
            (self.claims.user.clone(), user.into()),
            (self.claims.roles.clone(), roles.into()),
            ("iat".into(), now.into()),
            ("exp".into(), now.saturating_add(ttl_secs).into()),
        ]))
    }

    /// Signs explicit JWT claims (the configured `iss` and `aud` are added when absent).
    pub fn mint(
        &self,
        mut claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TokenError> {
        for id in [&self.claims.tenant, &self.claims.user] {
            let value = claims.get(id).and_then(|v| v.as_str()).unwrap_or_default();
            validate_id(id, value).map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
        }
        if let Some(issuer) = &self.issuer {
            claims
                .entry("iss")
                .or_insert_with(|| issuer.as_str().into());
        }
        if let Some(audience) = &self.audience {
            claims
                .entry("aud")
                .or_insert_with(|| audience.as_str().into());
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.key),
        )
        .map_err(|e| TokenError::InvalidClaims(e.to_string()))
    }

    /// Signs explicit claims in the earlier format (checked like incoming ones).
    pub fn sign_legacy(&self, claims: &Claims) -> Result<String, TokenError> {
        check_claims(claims)?;
        let json =
            serde_json::to_vec(claims).map_err(|e| TokenError::InvalidClaims(e.to_string()))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{sig}"))
    }

    /// Checks a token of the earlier format: the signature (constant time), the expiry and
    /// the claims.
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
pub async fn authenticate(
    auth: &Authenticator,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Identity, ApiError> {
    let token = bearer(headers)
        .or(query_token)
        .ok_or(ApiError::Unauthorized(AuthError::Missing))?;
    auth.verify(token).await.map_err(|e| match e {
        AuthError::KeysUnavailable(detail) => {
            tracing::warn!(error = %detail, "identity provider keys unavailable");
            ApiError::Unavailable
        }
        e => ApiError::Unauthorized(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let signer = TokenSigner::new(b"secret");
        let token = signer
            .sign_legacy(&Claims {
                tenant: "acme".into(),
                user: "alice".into(),
                exp: now_secs() + 60,
                role: None,
            })
            .unwrap();
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
        let token = signer.sign_legacy(&claims).unwrap();
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
