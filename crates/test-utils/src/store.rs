//! [`InMemoryStore`]: brute-force cosine search over a `Vec`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use ragd_core::{
    DeleteRequest, EmbeddedRecord, Error, Result, ScoredRecord, SearchRequest, TableName,
    UpsertReport, VectorFilter, VectorStore,
};
use uuid::Uuid;

/// A vector store in memory. Mirrors the real store's contract: upsert replaces by id,
/// an empty delete filter is refused, dimensions must match within a table.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<HashMap<TableName, Vec<EmbeddedRecord>>>,
}

impl InMemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows in `table`, for assertions.
    #[must_use]
    pub fn len(&self, table: TableName) -> usize {
        self.lock().get(&table).map_or(0, Vec::len)
    }

    /// Whether `table` has no rows.
    #[must_use]
    pub fn is_empty(&self, table: TableName) -> bool {
        self.len(table) == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TableName, Vec<EmbeddedRecord>>> {
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn matches(filter: &VectorFilter, record: &EmbeddedRecord) -> bool {
    let doc_ok = filter.document_ids.is_empty()
        || record.document_id.is_some_and(|id| filter.document_ids.contains(&id));
    let session_ok = filter.session_ids.is_empty()
        || record.session_id.is_some_and(|id| filter.session_ids.contains(&id));
    let id_ok = filter.ids.is_empty() || filter.ids.contains(&record.id);
    doc_ok && session_ok && id_ok
}

#[async_trait]
impl VectorStore for InMemoryStore {
    async fn upsert(&self, table: TableName, records: Vec<EmbeddedRecord>) -> Result<UpsertReport> {
        let mut tables = self.lock();
        let rows = tables.entry(table).or_default();
        if let (Some(existing), Some(new)) = (rows.first(), records.first())
            && existing.vector.len() != new.vector.len()
        {
            return Err(Error::invalid_input(format!(
                "vector dimension {} does not match the table's {}",
                new.vector.len(),
                existing.vector.len()
            )));
        }
        let written = records.len() as u64;
        for record in records {
            rows.retain(|r| r.id != record.id);
            rows.push(record);
        }
        Ok(UpsertReport { written })
    }

    async fn search(&self, req: SearchRequest) -> Result<Vec<ScoredRecord>> {
        let tables = self.lock();
        let mut hits: Vec<ScoredRecord> = tables
            .get(&req.table)
            .into_iter()
            .flatten()
            .filter(|r| matches(&req.filter, r))
            .map(|r| ScoredRecord {
                id: r.id,
                document_id: r.document_id,
                session_id: r.session_id,
                score: r.vector.iter().zip(&req.vector).map(|(a, b)| a * b).sum(),
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(req.top_k);
        Ok(hits)
    }

    async fn delete(&self, req: DeleteRequest) -> Result<u64> {
        if req.filter.is_empty() {
            return Err(Error::invalid_input("refusing to delete with an empty filter"));
        }
        let mut tables = self.lock();
        let rows = tables.entry(req.table).or_default();
        let before = rows.len();
        rows.retain(|r| !matches(&req.filter, r));
        Ok((before - rows.len()) as u64)
    }

    async fn count(&self, table: TableName, filter: VectorFilter) -> Result<u64> {
        let tables = self.lock();
        let rows = tables.get(&table).map(Vec::as_slice).unwrap_or_default();
        Ok(rows.iter().filter(|r| filter.is_empty() || matches(&filter, r)).count() as u64)
    }

    async fn retain(&self, table: TableName, keep: &HashSet<Uuid>) -> Result<u64> {
        let mut tables = self.lock();
        let rows = tables.entry(table).or_default();
        let before = rows.len();
        rows.retain(|r| keep.contains(&r.id));
        Ok((before - rows.len()) as u64)
    }

    async fn ids(&self, table: TableName) -> Result<HashSet<Uuid>> {
        Ok(self.lock().get(&table).into_iter().flatten().map(|r| r.id).collect())
    }

    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
