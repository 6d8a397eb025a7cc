//! Starting a server: connect and migrate the database, build the router, serve on a
//! listener until shut down. Used by the binary and by the tests (bound to `127.0.0.1:0`).

use crate::auth::TokenSigner;
use crate::config::ServerConfig;
use crate::db::{Db, DbError};
use crate::hub::Hub;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::routes;
use crate::state::{AppState, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a shutdown waits for open requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A server running on a task of the current runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends the event streams, lets open requests finish (for up to
    /// [`SHUTDOWN_GRACE`]), then closes the database.
    pub async fn shutdown(mut self) {
        self.state.closing.send_replace(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("requests still open after the grace period: cutting them");
            self.task.abort();
        }
        self.state.db.close().await;
    }

    /// Serves until the server stops (an error, or never).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Connects the database and serves on `listener` until [`RunningServer::shutdown`].
pub async fn start(
    config: ServerConfig,
    listener: TcpListener,
) -> Result<RunningServer, StartError> {
    let hub = Hub::default();
    let db = Db::connect(&config.db, hub.clone()).await?;
    let state = AppState(Arc::new(Shared {
        db,
        signer: TokenSigner::new(&config.secret),
        rules: config.rules.clone(),
        hub,
        metrics: Metrics::default(),
        limiter: Limiter::new(config.limits),
        demo: config.demo,
        keep_alive: config.keep_alive,
        closing: tokio::sync::watch::Sender::new(false),
    }));
    let app = routes::router(state.clone(), config.static_dir.as_deref());
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, backend = state.db.backend(), "ferry-server listening");
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
