//! [`LanceStoreConfig`]: where the store lives and which vectors it holds.

/// Rows after which a table gets an ANN index when [`LanceStoreConfig::new`] is used.
///
/// Below this a flat scan of 384-dimension vectors takes a few milliseconds, so an index
/// would only cost build time and recall.
pub const DEFAULT_INDEX_THRESHOLD_ROWS: usize = 10_000;

/// HNSW candidates a search keeps when [`LanceStoreConfig::new`] is used.
///
/// LanceDB's own default is 1.5 × the hits asked for (15 for ten hits), which reached a
/// recall@10 of 0.934 on the benchmark's 100 000 clustered vectors, against 0.977 for 64;
/// `docs/BENCHMARKS.md` has the measured recall and latency of the values tried.
pub const DEFAULT_SEARCH_EF: usize = 64;

/// How to open a [`crate::LanceStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanceStoreConfig {
    /// Where the LanceDB database lives: a local directory or an object-store URI
    /// (`s3://bucket/path`). It is passed to LanceDB unchanged, never treated as a path.
    pub uri: String,
    /// The id of the embedding model whose vectors the tables hold.
    pub model_id: String,
    /// The length of every vector.
    pub dimensions: usize,
    /// Build an ANN index on a table once it has at least this many rows.
    pub index_threshold_rows: usize,
    /// Candidates an indexed search keeps before it returns the best hits: more means
    /// higher recall and slower queries. A search never keeps fewer than LanceDB's default
    /// of 1.5 × the hits asked for.
    pub search_ef: usize,
    /// Which set of tables to open: each embedding model an index is (re)built with gets
    /// its own generation, so two models' vectors never share a table. Generation 0 is
    /// `chunks` and `memory`; generation `n` is `chunks_g<n>` and `memory_g<n>`.
    pub generation: u32,
}

impl LanceStoreConfig {
    /// A configuration with the default index threshold.
    pub fn new(uri: impl Into<String>, model_id: impl Into<String>, dimensions: usize) -> Self {
        Self {
            uri: uri.into(),
            model_id: model_id.into(),
            dimensions,
            index_threshold_rows: DEFAULT_INDEX_THRESHOLD_ROWS,
            search_ef: DEFAULT_SEARCH_EF,
            generation: 0,
        }
    }

    /// This configuration for tables of `generation`.
    #[must_use]
    pub fn with_generation(mut self, generation: u32) -> Self {
        self.generation = generation;
        self
    }
}

/// The on-disk name of `table` in `generation`.
#[must_use]
pub fn table_name(table: ragd_core::TableName, generation: u32) -> String {
    if generation == 0 {
        table.as_str().to_owned()
    } else {
        format!("{}_g{generation}", table.as_str())
    }
}
