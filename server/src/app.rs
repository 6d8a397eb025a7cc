//! Starting a server: connect and migrate the database, build the router, serve on a
//! listener until shut down. Used by the binary and by the tests (bound to `127.0.0.1:0`).

use crate::auth::TokenSigner;
use crate::config::ServerConfig;
use crate::db::{Db, DbError};
use crate::hub::Hub;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::routes;
use crate::serve;
use crate::state::{AppState, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("auth: {0}")]
    Auth(#[from] crate::jwt::AuthConfigError),
}

/// A server running on a task of the current runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    housekeeping: JoinHandle<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends the event streams, closes idle and stalled connections at once,
    /// lets requests in progress finish (for up to the configured grace period, then cuts
    /// them), then closes the database.
    pub async fn shutdown(mut self) {
        self.state.closing.send_replace(true);
        self.stop.send_replace(true);
        self.housekeeping.abort();
        if let Err(e) = (&mut self.task).await {
            tracing::warn!(error = %e, "the accept loop ended abnormally");
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
    let auth = crate::jwt::Authenticator::new(config.auth.clone(), &config.secret)?;
    let hub = Hub::default();
    let db = Db::connect(&config.db, hub.clone()).await?;
    let state = AppState(Arc::new(Shared {
        db,
        signer: TokenSigner::for_config(&config.secret, &config.auth),
        auth,
        rules: config.rules.clone(),
        data_versions: config.data_versions.clone(),
        hub,
        metrics: Metrics::default(),
        limiter: Limiter::new(config.limits),
        demo: config.demo,
        keep_alive: config.keep_alive,
        closing: tokio::sync::watch::Sender::new(false),
    }));
    let app = routes::router(state.clone(), config.static_dir.as_deref());
    let addr = listener.local_addr()?;
    let housekeeping = tokio::spawn(crate::housekeeping::run_forever(
        state.clone(),
        config.housekeeping,
    ));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(serve::serve(listener, app, config.connections, stopped));
    tracing::info!(%addr, backend = state.db.backend(), "ferry-server listening");
    Ok(RunningServer {
        addr,
        state,
        stop,
        housekeeping,
        task,
    })
}
