//! Integration tests of `ragd-llm-backends`: the bundled SmolLM2 GGUF model through
//! llama.cpp, the OpenAI-compatible backend against a real `llama-server`, model discovery
//! on a fake Hugging Face cache, and hub downloads through the model manager from a
//! loopback hub.
//!
//! The model tests need the assets from `cargo xtask assets`; the server tests need
//! `llama-server` from `cargo xtask llama-tools` (`cargo xtask test` does both).

// Tests locate the assets through `RAGD_ASSETS_DIR`, like `cargo xtask assets`, and unwrap
// freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod hub;
mod import;
mod llama_server;
mod local;
mod manager;
mod registry;
mod rerank;
