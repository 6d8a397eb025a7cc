//! `GET /v1/sync/events`: server-sent events. On connect the stream sends
//! `event: poke` / `data: {"cursor":N}` with the tenant's cursor, then another poke whenever
//! the cursor advances (from any process, on PostgreSQL), plus keep-alive comments.
//!
//! Browsers' `EventSource` cannot set headers, so this route also takes `?token=`.

use crate::auth::authenticate;
use crate::errors::ApiError;
use crate::hub::Poke;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::convert::Infallible;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::watch;

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    pub token: Option<String>,
}

/// One open stream of one tenant.
struct Watch {
    state: AppState,
    tenant: String,
    rx: Receiver<Poke>,
    /// Becomes `true` when the server shuts down: the stream ends.
    closing: watch::Receiver<bool>,
    /// The last cursor sent; `None` before the first poke.
    sent: Option<u64>,
    /// The cursor read on connect, sent first.
    initial: Option<u64>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.state.metrics.stream_delta(-1);
    }
}

fn poke(cursor: u64) -> Event {
    Event::default()
        .event("poke")
        .data(format!("{{\"cursor\":{cursor}}}"))
}

impl Watch {
    /// Waits for the next cursor worth a poke; `None` ends the stream.
    async fn next_cursor(&mut self) -> Option<u64> {
        if let Some(cursor) = self.initial.take() {
            return Some(cursor);
        }
        loop {
            let received = tokio::select! {
                poke = self.rx.recv() => poke,
                _ = self.closing.wait_for(|closing| *closing) => return None,
            };
            let reread = match received {
                Ok(Poke::Cursor { tenant, cursor }) if *tenant == *self.tenant => {
                    if self.sent.is_none_or(|sent| cursor > sent) {
                        return Some(cursor);
                    }
                    false
                }
                Ok(Poke::Cursor { .. }) => false,
                Ok(Poke::Resync) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return None,
            };
            if reread {
                match self.state.db.head(&self.tenant).await {
                    Ok(cursor) if self.sent.is_none_or(|sent| cursor > sent) => {
                        return Some(cursor)
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not re-read a cursor for an event stream")
                    }
                }
            }
        }
    }
}

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::bad_request("the query string is malformed: it takes only `token`")
    })?;
    let claims = authenticate(&state.auth, &headers, q.token.as_deref()).await?;
    // Subscribe before reading the cursor, so no advance between the two is missed.
    let rx = state.hub.subscribe();
    let initial = state.db.head(&claims.tenant).await?;
    state.metrics.stream_delta(1);
    tracing::debug!(tenant = %claims.tenant, cursor = initial, "event stream opened");
    let keep_alive = KeepAlive::new()
        .interval(state.keep_alive)
        .text("keep-alive");
    let closing = state.closing.subscribe();
    let watch = Watch {
        state,
        tenant: claims.tenant,
        rx,
        closing,
        sent: None,
        initial: Some(initial),
    };
    let stream = stream::unfold(watch, |mut watch| async move {
        let cursor = watch.next_cursor().await?;
        watch.sent = Some(cursor);
        watch.state.metrics.record_poke();
        Some((Ok(poke(cursor)), watch))
    });
    Ok(Sse::new(stream).keep_alive(keep_alive))
}
