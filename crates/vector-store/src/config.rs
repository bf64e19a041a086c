//! [`LanceStoreConfig`]: where the store lives ([`StoreLocation`]: a directory or an object
//! store) and which vectors it holds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

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

/// Where a LanceDB database lives and how to reach it.
///
/// `uri` is a local directory or an object-store URI: `s3://bucket/prefix` in every build,
/// `gs://` and `az://` in builds with the `gcs` and `azure` features. It is passed to LanceDB
/// unchanged, never treated as a path. Credentials come from `storage_options` or, as LanceDB
/// reads them, from the usual environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, ...).
///
/// Several processes may write to one object-store database at once: LanceDB commits each
/// write with a conditional put (S3's `If-None-Match`), so a write that lost the race is
/// retried on the new version instead of overwriting it. Set `read_consistency` so that each
/// process also sees the others' writes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct StoreLocation {
    /// The database's directory or URI.
    pub uri: String,
    /// LanceDB storage options (`aws_endpoint`, `aws_region`, `aws_allow_http`,
    /// `aws_access_key_id`, ...). Their values are never printed by `Debug`.
    pub storage_options: BTreeMap<String, String>,
    /// How old a table's view may get before a read looks for versions other processes
    /// committed: `Some(Duration::ZERO)` looks before every read, `None` never does (right
    /// when this process is the only writer).
    pub read_consistency: Option<Duration>,
}

impl StoreLocation {
    /// A database at `uri`, with no storage options, that only this process writes.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), ..Self::default() }
    }

    /// Whether `uri` names an object store (`s3://`, `gs://`, `az://`, ...), not a local
    /// directory (a path or a `file://` URL).
    #[must_use]
    pub fn is_object_store(&self) -> bool {
        is_object_store_uri(&self.uri)
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLocation")
            .field("uri", &self.uri)
            .field("storage_options", &self.storage_options.keys().collect::<Vec<_>>())
            .field("read_consistency", &self.read_consistency)
            .finish()
    }
}

/// Whether `uri` names an object store rather than a local directory: it has a scheme of
/// two or more letters followed by `://`, other than `file`.
#[must_use]
pub fn is_object_store_uri(uri: &str) -> bool {
    uri.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !scheme.eq_ignore_ascii_case("file")
    })
}

/// How to open a [`crate::LanceStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanceStoreConfig {
    /// Where the LanceDB database lives.
    pub location: StoreLocation,
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
    /// A configuration with the default index threshold, for a database at `uri` that only
    /// this process writes ([`StoreLocation::new`]; see [`LanceStoreConfig::with_location`]).
    pub fn new(uri: impl Into<String>, model_id: impl Into<String>, dimensions: usize) -> Self {
        Self {
            location: StoreLocation::new(uri),
            model_id: model_id.into(),
            dimensions,
            index_threshold_rows: DEFAULT_INDEX_THRESHOLD_ROWS,
            search_ef: DEFAULT_SEARCH_EF,
            generation: 0,
        }
    }

    /// This configuration for the database at `location`.
    #[must_use]
    pub fn with_location(mut self, location: StoreLocation) -> Self {
        self.location = location;
        self
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_uris_are_told_from_paths() {
        for uri in ["s3://bucket/ragd", "gs://b/p", "az://container/p", "s3+ddb://b/p?x=y"] {
            assert!(is_object_store_uri(uri), "{uri}");
        }
        for uri in ["/var/lib/ragd/lance", "data/lance", "file:///tmp/lance", "C://x", ""] {
            assert!(!is_object_store_uri(uri), "{uri}");
        }
    }

    #[test]
    fn debug_never_prints_storage_option_values() {
        let mut location = StoreLocation::new("s3://bucket/ragd");
        location.storage_options.insert("aws_secret_access_key".into(), "hunter2".into());
        let printed = format!("{:?}", LanceStoreConfig::new("x", "m", 3).with_location(location));
        assert!(printed.contains("aws_secret_access_key"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
