//! The default implementations and how the configuration turns into their configs: the
//! embedder (`onnx.rs`, feature `ort`), the LanceDB store opened with the loaded embedder's
//! identity (feature `lance`), the chunker, the ingest and hub configs, the model manager
//! with its allowed folders, and the system sampler. Without a feature the engine opens
//! without that backend and says why, unless the builder was given one.

use std::sync::Arc;
use std::time::Duration;

use ragd_core::{Embedder, Reranker, VectorStore};
use ragd_hub::HubConfig;
use ragd_ingest::{Chunker, ChunkerConfig, IngestConfig, Isolation, WorkerCommand};
use ragd_llm_backends::manager::{LoadDefaults, ManagerConfig, ModelManager};
use ragd_llm_backends::registry::RegistryConfig;
use ragd_llm_backends::remote::HttpSettings;
use ragd_telemetry::{CollectorConfig, SystemMonitorConfig};

use crate::config::{EXTRACT_WORKER_VERB, EngineConfig, ExtractIsolation};
use crate::error::Error;

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

/// What an embedder is loaded for, which decides its CPU priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmbedderUse {
    /// Queries and writes: the normal priority.
    Serving,
    /// Re-embedding an index while serving: the lowest priority, so it takes only the CPU
    /// time that queries leave.
    Rebuild,
}

/// The default embedder (ONNX Runtime, feature `ort`) and a description for status
/// reports, or why there is none.
#[cfg_attr(not(feature = "ort"), allow(clippy::unused_async))] // Async with the feature.
pub(crate) async fn default_embedder(
    config: &EngineConfig,
    purpose: EmbedderUse,
) -> Result<(Arc<dyn Embedder>, String), String> {
    #[cfg(feature = "ort")]
    {
        let files = crate::onnx::embedding_files(config).await?;
        crate::onnx::load_embedder(config, &files, purpose).await
    }
    #[cfg(not(feature = "ort"))]
    {
        let _ = (config, purpose);
        Err("this build has no default embedder (feature `ort` is off); give one to \
             Engine::builder"
            .to_owned())
    }
}

/// The embedder for another model id than the configured one (the model an existing index
/// was built with, to keep serving it while it is rebuilt): the bundled files for a bundled
/// model, else the Hugging Face repo of that id from the cache (never downloaded: start-up
/// does not wait on the network for a model that is on its way out).
pub(crate) async fn embedder_for(
    config: &EngineConfig,
    model_id: &str,
    dimensions: usize,
) -> Result<(Arc<dyn Embedder>, String), String> {
    let mut other = config.clone();
    other.embedding.model_id = model_id.to_owned();
    other.embedding.dimensions = dimensions;
    other.embedding.model_path = None;
    other.embedding.tokenizer_path = None;
    other.hub.offline = true;
    default_embedder(&other, EmbedderUse::Serving).await
}

/// The reranker `rerank.model` names (llama.cpp, feature `llama`): `Ok(None)` for `none`,
/// or why it cannot load.
#[cfg_attr(not(feature = "llama"), allow(clippy::unused_async))] // Async with the feature.
pub(crate) async fn default_reranker(
    config: &EngineConfig,
) -> Result<Option<Arc<dyn Reranker>>, String> {
    let settings = &config.rerank;
    let path = match settings.model.as_str() {
        "none" | "" => return Ok(None),
        "bundled" => config.bundled_chat_model(),
        other => reranker_file(config, other).await?,
    };
    #[cfg(feature = "llama")]
    {
        use ragd_llm_backends::{LlamaReranker, LlamaRerankerConfig, RerankMethod};
        let reranker_config = LlamaRerankerConfig {
            method: match settings.method {
                crate::config::RerankMethodSetting::QueryLikelihood => {
                    RerankMethod::QueryLikelihood
                }
                crate::config::RerankMethodSetting::Judge => RerankMethod::Judge,
            },
            context_length: settings.context_length,
            threads: settings.threads,
            ..LlamaRerankerConfig::new(path)
        };
        let loaded = tokio::task::spawn_blocking(move || LlamaReranker::load(&reranker_config))
            .await
            .map_err(|err| format!("loading the reranker panicked: {err}"))?;
        match loaded {
            Ok(reranker) => Ok(Some(Arc::new(reranker))),
            Err(err) => Err(err.to_string()),
        }
    }
    #[cfg(not(feature = "llama"))]
    {
        Err(format!(
            "this build cannot load the reranker {} (feature `llama` is off); give one to \
             Engine::builder",
            path.display()
        ))
    }
}

/// The GGUF file `model` names: a path, else a hub file `org/name/file.gguf` from the cache,
/// downloaded into it when missing.
async fn reranker_file(config: &EngineConfig, model: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(model);
    let hub_file = ragd_hub::HubFile::parse(model).filter(|file| file.path.ends_with(".gguf"));
    let Some(file) = hub_file.filter(|_| !path.exists()) else { return Ok(path) };
    let hub = hub_config(config).ok_or_else(|| {
        format!("the reranker {model:?} names a hub file, but no hub cache folder is known")
    })?;
    let client = ragd_hub::HubClient::new(hub).map_err(|err| err.to_string())?;
    let progress = |p: &ragd_hub::Progress<'_>| {
        tracing::debug!(model, percent = p.percent(), "downloading the reranker");
    };
    let mut paths = client
        .download(std::slice::from_ref(&file), &progress)
        .await
        .map_err(|err| format!("cannot get the reranker {model} from the hub: {err}"))?;
    paths.pop().ok_or_else(|| "the hub client returned no file".to_owned())
}

/// The vector store of `generation` (LanceDB, feature `lance`), its tables stamped with
/// `model_id` and `dimensions` (a table written by another model or dimension is refused,
/// not mixed), or why there is none.
#[cfg_attr(not(feature = "lance"), allow(clippy::unused_async))] // Async with the feature.
pub(crate) async fn generation_store(
    config: &EngineConfig,
    model_id: &str,
    dimensions: usize,
    generation: u32,
) -> Result<Arc<dyn VectorStore>, String> {
    #[cfg(feature = "lance")]
    {
        let store_config = ragd_vector_store::LanceStoreConfig {
            location: store_location(config),
            model_id: model_id.to_owned(),
            dimensions,
            index_threshold_rows: config.vector_store.index_threshold_rows,
            search_ef: config.vector_store.search_ef,
            generation,
        };
        ragd_vector_store::LanceStore::open(store_config)
            .await
            .map(|store| Arc::new(store) as Arc<dyn VectorStore>)
            .map_err(|err| err.to_string())
    }
    #[cfg(not(feature = "lance"))]
    {
        let _ = (config, model_id, dimensions, generation);
        Err(NO_STORE.to_owned())
    }
}

/// Where the vector tables live: `vector_store.uri` (else `<data_dir>/lance`) with its
/// storage options. Reads look for other processes' commits every
/// `vector_store.read_consistency_ms`; by default before every read in an object store,
/// which several replicas share, and never in a local directory, which only this process
/// writes.
#[cfg(feature = "lance")]
fn store_location(config: &EngineConfig) -> ragd_vector_store::StoreLocation {
    let mut location = ragd_vector_store::StoreLocation {
        uri: config.vector_store_uri(),
        storage_options: config.vector_store.storage_options.clone(),
        read_consistency: None,
    };
    location.read_consistency = match config.vector_store.read_consistency_ms {
        Some(ms) => Some(std::time::Duration::from_millis(ms)),
        None => location.is_object_store().then_some(std::time::Duration::ZERO),
    };
    location
}

/// The model id and dimension recorded in the `chunks` table of `generation`, if that
/// table exists (a data directory from before generations were recorded).
#[cfg_attr(not(feature = "lance"), allow(clippy::unused_async))] // Async with the feature.
pub(crate) async fn recorded_model(
    config: &EngineConfig,
    generation: u32,
) -> Result<Option<(String, usize)>, String> {
    #[cfg(feature = "lance")]
    {
        ragd_vector_store::LanceStore::recorded_model(&store_location(config), generation)
            .await
            .map_err(|err| err.to_string())
    }
    #[cfg(not(feature = "lance"))]
    {
        let _ = (config, generation);
        Ok(None)
    }
}

/// Drops the tables of `generation`.
#[cfg_attr(not(feature = "lance"), allow(clippy::unused_async))] // Async with the feature.
pub(crate) async fn drop_generation(config: &EngineConfig, generation: u32) -> Result<(), String> {
    #[cfg(feature = "lance")]
    {
        ragd_vector_store::LanceStore::drop_generation(&store_location(config), generation)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }
    #[cfg(not(feature = "lance"))]
    {
        let _ = (config, generation);
        Ok(())
    }
}

/// Why there is no default vector store in a build without LanceDB.
#[cfg(not(feature = "lance"))]
const NO_STORE: &str =
    "this build has no default vector store (feature `lance` is off); give one to Engine::builder";

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

/// Where uploads are shared with other replicas (`ingest.uploads_uri`), if anywhere.
///
/// # Errors
/// [`Error::InvalidConfig`] for a URI that cannot be opened, or in a build without the
/// `lance` feature (which brings the object-store client).
pub(crate) fn upload_store(
    config: &EngineConfig,
) -> Result<Option<Arc<dyn ragd_ingest::UploadStore>>, Error> {
    let Some(uri) = &config.ingest.uploads_uri else { return Ok(None) };
    #[cfg(feature = "lance")]
    {
        let store = crate::uploads::ObjectUploads::open(uri, &config.vector_store.storage_options)?;
        tracing::info!(uri, "uploads are shared through the object store");
        Ok(Some(Arc::new(store)))
    }
    #[cfg(not(feature = "lance"))]
    {
        Err(Error::InvalidConfig(format!(
            "ingest.uploads_uri {uri:?} needs ragd-engine's `lance` feature (the object-store client)"
        )))
    }
}

/// The documents service's configuration.
pub(crate) fn ingest_config(config: &EngineConfig) -> IngestConfig {
    let settings = &config.ingest;
    let pdfium = config.pdfium_library();
    if pdfium.is_none() {
        tracing::warn!(
            assets = %config.assets_dir.display(),
            "PDFium is not in the asset directory (`cargo xtask assets` puts it there): PDFs \
             are read by pdf-extract, which reads fewer files, and scanned pages are not read"
        );
    }
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
        ocr: ragd_ingest::OcrSettings {
            mode: settings.ocr,
            languages: settings.ocr_languages.clone(),
        },
        pdfium,
        // With a Postgres catalog, other replicas may share the queue.
        queue: match config.catalog.url {
            Some(_) => ragd_ingest::QueueMode::Shared {
                poll: Duration::from_millis(settings.claim_poll_ms.max(1)),
            },
            None => ragd_ingest::QueueMode::Exclusive,
        },
        lease: Duration::from_secs(settings.lease_secs.max(1)),
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
/// bundled assets; paths to load must lie in one of the allowed folders; Hugging Face
/// folders are imported into `models.dir/imported`. The engine's own; `ragd models import`
/// builds one without the rest of the engine.
#[must_use]
pub fn model_manager(config: &EngineConfig) -> ModelManager {
    let models_dir = config.models_dir();
    let mut allowed_dirs = vec![models_dir.clone(), config.assets_dir.clone()];
    allowed_dirs.extend(config.models.hf_cache_dir.clone());
    allowed_dirs.extend(config.models.other_hf_cache_dirs.iter().cloned());
    allowed_dirs.extend(config.models.allowed_dirs.iter().cloned());
    ModelManager::new(ManagerConfig {
        allowed_dirs,
        registry: RegistryConfig {
            models_dir: Some(models_dir.clone()),
            hf_cache_dir: config.models.hf_cache_dir.clone(),
            other_hf_cache_dirs: config.models.other_hf_cache_dirs.clone(),
            bundled: vec![config.bundled_chat_model()],
        },
        http: HttpSettings::default(),
        default_openai_url: config.models.openai_url.clone(),
        default_ollama_url: config.models.ollama_url.clone(),
        hub: hub_config(config),
        parallel: config.models.parallel,
        import_dir: Some(models_dir.join("imported")),
        defaults: LoadDefaults {
            model: config.models.default_model.clone(),
            base_url: config.models.base_url.clone(),
            api_key: config.models.api_key.clone(),
            // Checked by `EngineConfig::validate`; the library defaults otherwise.
            settings: config.models.generation_defaults().unwrap_or_default(),
        },
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
