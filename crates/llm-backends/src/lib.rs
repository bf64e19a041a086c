//! `ragd-llm-backends`: LLM backends and the model registry.
//!
//! It owns the `LlmBackend` implementations (in-process GGUF through llama.cpp, the
//! OpenAI-compatible HTTP API, Ollama), streaming, error classification, and the model
//! registry (local model folders, the Hugging Face cache, hub downloads).
//!
//! API boundary: the `ragd_core::LlmBackend` trait.

pub mod error;

pub use error::{Error, Result};
