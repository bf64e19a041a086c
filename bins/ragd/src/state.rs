//! Shared state handed to every handler, and the one place concrete implementations are
//! wired together (architecture invariant 2).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use ragd_catalog::Catalog;
use ragd_ingest::{Chunker, ChunkerConfig, IngestConfig, IngestParts, Ingestor};
use ragd_telemetry::{CollectorConfig, SystemMonitor, SystemMonitorConfig};

use crate::config::Config;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory could not be created.
    #[error("cannot create data dir {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite catalog could not be opened or migrated.
    #[error("cannot open the catalog: {0}")]
    Catalog(#[from] ragd_catalog::Error),
    /// The ingest pipeline could not be set up.
    #[error("cannot set up ingestion: {0}")]
    Ingest(#[from] ragd_ingest::Error),
}

/// What handlers share. Cheap to clone: everything is behind `Arc` or a handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// When the server started, for uptime.
    pub started_at: Instant,
    /// The background system sampler; `None` when the platform reports nothing.
    pub monitor: Option<SystemMonitor>,
    /// The process-wide Prometheus recorder.
    pub metrics: PrometheusHandle,
    /// Documents: uploads, the ingest pipeline, reads.
    pub documents: Ingestor,
}

impl AppState {
    /// Opens the stores under `config.data_dir` and starts the background services (the
    /// system sampler). Call [`Ingestor::recover`] on `documents` once serving starts.
    ///
    /// # Errors
    /// When the data directory, the catalog or the ingest pipeline cannot be set up.
    pub fn open(config: Config) -> Result<Self, StartupError> {
        let documents = open_documents(&config)?;
        let monitor = SystemMonitor::start(monitor_config(&config))
            .inspect_err(|err| tracing::warn!(%err, "system status is unavailable"))
            .ok();
        Ok(Self {
            config: Arc::new(config),
            started_at: Instant::now(),
            monitor,
            metrics: crate::metrics::prometheus(),
            documents,
        })
    }
}

/// Opens the catalog under `config.data_dir` (creating the directory) and the ingest
/// pipeline over it: the documents service the server and `ragd ingest` share.
///
/// # Errors
/// When the data directory, the catalog or the uploads directory cannot be set up.
pub fn open_documents(config: &Config) -> Result<Ingestor, StartupError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartupError::DataDir { path: config.data_dir.clone(), source })?;
    let catalog = Catalog::open(&config.data_dir.join("ragd.sqlite3"))?;
    let parts = IngestParts { catalog, chunker: chunker(config), embedder: None, store: None };
    Ok(Ingestor::new(parts, ingest_config(config))?)
}

fn ingest_config(config: &Config) -> IngestConfig {
    let settings = &config.ingest;
    IngestConfig {
        workers: settings.workers,
        max_upload_bytes: settings.max_upload_bytes,
        chunker: ChunkerConfig {
            max_tokens: settings.chunk_max_tokens,
            overlap_tokens: settings.chunk_overlap_tokens,
        },
        embed_batch_size: settings.embed_batch_size,
        ..IngestConfig::new(&config.data_dir)
    }
}

/// The chunker on the embedding model's tokenizer; without the asset, uploads answer 503
/// with this reason while everything else keeps working.
fn chunker(config: &Config) -> Result<Chunker, String> {
    let path = config.assets_dir.join(ragd_core::assets::EMBEDDING_TOKENIZER.path);
    let settings = &config.ingest;
    let chunker_config = ChunkerConfig {
        max_tokens: settings.chunk_max_tokens,
        overlap_tokens: settings.chunk_overlap_tokens,
    };
    Chunker::from_file(chunker_config, &path).map_err(|err| {
        let reason = format!("{err} (run `cargo xtask assets` or set assets_dir)");
        tracing::warn!("document uploads are disabled: {reason}");
        reason
    })
}

/// What the system sampler needs from the configuration.
#[must_use]
pub fn monitor_config(config: &Config) -> SystemMonitorConfig {
    SystemMonitorConfig {
        collector: CollectorConfig {
            data_dir: config.data_dir.clone(),
            nvml_library: config.telemetry.nvml_library.clone(),
        },
        interval: Duration::from_secs(config.telemetry.sample_interval_secs),
    }
}
