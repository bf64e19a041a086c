//! Domain types shared by every crate.
//!
//! These are plain data. They derive `serde` so they can be persisted and passed between
//! crates, but the HTTP layer has its own DTOs (in `bins/ragd/src/api`) so that the wire
//! format can evolve separately from the domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChunkId, CollectionId, DocumentId, MessageId, SessionId};
use crate::llm::ChatRole;

/// Where a document is in its lifecycle:
/// `queued -> extracting -> chunking -> embedding -> ready | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    /// Accepted and waiting for a worker.
    Queued,
    /// Text is being extracted from the file.
    Extracting,
    /// Extracted text is being split into chunks.
    Chunking,
    /// Chunks are being embedded and written to the vector store.
    Embedding,
    /// Text, chunks and vectors are all stored; the document is searchable.
    Ready,
    /// Processing stopped; `Document::error` says why.
    Failed,
}

impl DocumentStatus {
    /// `true` for `ready` and `failed`: no worker will touch the document again.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Ready | Self::Failed)
    }
}

/// An uploaded document and its processing state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable id.
    pub id: DocumentId,
    /// The file name given at upload.
    pub filename: String,
    /// Detected media type.
    pub mime: String,
    /// Hex sha256 of the uploaded bytes; documents are deduplicated by it.
    pub sha256: String,
    /// Size of the uploaded file.
    pub bytes: u64,
    /// Lifecycle state.
    pub status: DocumentStatus,
    /// Progress of the current stage, 0 to 100.
    pub progress: u8,
    /// Why processing failed, when `status` is `failed`.
    pub error: Option<String>,
    /// What the last extraction left out without failing the document (a scanned page
    /// OCR could not read), one sentence each; empty when nothing was.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Chunks stored for it (0 until chunking has finished).
    #[serde(default)]
    pub chunk_count: u64,
    /// When the document was uploaded.
    pub created_at: DateTime<Utc>,
    /// When the document last changed.
    pub updated_at: DateTime<Utc>,
    /// User metadata (string keys to string, number or bool values).
    #[serde(default)]
    pub metadata: crate::metadata::Metadata,
}

/// One piece of a document's extracted text, the unit of retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id.
    pub id: ChunkId,
    /// The document this chunk belongs to.
    pub document_id: DocumentId,
    /// Position of the chunk within its document, from 0.
    pub ordinal: u32,
    /// The chunk's text.
    pub text: String,
    /// Start offset (in chars) into the document's extracted text.
    pub char_start: u64,
    /// End offset (in chars, exclusive) into the document's extracted text.
    pub char_end: u64,
    /// Tokens in `text` as counted by the embedder's tokenizer.
    pub token_count: u32,
    /// Page number (from 1) for formats that have pages.
    pub page: Option<u32>,
    /// Heading path (e.g. `Intro > Setup`) for formats that have headings.
    pub heading: Option<String>,
}

/// A collection: a named set of documents. A document may be in several collections, and
/// deleting a collection leaves its documents stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// Stable id.
    pub id: CollectionId,
    /// Unique name.
    pub name: String,
    /// What the collection holds, for people.
    pub description: Option<String>,
    /// When the collection was created.
    pub created_at: DateTime<Utc>,
    /// When its name, description or documents last changed.
    pub updated_at: DateTime<Utc>,
    /// How many documents it holds.
    pub document_count: u64,
}

/// A chat session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Stable id.
    pub id: SessionId,
    /// Human-readable name.
    pub name: String,
    /// The model the session uses by default.
    pub model: Option<String>,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// Timestamp of the last prompt or response.
    pub last_activity_at: DateTime<Utc>,
    /// Documents retrieval is restricted to.
    pub document_ids: Vec<DocumentId>,
    /// Collections retrieval is restricted to: with `document_ids`, their union; both empty
    /// is every document.
    pub collection_ids: Vec<CollectionId>,
    /// Automatic and user meta-tags.
    pub tags: Vec<String>,
    /// Summary of older history that no longer fits the context window.
    pub summary: Option<String>,
    /// The last message the summary covers; later messages are not in it.
    pub summary_through: Option<MessageId>,
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Stable id.
    pub id: MessageId,
    /// The session the message belongs to.
    pub session_id: SessionId,
    /// Who wrote it.
    pub role: ChatRole,
    /// The message text.
    pub content: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// The model that produced it (assistant messages).
    pub model: Option<String>,
    /// Settings, token counts, timings and cited chunk ids.
    pub metadata: serde_json::Value,
}

/// A chunk found by a search, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The chunk found.
    pub chunk_id: ChunkId,
    /// Its document.
    pub document_id: DocumentId,
    /// The document's file name.
    pub filename: String,
    /// Higher is better; the scale depends on the search mode.
    pub score: f32,
    /// The chunk's text (or a highlighted snippet for keyword search).
    pub text: String,
    /// Start offset (in chars) into the document's extracted text.
    pub char_start: u64,
    /// End offset (in chars, exclusive).
    pub char_end: u64,
    /// Page number when the format has pages.
    pub page: Option<u32>,
}
