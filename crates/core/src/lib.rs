//! `ragd-core` is the API boundary of ragd.
//!
//! It owns what every other crate agrees on and nothing that is expensive to build:
//!
//! - [`ids`]: UUID newtypes for documents, chunks, sessions and messages, so prompts and
//!   clients address content by id instead of carrying text.
//! - [`types`]: the domain types (documents, chunks, sessions, messages, search hits).
//! - [`embed`], [`store`], [`llm`], [`rerank`]: the boundary traits [`Embedder`],
//!   [`VectorStore`], [`LlmBackend`] and [`Reranker`]. Concrete implementations live in their own crates and are wired
//!   together only in the `ragd` binary, so logic written against these traits builds and
//!   tests without ONNX Runtime, LanceDB or llama.cpp.
//! - [`vectors`]: [`Vectors`], which hands out an embedder and the store built with it as
//!   one pair, so a query never meets vectors of another model.
//! - [`assets`]: where the bundled models and runtime sit inside the asset directory.
//! - [`extraction_check`]: how much of a reference engine's text an extraction holds (the
//!   corpus test and the extraction benchmark share it).
//! - [`error`]: [`ErrorKind`], the shared classification every crate maps its errors onto,
//!   and [`Error`], the error type of the traits.
//!
//! Architecture invariant: this crate depends on no runtime-heavy crate (no ort, arrow,
//! lancedb, axum, reqwest). A tidy test in `xtask` checks that.
//!
//! ```
//! use ragd_core::{DocumentId, ErrorKind, Error};
//!
//! let id = DocumentId::new();
//! let parsed: DocumentId = id.to_string().parse().unwrap();
//! assert_eq!(id, parsed);
//!
//! let err = Error::not_found(format!("document {id}"));
//! assert_eq!(err.kind(), ErrorKind::NotFound);
//! ```

pub mod assets;
pub mod embed;
pub mod error;
pub mod extraction_check;
pub mod ids;
pub mod llm;
pub mod metadata;
pub mod metric_names;
pub mod rerank;
pub mod store;
pub mod time;
pub mod types;
pub mod vectors;

pub use embed::{Embedder, Embedding};
pub use error::{Error, ErrorKind, Result};
pub use ids::{ChunkId, CollectionId, DocumentId, IdParseError, MessageId, SessionId};
pub use llm::{
    ChatMessage, ChatRole, Completion, CompletionDelta, CompletionRequest, FinishReason,
    GenerationSettings, LlmBackend, SettingsPatch, TokenUsage,
};
pub use metadata::{
    Condition, MAX_FILTER_KEYS, MAX_FILTER_VALUES, MAX_METADATA_KEY_CHARS, MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS, Metadata, MetadataFilter, MetadataValue, check_key,
    metadata_from_json,
};
pub use rerank::Reranker;
pub use store::{
    DeleteRequest, EmbeddedRecord, ScoredRecord, SearchRequest, TableName, UpsertReport,
    VectorFilter, VectorStore,
};
pub use types::{Chunk, Collection, Document, DocumentStatus, Message, SearchHit, Session};
pub use vectors::{
    FixedVectors, MemoryEntry, VectorSpace, Vectors, WriteSpaces, write_chunk_vectors,
    write_memory_vectors,
};
