//! `ragd-llm-backends`: LLM backends and the model registry.
//!
//! It owns the `LlmBackend` implementations, streaming, error classification, and the
//! model registry:
//!
//! - [`LocalLlm`]: GGUF models in-process through llama.cpp (`llama-cpp-2`), with a
//!   dedicated `ragd-llm` generation thread fed by a bounded queue that decodes up to
//!   [`DEFAULT_PARALLEL`] requests at once by continuous batching; [`LocalLlmConfig`]
//!   says which model, how big a context and how many at once.
//! - [`LlamaReranker`]: a GGUF model scoring passages for the rerank stage of search
//!   (`ragd_core::Reranker`): query likelihood, or a yes/no judgement for reranker models.
//! - [`remote::openai::OpenAiBackend`] and [`remote::ollama::OllamaBackend`]: models served
//!   over HTTP by an OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, TGI) or
//!   Ollama, with timeouts, connect retries and classified errors.
//! - [`manager::ModelManager`]: which model is loaded, its load status (downloading from
//!   the Hugging Face hub with `ragd-hub`, loading in the background), and the generation
//!   settings in force.
//! - [`ModelRegistry`]: models found on disk (a local models folder, the Hugging Face hub
//!   cache, bundled files) without network access; [`hf_cache_dir`] resolves the cache.
//!
//! API boundary: the `ragd_core::LlmBackend` trait; llama.cpp types appear in the public
//! API only as error sources.

pub mod error;
pub mod import;
#[cfg(feature = "llama")]
mod local;
pub mod manager;
pub mod registry;
pub mod remote;
#[cfg(feature = "llama")]
mod rerank;
#[cfg(feature = "llama")]
mod text;
#[cfg(feature = "llama")]
mod worker;

pub use error::{Error, Result};
#[cfg(feature = "llama")]
pub use local::{DEFAULT_MAX_CONTEXT, DEFAULT_QUEUE_CAPACITY, LocalLlm, LocalLlmConfig};
pub use registry::{
    ModelEntry, ModelFormat, ModelRegistry, ModelSource, RegistryConfig, hf_cache_dir,
    hf_cache_dirs, hf_repo_id,
};
#[cfg(feature = "llama")]
pub use rerank::{LlamaReranker, LlamaRerankerConfig, RerankMethod};

/// How many requests a local model generates for at once by default (`llama-server`'s
/// default too).
pub const DEFAULT_PARALLEL: usize = 4;

/// The most requests one local model may generate for at once: each holds a sequence of
/// the context, and the KV cache grows with the count.
pub const MAX_PARALLEL: usize = 64;
