//! Shared state handed to every handler, and the one place concrete implementations are
//! wired together (architecture invariant 2): the ONNX embedder, the LanceDB store and the
//! SQLite catalog behind the documents, search and chat services, and the model manager
//! behind chat's [`ModelProvider`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use ragd_catalog::Catalog;
use ragd_chat::{ChatParts, ChatService, ModelProvider};
use ragd_core::{Embedder, GenerationSettings, LlmBackend, TableName, VectorStore};
use ragd_embedding::{Device, EmbedderConfig, OrtEmbedder};
use ragd_ingest::{
    Chunker, ChunkerConfig, IngestConfig, IngestParts, Ingestor, Isolation, WorkerCommand,
};
use ragd_llm_backends::manager::{BackendKind, LoadRequest, ManagerConfig, ModelManager};
use ragd_llm_backends::registry::RegistryConfig;
use ragd_llm_backends::remote::HttpSettings;
use ragd_search::{Searcher, SearcherParts};
use ragd_telemetry::{CollectorConfig, SystemMonitor, SystemMonitorConfig};
use ragd_vector_store::{LanceStore, LanceStoreConfig};

use crate::config::{Config, ExtractIsolation, IngestSettings};
use crate::hub::EmbeddingFiles;

/// The hidden `ragd` verb that runs one extraction ([`ragd_ingest::run_worker`]).
pub const EXTRACT_WORKER_VERB: &str = "extract-worker";

/// Tokens the embedder adds to every text (`[CLS]` and `[SEP]`); chunks leave room for them.
const SPECIAL_TOKENS: usize = 2;

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
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The services over one data directory, shared by the server and the CLI verbs.
#[derive(Debug, Clone)]
pub struct Services {
    /// Documents: uploads, the ingest pipeline, reads.
    pub documents: Ingestor,
    /// Keyword, semantic and hybrid search.
    pub search: Searcher,
    /// The embedder, when its model loaded.
    pub embedder: Option<Arc<OrtEmbedder>>,
    /// The catalog (sessions and messages live here too).
    pub catalog: Catalog,
    /// The vector store, when it opened (chat memory lives here too).
    pub store: Option<Arc<dyn VectorStore>>,
    /// The same store as its concrete type, for maintenance such as orphan removal.
    pub lance: Option<Arc<LanceStore>>,
}

impl Services {
    /// Opens the catalog, loads the embedding model and opens the vector store, then builds
    /// the documents and search services over them. A model or store that cannot be
    /// loaded is logged and leaves the server up: uploads and semantic search answer 503
    /// with the reason, everything else works.
    ///
    /// # Errors
    /// When the data directory or the catalog cannot be set up, or the configuration is
    /// inconsistent.
    pub async fn open(config: &Config) -> Result<Self, StartupError> {
        let ingest = &config.ingest;
        if ingest.chunk_overlap_tokens >= ingest.chunk_max_tokens {
            return Err(StartupError::Config(format!(
                "ingest.chunk_overlap_tokens ({}) must be smaller than ingest.chunk_max_tokens ({})",
                ingest.chunk_overlap_tokens, ingest.chunk_max_tokens
            )));
        }
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| StartupError::DataDir { path: config.data_dir.clone(), source })?;
        let catalog = Catalog::open(&config.data_dir.join("ragd.sqlite3"))?;
        let files = crate::hub::embedding_files(config).await;
        let embedder = match &files {
            Ok(files) => load_embedder(config, files).await,
            Err(reason) => Err(reason.clone()),
        };
        let store = match &embedder {
            Ok(_) => open_store(config).await,
            Err(reason) => Err(reason.clone()),
        };
        let vectors: Result<(Arc<OrtEmbedder>, Arc<LanceStore>), String> = match (embedder, store) {
            (Ok(embedder), Ok(store)) => Ok((embedder, store)),
            (Err(reason), _) | (_, Err(reason)) => {
                tracing::warn!("document uploads and semantic search are disabled: {reason}");
                Err(reason)
            }
        };
        let chunker = match (&vectors, &files) {
            (Ok(_), Ok(files)) => chunker(config, files),
            (Err(reason), _) | (_, Err(reason)) => Err(reason.clone()),
        };
        let (embedder, store) = match vectors {
            Ok((embedder, store)) => (Some(embedder), Some(store)),
            Err(_) => (None, None),
        };
        let as_embedder = embedder.clone().map(|e| e as Arc<dyn Embedder>);
        let lance = store.clone();
        let as_store = store.map(|s| s as Arc<dyn VectorStore>);
        let documents = Ingestor::new(
            IngestParts {
                catalog: catalog.clone(),
                chunker,
                embedder: as_embedder.clone(),
                store: as_store.clone(),
            },
            ingest_config(config),
        )?;
        let search = Searcher::new(SearcherParts {
            catalog: catalog.clone(),
            embedder: as_embedder,
            store: as_store.clone(),
        });
        Ok(Self { documents, search, embedder, catalog, store: as_store, lance })
    }

    /// Removes vectors whose chunk or message no longer exists in the catalog, as a crash
    /// between the catalog delete and the vector delete can leave them (architecture:
    /// "vectors whose chunk no longer exists are removed" at start-up). Call it before
    /// documents are resumed, so no worker is writing vectors meanwhile. Returns how many
    /// went; failures are logged, not fatal.
    pub async fn remove_orphan_vectors(&self) -> u64 {
        let Some(lance) = &self.lance else { return 0 };
        let catalog = self.catalog.clone();
        let ids = tokio::task::spawn_blocking(move || {
            Ok::<_, ragd_catalog::Error>((catalog.all_chunk_ids()?, catalog.all_message_ids()?))
        })
        .await;
        let (chunks, messages) = match ids {
            Ok(Ok(ids)) => ids,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot list catalog ids; orphan vectors are kept");
                return 0;
            }
            Err(err) => {
                tracing::warn!(%err, "orphan scan panicked; orphan vectors are kept");
                return 0;
            }
        };
        let mut removed = 0;
        for (table, keep) in [(TableName::Chunks, &chunks), (TableName::Memory, &messages)] {
            match lance.remove_orphans(table, keep).await {
                Ok(count) => removed += count,
                Err(err) => tracing::warn!(%err, table = table.as_str(), "orphan removal failed"),
            }
        }
        removed
    }
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
    /// Keyword, semantic and hybrid search.
    pub search: Searcher,
    /// The embedder, when its model loaded (for status reports).
    pub embedder: Option<Arc<OrtEmbedder>>,
    /// Chat models: load status, the loaded backend, generation settings.
    pub models: ModelManager,
    /// Chat sessions.
    pub chat: ChatService,
    /// API keys and rate limits.
    pub auth: crate::api::auth::Auth,
}

impl AppState {
    /// Opens the services under `config.data_dir` and starts the system sampler. Call
    /// [`Ingestor::recover`] on `documents` once serving starts.
    ///
    /// # Errors
    /// As [`Services::open`].
    pub async fn open(config: Config) -> Result<Self, StartupError> {
        let services = Services::open(&config).await?;
        let orphans = services.remove_orphan_vectors().await;
        if orphans > 0 {
            tracing::info!(orphans, "removed vectors whose chunk or message no longer exists");
        }
        let monitor = SystemMonitor::start(monitor_config(&config))
            .inspect_err(|err| tracing::warn!(%err, "system status is unavailable"))
            .ok();
        let models = model_manager(&config);
        autoload(&config, &models);
        let chat = chat_service(&config, &services, &models)?;
        let config_auth = config.auth.clone();
        if !config_auth.key_sha256.is_empty() {
            tracing::info!(
                keys = config_auth.key_sha256.len(),
                "API keys required (except /health)"
            );
        }
        Ok(Self {
            config: Arc::new(config),
            started_at: Instant::now(),
            monitor,
            metrics: crate::metrics::prometheus(),
            documents: services.documents,
            search: services.search,
            embedder: services.embedder,
            models,
            chat,
            auth: crate::api::auth::Auth::new(&config_auth),
        })
    }
}

/// Chat answers with whatever model the manager has loaded, with the settings in force.
#[derive(Debug, Clone)]
pub struct ManagedModel(pub ModelManager);

impl ModelProvider for ManagedModel {
    fn backend(&self) -> Option<Arc<dyn LlmBackend>> {
        self.0.backend()
    }

    fn settings(&self) -> GenerationSettings {
        self.0.settings()
    }
}

/// The chat service over the opened services and the model manager.
///
/// # Errors
/// When the `[chat]` settings are out of range.
pub fn chat_service(
    config: &Config,
    services: &Services,
    models: &ModelManager,
) -> Result<ChatService, StartupError> {
    let embedder = services.embedder.clone().map(|e| e as Arc<dyn Embedder>);
    ChatService::new(
        ChatParts {
            catalog: services.catalog.clone(),
            searcher: Some(services.search.clone()),
            embedder,
            store: services.store.clone(),
            models: Arc::new(ManagedModel(models.clone())),
        },
        config.chat.to_chat_config(),
    )
    .map_err(|err| StartupError::Config(format!("[chat]: {err}")))
}

fn model_manager(config: &Config) -> ModelManager {
    let bundled = config.assets_dir.join(ragd_core::assets::CHAT_MODEL.path);
    let models_dir = config.models.dir.clone().unwrap_or_else(|| config.data_dir.join("models"));
    // Paths given to `POST /models/load` must lie in a folder the operator chose.
    let mut allowed_dirs = vec![models_dir.clone(), config.assets_dir.clone()];
    allowed_dirs.extend(config.models.hf_cache_dir.clone());
    allowed_dirs.extend(config.models.allowed_dirs.iter().cloned());
    ModelManager::new(ManagerConfig {
        allowed_dirs,
        registry: RegistryConfig {
            models_dir: Some(models_dir),
            hf_cache_dir: config.models.hf_cache_dir.clone(),
            bundled: vec![bundled],
        },
        http: HttpSettings::default(),
        default_openai_url: config.models.openai_url.clone(),
        default_ollama_url: config.models.ollama_url.clone(),
        hub: crate::hub::hub_config(config),
    })
}

/// Starts loading `models.autoload` in the background (`bundled`: the bundled SmolLM2 when
/// its file is there; `none`: nothing).
fn autoload(config: &Config, models: &ModelManager) {
    let model = match config.models.autoload.as_str() {
        "none" | "" => return,
        "bundled" => {
            let path = config.assets_dir.join(ragd_core::assets::CHAT_MODEL.path);
            if !path.is_file() {
                tracing::info!(path = %path.display(), "bundled chat model not present; none loaded at start");
                return;
            }
            path.to_string_lossy().into_owned()
        }
        other => other.to_owned(),
    };
    let request = LoadRequest {
        backend: BackendKind::Local,
        model,
        hub: None,
        base_url: None,
        api_key: None,
        context_length: config.models.context_length,
        gpu_layers: 0,
    };
    if let Err(err) = models.load(request) {
        tracing::warn!(%err, "cannot start loading the chat model");
    }
}

fn parse_device(device: &str) -> Result<Device, String> {
    match device {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("embedding.device {other:?} is not cpu, cuda or cuda:N")),
    }
}

fn embedder_config(config: &Config, files: &EmbeddingFiles) -> Result<EmbedderConfig, String> {
    let settings = &config.embedding;
    let mut embedder = EmbedderConfig::minilm(&config.assets_dir, &config.ort_dylib());
    embedder.model_path.clone_from(&files.model);
    embedder.tokenizer_path.clone_from(&files.tokenizer);
    embedder.model_id.clone_from(&settings.model_id);
    embedder.dimensions = settings.dimensions;
    // The embedder reads whole chunks: their tokens plus [CLS] and [SEP].
    embedder.max_tokens = config.ingest.chunk_max_tokens + SPECIAL_TOKENS;
    embedder.max_batch_size = settings.batch_size;
    embedder.intra_op_threads = settings.intra_op_threads;
    embedder.device = parse_device(&settings.device)?;
    Ok(embedder)
}

/// Loads the embedding model on a blocking thread (it reads and optimises the model).
async fn load_embedder(
    config: &Config,
    files: &EmbeddingFiles,
) -> Result<Arc<OrtEmbedder>, String> {
    let embedder_config = embedder_config(config, files)?;
    let loaded = tokio::task::spawn_blocking(move || OrtEmbedder::load(&embedder_config))
        .await
        .map_err(|err| format!("loading the embedding model panicked: {err}"))?;
    match loaded {
        Ok(embedder) => {
            tracing::info!(
                model = embedder.model_id(),
                provider = embedder.provider(),
                "embedding model loaded"
            );
            Ok(Arc::new(embedder))
        }
        Err(err) => Err(format!("{err} (run `cargo xtask assets` or set assets_dir)")),
    }
}

async fn open_store(config: &Config) -> Result<Arc<LanceStore>, String> {
    let store_config = LanceStoreConfig {
        uri: config.vector_store_uri(),
        model_id: config.embedding.model_id.clone(),
        dimensions: config.embedding.dimensions,
        index_threshold_rows: config.vector_store.index_threshold_rows,
    };
    LanceStore::open(store_config).await.map(Arc::new).map_err(|err| err.to_string())
}

fn ingest_config(config: &Config) -> IngestConfig {
    let settings = &config.ingest;
    IngestConfig {
        workers: settings.workers,
        max_upload_bytes: settings.max_upload_bytes,
        chunker: chunker_config(config),
        embed_batch_size: settings.embed_batch_size,
        max_extracted_bytes: settings.max_extracted_bytes,
        extract_timeout: std::time::Duration::from_secs(settings.extract_timeout_secs.max(1)),
        max_files_per_upload: settings.max_files_per_upload.max(1),
        max_chunks_per_document: settings.max_chunks_per_document.max(1),
        isolation: extract_isolation(settings),
        ..IngestConfig::new(&config.data_dir)
    }
}

/// Extraction in `ragd extract-worker` processes (see `ragd_ingest::isolate`), or on
/// threads when configured so or when the worker program cannot be found.
fn extract_isolation(settings: &IngestSettings) -> Isolation {
    if settings.extract_isolation == ExtractIsolation::Thread {
        return Isolation::Thread;
    }
    let program = match settings.extract_worker.clone().map_or_else(std::env::current_exe, Ok) {
        Ok(program) => program,
        Err(err) => {
            tracing::warn!(%err, "cannot find the ragd executable; text extraction runs on threads");
            return Isolation::Thread;
        }
    };
    Isolation::Process(WorkerCommand {
        program,
        args: vec![EXTRACT_WORKER_VERB.to_owned()],
        max_memory_bytes: settings.extract_memory_bytes,
    })
}

fn chunker_config(config: &Config) -> ChunkerConfig {
    ChunkerConfig {
        max_tokens: config.ingest.chunk_max_tokens,
        overlap_tokens: config.ingest.chunk_overlap_tokens,
    }
}

/// The chunker on the embedding model's tokenizer.
fn chunker(config: &Config, files: &EmbeddingFiles) -> Result<Chunker, String> {
    Chunker::from_file(chunker_config(config), &files.tokenizer)
        .map_err(|err| format!("{err} (run `cargo xtask assets` or set assets_dir)"))
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
