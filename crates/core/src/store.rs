//! The [`VectorStore`] trait: vectors by id, nearest-neighbour search, filtered deletes.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::embed::Embedding;
use crate::error::Result;
use crate::ids::{DocumentId, SessionId};

/// The vector tables ragd keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableName {
    /// One vector per document chunk.
    Chunks,
    /// One vector per stored prompt/response exchange (long-term memory).
    Memory,
}

impl TableName {
    /// The table's name on disk.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Chunks => "chunks",
            Self::Memory => "memory",
        }
    }
}

/// One vector to store.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedRecord {
    /// The chunk id or the message-pair id the vector belongs to.
    pub id: Uuid,
    /// The owning document (chunks table).
    pub document_id: Option<DocumentId>,
    /// The owning session (memory table).
    pub session_id: Option<SessionId>,
    /// The vector.
    pub vector: Embedding,
}

/// Restricts a search or delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorFilter {
    /// Only rows of these documents (empty: no restriction).
    pub document_ids: Vec<DocumentId>,
    /// Only rows of these sessions (empty: no restriction).
    pub session_ids: Vec<SessionId>,
    /// Only rows with these ids (empty: no restriction).
    pub ids: Vec<Uuid>,
}

impl VectorFilter {
    /// `true` when the filter restricts nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.document_ids.is_empty() && self.session_ids.is_empty() && self.ids.is_empty()
    }
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Which table to search.
    pub table: TableName,
    /// The query vector.
    pub vector: Embedding,
    /// How many results to return at most.
    pub top_k: usize,
    /// Restrictions on the rows considered.
    pub filter: VectorFilter,
}

/// A row found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRecord {
    /// The stored id.
    pub id: Uuid,
    /// The owning document, if any.
    pub document_id: Option<DocumentId>,
    /// The owning session, if any.
    pub session_id: Option<SessionId>,
    /// Cosine similarity, higher is closer.
    pub score: f32,
}

/// Deletes the rows matching a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// Which table to delete from.
    pub table: TableName,
    /// Which rows; an empty filter is refused so a bug cannot wipe a table.
    pub filter: VectorFilter,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertReport {
    /// Rows written.
    pub written: u64,
}

/// Stores vectors and finds the nearest ones.
#[async_trait]
pub trait VectorStore: Send + Sync + fmt::Debug + 'static {
    /// Writes (or replaces, by id) the given vectors into `table`.
    ///
    /// # Errors
    /// `InvalidInput` when a vector's dimension does not match the table.
    async fn upsert(&self, table: TableName, records: Vec<EmbeddedRecord>) -> Result<UpsertReport>;

    /// The `top_k` rows closest to the request's vector.
    ///
    /// # Errors
    /// `InvalidInput` for a wrong dimension, `Unavailable` when the store cannot be read.
    async fn search(&self, req: SearchRequest) -> Result<Vec<ScoredRecord>>;

    /// Deletes the rows matching the filter and says how many went.
    ///
    /// # Errors
    /// `InvalidInput` for an empty filter.
    async fn delete(&self, req: DeleteRequest) -> Result<u64>;

    /// How many rows of `table` match `filter` (every row for an empty filter).
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be read.
    async fn count(&self, table: TableName, filter: VectorFilter) -> Result<u64>;

    /// Deletes every row of `table` whose id is not in `keep`, and says how many went.
    /// Start-up uses it to drop vectors whose chunk or message no longer exists (a crash
    /// between the catalog delete and the vector delete leaves such rows).
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be read or written.
    async fn retain(&self, table: TableName, keep: &HashSet<Uuid>) -> Result<u64>;

    /// The ids of every row of `table`. A rebuild uses it to find what is still missing.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be read.
    async fn ids(&self, table: TableName) -> Result<HashSet<Uuid>>;

    /// Checks the store can be read.
    ///
    /// # Errors
    /// `Unavailable` when it cannot.
    async fn health(&self) -> Result<()>;
}
