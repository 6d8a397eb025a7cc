//! The state every handler shares: the database, the token signer, the validation rules,
//! the poke hub, metrics and the limiter. Nothing here outlives a request except caches of
//! the process (the hub and the limiter); all sync state lives in the database.

use crate::auth::TokenSigner;
use crate::db::Db;
use crate::hub::Hub;
use crate::limiter::Limiter;
use crate::metrics::Metrics;
use crate::validation::Rules;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// What the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub db: Db,
    pub signer: TokenSigner,
    /// Verifies every request's token.
    pub auth: crate::jwt::Authenticator,
    pub rules: Rules,
    /// The oldest app data version pushes are accepted from.
    pub data_versions: crate::data_version::DataVersions,
    pub hub: Hub,
    pub metrics: Metrics,
    pub limiter: Arc<Limiter>,
    /// Whether `POST /v1/demo/token` is enabled.
    pub demo: bool,
    /// Interval of keep-alive comments on event streams.
    pub keep_alive: Duration,
    /// Set to `true` on shutdown, which ends every event stream.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// A cheap-to-clone handle on [`Shared`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
