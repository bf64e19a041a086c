//! The ONNX Runtime embedder (feature `ort`): where its files are (a bundled MiniLM, a
//! path, or a Hugging Face repo through `ragd-hub`), its window, and loading it.
//!
//! The bundled all-MiniLM-L6-v2 has three files (`embedding.precision`): `int8` (the model
//! package's, int8 weights computed in fp32), `fp32` (the exact weights, which ONNX Runtime
//! fuses into fewer, larger kernels) and `int8_fused` (the fused graph quantised for int8
//! arithmetic, fastest where the CPU has VNNI). With `auto`, the first start on a data
//! directory loads each file there is, times them on the same texts and keeps the fastest:
//! which wins depends on the CPU. The choice is written to [`PRECISION_FILE`] in the data
//! directory and kept by later starts, so the vectors of one index all come from one file
//! (the files agree to a cosine of about 0.99, not exactly); a directory indexed before the
//! choice existed stays on int8. The choice and the timings are part of the embedder's
//! description, so `/api/v1/info` and the system status show them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ragd_core::Embedder;
use ragd_embedding::{Device, EmbedderConfig, OrtEmbedder, Priority};
use ragd_hub::{HubClient, HubFile, Progress};

use crate::config::{EmbeddingPrecision, EngineConfig};
use crate::defaults::{EmbedderUse, hub_config};

/// Tokens the embedder adds to every text (`[CLS]` and `[SEP]` for BERT-style models); the
/// embedder reads whole chunks, so its window is the chunk size plus these.
const SPECIAL_TOKENS: usize = 2;

/// The file in the data directory that keeps `auto`'s choice: the precision on the first
/// line, the probe's summary on the second.
pub(crate) const PRECISION_FILE: &str = "embedding-precision";

/// The hint added to a missing bundled file's reason.
const ASSETS_HINT: &str = "run `cargo xtask assets` or set assets_dir";

/// The embedding model's ONNX file and tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmbeddingFiles {
    /// The ONNX model.
    pub(crate) model: PathBuf,
    /// Its `tokenizer.json`.
    pub(crate) tokenizer: PathBuf,
    /// For the bundled all-MiniLM-L6-v2 only: its other files (`model` is the int8 one),
    /// each of which may be missing.
    pub(crate) other_precisions: Vec<(EmbeddingPrecision, PathBuf)>,
}

impl EmbeddingFiles {
    /// The file of `precision` (`model` for int8), if this model has one.
    fn of(&self, precision: EmbeddingPrecision) -> Option<&Path> {
        if precision == EmbeddingPrecision::Int8 {
            return Some(&self.model);
        }
        self.other_precisions.iter().find(|(p, _)| *p == precision).map(|(_, path)| path.as_path())
    }
}

/// Where the embedding model's files are: `embedding.model_path` when set, a bundled
/// model's for its id, else the hub repo `embedding.model_id` (its `embedding.onnx_file` and
/// `tokenizer.json`, or `embedding.tokenizer_path`), from the cache or downloaded into it.
pub(crate) async fn embedding_files(config: &EngineConfig) -> Result<EmbeddingFiles, String> {
    let settings = &config.embedding;
    if let Some(model) = &settings.model_path {
        return Ok(EmbeddingFiles {
            model: model.clone(),
            tokenizer: config.tokenizer_path(),
            other_precisions: Vec::new(),
        });
    }
    if let Some(bundled) =
        EmbedderConfig::bundled(&settings.model_id, &config.assets_dir, &config.ort_dylib())
    {
        let other_precisions = if bundled.model_id == EmbedderConfig::MINILM_MODEL_ID {
            let file = |asset: ragd_core::assets::AssetFile| config.assets_dir.join(asset.path);
            vec![
                (EmbeddingPrecision::Fp32, file(ragd_core::assets::EMBEDDING_MODEL_FP32)),
                (
                    EmbeddingPrecision::Int8Fused,
                    file(ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED),
                ),
            ]
        } else {
            Vec::new()
        };
        return Ok(EmbeddingFiles {
            model: bundled.model_path,
            tokenizer: config.tokenizer_path(),
            other_precisions,
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
    Ok(EmbeddingFiles { model, tokenizer, other_precisions: Vec::new() })
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
    model: &Path,
    purpose: EmbedderUse,
) -> Result<EmbedderConfig, String> {
    let settings = &config.embedding;
    let mut embedder = EmbedderConfig::minilm(&config.assets_dir, &config.ort_dylib());
    embedder.model_path = model.to_path_buf();
    embedder.tokenizer_path.clone_from(&files.tokenizer);
    embedder.model_id.clone_from(&settings.model_id);
    embedder.dimensions = settings.dimensions;
    embedder.max_tokens = config.ingest.chunk_max_tokens + SPECIAL_TOKENS;
    embedder.max_batch_size = if files.of(EmbeddingPrecision::Int8Fused) == Some(model) {
        ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED_TEXTS_PER_RUN
    } else {
        settings.batch_size
    };
    embedder.intra_op_threads = settings.intra_op_threads;
    embedder.device = parse_device(&settings.device)?;
    embedder.priority = match purpose {
        EmbedderUse::Serving => Priority::Normal,
        EmbedderUse::Rebuild => Priority::Background,
    };
    Ok(embedder)
}

/// The ONNX Runtime embedder, loaded on a blocking thread (it reads and optimises the
/// model), and a description for status reports (model id, execution provider and, for
/// the bundled MiniLM, the precision and why).
pub(crate) async fn load_embedder(
    config: &EngineConfig,
    files: &EmbeddingFiles,
    purpose: EmbedderUse,
) -> Result<(Arc<dyn Embedder>, String), String> {
    if files.other_precisions.is_empty() {
        let embedder = load_one(config, files, &files.model, purpose).await?;
        let description = format!("{} ({})", embedder.model_id(), embedder.provider());
        return Ok((Arc::new(embedder), description));
    }
    let (embedder, why) = match config.embedding.precision {
        EmbeddingPrecision::Auto => auto(config, files, purpose).await?,
        configured @ (EmbeddingPrecision::Fp32
        | EmbeddingPrecision::Int8
        | EmbeddingPrecision::Int8Fused) => {
            // A configured file that is missing fails loudly (load_one names it).
            let model = files.of(configured).unwrap_or(&files.model);
            let why = format!("{}, configured", configured.as_str());
            (load_one(config, files, model, purpose).await?, why)
        }
    };
    tracing::info!(model = embedder.model_id(), precision = %why, "embedding precision");
    let description = format!("{} ({}, {why})", embedder.model_id(), embedder.provider());
    Ok((Arc::new(embedder), description))
}

/// Held while `auto` decides, so engines opening at once in one process (tests, a server
/// and its re-embed) neither probe against each other nor write the choice twice.
static DECIDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `embedding.precision = "auto"`: the data directory's kept choice, else the probe's
/// (kept for later starts). A directory that already holds vectors but no choice was
/// indexed before there was one, with the int8 file: it stays on int8. So do directories
/// whose first start had no other file or a failed probe, so that one index never mixes
/// vectors of two files.
async fn auto(
    config: &EngineConfig,
    files: &EmbeddingFiles,
    purpose: EmbedderUse,
) -> Result<(OrtEmbedder, String), String> {
    let _deciding = DECIDING.lock().await;
    if let Some((kept, summary)) = kept_choice(config) {
        // A kept file that is gone fails loudly (load_one names the missing file).
        let model = files.of(kept).unwrap_or(&files.model);
        return Ok((load_one(config, files, model, purpose).await?, format!("{summary}; kept")));
    }
    // The candidates there are, fp32 first: it wins a tie, being the exact weights.
    let mut candidates: Vec<(EmbeddingPrecision, &Path)> = files
        .other_precisions
        .iter()
        .filter(|(precision, path)| {
            path.is_file() && (*precision != EmbeddingPrecision::Int8Fused || int8_is_native())
        })
        .map(|(precision, path)| (*precision, path.as_path()))
        .collect();
    candidates.push((EmbeddingPrecision::Int8, &files.model));
    let int8_because = if indexed_before(config) {
        Some("int8: this data directory was indexed before the choice existed".to_owned())
    } else if candidates.len() == 1 {
        let missing: Vec<String> =
            files.other_precisions.iter().map(|(_, path)| path.display().to_string()).collect();
        Some(format!("int8: no other file ({})", missing.join(", ")))
    } else {
        None
    };
    let (embedder, chosen, summary) = match int8_because {
        Some(why) => {
            (load_one(config, files, &files.model, purpose).await?, EmbeddingPrecision::Int8, why)
        }
        None => match probed(config, files, &candidates, purpose).await {
            Ok(probe) => {
                let fastest = probe.timings.fastest();
                let embedder = match probe.kept {
                    Some(embedder) => embedder,
                    None => {
                        let model = files.of(fastest).unwrap_or(&files.model);
                        load_one(config, files, model, purpose).await?
                    }
                };
                (embedder, fastest, probe.timings.summary())
            }
            // A broken file must not cost the embedder: the int8 one still serves.
            Err(err) => {
                tracing::warn!(%err, "the embedding precision probe failed; using int8");
                let why = format!("int8: the probe failed: {err}");
                (
                    load_one(config, files, &files.model, purpose).await?,
                    EmbeddingPrecision::Int8,
                    why,
                )
            }
        },
    };
    keep_choice(config, chosen, &summary);
    Ok((embedder, summary))
}

/// Whether the data directory's own vector store (the default location) already holds
/// tables. An object-store URI cannot be told cheaply and counts as new.
fn indexed_before(config: &EngineConfig) -> bool {
    if config.vector_store.uri.is_some() {
        return false;
    }
    std::fs::read_dir(config.data_dir.join("lance")).is_ok_and(|entries| {
        entries
            .filter_map(std::result::Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().ends_with(".lance"))
    })
}

/// The choice an earlier start kept in the data directory, and its summary.
fn kept_choice(config: &EngineConfig) -> Option<(EmbeddingPrecision, String)> {
    let text = std::fs::read_to_string(config.data_dir.join(PRECISION_FILE)).ok()?;
    let mut lines = text.lines();
    let precision = EmbeddingPrecision::from_file_name(lines.next()?)?;
    Some((precision, lines.next().unwrap_or_default().to_owned()))
}

/// Keeps the choice for later starts, written beside and renamed so no reader sees half
/// of it; a data directory that cannot be written to only costs a decision at the next
/// start.
fn keep_choice(config: &EngineConfig, precision: EmbeddingPrecision, summary: &str) {
    let path = config.data_dir.join(PRECISION_FILE);
    let partial = config.data_dir.join(format!(".{PRECISION_FILE}.partial"));
    let written = std::fs::write(&partial, format!("{}\n{summary}\n", precision.as_str()))
        .and_then(|()| std::fs::rename(&partial, &path));
    if let Err(err) = written {
        tracing::warn!(path = %path.display(), %err, "cannot keep the embedding precision");
    }
}

/// Loads one model file.
async fn load_one(
    config: &EngineConfig,
    files: &EmbeddingFiles,
    model: &Path,
    purpose: EmbedderUse,
) -> Result<OrtEmbedder, String> {
    let embedder_config = embedder_config(config, files, model, purpose)?;
    let loaded = tokio::task::spawn_blocking(move || OrtEmbedder::load(&embedder_config))
        .await
        .map_err(|err| format!("loading the embedding model panicked: {err}"))?;
    match loaded {
        Ok(embedder) => {
            tracing::info!(
                model = embedder.model_id(),
                file = %model.display(),
                provider = embedder.provider(),
                "embedding model loaded"
            );
            Ok(embedder)
        }
        Err(err) => Err(format!("{err} ({ASSETS_HINT})")),
    }
}

/// Whether this CPU multiplies int8 natively, so `auto` may offer the `int8_fused` file.
/// On x86 that takes VNNI (AVX-512 VNNI or AVX-VNNI): without it ONNX Runtime's u8 × s8
/// products are no faster and can saturate (its quantisation guide), and the file was only
/// measured with it. Other architectures are offered the file; the probe decides there.
fn int8_is_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// The start-up probe's timings of the bundled MiniLM's files, in the candidates' order,
/// and the files that failed to load or run (left out of the choice).
#[derive(Debug, Clone, PartialEq, Default)]
struct Timings {
    timed: Vec<(EmbeddingPrecision, Duration)>,
    failed: Vec<EmbeddingPrecision>,
}

impl Timings {
    /// The fastest file; the first of equals.
    fn fastest(&self) -> EmbeddingPrecision {
        let mut best = (EmbeddingPrecision::Int8, Duration::MAX);
        for &(precision, took) in &self.timed {
            if took < best.1 {
                best = (precision, took);
            }
        }
        best.0
    }

    /// The choice and the timings, for the embedder's description.
    fn summary(&self) -> String {
        let mut timings: Vec<String> = self
            .timed
            .iter()
            .map(|(precision, took)| {
                format!("{} {:.0} ms", precision.as_str(), took.as_secs_f64() * 1000.0)
            })
            .collect();
        timings
            .extend(self.failed.iter().map(|precision| format!("{} failed", precision.as_str())));
        format!("{}, faster in the start-up probe: {}", self.fastest().as_str(), timings.join(", "))
    }
}

/// What [`probed`] gives: the timings, and the fastest embedder when it was loaded for them.
struct Probe {
    timings: Timings,
    kept: Option<OrtEmbedder>,
}

/// Probes already run in this process, by intra-op thread setting, device and candidates:
/// the machine does not change, so the next engine (tests open many) loads only the
/// fastest file.
static PROBES: Mutex<Vec<(ProbeKey, Timings)>> = Mutex::new(Vec::new());

/// What a probe's result depends on: the intra-op threads, the device and the candidates.
type ProbeKey = (Option<usize>, String, Vec<EmbeddingPrecision>);

/// Texts of the probe: six texts of about 100 words, like short chunks.
fn probe_texts() -> Vec<String> {
    const WORDS: [&str; 12] = [
        "retrieval",
        "augmented",
        "generation",
        "reads",
        "documents",
        "before",
        "answering",
        "questions",
        "about",
        "their",
        "contents",
        "carefully",
    ];
    (0..6)
        .map(|seed| {
            (0..100).map(|i| WORDS[(i * 5 + seed) % WORDS.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// The best of two timed runs of the probe texts, after one untimed run.
async fn time_embedder(embedder: &OrtEmbedder) -> Result<Duration, String> {
    let texts = probe_texts();
    let mut best = Duration::MAX;
    for round in 0..3 {
        let start = Instant::now();
        embedder
            .embed(texts.clone())
            .await
            .map_err(|err| format!("the embedding probe failed: {err}"))?;
        if round > 0 {
            best = best.min(start.elapsed());
        }
    }
    Ok(best)
}

/// Times each candidate file of the bundled MiniLM (or reuses this process's earlier
/// probe).
async fn probed(
    config: &EngineConfig,
    files: &EmbeddingFiles,
    candidates: &[(EmbeddingPrecision, &Path)],
    purpose: EmbedderUse,
) -> Result<Probe, String> {
    let key = (
        config.embedding.intra_op_threads,
        config.embedding.device.clone(),
        candidates.iter().map(|(precision, _)| *precision).collect::<Vec<_>>(),
    );
    let known = PROBES
        .lock()
        .map_err(|_| "the embedding probe's cache is poisoned".to_owned())?
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, timings)| timings.clone());
    if let Some(timings) = known {
        return Ok(Probe { timings, kept: None });
    }
    // One file timed at a time; the fastest so far stays loaded beside it. A file that
    // fails is left out, so a broken file does not cost the others.
    let mut timings = Timings::default();
    let mut kept: Option<(OrtEmbedder, Duration)> = None;
    for &(precision, path) in candidates {
        let embedder = match load_one(config, files, path, purpose).await {
            Ok(embedder) => embedder,
            Err(err) => {
                tracing::warn!(precision = precision.as_str(), %err, "probe: cannot load");
                timings.failed.push(precision);
                continue;
            }
        };
        let took = match time_embedder(&embedder).await {
            Ok(took) => took,
            Err(err) => {
                tracing::warn!(precision = precision.as_str(), %err, "probe: cannot embed");
                timings.failed.push(precision);
                continue;
            }
        };
        timings.timed.push((precision, took));
        if kept.as_ref().is_none_or(|(_, best)| took < *best) {
            kept = Some((embedder, took));
        }
    }
    if timings.timed.is_empty() {
        return Err("no file of the embedding model loaded and embedded".to_owned());
    }
    if let Ok(mut probes) = PROBES.lock() {
        probes.push((key, timings.clone()));
    }
    Ok(Probe { timings, kept: kept.map(|(embedder, _)| embedder) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(timed: &[(EmbeddingPrecision, u64)]) -> Timings {
        Timings {
            timed: timed.iter().map(|&(p, ms)| (p, Duration::from_millis(ms))).collect(),
            failed: Vec::new(),
        }
    }

    #[test]
    fn the_fastest_file_wins_and_the_first_of_equals() {
        use EmbeddingPrecision::{Fp32, Int8, Int8Fused};
        assert_eq!(timings(&[(Fp32, 50), (Int8Fused, 25), (Int8, 60)]).fastest(), Int8Fused);
        assert_eq!(timings(&[(Fp32, 40), (Int8Fused, 40), (Int8, 40)]).fastest(), Fp32);
        assert_eq!(timings(&[(Fp32, 70), (Int8Fused, 40), (Int8, 40)]).fastest(), Int8Fused);
        assert_eq!(timings(&[(Fp32, 70), (Int8, 30)]).fastest(), Int8);
        let mut with_failure = timings(&[(Fp32, 70), (Int8, 30)]);
        with_failure.failed.push(Int8Fused);
        assert_eq!(
            with_failure.summary(),
            "int8, faster in the start-up probe: fp32 70 ms, int8 30 ms, int8_fused failed"
        );
    }

    #[test]
    fn kept_choices_name_a_file() {
        for precision in
            [EmbeddingPrecision::Fp32, EmbeddingPrecision::Int8, EmbeddingPrecision::Int8Fused]
        {
            assert_eq!(EmbeddingPrecision::from_file_name(precision.as_str()), Some(precision));
        }
        assert_eq!(EmbeddingPrecision::from_file_name("auto"), None);
        assert_eq!(EmbeddingPrecision::from_file_name("fp16"), None);
    }
}
