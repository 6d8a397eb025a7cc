//! ferry-core's `Transport` over real HTTP (reqwest), so an `Engine` syncs through the server.
//! A conditional pull answered `304` is the empty page its validator names, as in the browser.

use ferry_core::conditional::{not_modified_page, parse_pull_etag};
use ferry_core::ports::{RequestMeta, TokenSource, Transport, TransportError};
use ferry_core::protocol::{ErrorBody, PullResponse, PushRequest, PushResponse};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Talks to one server.
#[derive(Clone)]
pub struct HttpTransport {
    pub http: reqwest::Client,
    pub base: String,
    /// Pulls answered `304 Not Modified`.
    pub not_modified: Arc<AtomicU32>,
}

impl HttpTransport {
    pub fn new(base: &str) -> Self {
        HttpTransport {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            not_modified: Arc::default(),
        }
    }

    async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        meta: &RequestMeta,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        req = req.header("traceparent", &meta.traceparent);
        if let Some(token) = &meta.token {
            req = req.bearer_auth(token);
        }
        if let Some(tag) = &meta.if_none_match {
            req = req.header("If-None-Match", tag);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        let retry_after_ms = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| s * 1000);
        let body = resp
            .bytes()
            .await
            .map_err(|e| TransportError::Network(e.to_string()))?
            .to_vec();
        match status {
            200..=299 => Ok(Some(body)),
            304 if meta.if_none_match.is_some() => Ok(None),
            401 => Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => TransportError::Unauthorized {
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => TransportError::unauthorized(),
            }),
            410 => Err(TransportError::CursorExpired),
            _ => {
                let err: Option<ErrorBody> = serde_json::from_slice(&body).ok();
                let (code, message) = err
                    .map(|e| (e.error.code, e.error.message))
                    .unwrap_or_default();
                Err(TransportError::Http {
                    status,
                    code,
                    message,
                    retry_after_ms,
                })
            }
        }
    }
}

impl Transport for HttpTransport {
    async fn push(
        &self,
        req: &PushRequest,
        meta: &RequestMeta,
    ) -> Result<PushResponse, TransportError> {
        let request = self
            .http
            .post(format!("{}/v1/sync/mutations", self.base))
            .header("Idempotency-Key", &meta.idempotency_key)
            .json(req);
        let body = self
            .send(request, meta)
            .await?
            .ok_or_else(|| TransportError::Decode("304 to a push".into()))?;
        PushResponse::decode(&body).map_err(|e| TransportError::Decode(e.to_string()))
    }

    async fn pull(
        &self,
        cursor: u64,
        limit: u32,
        meta: &RequestMeta,
    ) -> Result<PullResponse, TransportError> {
        let view = if meta.view.is_empty() {
            String::new()
        } else {
            format!("&view={}", meta.view)
        };
        let request = self.http.get(format!(
            "{}/v1/sync/changes?cursor={cursor}&limit={limit}{view}{}",
            self.base,
            ferry_core::protocol::pull_collections_param(&meta.collections)
        ));
        let Some(body) = self.send(request, meta).await? else {
            self.not_modified.fetch_add(1, Ordering::Relaxed);
            let (epoch, named) = meta
                .if_none_match
                .as_deref()
                .and_then(parse_pull_etag)
                .ok_or_else(|| TransportError::Decode("304 without a validator".into()))?;
            if named != cursor {
                return Err(TransportError::Decode("304 for another cursor".into()));
            }
            return Ok(not_modified_page(epoch, cursor));
        };
        PullResponse::decode(&body).map_err(|e| TransportError::Decode(e.to_string()))
    }
}

/// A fixed token.
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    async fn token(&self, _refresh: bool) -> Result<Option<String>, String> {
        Ok(Some(self.0.clone()))
    }
}

/// The real clock.
pub struct SystemClock;

impl ferry_core::ports::Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}
