//! Embedding a document's chunks and writing their vectors, batch by batch with progress,
//! and removing a document's vectors.

use ragd_core::{
    Chunk, DeleteRequest, DocumentId, DocumentStatus, EmbeddedRecord, TableName, VectorFilter,
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
        let (Some(embedder), Some(store)) = (&self.inner.embedder, &self.inner.store) else {
            tracing::debug!(document_id = %id, "no embedder or vector store configured; no vectors written");
            return Ok(());
        };
        self.delete_vectors(id).await?;
        self.write_vectors(id, chunks, embedder.as_ref(), store.as_ref()).await
    }

    /// Embeds `chunks` batch by batch and upserts their vectors, reporting progress.
    async fn write_vectors(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
        embedder: &dyn ragd_core::Embedder,
        store: &dyn ragd_core::VectorStore,
    ) -> std::result::Result<(), Stop> {
        if chunks.is_empty() {
            return Ok(());
        }
        let batch = self.inner.config.embed_batch_size.max(1);
        let mut done = 0;
        for part in chunks.chunks(batch) {
            let texts = part.iter().map(|c| c.text.clone()).collect();
            let vectors = embedder.embed_documents(texts).await.map_err(Error::from)?;
            if vectors.len() != part.len() {
                return Err(Stop::Failed(format!(
                    "the embedder returned {} vectors for {} chunks",
                    vectors.len(),
                    part.len()
                )));
            }
            let records = part
                .iter()
                .zip(vectors)
                .map(|(chunk, vector)| EmbeddedRecord {
                    id: *chunk.id.as_uuid(),
                    document_id: Some(id),
                    session_id: None,
                    vector,
                })
                .collect();
            store.upsert(TableName::Chunks, records).await.map_err(Error::from)?;
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
        let (Some(embedder), Some(store)) = (&self.inner.embedder, &self.inner.store) else {
            return Ok(());
        };
        if !removed.is_empty() {
            let ids = removed.iter().map(|chunk| *chunk.as_uuid()).collect();
            let filter = VectorFilter { document_ids: vec![id], session_ids: Vec::new(), ids };
            store
                .delete(DeleteRequest { table: TableName::Chunks, filter })
                .await
                .map_err(Error::from)?;
        }
        let changed: Vec<Chunk> =
            chunks.iter().filter(|c| !kept.contains(&c.id)).cloned().collect();
        self.write_vectors(id, &changed, embedder.as_ref(), store.as_ref()).await
    }

    /// Removes the document's vectors; without a vector store there are none.
    pub(super) async fn delete_vectors(&self, id: DocumentId) -> Result<u64> {
        let Some(store) = &self.inner.store else { return Ok(0) };
        let filter =
            VectorFilter { document_ids: vec![id], session_ids: Vec::new(), ids: Vec::new() };
        Ok(store.delete(DeleteRequest { table: TableName::Chunks, filter }).await?)
    }
}
