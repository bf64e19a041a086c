//! What handlers share: the engine (every service and the start-up rules live there), the
//! configuration in force, API keys and the metrics recorder.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use ragd_engine::Engine;

use crate::config::Config;

/// Cheap to clone: everything is behind `Arc` or a handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// The services.
    pub engine: Engine,
    /// The process-wide Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// API keys and rate limits.
    pub auth: crate::api::auth::Auth,
    /// Held while a folder is synced through the API: one at a time.
    pub sync: Arc<tokio::sync::Mutex<()>>,
    /// Cancelled when the server starts shutting down, so long-lived streams (MCP sessions)
    /// end instead of holding the graceful shutdown until its grace period is over.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Opens the engine under `config.data_dir` (the whole start-up sequence, see
    /// [`ragd_engine::Engine`]) and puts the server's parts around it.
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub async fn open(config: Config) -> Result<Self, ragd_engine::Error> {
        let engine = Engine::open(config.engine_config()).await?;
        Ok(Self::new(config, engine))
    }

    /// The server's parts around an engine opened elsewhere (for example with
    /// [`Engine::builder`] over fakes).
    #[must_use]
    pub fn new(config: Config, engine: Engine) -> Self {
        if !config.auth.key_sha256.is_empty() {
            tracing::info!(
                keys = config.auth.key_sha256.len(),
                "API keys required (except /health)"
            );
        }
        let auth = crate::api::auth::Auth::new(&config.auth);
        Self {
            config: Arc::new(config),
            engine,
            metrics: crate::metrics::prometheus(),
            auth,
            sync: Arc::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }
}
