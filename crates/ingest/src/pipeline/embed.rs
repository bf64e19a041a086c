//! Embedding a document's chunks and writing their vectors, batch by batch with progress,
//! and removing a document's vectors.

use ragd_core::{
    Chunk, ChunkId, DeleteRequest, DocumentId, DocumentStatus, TableName, VectorFilter,
};

use super::Ingestor;
use super::stages::Stop;
use crate::error::{Error, Result};

impl Ingestor {
    /// Replaces the document's vectors batch by batch, reporting progress.
    pub(super) async fn embed_chunks(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
    ) -> std::result::Result<(), Stop> {
        if self.inner.vectors.is_none() {
            tracing::debug!(document_id = %id, "no embedder or vector store configured; no vectors written");
            return Ok(());
        }
        // Removing every vector of the document would undo a new owner's work.
        self.confirm_lease(id).await?;
        self.delete_vectors(id).await?;
        self.write_vectors(id, chunks).await
    }

    /// Embeds `chunks` batch by batch and upserts their vectors, reporting progress.
    ///
    /// Each batch goes to every space being written (two while the index is rebuilt with
    /// another model), holding them for the batch so a swap never splits it.
    async fn write_vectors(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
    ) -> std::result::Result<(), Stop> {
        let Some(vectors) = &self.inner.vectors else { return Ok(()) };
        if chunks.is_empty() {
            return Ok(());
        }
        let batch = self.inner.config.embed_batch_size.max(1);
        let mut done = 0;
        for part in chunks.chunks(batch) {
            let spaces = vectors.write_spaces().await;
            for space in spaces.spaces() {
                ragd_core::write_chunk_vectors(space.embedder.as_ref(), space.store.as_ref(), part)
                    .await
                    .map_err(Error::from)?;
            }
            drop(spaces);
            done += part.len();
            metrics::counter!(ragd_core::metric_names::EMBEDDING_TEXTS_TOTAL, "table" => "chunks")
                .increment(part.len() as u64);
            let progress = u8::try_from(done * 100 / chunks.len()).unwrap_or(100);
            self.set_status(id, DocumentStatus::Embedding, progress).await?;
        }
        Ok(())
    }

    /// Writes vectors for the chunks not in `kept` and removes those of `removed` chunk ids;
    /// the kept chunks' vectors stay as they are.
    pub(super) async fn embed_changed(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
        kept: &std::collections::HashSet<ragd_core::ChunkId>,
        removed: &[ragd_core::ChunkId],
    ) -> std::result::Result<(), Stop> {
        if self.inner.vectors.is_none() {
            return Ok(());
        }
        if !removed.is_empty() {
            self.confirm_lease(id).await?;
            self.delete_chunk_vectors(id, removed).await?;
        }
        let changed: Vec<Chunk> =
            chunks.iter().filter(|c| !kept.contains(&c.id)).cloned().collect();
        self.write_vectors(id, &changed).await
    }

    /// Removes the vectors of the chunks `chunks` of document `id` from every space; none
    /// at all when `chunks` is empty.
    pub(super) async fn delete_chunk_vectors(
        &self,
        id: DocumentId,
        chunks: &[ChunkId],
    ) -> Result<()> {
        let Some(vectors) = &self.inner.vectors else { return Ok(()) };
        if chunks.is_empty() {
            return Ok(());
        }
        let ids: Vec<_> = chunks.iter().map(|chunk| *chunk.as_uuid()).collect();
        let spaces = vectors.write_spaces().await;
        for space in spaces.spaces() {
            let filter =
                VectorFilter { document_ids: vec![id], session_ids: Vec::new(), ids: ids.clone() };
            space.store.delete(DeleteRequest { table: TableName::Chunks, filter }).await?;
        }
        Ok(())
    }

    /// Removes the document's vectors from every space; without vectors there are none.
    pub(super) async fn delete_vectors(&self, id: DocumentId) -> Result<u64> {
        let Some(vectors) = &self.inner.vectors else { return Ok(0) };
        let spaces = vectors.write_spaces().await;
        let mut removed = Vec::new();
        for space in spaces.spaces() {
            let filter =
                VectorFilter { document_ids: vec![id], session_ids: Vec::new(), ids: Vec::new() };
            let request = DeleteRequest { table: TableName::Chunks, filter };
            removed.push(space.store.delete(request).await?);
        }
        // What the space queries use held.
        Ok(removed.first().copied().unwrap_or(0))
    }
}
