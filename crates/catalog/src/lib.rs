//! `ragd-catalog`: the SQLite catalog: the source of truth for text and metadata.
//!
//! It owns the SQLite database (WAL, versioned migrations through `PRAGMA user_version`):
//! documents, chunks, the FTS5 indexes, sessions, messages and tags.
//!
//! Architecture invariant: no SQL outside this crate; its public API is typed functions over
//! domain types, so another database can replace it without touching ingest or chat.

pub mod error;

pub use error::{Error, Result};
