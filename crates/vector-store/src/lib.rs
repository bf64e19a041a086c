//! `ragd-vector-store`: the vector store on embedded LanceDB.
//!
//! It owns [`LanceStore`], the [`ragd_core::VectorStore`] implementation on embedded
//! LanceDB: the `chunks` and `memory` tables, their schema version and model id, ANN
//! indexes.
//!
//! - [`LanceStore::open`] connects to a [`StoreLocation`]: a local directory or an
//!   object-store URI (`s3://bucket/prefix`; `gs://` and `az://` with the `gcs` and `azure`
//!   features) with its storage options, and creates the tables when missing. Several
//!   processes may share an object-store database: LanceDB commits with conditional puts,
//!   and [`StoreLocation::read_consistency`] makes each see the others' writes. Each table's Arrow schema metadata records
//!   `ragd.schema_version`, `ragd.model_id` and `ragd.dimensions`; a table built with another
//!   model or dimension is refused with [`ragd_core::ErrorKind::Conflict`] and a message
//!   saying how to reindex (architecture invariant 5).
//! - Upserts replace by id in one `merge_insert`; searches rank by cosine similarity
//!   (`1 - cosine distance`); deletes need a non-empty filter.
//! - Once a table has [`LanceStoreConfig::index_threshold_rows`] rows an IVF_HNSW_SQ
//!   index is built; until then searches are exact flat scans.
//!
//! Architecture invariant: Arrow and LanceDB types never cross this crate's public API.
//!
//! ```no_run
//! use ragd_core::{SearchRequest, TableName, VectorFilter, VectorStore};
//! use ragd_vector_store::{LanceStore, LanceStoreConfig};
//!
//! # async fn example() -> ragd_core::Result<()> {
//! let store = LanceStore::open(LanceStoreConfig::new("data/lance", "bge-small-en-v1.5", 384))
//!     .await?;
//! let hits = store
//!     .search(SearchRequest {
//!         table: TableName::Chunks,
//!         vector: vec![0.0; 384],
//!         top_k: 5,
//!         filter: VectorFilter::default(),
//!     })
//!     .await?;
//! # let _ = hits;
//! # Ok(())
//! # }
//! ```

mod config;
pub mod error;
mod filter;
mod rows;
mod schema;
mod store;

pub use config::{
    DEFAULT_INDEX_THRESHOLD_ROWS, DEFAULT_SEARCH_EF, LanceStoreConfig, StoreLocation,
    is_object_store_uri, table_name,
};
pub use error::{Error, Result, TableShape};
pub use schema::SCHEMA_VERSION;
pub use store::LanceStore;
