//! `ragd-catalog`: the SQLite catalog: the source of truth for text and metadata.
//!
//! It owns the SQLite database (WAL, versioned migrations through `PRAGMA user_version`):
//! documents, their extracted text, chunks and the FTS5 chunk index (schema version 1);
//! chat sessions, their documents, tags and messages with FTS5 indexes (version 2).
//!
//! The API is synchronous: every [`Catalog`] method blocks on SQLite, so async callers run
//! it inside `tokio::task::spawn_blocking`. A [`Catalog`] is a cheap, cloneable handle:
//! writes share one read-write connection; keyword search and the lookups of search hits
//! use read-only connections of their own (one per core), so they run side by side and
//! beside a write.
//!
//! - Documents are deduplicated by sha256 ([`Catalog::insert_document`]) and move through
//!   their lifecycle with [`Catalog::set_status`].
//! - [`Catalog::replace_chunks`] stores a document's full text and its chunks in one
//!   transaction; FTS5 is kept in sync by triggers, including on cascade deletes.
//! - [`Catalog::keyword_search`] ranks chunks by BM25 and never lets user text reach the
//!   FTS5 query syntax.
//! - Sessions ([`Catalog::create_session`], [`Catalog::list_sessions`] with search over
//!   names, tags and message text) and their messages ([`Catalog::append_message`], which
//!   also marks the session active).
//!
//! Architecture invariant: no SQL outside this crate; its public API is typed functions over
//! domain types, so another database can replace it without touching ingest or chat.
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

mod catalog;
mod chunks;
mod collections;
mod documents;
pub mod error;
mod generations;
mod messages;
mod metadata;
mod rows;
mod schema;
mod search;
mod sessions;

pub use catalog::{Catalog, Page};
pub use collections::{
    CollectionUpdate, MAX_COLLECTION_CHANGE, MAX_COLLECTION_DESCRIPTION_CHARS,
    MAX_COLLECTION_NAME_CHARS, NewCollection,
};
pub use documents::{DocumentQuery, InsertOutcome, NewDocument};
pub use error::{Error, Result};
pub use generations::{GenerationState, VectorGeneration};
pub use messages::{MAX_MESSAGE_BYTES, NewMessage};
pub use schema::SCHEMA_VERSION;
pub use search::{HIGHLIGHT_END, HIGHLIGHT_START, KeywordHit, KeywordQuery, MAX_QUERY_TERMS};
pub use sessions::{
    MAX_NAME_CHARS, MAX_SESSION_DOCUMENTS, MAX_TAG_CHARS, MAX_TAGS, NewSession, SessionQuery,
    SessionUpdate, TagSource, normalize_tag,
};
