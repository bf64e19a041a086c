//! The engine's configuration: [`EngineConfig`] and its sections.
//!
//! Every section deserialises from a table whose keys are all optional (missing keys keep
//! the defaults written here, once) and refuses unknown keys, so a program can nest the
//! sections in its own configuration file; the `ragd` binary nests them at the top level of
//! `ragd.toml` (`[ingest]`, `[embedding]`, `[vector_store]`, `[models]`, `[chat]`, `[hub]`,
//! `[telemetry]`).

use ragd_llm_backends::manager::BackendKind;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use ragd_chat::ChatConfig;

use crate::error::{Error, Result};

/// The hidden verb of the `ragd` executable that runs one isolated extraction; a program
/// that sets [`IngestSettings::extract_worker`] to itself must handle it with
/// [`ragd_ingest::run_worker`].
pub const EXTRACT_WORKER_VERB: &str = "extract-worker";

/// Everything [`crate::Engine::open`] needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Where the engine keeps its state: `ragd.sqlite3`, `lance/`, `uploads/`.
    pub data_dir: PathBuf,
    /// Where `cargo xtask assets` put the bundled models and runtime.
    pub assets_dir: PathBuf,
    /// The ONNX Runtime library; defaults to the one in `assets_dir`.
    pub ort_dylib_path: Option<PathBuf>,
    /// System status sampling.
    pub telemetry: TelemetryConfig,
    /// Document ingestion.
    pub ingest: IngestSettings,
    /// The embedding model.
    pub embedding: EmbeddingSettings,
    /// The catalog database.
    pub catalog: CatalogSettings,
    /// The vector store.
    pub vector_store: VectorStoreSettings,
    /// Chat models.
    pub models: ModelsSettings,
    /// Chat sessions: retrieval, memory, prompt budget, tagging.
    pub chat: ChatConfig,
    /// Downloads from the Hugging Face hub (chat models and the embedding model).
    pub hub: HubSettings,
    /// The rerank stage of hybrid search.
    pub rerank: RerankSettings,
    /// The Hugging Face token for hub downloads. Never serialised.
    #[serde(skip)]
    pub hf_token: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self::new("data", ".cache/ragd/assets")
    }
}

impl EngineConfig {
    /// Defaults over `data_dir`, with the bundled models and runtime in `assets_dir`.
    #[must_use]
    pub fn new(data_dir: impl Into<PathBuf>, assets_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            assets_dir: assets_dir.into(),
            ort_dylib_path: None,
            telemetry: TelemetryConfig::default(),
            ingest: IngestSettings::default(),
            embedding: EmbeddingSettings::default(),
            catalog: CatalogSettings::default(),
            vector_store: VectorStoreSettings::default(),
            models: ModelsSettings::default(),
            chat: ChatConfig::default(),
            hub: HubSettings::default(),
            rerank: RerankSettings::default(),
            hf_token: None,
        }
    }

    /// The embedding model's `tokenizer.json`: `embedding.tokenizer_path`, else the bundled one.
    #[must_use]
    pub fn tokenizer_path(&self) -> PathBuf {
        self.embedding
            .tokenizer_path
            .clone()
            .unwrap_or_else(|| self.assets_dir.join(ragd_core::assets::EMBEDDING_TOKENIZER.path))
    }

    /// Where the vector tables live: `vector_store.uri`, else `<data_dir>/lance`.
    #[must_use]
    pub fn vector_store_uri(&self) -> String {
        self.vector_store
            .uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lance").to_string_lossy().into_owned())
    }

    /// The ONNX Runtime library: `ort_dylib_path`, else the one in `assets_dir`.
    #[must_use]
    pub fn ort_dylib(&self) -> PathBuf {
        self.ort_dylib_path
            .clone()
            .unwrap_or_else(|| self.assets_dir.join(ragd_core::assets::ONNX_RUNTIME.path))
    }

    /// The PDFium library: `ingest.pdfium_library`, else the asset directory's when it is
    /// there; `None` leaves PDFs to `pdf-extract`.
    #[must_use]
    pub fn pdfium_library(&self) -> Option<PathBuf> {
        self.ingest.pdfium_library.clone().or_else(|| {
            let bundled = self.assets_dir.join(ragd_core::assets::PDFIUM.path);
            bundled.is_file().then_some(bundled)
        })
    }

    /// The bundled chat model's file.
    #[must_use]
    pub fn bundled_chat_model(&self) -> PathBuf {
        self.assets_dir.join(ragd_core::assets::CHAT_MODEL.path)
    }

    /// The local models folder: `models.dir`, else `<data_dir>/models`.
    #[must_use]
    pub fn models_dir(&self) -> PathBuf {
        self.models.dir.clone().unwrap_or_else(|| self.data_dir.join("models"))
    }

    /// Checks the values that only make sense together.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        let ingest = &self.ingest;
        if ingest.chunk_overlap_tokens >= ingest.chunk_max_tokens {
            return Err(Error::InvalidConfig(format!(
                "ingest.chunk_overlap_tokens ({}) must be smaller than ingest.chunk_max_tokens ({})",
                ingest.chunk_overlap_tokens, ingest.chunk_max_tokens
            )));
        }
        let ocr =
            ragd_ingest::OcrSettings { mode: ingest.ocr, languages: ingest.ocr_languages.clone() };
        if ocr.validate().is_err() {
            return Err(Error::InvalidConfig(format!(
                "ingest.ocr_languages ({:?}) must be Tesseract language names joined by '+' (eng+deu)",
                ingest.ocr_languages
            )));
        }
        let parallel = self.models.parallel;
        if !(1..=ragd_llm_backends::MAX_PARALLEL).contains(&parallel) {
            return Err(Error::InvalidConfig(format!(
                "models.parallel ({parallel}) must be between 1 and {}",
                ragd_llm_backends::MAX_PARALLEL
            )));
        }
        if let Err(err) = BackendKind::parse(&self.models.default_backend) {
            return Err(Error::InvalidConfig(format!("models.default_backend: {}", err.message())));
        }
        self.models.generation_defaults()?;
        if self.ingest.lease_secs == 0 || self.ingest.claim_poll_ms == 0 {
            return Err(Error::InvalidConfig(
                "ingest.lease_secs and ingest.claim_poll_ms must be at least 1".to_owned(),
            ));
        }
        if self.embedding.dimensions == 0 {
            return Err(Error::InvalidConfig("embedding.dimensions must be at least 1".to_owned()));
        }
        let candidates = self.rerank.candidates;
        if ragd_search::check_rerank_candidates(candidates).is_err() {
            return Err(Error::InvalidConfig(format!(
                "rerank.candidates ({candidates}) must be between 1 and {}",
                ragd_search::MAX_RERANK_CANDIDATES
            )));
        }
        Ok(())
    }
}

/// Document ingestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Documents processed at the same time.
    pub workers: usize,
    /// The largest upload accepted, in bytes (larger ones get 413).
    pub max_upload_bytes: u64,
    /// The most tokens per chunk (the embedder's tokenizer counts).
    pub chunk_max_tokens: usize,
    /// Tokens repeated between neighbouring chunks.
    pub chunk_overlap_tokens: usize,
    /// Chunks per embedding call.
    pub embed_batch_size: usize,
    /// The most bytes one document may expand to: inflated DOCX parts (zip bombs fail) and
    /// extracted text of any format.
    pub max_extracted_bytes: u64,
    /// How long extracting one document may take before it fails.
    pub extract_timeout_secs: u64,
    /// The most files one upload request may carry (more get 413).
    pub max_files_per_upload: usize,
    /// Documents with more chunks than this fail.
    pub max_chunks_per_document: usize,
    /// Where text extraction runs: `process` (a worker process per document, killed at
    /// the deadline and limited to `extract_memory_bytes`) or `thread`.
    pub extract_isolation: ExtractIsolation,
    /// The most memory an extraction worker process may allocate.
    pub extract_memory_bytes: u64,
    /// The program run as the extraction worker (`<program> extract-worker`); default: the
    /// running executable.
    pub extract_worker: Option<PathBuf>,
    /// Whether images (PNG, JPEG, TIFF, WebP) and scanned PDF pages are read by OCR:
    /// `auto` reads images and PDF pages with (almost) no text with Tesseract, `always`
    /// every PDF page too, `never` fails images and leaves scanned pages empty.
    pub ocr: ragd_ingest::OcrMode,
    /// Tesseract's languages, joined by `+` (`eng+deu`); each needs its language pack.
    pub ocr_languages: String,
    /// The PDFium library PDFs are read with; default: the one in the asset directory, and
    /// `pdf-extract` (which reads fewer files, and no scans) when that is missing.
    pub pdfium_library: Option<PathBuf>,
    /// An object-store prefix (`s3://bucket/uploads`) every uploaded file is copied to, so
    /// that replicas sharing a Postgres catalog can process documents any of them received;
    /// reached like `vector_store.uri` (`AWS_*` variables, `vector_store.storage_options`).
    /// Default none: uploads stay in `<data_dir>/uploads` only.
    pub uploads_uri: Option<String>,
    /// Seconds a replica's claim on a document lasts unless renewed (it renews every third
    /// of it while working); after a replica dies, others take its documents over once this
    /// ran out.
    pub lease_secs: u64,
    /// Milliseconds between an idle replica's looks for work in a shared (Postgres) queue.
    pub claim_poll_ms: u64,
}

/// Where text extraction runs.
///
/// The library default is [`ExtractIsolation::Thread`]: worker processes need a program
/// that answers the worker protocol ([`ragd_ingest::run_worker`]), which the `ragd` binary
/// is (its default is `Process`) and a program embedding the engine may not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractIsolation {
    /// A worker process per document: a crash fails only that document, a time-out kills
    /// it, and its memory is limited.
    Process,
    /// A thread of this process: cheaper to start, but a timed-out parser can only be
    /// abandoned, not stopped.
    #[default]
    Thread,
}

/// Which file of the bundled all-MiniLM-L6-v2 the embedder runs: all give the same model
/// (cosine about 0.99 between their vectors, ≥ 0.997 between `fp32` and `int8`), at
/// different speeds on different CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingPrecision {
    /// Time each file there is on the first start of a data directory (a probe of about a
    /// second) and keep the fastest there (`<data_dir>/embedding-precision`) for every later
    /// start, so an index never mixes two; int8 when the other files are missing or the
    /// directory was indexed before. Changing the setting on an existing index does not
    /// re-embed it.
    #[default]
    Auto,
    /// The fp32 file `cargo xtask assets` builds (the exact weights).
    Fp32,
    /// The int8 file of the model package (a quarter of the size on disk; its weights are
    /// int8, its arithmetic fp32).
    Int8,
    /// The file `cargo xtask assets` quantises from the fp32 one for int8 arithmetic
    /// (ONNX Runtime's fused attention and dense layers on int8 weights, per channel):
    /// about twice fp32's speed where the CPU has VNNI; cosine about 0.99 to fp32. It
    /// embeds one text per run (`batch_size` does not apply): its activations are quantised
    /// per run, so in a batch a text's vector would depend on its neighbours.
    Int8Fused,
}

impl EmbeddingPrecision {
    /// The name used in configuration and status reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
            Self::Int8Fused => "int8_fused",
        }
    }

    /// The file precision named `name` ([`Self::as_str`]); `None` for `auto` or an unknown
    /// name.
    #[must_use]
    pub fn from_file_name(name: &str) -> Option<Self> {
        [Self::Fp32, Self::Int8, Self::Int8Fused].into_iter().find(|p| p.as_str() == name)
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            max_upload_bytes: 100 * 1024 * 1024,
            chunk_max_tokens: 256,
            chunk_overlap_tokens: 32,
            embed_batch_size: 32,
            max_extracted_bytes: 128 * 1024 * 1024,
            extract_timeout_secs: 120,
            max_files_per_upload: 100,
            max_chunks_per_document: 50_000,
            extract_isolation: ExtractIsolation::Thread,
            extract_memory_bytes: 2 * 1024 * 1024 * 1024,
            extract_worker: None,
            ocr: ragd_ingest::OcrMode::Auto,
            ocr_languages: "eng".to_owned(),
            pdfium_library: None,
            uploads_uri: None,
            lease_secs: 60,
            claim_poll_ms: 1000,
        }
    }
}

/// The embedding model. By default the bundled all-MiniLM-L6-v2 from the asset directory;
/// any sentence-transformers-style ONNX export works by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingSettings {
    /// The ONNX model; default: the bundled MiniLM in `assets_dir`.
    pub model_path: Option<PathBuf>,
    /// Its `tokenizer.json` (also used to size chunks); default: the bundled one.
    pub tokenizer_path: Option<PathBuf>,
    /// The model's id, stored with the vector tables: when it differs from the id the index
    /// was built with, the index is re-embedded in the background (queries use the old one
    /// until the swap). A bundled model's id (`sentence-transformers/all-MiniLM-L6-v2`, the
    /// default, or `sentence-transformers/paraphrase-MiniLM-L3-v2`) uses the assets; any
    /// other is a Hugging Face repo id, where the model comes from when `model_path` is
    /// unset.
    pub model_id: String,
    /// Vector length of the model.
    pub dimensions: usize,
    /// Texts per inference batch.
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads (default: as many as it likes).
    pub intra_op_threads: Option<usize>,
    /// Which file of the bundled all-MiniLM-L6-v2 runs (other models have one file).
    pub precision: EmbeddingPrecision,
    /// `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda` build feature; falls back to CPU).
    pub device: String,
    /// Without `model_path`, a `model_id` other than a bundled model's is a Hugging Face
    /// repo: this file of it is the ONNX model (with the repo's `tokenizer.json`), taken
    /// from the hub cache or downloaded into it.
    pub onnx_file: String,
    /// The repo's branch, tag or commit for those downloads.
    pub revision: String,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self {
            model_path: None,
            tokenizer_path: None,
            model_id: "sentence-transformers/all-MiniLM-L6-v2".to_owned(),
            dimensions: 384,
            batch_size: 32,
            intra_op_threads: None,
            precision: EmbeddingPrecision::Auto,
            device: "cpu".to_owned(),
            onnx_file: "onnx/model.onnx".to_owned(),
            revision: "main".to_owned(),
        }
    }
}

/// Chat models: where they are found and which one loads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsSettings {
    /// Local models folder (GGUF files, Hugging Face style folders); default
    /// `<data_dir>/models`.
    pub dir: Option<PathBuf>,
    /// The Hugging Face hub cache; default from `HF_HUB_CACHE`, `HF_HOME` or
    /// `~/.cache/huggingface/hub`, like `huggingface-cli`.
    pub hf_cache_dir: Option<PathBuf>,
    /// Other Hugging Face caches whose models `/api/v1/models/available` lists and loads
    /// read (downloads go to `hf_cache_dir`); default: whichever of `HF_HUB_CACHE`,
    /// `$HF_HOME/hub` and `~/.cache/huggingface/hub` is not `hf_cache_dir`.
    pub other_hf_cache_dirs: Vec<PathBuf>,
    /// Loaded at start: `bundled` (the bundled SmolLM2, when present), a model id from
    /// `/api/v1/models/available`, a GGUF path, or `none`.
    pub autoload: String,
    /// Context window for the autoloaded model (default: the model's, capped at 4096).
    pub context_length: Option<u32>,
    /// How many requests a local model generates for at once, by continuous batching; each
    /// holds `context_length` tokens of KV cache, so memory grows with it. More requests
    /// wait in the queue.
    pub parallel: usize,
    /// More folders local models may be loaded from by path (besides `dir`, the Hugging
    /// Face cache and the assets dir); a path outside all of them is refused.
    pub allowed_dirs: Vec<PathBuf>,
    /// Default base URL of `openai` loads.
    pub openai_url: String,
    /// Default base URL of `ollama` loads.
    pub ollama_url: String,
    /// The backend of `POST /api/v1/models/load` bodies that name none: `local`, `openai`,
    /// `ollama`, or a preset of an OpenAI-compatible server (`vllm`, `llamacpp`,
    /// `lmstudio`, `instructlab`).
    pub default_backend: String,
    /// The model of remote loads that name none; without it an OpenAI-compatible load takes
    /// the server's first model (`/v1/models`).
    pub default_model: Option<String>,
    /// The base URL of remote loads that give none (before the presets' own defaults and
    /// `openai_url` / `ollama_url`).
    pub base_url: Option<String>,
    /// The API key of OpenAI-compatible loads that give none; from `RAGD_MODELS__API_KEY`
    /// or `OPENAI_API_KEY` rather than a file. Never printed.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Generation settings in force at start, before any load or `PUT /models/config`
    /// changes them (each within the ranges of `PUT /api/v1/models/config`).
    pub temperature: Option<f32>,
    /// See `temperature`.
    pub top_p: Option<f32>,
    /// See `temperature`.
    pub top_k: Option<u32>,
    /// See `temperature`.
    pub repetition_penalty: Option<f32>,
    /// See `temperature`.
    pub max_new_tokens: Option<u32>,
}

impl ModelsSettings {
    /// The generation settings at start: the defaults with the configured ones applied.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming a setting out of range.
    pub fn generation_defaults(&self) -> Result<ragd_core::GenerationSettings> {
        let patch = ragd_core::SettingsPatch {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            repetition_penalty: self.repetition_penalty,
            max_new_tokens: self.max_new_tokens,
            ..ragd_core::SettingsPatch::default()
        };
        ragd_core::GenerationSettings::default()
            .apply(&patch)
            .map_err(|err| Error::InvalidConfig(format!("models: {}", err.message())))
    }
}

impl Default for ModelsSettings {
    fn default() -> Self {
        Self {
            dir: None,
            hf_cache_dir: None,
            other_hf_cache_dirs: Vec::new(),
            autoload: "bundled".to_owned(),
            context_length: None,
            parallel: ragd_llm_backends::DEFAULT_PARALLEL,
            allowed_dirs: Vec::new(),
            openai_url: "http://127.0.0.1:8000/v1".to_owned(),
            ollama_url: "http://127.0.0.1:11434".to_owned(),
            default_backend: "local".to_owned(),
            default_model: None,
            base_url: None,
            api_key: None,
            temperature: None,
            top_p: None,
            top_k: None,
            repetition_penalty: None,
            max_new_tokens: None,
        }
    }
}

/// How a reranking language model scores a passage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankMethodSetting {
    /// The mean log-probability of the query after the passage (UPR).
    QueryLikelihood,
    /// The log-odds of "yes" over "no" when asked whether the passage answers the query.
    Judge,
}

/// The rerank stage: the best fused candidates of a hybrid search scored again by a model
/// that reads query and passage together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RerankSettings {
    /// The reranking model: `none` (default: no stage), `bundled` (the bundled SmolLM2), the
    /// path of a GGUF model, or a hub file `org/name/file.gguf` (from the cache, downloaded
    /// into it when missing).
    pub model: String,
    /// How the model scores a passage: `query_likelihood` (default; any language model) or
    /// `judge` (a yes/no relevance judgement, for reranker models such as Qwen3-Reranker).
    pub method: RerankMethodSetting,
    /// Whether hybrid searches and chat retrieval rerank when the request does not say.
    pub by_default: bool,
    /// How many fused candidates are reranked (at least `top_k` are).
    pub candidates: usize,
    /// The model's context in tokens; query and passage must fit (passages are cut to
    /// about 4000 characters).
    pub context_length: u32,
    /// Threads for scoring; default half the cores.
    pub threads: Option<i32>,
}

impl Default for RerankSettings {
    fn default() -> Self {
        Self {
            model: "none".to_owned(),
            method: RerankMethodSetting::QueryLikelihood,
            by_default: false,
            candidates: 20,
            context_length: 2048,
            threads: None,
        }
    }
}

/// The Hugging Face hub: where models not yet in the cache are downloaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    /// The hub's base URL (a mirror works too); `HF_ENDPOINT` is honoured.
    pub endpoint: String,
    /// Never download: hub models must already be in the cache (`HF_HUB_OFFLINE=1` too).
    pub offline: bool,
    /// Seconds to establish a connection.
    pub connect_timeout_secs: u64,
    /// Seconds a download may go without receiving data.
    pub read_timeout_secs: u64,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            endpoint: ragd_hub::DEFAULT_ENDPOINT.to_owned(),
            offline: false,
            connect_timeout_secs: 10,
            read_timeout_secs: 60,
        }
    }
}

/// The catalog database: documents, chunks and their text, sessions, messages, collections.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogSettings {
    /// A Postgres database (`postgres://user:password@host:port/dbname`) that several
    /// replicas may share; default none: a SQLite file, `<data_dir>/ragd.sqlite3`. The
    /// password is never printed (`<redacted>` in logs, `ragd config` and debug output).
    #[serde(serialize_with = "serialize_catalog_url")]
    pub url: Option<String>,
}

impl fmt::Debug for CatalogSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .finish()
    }
}

/// A database URL with its password replaced by `<redacted>`: the `user:password@` of a
/// URL, or a `password=...` of libpq's `key=value` form.
#[must_use]
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if let Some((userinfo, host)) = authority.rsplit_once('@')
            && let Some((user, _password)) = userinfo.split_once(':')
        {
            return format!("{scheme}://{user}:<redacted>@{host}{tail}");
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=<redacted>"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn serialize_catalog_url<S: serde::Serializer>(
    url: &Option<String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_some(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

/// The vector store (embedded LanceDB).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VectorStoreSettings {
    /// Where the tables live: a path or an object-store URI (`s3://bucket/prefix`; `gs://`
    /// and `az://` in builds with those features); default `<data_dir>/lance`.
    pub uri: Option<String>,
    /// LanceDB storage options for an object store (`aws_endpoint`, `aws_region`,
    /// `aws_allow_http`, ...). Credentials are better left to the usual environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), which LanceDB reads itself;
    /// values of keys that look secret are never printed.
    #[serde(serialize_with = "serialize_storage_options")]
    pub storage_options: BTreeMap<String, String>,
    /// Milliseconds a table's view may age before a read looks for versions other
    /// processes committed; default 0 (every read) for an object store, which several
    /// replicas may share, and never for a local directory.
    pub read_consistency_ms: Option<u64>,
    /// Build an ANN index once a table has this many rows (below it, search is exact).
    pub index_threshold_rows: usize,
    /// HNSW candidates an indexed search keeps (recall against latency; at least 1.5 ×
    /// the hits asked for).
    pub search_ef: usize,
}

impl Default for VectorStoreSettings {
    fn default() -> Self {
        // The vector store's own defaults; literal here so the engine builds without it.
        Self {
            uri: None,
            storage_options: BTreeMap::new(),
            read_consistency_ms: None,
            index_threshold_rows: 10_000,
            search_ef: 64,
        }
    }
}

impl fmt::Debug for VectorStoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorStoreSettings")
            .field("uri", &self.uri)
            .field("storage_options", &RedactedOptions(&self.storage_options))
            .field("read_consistency_ms", &self.read_consistency_ms)
            .field("index_threshold_rows", &self.index_threshold_rows)
            .field("search_ef", &self.search_ef)
            .finish()
    }
}

/// Whether a storage option's value is a secret, never to be printed: keys, tokens,
/// passwords and SAS signatures (`aws_secret_access_key`, `aws_session_token`,
/// `azure_storage_account_key`, `google_service_account_key`, ...).
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "token", "password", "account_key", "service_account", "sas", "credential"]
        .iter()
        .any(|word| key.contains(word))
}

/// Storage options with their secret values replaced by `"<redacted>"`.
struct RedactedOptions<'o>(&'o BTreeMap<String, String>);

impl RedactedOptions<'_> {
    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| {
            let shown = if is_secret_option(key) { "<redacted>" } else { value.as_str() };
            (key.as_str(), shown)
        })
    }
}

impl fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

fn serialize_storage_options<S: serde::Serializer>(
    options: &BTreeMap<String, String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_map(RedactedOptions(options).entries())
}

/// System status sampling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Seconds between system samples (CPU usage is averaged over this window).
    pub sample_interval_secs: u64,
    /// `libnvidia-ml.so` to load instead of the system's default.
    pub nvml_library: Option<PathBuf>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { sample_interval_secs: 5, nvml_library: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_lose_their_password_and_keep_the_rest() {
        assert_eq!(
            redact_url("postgres://ragd:hunter2@db:5432/ragd?sslmode=disable"),
            "postgres://ragd:<redacted>@db:5432/ragd?sslmode=disable"
        );
        // A password holding '@' or ':' is cut at the last '@' of the authority.
        assert_eq!(redact_url("postgres://u:p@ss:w@db/x"), "postgres://u:<redacted>@db/x");
        assert_eq!(redact_url("postgres://ragd@db/ragd"), "postgres://ragd@db/ragd");
        assert_eq!(
            redact_url("host=db user=ragd password=hunter2 dbname=ragd"),
            "host=db user=ragd password=<redacted> dbname=ragd"
        );
        let settings = CatalogSettings { url: Some("postgres://a:hunter2@db/x".to_owned()) };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
