//! `ragd-chat`: chat sessions with retrieval, memory, summaries and tagging.
//!
//! [`ChatService`] owns the chat flow: sessions (stored by `ragd-catalog`), retrieval of
//! document context (hybrid search through `ragd-search`) and long-term memory (earlier
//! exchanges embedded into the vector store's `memory` table), prompts fitted to the
//! model's window ([`prompt`]) and counted with its chat template ([`template`]),
//! summaries of history that no longer fits, and automatic meta-tags ([`tagging`]).
//!
//! [`ChatService`] is one type implemented across private modules by responsibility:
//! `service` (the handle, per-session locks, the bounded generation queue), `sessions`
//! (session CRUD), `turn` ([`ChatService::send`]; its module docs list the steps of sending a
//! message), `completion` ([`ChatService::complete`]: a stateless completion over the
//! caller's conversation, with or without retrieval, for the OpenAI, Ollama and MCP
//! protocols), `retrieval` (documents and long-term memory), `upkeep` (summaries and tags) and
//! `generation` (the background task that streams and stores a reply). Its configuration and
//! parts are in `config`, the request and response types in `types`.
//!
//! Architecture invariant: written against the `ragd-core` traits only ([`ragd_core::Embedder`],
//! [`ragd_core::VectorStore`], [`ragd_core::LlmBackend`] through [`ModelProvider`]), so it
//! builds and tests without ONNX Runtime, LanceDB or llama.cpp, and nothing here assumes
//! the model is in-process.

mod completion;
mod condense;
mod config;
pub mod error;
mod generation;
pub mod metadata;
pub mod prompt;
mod retrieval;
mod service;
mod sessions;
pub mod tagging;
pub mod template;
mod turn;
mod types;
mod upkeep;
mod whole;

pub use completion::{
    CompleteRequest, CompletionEvent, CompletionReply, CompletionStream, Retrieval,
};
pub use config::{ChatConfig, ChatParts, FixedModel, ModelProvider};
pub use error::{Error, Result};
pub use metadata::ReplyMetadata;
pub use prompt::{ContextChunk, Recollection};
pub use retrieval::{exchanges, memory_text};
pub use service::ChatService;
pub use tagging::TaggingMode;
pub use types::{
    ChatEvent, ChatTurn, Citation, ContextMode, CreateSession, MemoryHit, Reply, SendMessage,
};
