//! The default implementations and how the configuration turns into their configs: the
//! ONNX Runtime embedder (with its files from the assets, a path, or the Hugging Face hub),
//! the LanceDB store opened with the loaded embedder's identity, the chunker, the ingest and
//! hub configs, the model manager with its allowed folders, and the system sampler.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ragd_core::Embedder;
use ragd_embedding::{Device, EmbedderConfig, OrtEmbedder};
use ragd_hub::{HubClient, HubConfig, HubFile, Progress};
use ragd_ingest::{Chunker, ChunkerConfig, IngestConfig, Isolation, WorkerCommand};
use ragd_llm_backends::manager::{ManagerConfig, ModelManager};
use ragd_llm_backends::registry::RegistryConfig;
use ragd_llm_backends::remote::HttpSettings;
use ragd_telemetry::{CollectorConfig, SystemMonitorConfig};
use ragd_vector_store::{LanceStore, LanceStoreConfig};

use crate::config::{EXTRACT_WORKER_VERB, EngineConfig, ExtractIsolation};

/// Tokens the embedder adds to every text (`[CLS]` and `[SEP]` for BERT-style models); the
/// embedder reads whole chunks, so its window is the chunk size plus these.
pub(crate) const SPECIAL_TOKENS: usize = 2;

/// The hint added to a missing bundled file's reason.
const ASSETS_HINT: &str = "run `cargo xtask assets` or set assets_dir";

/// The hub client configuration, or `None` when no cache folder is known.
#[must_use]
pub fn hub_config(config: &EngineConfig) -> Option<HubConfig> {
    let cache_dir = config.models.hf_cache_dir.clone()?;
    let hub = &config.hub;
    Some(HubConfig {
        endpoint: hub.endpoint.clone(),
        token: config.hf_token.clone(),
        offline: hub.offline,
        connect_timeout: Duration::from_secs(hub.connect_timeout_secs),
        read_timeout: Duration::from_secs(hub.read_timeout_secs),
        ..HubConfig::new(cache_dir)
    })
}

/// The embedding model's ONNX file and tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmbeddingFiles {
    /// The ONNX model.
    pub(crate) model: PathBuf,
    /// Its `tokenizer.json`.
    pub(crate) tokenizer: PathBuf,
}

/// Where the embedding model's files are: `embedding.model_path` when set, the bundled
/// MiniLM for its id, else the hub repo `embedding.model_id` (its `embedding.onnx_file` and
/// `tokenizer.json`, or `embedding.tokenizer_path`), from the cache or downloaded into it.
pub(crate) async fn embedding_files(config: &EngineConfig) -> Result<EmbeddingFiles, String> {
    let settings = &config.embedding;
    if let Some(model) = &settings.model_path {
        return Ok(EmbeddingFiles { model: model.clone(), tokenizer: config.tokenizer_path() });
    }
    if settings.model_id == EmbedderConfig::MINILM_MODEL_ID {
        let bundled = EmbedderConfig::minilm(&config.assets_dir, &config.ort_dylib());
        return Ok(EmbeddingFiles {
            model: bundled.model_path,
            tokenizer: config.tokenizer_path(),
        });
    }
    let repo = &settings.model_id;
    let Some(hub) = hub_config(config) else {
        return Err(format!(
            "the embedding model {repo:?} names a Hugging Face repo, but no hub cache folder is \
             known; set the models' hf_cache_dir, or the embedding model_path and tokenizer_path"
        ));
    };
    let file = |path: &str| {
        HubFile::at_revision(repo.as_str(), path, settings.revision.as_str())
            .map_err(|err| err.to_string())
    };
    let mut files = vec![file(&settings.onnx_file)?];
    if settings.tokenizer_path.is_none() {
        files.push(file("tokenizer.json")?);
    }
    let client = HubClient::new(hub).map_err(|err| err.to_string())?;
    let last_logged = AtomicU8::new(0);
    let progress = |p: &Progress<'_>| {
        let tenth = p.percent() / 10;
        if last_logged.swap(tenth, Ordering::Relaxed) != tenth {
            tracing::info!(
                repo,
                percent = p.percent(),
                bytes = p.bytes,
                total = p.total,
                "downloading the embedding model"
            );
        }
    };
    let paths = client
        .download(&files, &progress)
        .await
        .map_err(|err| format!("cannot get the embedding model {repo} from the hub: {err}"))?;
    let mut paths = paths.into_iter();
    let model = paths.next().ok_or_else(|| "the hub client returned no files".to_owned())?;
    let tokenizer = paths.next().unwrap_or_else(|| config.tokenizer_path());
    tracing::info!(repo, model = %model.display(), tokenizer = %tokenizer.display(), "embedding model from the hub cache");
    Ok(EmbeddingFiles { model, tokenizer })
}

fn parse_device(device: &str) -> Result<Device, String> {
    match device {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| format!("embedding device {other:?} is not cpu, cuda or cuda:N")),
    }
}

fn embedder_config(
    config: &EngineConfig,
    files: &EmbeddingFiles,
) -> Result<EmbedderConfig, String> {
    let settings = &config.embedding;
    let mut embedder = EmbedderConfig::minilm(&config.assets_dir, &config.ort_dylib());
    embedder.model_path.clone_from(&files.model);
    embedder.tokenizer_path.clone_from(&files.tokenizer);
    embedder.model_id.clone_from(&settings.model_id);
    embedder.dimensions = settings.dimensions;
    embedder.max_tokens = config.ingest.chunk_max_tokens + SPECIAL_TOKENS;
    embedder.max_batch_size = settings.batch_size;
    embedder.intra_op_threads = settings.intra_op_threads;
    embedder.device = parse_device(&settings.device)?;
    Ok(embedder)
}

/// The ONNX Runtime embedder, loaded on a blocking thread (it reads and optimises the
/// model), and a description for status reports (model id and execution provider).
pub(crate) async fn load_embedder(
    config: &EngineConfig,
    files: &EmbeddingFiles,
) -> Result<(Arc<dyn Embedder>, String), String> {
    let embedder_config = embedder_config(config, files)?;
    let loaded = tokio::task::spawn_blocking(move || OrtEmbedder::load(&embedder_config))
        .await
        .map_err(|err| format!("loading the embedding model panicked: {err}"))?;
    match loaded {
        Ok(embedder) => {
            let description = format!("{} ({})", embedder.model_id(), embedder.provider());
            tracing::info!(
                model = embedder.model_id(),
                provider = embedder.provider(),
                "embedding model loaded"
            );
            Ok((Arc::new(embedder), description))
        }
        Err(err) => Err(format!("{err} ({ASSETS_HINT})")),
    }
}

/// The LanceDB store, its tables stamped with the identity of the embedder that loaded (so
/// a table written by another model or dimension is refused, not mixed).
pub(crate) async fn open_store(
    config: &EngineConfig,
    embedder: &dyn Embedder,
) -> Result<Arc<LanceStore>, String> {
    let store_config = LanceStoreConfig {
        uri: config.vector_store_uri(),
        model_id: embedder.model_id().to_owned(),
        dimensions: embedder.dimensions(),
        index_threshold_rows: config.vector_store.index_threshold_rows,
    };
    LanceStore::open(store_config).await.map(Arc::new).map_err(|err| err.to_string())
}

/// The chunk sizes from `[ingest]`.
pub(crate) fn chunker_config(config: &EngineConfig) -> ChunkerConfig {
    ChunkerConfig {
        max_tokens: config.ingest.chunk_max_tokens,
        overlap_tokens: config.ingest.chunk_overlap_tokens,
    }
}

/// The chunker, counting tokens through the embedder.
pub(crate) fn chunker(
    config: &EngineConfig,
    embedder: Arc<dyn Embedder>,
) -> Result<Chunker, String> {
    Chunker::with_embedder(chunker_config(config), embedder).map_err(|err| err.to_string())
}

/// The documents service's configuration.
pub(crate) fn ingest_config(config: &EngineConfig) -> IngestConfig {
    let settings = &config.ingest;
    IngestConfig {
        workers: settings.workers,
        max_upload_bytes: settings.max_upload_bytes,
        chunker: chunker_config(config),
        embed_batch_size: settings.embed_batch_size,
        max_extracted_bytes: settings.max_extracted_bytes,
        extract_timeout: Duration::from_secs(settings.extract_timeout_secs.max(1)),
        max_files_per_upload: settings.max_files_per_upload.max(1),
        max_chunks_per_document: settings.max_chunks_per_document.max(1),
        isolation: extract_isolation(config),
        ..IngestConfig::new(&config.data_dir)
    }
}

/// Extraction in worker processes (`<program> extract-worker`), or on threads when
/// configured so or when the worker program cannot be found.
fn extract_isolation(config: &EngineConfig) -> Isolation {
    let settings = &config.ingest;
    if settings.extract_isolation == ExtractIsolation::Thread {
        return Isolation::Thread;
    }
    let program = match settings.extract_worker.clone().map_or_else(std::env::current_exe, Ok) {
        Ok(program) => program,
        Err(err) => {
            tracing::warn!(%err, "cannot find the running executable; text extraction runs on threads");
            return Isolation::Thread;
        }
    };
    Isolation::Process(WorkerCommand {
        program,
        args: vec![EXTRACT_WORKER_VERB.to_owned()],
        max_memory_bytes: settings.extract_memory_bytes,
    })
}

/// The model manager: local models from the models folder, the Hugging Face cache and the
/// bundled assets; paths to load must lie in one of the allowed folders.
pub(crate) fn model_manager(config: &EngineConfig) -> ModelManager {
    let models_dir = config.models_dir();
    let mut allowed_dirs = vec![models_dir.clone(), config.assets_dir.clone()];
    allowed_dirs.extend(config.models.hf_cache_dir.clone());
    allowed_dirs.extend(config.models.allowed_dirs.iter().cloned());
    ModelManager::new(ManagerConfig {
        allowed_dirs,
        registry: RegistryConfig {
            models_dir: Some(models_dir),
            hf_cache_dir: config.models.hf_cache_dir.clone(),
            bundled: vec![config.bundled_chat_model()],
        },
        http: HttpSettings::default(),
        default_openai_url: config.models.openai_url.clone(),
        default_ollama_url: config.models.ollama_url.clone(),
        hub: hub_config(config),
    })
}

/// What the system sampler needs from the configuration.
#[must_use]
pub fn monitor_config(config: &EngineConfig) -> SystemMonitorConfig {
    SystemMonitorConfig {
        collector: CollectorConfig {
            data_dir: config.data_dir.clone(),
            nvml_library: config.telemetry.nvml_library.clone(),
        },
        interval: Duration::from_secs(config.telemetry.sample_interval_secs),
    }
}
