//! [`LanceStoreConfig`]: where the store lives and which vectors it holds.

/// Rows after which a table gets an ANN index when [`LanceStoreConfig::new`] is used.
///
/// Below this a flat scan of 384-dimension vectors takes a few milliseconds, so an index
/// would only cost build time and recall.
pub const DEFAULT_INDEX_THRESHOLD_ROWS: usize = 10_000;

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
}

impl LanceStoreConfig {
    /// A configuration with the default index threshold.
    pub fn new(uri: impl Into<String>, model_id: impl Into<String>, dimensions: usize) -> Self {
        Self {
            uri: uri.into(),
            model_id: model_id.into(),
            dimensions,
            index_threshold_rows: DEFAULT_INDEX_THRESHOLD_ROWS,
        }
    }
}
