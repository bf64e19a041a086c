//! `ragd-chat`: chat sessions with retrieval, memory, summaries and tagging.
//!
//! It owns the chat flow: sessions, retrieval of document context and long-term memory,
//! token-budgeted prompts rendered with the model's chat template, summaries of old
//! history, and automatic meta-tags.
//!
//! Architecture invariant: written against the `ragd-core` traits only, so it builds and
//! tests without ONNX Runtime, LanceDB or llama.cpp.

pub mod error;

pub use error::{Error, Result};
