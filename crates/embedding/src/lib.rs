//! `ragd-embedding`: sentence embeddings on ONNX Runtime.
//!
//! It owns `OrtEmbedder`, the `Embedder` implementation on ONNX Runtime (loaded dynamically)
//! and Hugging Face `tokenizers`: token-budget batching, attention-masked mean pooling, L2
//! normalisation, and a dedicated inference thread so the async runtime never blocks.
//!
//! API boundary: the `ragd_core::Embedder` trait; no ort type leaves this crate.

pub mod error;

pub use error::{Error, Result};
