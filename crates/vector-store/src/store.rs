//! [`LanceStore`]: the [`VectorStore`] implementation on embedded LanceDB.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::TryStreamExt as _;
use lancedb::DistanceType;
use lancedb::arrow::arrow_array::{Float32Array, RecordBatch, RecordBatchIterator};
use lancedb::arrow::arrow_schema::SchemaRef;
use lancedb::index::Index;
use lancedb::index::vector::IvfHnswSqIndexBuilder;
use lancedb::query::{ExecutableQuery as _, QueryBase as _, Select};
use lancedb::{Connection, Table};
use ragd_core::{
    DeleteRequest, DocumentId, EmbeddedRecord, ErrorKind, ScoredRecord, SearchRequest, TableName,
    UpsertReport, VectorFilter, VectorStore,
};
use uuid::Uuid;

use crate::config::{LanceStoreConfig, StoreLocation, table_name};
use crate::error::{Error, Result, TableShape};
use crate::filter;
use crate::rows;
use crate::schema::{self, COL_DISTANCE, COL_DOCUMENT_ID, COL_ID, COL_SESSION_ID, COL_VECTOR};

/// Rows a single HNSW graph covers before the IVF layer splits the table into partitions.
///
/// This is Lance's own default partition size for IVF_HNSW indexes: HNSW search cost grows
/// with the logarithm of the graph size, so ragd's expected 10k to 100k rows are best
/// served by one graph, and partitions only pay off at millions of rows.
const HNSW_ROWS_PER_PARTITION: usize = 1 << 20;
/// Neighbours per HNSW node (Lance's default): good recall on 384-dimension text
/// embeddings at about 160 bytes of graph per row.
const HNSW_EDGES: u32 = 20;
/// Candidates kept while building the graph (Lance's default); higher only slows builds.
const HNSW_EF_CONSTRUCTION: u32 = 300;
/// How many ANN candidates per requested hit are re-scored on the exact vectors.
///
/// The index compares 8-bit quantized vectors, so without re-scoring the order of close
/// hits and the scores themselves would be approximate. One is enough for exact scores and
/// order among the candidates found.
const REFINE_FACTOR: u32 = 1;
/// The most ids one `id IN (...)` delete predicate carries.
const DELETE_BATCH: usize = 512;

/// The vector store on embedded LanceDB.
///
/// It holds the `chunks` and `memory` tables, opened (and created if missing) by
/// [`LanceStore::open`]. Every table carries the schema version, embedding model id and
/// dimension it was built with; opening it with another configuration is refused with
/// [`ErrorKind::Conflict`].
///
/// Upserts replace rows by id with one LanceDB `merge_insert` (a single commit, so a
/// replaced row is never missing in between, as it would be with a delete followed by an
/// add). Once a table reaches [`LanceStoreConfig::index_threshold_rows`] rows an
/// IVF_HNSW_SQ index with cosine distance is built; a failed build is logged and searches
/// stay exact.
#[derive(Debug)]
pub struct LanceStore {
    /// The configuration the store was opened with.
    config: LanceStoreConfig,
    /// The vector length, as Arrow wants it.
    dimensions: i32,
    /// The columns of written batches.
    data_schema: SchemaRef,
    /// The `chunks` table.
    chunks: StoreTable,
    /// The `memory` table.
    memory: StoreTable,
}

/// One open table and its index state.
#[derive(Debug)]
struct StoreTable {
    /// The table's name on disk.
    name: String,
    /// The LanceDB handle.
    table: Table,
    /// Whether the vector column is known to have an ANN index.
    has_vector_index: AtomicBool,
    /// Held while an index is being built, so concurrent upserts do not build twice.
    index_build: tokio::sync::Mutex<()>,
}

impl LanceStore {
    /// Connects to the database at `config.location` and opens the `chunks` and `memory`
    /// tables, creating them when missing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a zero or oversized dimension, [`Error::ShapeMismatch`]
    /// or [`Error::ForeignTable`] (both [`ErrorKind::Conflict`]) when a table was built
    /// with another model, dimension or schema version, [`Error::Storage`] when LanceDB
    /// fails.
    pub async fn open(config: LanceStoreConfig) -> Result<Self> {
        let dimensions =
            i32::try_from(config.dimensions).ok().filter(|d| *d > 0).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "vector dimension {} must be between 1 and {}",
                    config.dimensions,
                    i32::MAX
                ))
            })?;
        let connection = connect(&config.location).await?;
        let shape = schema::expected_shape(&config.model_id, config.dimensions);
        let name = |table| table_name(table, config.generation);
        let chunks = open_table(&connection, name(TableName::Chunks), &shape, dimensions).await?;
        let memory = open_table(&connection, name(TableName::Memory), &shape, dimensions).await?;
        tracing::info!(
            model_id = %config.model_id,
            dimensions = config.dimensions,
            generation = config.generation,
            "opened the LanceDB vector store"
        );
        Ok(Self {
            data_schema: schema::data_schema(dimensions),
            config,
            dimensions,
            chunks,
            memory,
        })
    }

    /// The embedding model id and dimension the `chunks` table of `generation` at
    /// `location` was built with; `None` when there is no such table or it lacks ragd's
    /// metadata.
    ///
    /// # Errors
    /// [`Error::Storage`] when LanceDB fails.
    pub async fn recorded_model(
        location: &StoreLocation,
        generation: u32,
    ) -> Result<Option<(String, usize)>> {
        let connection = connect(location).await?;
        let name = table_name(TableName::Chunks, generation);
        if !table_exists(&connection, &name).await? {
            return Ok(None);
        }
        let table = connection
            .open_table(&name)
            .execute()
            .await
            .map_err(|err| Error::lance(format!("open table {name}"), err))?;
        let stored = table
            .schema()
            .await
            .map_err(|err| Error::lance(format!("read the schema of {name}"), err))?;
        Ok(schema::recorded_model(&stored))
    }

    /// Drops the tables of `generation` at `location` (those that exist) and says how many
    /// went.
    ///
    /// # Errors
    /// [`Error::Storage`] when LanceDB fails.
    pub async fn drop_generation(location: &StoreLocation, generation: u32) -> Result<usize> {
        let connection = connect(location).await?;
        let mut dropped = 0;
        for table in [TableName::Chunks, TableName::Memory] {
            let name = table_name(table, generation);
            if table_exists(&connection, &name).await? {
                connection
                    .drop_table(&name, &[])
                    .await
                    .map_err(|err| Error::lance(format!("drop table {name}"), err))?;
                tracing::info!(table = %name, "dropped vector table");
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// The configuration the store was opened with.
    #[must_use]
    pub fn config(&self) -> &LanceStoreConfig {
        &self.config
    }

    /// How many rows `table` holds.
    ///
    /// # Errors
    /// [`Error::Storage`] when LanceDB fails.
    pub async fn count(&self, table: TableName) -> Result<u64> {
        let handle = self.table(table);
        let rows = handle
            .table
            .count_rows(None)
            .await
            .map_err(|err| Error::lance(format!("count the rows of {}", handle.name), err))?;
        Ok(rows as u64)
    }

    /// Whether `table` has an ANN index on its vectors (otherwise searches scan it).
    ///
    /// # Errors
    /// [`Error::Storage`] when LanceDB fails.
    pub async fn has_vector_index(&self, table: TableName) -> Result<bool> {
        has_vector_index(&self.table(table).table).await
    }

    /// The ids of the `chunks` rows of one document.
    ///
    /// # Errors
    /// [`Error::Storage`] when LanceDB fails, [`Error::Corrupt`] for an unreadable id.
    pub async fn ids_for_document(&self, document: DocumentId) -> Result<Vec<Uuid>> {
        let filter =
            VectorFilter { document_ids: vec![document], session_ids: Vec::new(), ids: Vec::new() };
        self.list_ids(TableName::Chunks, filter::predicate(&filter)).await
    }

    /// The handle of `table`.
    fn table(&self, table: TableName) -> &StoreTable {
        match table {
            TableName::Chunks => &self.chunks,
            TableName::Memory => &self.memory,
        }
    }

    /// The ids of the rows of `table` matching `predicate` (all rows for `None`).
    async fn list_ids(&self, table: TableName, predicate: Option<String>) -> Result<Vec<Uuid>> {
        let handle = self.table(table);
        let mut query = handle.table.query().select(Select::columns(&[COL_ID]));
        if let Some(predicate) = predicate {
            query = query.only_if(predicate);
        }
        let operation = || format!("list the ids of {}", handle.name);
        let batches: Vec<RecordBatch> = query
            .execute()
            .await
            .map_err(|err| Error::lance(operation(), err))?
            .try_collect()
            .await
            .map_err(|err| Error::lance(operation(), err))?;
        let mut ids = Vec::new();
        for batch in &batches {
            ids.extend(rows::ids(batch)?);
        }
        Ok(ids)
    }

    /// Refuses a vector of the wrong length or with a non-finite value.
    fn check_vector(&self, table: &StoreTable, what: &str, vector: &[f32]) -> Result<()> {
        if vector.len() != self.config.dimensions {
            return Err(Error::InvalidInput(format!(
                "{what} has {} dimensions but the {} table holds {}-dimension vectors",
                vector.len(),
                table.name,
                self.config.dimensions
            )));
        }
        if !vector.iter().all(|v| v.is_finite()) {
            return Err(Error::InvalidInput(format!("{what} holds a NaN or infinite value")));
        }
        Ok(())
    }

    /// Writes `records` into `table`, replacing rows with the same id.
    async fn upsert_records(
        &self,
        table: TableName,
        records: Vec<EmbeddedRecord>,
    ) -> Result<UpsertReport> {
        let handle = self.table(table);
        for record in &records {
            self.check_vector(handle, &format!("the vector of {}", record.id), &record.vector)?;
        }
        let records = last_per_id(records);
        if records.is_empty() {
            return Ok(UpsertReport { written: 0 });
        }
        let batch = rows::to_batch(self.data_schema.clone(), self.dimensions, &records)?;
        let reader = RecordBatchIterator::new(vec![Ok(batch)], self.data_schema.clone());
        let mut merge = handle.table.merge_insert(&[COL_ID]);
        merge.when_matched_update_all(None).when_not_matched_insert_all();
        let result = merge
            .execute(Box::new(reader))
            .await
            .map_err(|err| Error::lance(format!("upsert into {}", handle.name), err))?;
        tracing::debug!(
            table = %handle.name,
            inserted = result.num_inserted_rows,
            updated = result.num_updated_rows,
            "upserted vectors"
        );
        self.maybe_build_index(handle).await;
        Ok(UpsertReport { written: records.len() as u64 })
    }

    /// Builds the ANN index of `table` once it has enough rows; failures are only logged,
    /// because searches without an index are slower but still exact.
    async fn maybe_build_index(&self, table: &StoreTable) {
        if table.has_vector_index.load(Ordering::Acquire) {
            return;
        }
        // Another upsert is already building it; this one need not wait.
        let Ok(_guard) = table.index_build.try_lock() else {
            return;
        };
        if table.has_vector_index.load(Ordering::Acquire) {
            return;
        }
        let rows = match table.table.count_rows(None).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(table = %table.name, error = %err, "could not count rows for indexing");
                return;
            }
        };
        if rows < self.config.index_threshold_rows.max(1) {
            return;
        }
        match build_vector_index(&table.table, rows).await {
            Ok(()) => {
                table.has_vector_index.store(true, Ordering::Release);
                tracing::info!(table = %table.name, rows, "built the ANN vector index");
            }
            Err(err) => tracing::warn!(
                table = %table.name,
                rows,
                error = %err,
                "could not build the ANN vector index; searches stay exact but slower"
            ),
        }
    }

    /// The nearest rows to the request's vector.
    ///
    /// Planned with Lance's own scanner on the table's current dataset rather than through
    /// LanceDB's query builder: that layer plans each query a second time to rescale the
    /// index's internal distances (normalized squared L2 for cosine), which the exact
    /// re-scoring of [`REFINE_FACTOR`] makes moot here, and a profile of `bench_search` put
    /// it at about a tenth of a query's time. What else that layer does is not used by
    /// ragd: remote tables (`db://`), and reads routed through a MemWAL write spec
    /// (`enable_rte`), which ragd never installs. `top_k` is not clamped to the row count
    /// (Lance returns fewer rows); callers bound it (`ragd_search::MAX_TOP_K`).
    async fn search_records(&self, req: SearchRequest) -> Result<Vec<ScoredRecord>> {
        let handle = self.table(req.table);
        self.check_vector(handle, "the query vector", &req.vector)?;
        if req.top_k == 0 {
            return Ok(Vec::new());
        }
        let operation = || format!("search {}", handle.name);
        let failed = |err| Error::lance(operation(), lancedb::Error::from(err));
        let dataset = handle
            .table
            .dataset()
            .ok_or_else(|| {
                let message = "a remote LanceDB table has no local dataset to scan".to_owned();
                Error::lance(operation(), lancedb::Error::NotSupported { message })
            })?
            .get()
            .await
            .map_err(|err| Error::lance(operation(), err))?;
        let query = Float32Array::from(req.vector);
        let mut scanner = dataset.scan();
        scanner.nearest(COL_VECTOR, &query, req.top_k).map_err(failed)?;
        scanner
            .distance_metric(DistanceType::Cosine.into())
            .refine(REFINE_FACTOR)
            .ef(self.config.search_ef.max(req.top_k.saturating_mul(3) / 2))
            .prefilter(true);
        scanner.limit(i64::try_from(req.top_k).ok(), None).map_err(failed)?;
        // `_distance` named, not left to Lance's implicit projection, which logs a
        // deprecation warning on every query that selects columns without it.
        scanner
            .project(&[COL_ID, COL_DOCUMENT_ID, COL_SESSION_ID, COL_DISTANCE])
            .map_err(failed)?;
        if let Some(predicate) = filter::predicate(&req.filter) {
            scanner.filter(&predicate).map_err(failed)?;
        }
        let batches: Vec<RecordBatch> =
            scanner.try_into_stream().await.map_err(failed)?.try_collect().await.map_err(failed)?;
        let mut hits = Vec::new();
        for batch in &batches {
            hits.extend(rows::scored_records(batch)?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(req.top_k);
        Ok(hits)
    }

    /// Deletes the rows matching a non-empty filter.
    async fn delete_records(&self, req: DeleteRequest) -> Result<u64> {
        let Some(predicate) = filter::predicate(&req.filter) else {
            return Err(Error::InvalidInput("refusing to delete with an empty filter".into()));
        };
        delete_where(self.table(req.table), &predicate).await
    }
}

/// Connects to the LanceDB database at `location`.
async fn connect(location: &StoreLocation) -> Result<Connection> {
    if let Some(feature) = missing_feature(&location.uri) {
        return Err(Error::InvalidInput(format!(
            "{} needs ragd built with the `{feature}` feature of ragd-vector-store \
             (s3:// and local directories need none)",
            location.uri
        )));
    }
    let mut builder = lancedb::connect(&location.uri).storage_options(
        location.storage_options.iter().map(|(key, value)| (key.as_str(), value.as_str())),
    );
    if let Some(interval) = location.read_consistency {
        builder = builder.read_consistency_interval(interval);
    }
    builder.execute().await.map_err(|err| {
        Error::lance(format!("connect to the LanceDB database at {}", location.uri), err)
    })
}

/// The cargo feature of this crate that `uri`'s object store needs and this build lacks.
fn missing_feature(uri: &str) -> Option<&'static str> {
    let scheme = uri.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "gs" if !cfg!(feature = "gcs") => Some("gcs"),
        "az" | "abfss" if !cfg!(feature = "azure") => Some("azure"),
        _ => None,
    }
}

/// Whether a table called `name` exists.
async fn table_exists(connection: &Connection, name: &str) -> Result<bool> {
    let existing = connection
        .table_names()
        .execute()
        .await
        .map_err(|err| Error::lance("list the tables", err))?;
    Ok(existing.iter().any(|n| n == name))
}

/// Opens (creating it if missing) one table and checks it was built with `shape`.
async fn open_table(
    connection: &Connection,
    name: String,
    shape: &TableShape,
    dimensions: i32,
) -> Result<StoreTable> {
    // An existing table is opened unchanged, so the check below reads the metadata it was
    // built with; a new table is created with this configuration's metadata.
    let handle = open_or_create(connection, &name, shape, dimensions).await?;
    let stored = handle
        .schema()
        .await
        .map_err(|err| Error::lance(format!("read the schema of {name}"), err))?;
    schema::check(&name, &stored, shape)?;
    let indexed = has_vector_index(&handle).await?;
    Ok(StoreTable {
        name,
        table: handle,
        has_vector_index: AtomicBool::new(indexed),
        index_build: tokio::sync::Mutex::new(()),
    })
}

/// How often [`open_or_create`] looks again for a table another process is creating.
const OPEN_ATTEMPTS: u32 = 10;

/// Opens the table `name`, creating it empty when missing.
///
/// Several processes (replicas on one bucket, or stores opened at once) may do this at the
/// same moment. A table is listed as soon as its folder exists, before its creator has
/// committed the first version, and opening it in that window fails as not found; creating
/// it then fails as already existing, or, when two creators commit the first version at
/// once, as a commit conflict. All mean "another process is creating it": wait
/// (10 ms, doubling, about 5 s in all) and look again. On the last attempt a listed table
/// that still cannot be opened is created, which takes over a folder that a creator that
/// crashed left without any version.
async fn open_or_create(
    connection: &Connection,
    name: &str,
    shape: &TableShape,
    dimensions: i32,
) -> Result<Table> {
    let mut delay = std::time::Duration::from_millis(10);
    let mut attempt = 1;
    loop {
        let last = attempt == OPEN_ATTEMPTS;
        let listed = table_exists(connection, name).await?;
        if listed {
            match connection.open_table(name).execute().await {
                Ok(table) => return Ok(table),
                Err(lancedb::Error::TableNotFound { .. }) if !last => {}
                Err(lancedb::Error::TableNotFound { .. }) => {
                    tracing::warn!(table = name, "a table folder without a version: creating it");
                }
                Err(err) => return Err(Error::lance(format!("open table {name}"), err)),
            }
        }
        if !listed || last {
            let created = connection
                .create_empty_table(name, schema::table_schema(shape, dimensions))
                .execute()
                .await;
            match created {
                Ok(table) => {
                    tracing::info!(table = name, "created vector table");
                    return Ok(table);
                }
                // Another process is creating it.
                Err(
                    lancedb::Error::TableAlreadyExists { .. }
                    | lancedb::Error::Lance {
                        source:
                            lance::Error::CommitConflict { .. }
                            | lance::Error::RetryableCommitConflict { .. },
                    },
                ) if !last => {}
                Err(err) => return Err(Error::lance(format!("create table {name}"), err)),
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
        attempt += 1;
    }
}

/// Whether `table` has an index on its vector column.
async fn has_vector_index(table: &Table) -> Result<bool> {
    let indices = table
        .list_indices()
        .await
        .map_err(|err| Error::lance(format!("list the indexes of {}", table.name()), err))?;
    Ok(indices.iter().any(|index| index.columns.iter().any(|c| c == COL_VECTOR)))
}

/// Builds an IVF_HNSW_SQ index with cosine distance on the vector column.
///
/// IVF_HNSW_SQ rather than IVF_PQ: scalar quantization keeps 8 bits per dimension (4x
/// smaller than f32) with little recall loss, needs no codebook training (PQ wants at
/// least 256 rows per codebook and loses precision at 384 dimensions), and HNSW answers a
/// query in a handful of distance computations.
async fn build_vector_index(table: &Table, rows: usize) -> Result<()> {
    let partitions = u32::try_from(rows.div_ceil(HNSW_ROWS_PER_PARTITION).max(1)).unwrap_or(1);
    let builder = IvfHnswSqIndexBuilder::default()
        .distance_type(DistanceType::Cosine)
        .num_partitions(partitions)
        .num_edges(HNSW_EDGES)
        .ef_construction(HNSW_EF_CONSTRUCTION);
    table
        .create_index(&[COL_VECTOR], Index::IvfHnswSq(builder))
        .execute()
        .await
        .map_err(|err| Error::lance(format!("build the vector index of {}", table.name()), err))
}

/// Deletes the rows of `table` matching `predicate` and says how many went.
async fn delete_where(table: &StoreTable, predicate: &str) -> Result<u64> {
    let result = table
        .table
        .delete(predicate)
        .await
        .map_err(|err| Error::lance(format!("delete from {}", table.name), err))?;
    Ok(result.num_deleted_rows)
}

/// Keeps the last record of each id, in the order of those last occurrences, because a
/// `merge_insert` whose input repeats a key is ambiguous.
fn last_per_id(records: Vec<EmbeddedRecord>) -> Vec<EmbeddedRecord> {
    let last: HashMap<Uuid, usize> =
        records.iter().enumerate().map(|(index, record)| (record.id, index)).collect();
    records
        .into_iter()
        .enumerate()
        .filter(|(index, record)| last.get(&record.id) == Some(index))
        .map(|(_, record)| record)
        .collect()
}

#[async_trait]
impl VectorStore for LanceStore {
    async fn upsert(
        &self,
        table: TableName,
        records: Vec<EmbeddedRecord>,
    ) -> ragd_core::Result<UpsertReport> {
        Ok(self.upsert_records(table, records).await?)
    }

    async fn search(&self, req: SearchRequest) -> ragd_core::Result<Vec<ScoredRecord>> {
        Ok(self.search_records(req).await?)
    }

    async fn delete(&self, req: DeleteRequest) -> ragd_core::Result<u64> {
        Ok(self.delete_records(req).await?)
    }

    async fn count(&self, table: TableName, filter: VectorFilter) -> ragd_core::Result<u64> {
        let handle = self.table(table);
        let rows = handle
            .table
            .count_rows(filter::predicate(&filter))
            .await
            .map_err(|err| Error::lance(format!("count the rows of {}", handle.name), err))?;
        Ok(rows as u64)
    }

    async fn retain(&self, table: TableName, keep: &HashSet<Uuid>) -> ragd_core::Result<u64> {
        let handle = self.table(table);
        let orphans: Vec<Uuid> =
            self.list_ids(table, None).await?.into_iter().filter(|id| !keep.contains(id)).collect();
        let mut removed = 0;
        for batch in orphans.chunks(DELETE_BATCH) {
            let Some(predicate) = filter::ids_predicate(batch.iter().copied()) else {
                continue;
            };
            removed += delete_where(handle, &predicate).await?;
        }
        if removed > 0 {
            tracing::info!(table = %handle.name, removed, "removed orphaned vectors");
        }
        Ok(removed)
    }

    async fn ids(&self, table: TableName) -> ragd_core::Result<HashSet<Uuid>> {
        Ok(self.list_ids(table, None).await?.into_iter().collect())
    }

    async fn health(&self) -> ragd_core::Result<()> {
        self.chunks.table.count_rows(None).await.map_err(|err| {
            ragd_core::Error::from(Error::Storage {
                operation: "read the chunks table".into(),
                kind: ErrorKind::Unavailable,
                source: Box::new(err),
            })
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_record_of_an_id_wins() {
        let id = Uuid::now_v7();
        let other = Uuid::now_v7();
        let record = |id, value| EmbeddedRecord {
            id,
            document_id: None,
            session_id: None,
            vector: vec![value],
        };
        let kept = last_per_id(vec![record(id, 1.0), record(other, 2.0), record(id, 3.0)]);
        assert_eq!(kept, vec![record(other, 2.0), record(id, 3.0)]);
    }
}
