//! The Hugging Face hub as ragd uses it: the [`HubConfig`] built from `[hub]`,
//! `models.hf_cache_dir` and the discovered token, and the embedding model's files when
//! `embedding.model_id` names a hub repo.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ragd_embedding::EmbedderConfig;
use ragd_hub::{HubClient, HubConfig, HubFile, Progress};

use crate::config::Config;

/// The hub client configuration, or `None` when no cache folder is known (no
/// `models.hf_cache_dir` and no `HF_HUB_CACHE`, `HF_HOME` or `HOME`).
#[must_use]
pub fn hub_config(config: &Config) -> Option<HubConfig> {
    let cache_dir = config.models.hf_cache_dir.clone()?;
    let hub = &config.hub;
    Some(HubConfig {
        endpoint: hub.endpoint.clone(),
        token: config.hf_token.as_ref().map(|token| token.expose().to_owned()),
        offline: hub.offline,
        connect_timeout: Duration::from_secs(hub.connect_timeout_secs),
        read_timeout: Duration::from_secs(hub.read_timeout_secs),
        ..HubConfig::new(cache_dir)
    })
}

/// The embedding model's ONNX file and tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingFiles {
    /// The ONNX model.
    pub model: PathBuf,
    /// Its `tokenizer.json` (the chunker counts tokens with it too).
    pub tokenizer: PathBuf,
}

/// Where the embedding model's files are: `embedding.model_path` when set, the bundled
/// MiniLM for its id, else the hub repo `embedding.model_id` (its `embedding.onnx_file` and
/// `tokenizer.json`, or `embedding.tokenizer_path`), from the cache or downloaded into it.
///
/// # Errors
/// A message saying which file could not be had and why.
pub async fn embedding_files(config: &Config) -> Result<EmbeddingFiles, String> {
    let settings = &config.embedding;
    if let Some(model) = &settings.model_path {
        return Ok(EmbeddingFiles { model: model.clone(), tokenizer: config.tokenizer_path() });
    }
    let bundled = EmbedderConfig::minilm(&config.assets_dir, &config.ort_dylib());
    if settings.model_id == EmbedderConfig::MINILM_MODEL_ID {
        return Ok(EmbeddingFiles {
            model: bundled.model_path,
            tokenizer: config.tokenizer_path(),
        });
    }
    let repo = &settings.model_id;
    let Some(hub) = hub_config(config) else {
        return Err(format!(
            "embedding.model_id {repo:?} names a Hugging Face repo, but no hub cache folder is \
             known; set models.hf_cache_dir, or embedding.model_path and tokenizer_path"
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
