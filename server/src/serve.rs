//! Accepting and serving connections: HTTP/1.1 through hyper, with the limits that keep a
//! slow or stalled client from holding the server — a header-read timeout (which also bounds
//! how long a keep-alive connection may sit idle between requests), a cap on open
//! connections, and a shutdown that closes idle and stalled connections at once.
//!
//! axum's own `serve` sets no timer on hyper, so connections that never finish their headers
//! were never closed; this loop replaces it.

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower_http::timeout::RequestBodyTimeout;

/// How connections are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A client must send a request's complete headers within this time, counted from the
    /// moment the server waits for them: right after accepting, and after each response on a
    /// keep-alive connection (so it is also the idle timeout).
    pub header_read_timeout: Duration,
    /// A request body must deliver its next chunk within this time.
    pub body_read_timeout: Duration,
    /// Most connections open at once; further clients wait in the listen backlog until one
    /// closes. Keep it below the process's file-descriptor limit (often 1024), which the
    /// database connections and files share.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in progress before cutting them.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until `stop` becomes `true`; then stops accepting, closes idle
/// and half-sent connections at once, lets requests in progress finish for up to the grace
/// period and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow with the server's uptime.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let app = RequestBodyTimeout::new(app.clone(), limits.body_read_timeout);
        let inner = TowerToHyperService::new(app);
        // Whether a request ever reached the router on this connection: hyper's graceful
        // shutdown only closes a connection at once between requests, not one still waiting
        // for its first request's headers, which is what a stalled client holds.
        let started = Arc::new(AtomicBool::new(false));
        let service = {
            let started = started.clone();
            service_fn(move |req| {
                started.store(true, Ordering::Relaxed);
                inner.call(req)
            })
        };
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut stop) => {
                    if !started.load(Ordering::Relaxed) {
                        return; // dropping the connection closes the socket
                    }
                    // Closes the connection now if it is between requests (also when the next
                    // request's headers are still arriving), or after the current response.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "requests still open after the grace period: cutting them"
        );
        connections.abort_all();
    }
    Ok(())
}

/// Resolves once `stop` is `true` (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
