//! Integration tests of `ragd-catalog` against real SQLite files, in one test binary.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod chunks;
mod collections;
mod documents;
mod metadata;
mod schema;
mod search;
mod sessions;

use ragd_catalog::{Catalog, NewDocument};
use ragd_core::{Chunk, ChunkId, Document, DocumentId};

/// A catalog in a fresh temporary directory; keep the directory alive while using it.
fn temp_catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
    (dir, catalog)
}

/// A hex sha256 made from a small number, unique per number.
fn sha(n: u32) -> String {
    format!("{n:064x}")
}

/// Inserts a new document and returns it.
fn add_document(catalog: &Catalog, filename: &str, mime: &str, n: u32) -> Document {
    catalog
        .insert_document(NewDocument {
            id: DocumentId::new(),
            filename: filename.to_owned(),
            mime: mime.to_owned(),
            sha256: sha(n),
            bytes: u64::from(n) * 10,
        })
        .unwrap()
        .into_document()
}

/// Splits `text` into one chunk per line, with char offsets.
fn line_chunks(document: DocumentId, text: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut start = 0u64;
    for (ordinal, line) in text.split('\n').enumerate() {
        let len = line.chars().count() as u64;
        chunks.push(Chunk {
            id: ChunkId::new(),
            document_id: document,
            ordinal: ordinal as u32,
            text: line.to_owned(),
            char_start: start,
            char_end: start + len,
            token_count: line.split_whitespace().count() as u32,
            page: Some(1),
            heading: Some(format!("Line {ordinal}")),
        });
        start += len + 1;
    }
    chunks
}

/// Opens a raw connection to the catalog file, for checks the API does not expose.
fn raw(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("catalog.sqlite3")).unwrap()
}

/// Counts the rows of `table` through a raw connection.
fn count_rows(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).unwrap()
}
