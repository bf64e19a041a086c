//! [`Vectors`]: which embedder and vector store a query or a write uses, as one pair.
//!
//! A vector is only comparable with vectors of the same embedding model, so a service
//! never holds an embedder and a store separately: it asks [`Vectors`] for a
//! [`VectorSpace`] (the embedder and the store built with it) per operation and uses that
//! pair from the embedding to the store call. While an index is rebuilt with another model
//! there are two spaces: queries use the one in service, writes go to both, and the swap
//! waits for writes in flight ([`WriteSpaces`] holds it off). [`FixedVectors`] is the
//! one-space implementation for programs and tests that never rebuild.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::embed::{Embedder, Embedding};
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::store::{EmbeddedRecord, TableName, VectorStore};
use crate::types::Chunk;

/// An embedder and the vector store holding its vectors.
#[derive(Debug, Clone)]
pub struct VectorSpace {
    /// Embeds queries and texts for this space.
    pub embedder: Arc<dyn Embedder>,
    /// Holds the vectors `embedder` made.
    pub store: Arc<dyn VectorStore>,
}

impl VectorSpace {
    /// Pairs `embedder` with `store`.
    #[must_use]
    pub fn new(embedder: Arc<dyn Embedder>, store: Arc<dyn VectorStore>) -> Self {
        Self { embedder, store }
    }
}

/// The spaces one write goes to, held until dropped.
///
/// The first space is the one queries use; during a rebuild the second is the one being
/// built. A swap of spaces waits until every `WriteSpaces` handed out before it is dropped,
/// so a write is never split between a retired space and nothing.
pub struct WriteSpaces {
    spaces: Vec<VectorSpace>,
    /// Whatever keeps a swap waiting (a lock guard); dropped with this value.
    _hold: Option<Box<dyn Any + Send + Sync>>,
}

impl WriteSpaces {
    /// `spaces`, with `hold` kept alive until this value is dropped.
    #[must_use]
    pub fn new(spaces: Vec<VectorSpace>, hold: Option<Box<dyn Any + Send + Sync>>) -> Self {
        Self { spaces, _hold: hold }
    }

    /// The spaces, the one queries use first.
    #[must_use]
    pub fn spaces(&self) -> &[VectorSpace] {
        &self.spaces
    }
}

impl fmt::Debug for WriteSpaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteSpaces").field("spaces", &self.spaces).finish_non_exhaustive()
    }
}

/// Hands out the vector spaces queries and writes use.
#[async_trait]
pub trait Vectors: Send + Sync + fmt::Debug + 'static {
    /// The space a query uses: its embedder embeds the query, its store answers it.
    /// `None` when no space can answer queries now (the reason is the engine's to report).
    async fn query_space(&self) -> Option<VectorSpace>;

    /// The spaces a write goes to (empty when there is none); hold the value for the
    /// whole write.
    async fn write_spaces(&self) -> WriteSpaces;
}

/// Embeds `texts` with `embedder` and checks it answered one vector per text.
async fn embed_all(
    embedder: &dyn Embedder,
    texts: Vec<String>,
    what: &str,
) -> Result<Vec<Embedding>> {
    let expected = texts.len();
    let vectors = embedder.embed_documents(texts).await?;
    if vectors.len() == expected {
        Ok(vectors)
    } else {
        Err(Error::internal(format!(
            "the embedder returned {} vectors for {expected} {what}",
            vectors.len()
        )))
    }
}

/// Embeds `chunks` with `embedder` and writes their vectors into `store`'s `chunks` table
/// (replacing any of the same ids); returns how many were written. Ingestion and index
/// rebuilds both write chunk vectors through it.
///
/// # Errors
/// What the embedder or the store reports; `Internal` when the embedder answers another
/// number of vectors than texts.
pub async fn write_chunk_vectors(
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    chunks: &[Chunk],
) -> Result<u64> {
    if chunks.is_empty() {
        return Ok(0);
    }
    let texts = chunks.iter().map(|c| c.text.clone()).collect();
    let vectors = embed_all(embedder, texts, "chunks").await?;
    let records: Vec<EmbeddedRecord> = chunks
        .iter()
        .zip(vectors)
        .map(|(chunk, vector)| EmbeddedRecord {
            id: *chunk.id.as_uuid(),
            document_id: Some(chunk.document_id),
            session_id: None,
            vector,
        })
        .collect();
    Ok(store.upsert(TableName::Chunks, records).await?.written)
}

/// One remembered exchange to embed: its answer's id (the vector's id), its session and
/// the text it is remembered by.
pub type MemoryEntry = (uuid::Uuid, SessionId, String);

/// Embeds `entries` with `embedder` and writes their vectors into `store`'s `memory` table;
/// returns how many were written. Chat memory and index rebuilds both write through it.
///
/// # Errors
/// As [`write_chunk_vectors`].
pub async fn write_memory_vectors(
    embedder: &dyn Embedder,
    store: &dyn VectorStore,
    entries: Vec<MemoryEntry>,
) -> Result<u64> {
    if entries.is_empty() {
        return Ok(0);
    }
    let (keys, texts): (Vec<_>, Vec<_>) =
        entries.into_iter().map(|(id, session, text)| ((id, session), text)).unzip();
    let vectors = embed_all(embedder, texts, "exchanges").await?;
    let records = keys
        .into_iter()
        .zip(vectors)
        .map(|((id, session), vector)| EmbeddedRecord {
            id,
            document_id: None,
            session_id: Some(session),
            vector,
        })
        .collect();
    Ok(store.upsert(TableName::Memory, records).await?.written)
}

/// One space, never swapped.
#[derive(Debug, Clone)]
pub struct FixedVectors {
    space: VectorSpace,
}

impl FixedVectors {
    /// Serves every query and write from `embedder` and `store`.
    #[must_use]
    pub fn new(embedder: Arc<dyn Embedder>, store: Arc<dyn VectorStore>) -> Self {
        Self { space: VectorSpace::new(embedder, store) }
    }

    /// [`FixedVectors::new`], shared.
    #[must_use]
    pub fn shared(embedder: Arc<dyn Embedder>, store: Arc<dyn VectorStore>) -> Arc<dyn Vectors> {
        Arc::new(Self::new(embedder, store))
    }
}

#[async_trait]
impl Vectors for FixedVectors {
    async fn query_space(&self) -> Option<VectorSpace> {
        Some(self.space.clone())
    }

    async fn write_spaces(&self) -> WriteSpaces {
        WriteSpaces::new(vec![self.space.clone()], None)
    }
}
