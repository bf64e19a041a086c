//! The ONNX Runtime embedder (feature `ort`): where its files are (a bundled MiniLM, a
//! path, or a Hugging Face repo through `ragd-hub`), its window, and loading it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use ragd_core::Embedder;
use ragd_embedding::{Device, EmbedderConfig, OrtEmbedder, Priority};
use ragd_hub::{HubClient, HubFile, Progress};

use crate::config::EngineConfig;
use crate::defaults::{EmbedderUse, hub_config};

/// Tokens the embedder adds to every text (`[CLS]` and `[SEP]` for BERT-style models); the
/// embedder reads whole chunks, so its window is the chunk size plus these.
const SPECIAL_TOKENS: usize = 2;

/// The hint added to a missing bundled file's reason.
const ASSETS_HINT: &str = "run `cargo xtask assets` or set assets_dir";

/// The embedding model's ONNX file and tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmbeddingFiles {
    /// The ONNX model.
    pub(crate) model: PathBuf,
    /// Its `tokenizer.json`.
    pub(crate) tokenizer: PathBuf,
}

/// Where the embedding model's files are: `embedding.model_path` when set, a bundled
/// model's for its id, else the hub repo `embedding.model_id` (its `embedding.onnx_file` and
/// `tokenizer.json`, or `embedding.tokenizer_path`), from the cache or downloaded into it.
pub(crate) async fn embedding_files(config: &EngineConfig) -> Result<EmbeddingFiles, String> {
    let settings = &config.embedding;
    if let Some(model) = &settings.model_path {
        return Ok(EmbeddingFiles { model: model.clone(), tokenizer: config.tokenizer_path() });
    }
    if let Some(bundled) =
        EmbedderConfig::bundled(&settings.model_id, &config.assets_dir, &config.ort_dylib())
    {
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
    purpose: EmbedderUse,
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
    embedder.priority = match purpose {
        EmbedderUse::Serving => Priority::Normal,
        EmbedderUse::Rebuild => Priority::Background,
    };
    Ok(embedder)
}

/// The ONNX Runtime embedder, loaded on a blocking thread (it reads and optimises the
/// model), and a description for status reports (model id and execution provider).
pub(crate) async fn load_embedder(
    config: &EngineConfig,
    files: &EmbeddingFiles,
    purpose: EmbedderUse,
) -> Result<(Arc<dyn Embedder>, String), String> {
    let embedder_config = embedder_config(config, files, purpose)?;
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
