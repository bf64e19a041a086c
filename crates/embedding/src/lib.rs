//! `ragd-embedding`: sentence embeddings on ONNX Runtime.
//!
//! It owns [`OrtEmbedder`], the [`ragd_core::Embedder`] implementation on ONNX Runtime
//! (loaded dynamically from the asset directory) and Hugging Face `tokenizers`:
//! token-budget batching, attention-masked mean pooling, L2 normalisation, and a dedicated
//! inference thread so the async runtime never blocks.
//!
//! - [`EmbedderConfig`] says where the model, tokenizer and runtime are and sets the
//!   limits; [`EmbedderConfig::minilm`] is the bundled default.
//! - [`OrtEmbedder::load`] loads everything and starts the `ragd-embedder` thread.
//! - [`OrtEmbedder::provider`] says whether CPU or CUDA runs inference (CUDA needs the
//!   `cuda` feature and falls back to the CPU with a warning).
//!
//! API boundary: the `ragd_core::Embedder` trait; no ort type leaves this crate.

mod backend;
mod batch;
mod config;
mod embedder;
pub mod error;

pub use config::{Device, EmbedderConfig, Priority};
pub use embedder::{EmbedderStats, OrtEmbedder};
pub use error::{Error, Result};
