//! `ragd-catalog`: the catalog, the source of truth for text and metadata.
//!
//! Documents, their extracted text, chunks and a keyword index over them; chat sessions,
//! their documents, tags and messages; collections, document metadata and the generations
//! of the vector index. Two databases hold it, behind one trait, [`CatalogBackend`]:
//!
//! - [`SqliteCatalog`], the default: one file (WAL, versioned migrations through
//!   `PRAGMA user_version`, FTS5 for keyword search). Writes share one read-write
//!   connection; keyword search and the lookups of search hits use read-only connections
//!   of their own (one per core), so they run side by side and beside a write.
//! - [`PostgresCatalog`]: a Postgres database several ragd replicas share (a bounded
//!   connection pool, migrations under an advisory lock, `tsvector` columns with GIN
//!   indexes and `ts_rank_cd` for keyword search, races settled by the database).
//!
//! One test suite runs on both. [`Catalog`] is the cheap, cloneable handle the other crates
//! hold; it dereferences to the backend, so every operation is a method call on it. The API
//! is synchronous: every method blocks on the database, so async callers go through
//! [`Catalog::run`] (Tokio's blocking pool).
//!
//! - Documents are deduplicated by sha256 ([`Catalog::insert_document`]) and move through
//!   their lifecycle with [`Catalog::set_status`].
//! - [`Catalog::replace_chunks`] stores a document's full text and its chunks in one
//!   transaction; the keyword index follows (FTS5 triggers, generated `tsvector`s),
//!   including on cascade deletes.
//! - [`Catalog::keyword_search`] ranks chunks (BM25 on SQLite, `ts_rank_cd` on Postgres)
//!   and never lets user text reach the query syntax.
//! - Sessions ([`Catalog::create_session`], [`Catalog::list_sessions`] with search over
//!   names, tags and message text) and their messages ([`Catalog::append_message`], which
//!   also marks the session active).
//!
//! Architecture invariant: no SQL outside this crate; its public API is typed functions over
//! domain types, so another database replaces it without touching ingest or chat: implement
//! [`CatalogBackend`] and hand it to [`Catalog::from_backend`].
//!
//! ```no_run
//! use ragd_catalog::{Catalog, InsertOutcome, KeywordQuery, NewDocument};
//! use ragd_core::DocumentId;
//!
//! # fn main() -> ragd_catalog::Result<()> {
//! let catalog = Catalog::open(std::path::Path::new("data/catalog.sqlite3"))?;
//! let outcome = catalog.insert_document(NewDocument {
//!     id: DocumentId::new(),
//!     filename: "notes.md".into(),
//!     mime: "text/markdown".into(),
//!     sha256: "0".repeat(64),
//!     bytes: 12,
//! })?;
//! if let InsertOutcome::Created(document) = outcome {
//!     catalog.replace_chunks(document.id, "Hello world", &[])?;
//! }
//! let hits = catalog.keyword_search(&KeywordQuery {
//!     text: "hello".into(),
//!     top_k: 5,
//!     document_ids: Vec::new(),
//! })?;
//! assert!(hits.is_empty());
//! # Ok(())
//! # }
//! ```

mod backend;
mod catalog;
mod chunks;
mod collections;
mod documents;
pub mod error;
mod generations;
mod leases;
mod messages;
mod metadata;
mod pg;
mod rows;
mod schema;
mod search;
mod sessions;
mod sqlite;

pub use backend::CatalogBackend;
pub use catalog::{Catalog, Page};
pub use collections::{
    CollectionUpdate, MAX_COLLECTION_CHANGE, MAX_COLLECTION_DESCRIPTION_CHARS,
    MAX_COLLECTION_NAME_CHARS, NewCollection,
};
pub use documents::{DocumentQuery, InsertOutcome, NewDocument};
pub use error::{Error, Result};
pub use generations::{GenerationState, VectorGeneration};
pub use leases::{Lease, UNFINISHED};
pub use messages::{MAX_MESSAGE_BYTES, NewMessage};
pub use pg::PostgresCatalog;
pub use schema::SCHEMA_VERSION;
pub use search::{HIGHLIGHT_END, HIGHLIGHT_START, KeywordHit, KeywordQuery, MAX_QUERY_TERMS};
pub use sessions::{
    MAX_NAME_CHARS, MAX_SESSION_DOCUMENTS, MAX_TAG_CHARS, MAX_TAGS, NewSession, SessionQuery,
    SessionUpdate, TagSource, normalize_tag,
};
pub use sqlite::SqliteCatalog;
