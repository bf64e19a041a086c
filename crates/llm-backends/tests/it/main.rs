//! Integration tests of `ragd-llm-backends`: the bundled SmolLM2 GGUF model through
//! llama.cpp, and model discovery on a fake Hugging Face cache.
//!
//! The model tests need the assets from `cargo xtask assets`.

// Tests locate the assets through `RAGD_ASSETS_DIR`, like `cargo xtask assets`, and unwrap
// freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod local;
mod registry;
