//! `ragd-chat`: chat sessions with retrieval, memory, summaries and tagging.
//!
//! [`ChatService`] owns the chat flow: sessions (stored by `ragd-catalog`), retrieval of
//! document context (hybrid search through `ragd-search`) and long-term memory (earlier
//! exchanges embedded into the vector store's `memory` table), prompts fitted to the
//! model's window ([`prompt`]) and counted with its chat template ([`template`]),
//! summaries of history that no longer fits, and automatic meta-tags ([`tagging`]).
//!
//! Architecture invariant: written against the `ragd-core` traits only ([`ragd_core::Embedder`],
//! [`ragd_core::VectorStore`], [`ragd_core::LlmBackend`] through [`ModelProvider`]), so it
//! builds and tests without ONNX Runtime, LanceDB or llama.cpp, and nothing here assumes
//! the model is in-process.

pub mod error;
pub mod metadata;
pub mod prompt;
mod service;
pub mod tagging;
pub mod template;

pub use error::{Error, Result};
pub use metadata::ReplyMetadata;
pub use prompt::{ContextChunk, Recollection};
pub use service::{
    ChatConfig, ChatEvent, ChatParts, ChatService, ChatTurn, Citation, CreateSession, FixedModel,
    MemoryHit, ModelProvider, Reply, SendMessage,
};
pub use tagging::TaggingMode;
