//! `ragd-search`: retrieval over stored chunks.
//!
//! - **Keyword**: SQLite FTS5 with BM25 ranking and highlighted snippets (`ragd-catalog`).
//! - **Semantic**: the query embedded by an [`ragd_core::Embedder`], nearest chunk vectors
//!   from a [`ragd_core::VectorStore`], chunks read back from the catalog by id.
//! - **Hybrid**: both lists fused by weighted reciprocal rank fusion ([`fuse`]), which
//!   needs no score calibration between BM25 and cosine; optionally the best fused
//!   candidates are then reordered by a [`ragd_core::Reranker`] that reads query and
//!   passage together.
//!
//! [`Searcher`] is the service the HTTP API, the CLI and chat share. Every mode can be
//! restricted to documents, collections and a metadata filter. [`eval`] scores the modes
//! against a labelled set of queries (`ragd eval`).
//!
//! Architecture invariant: written against `ragd-core` traits and `ragd-catalog` only; it
//! never depends on `ragd-embedding`, `ragd-vector-store` or `ragd-llm-backends`.

pub mod error;
pub mod eval;
mod fusion;
mod searcher;

pub use error::{Error, Result};
pub use fusion::{RankedList, fuse};
pub use searcher::{
    Hit, HybridOptions, MAX_RERANK_CANDIDATES, MAX_TOP_K, RerankStage, SearchQuery, Searcher,
    SearcherParts, check_rerank_candidates,
};
