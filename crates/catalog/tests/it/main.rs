//! Integration tests of `ragd-catalog`, in one test binary: one suite run on both
//! backends, a SQLite file in a temp dir (`sqlite::`) and a new database on a throwaway
//! Postgres server on loopback (`postgres::`, `ragd_test_utils::PgDatabase`).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

/// Runs each named test, a `fn(Backend)` of the module, once per backend.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test(crate::Backend::Sqlite);
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    super::$test(crate::Backend::Postgres);
                }
            )+
        }
    };
}

mod chunks;
mod collections;
mod documents;
mod leases;
mod metadata;
mod pg_schema;
mod pg_tls;
mod schema;
mod search;
mod sessions;

use ragd_catalog::{Catalog, NewDocument};
use ragd_core::{Chunk, ChunkId, Document, DocumentId};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the test process's Postgres server.
    Postgres,
}

/// What keeps a test's database alive, and reaches it behind the catalog's back.
#[derive(Debug)]
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(ragd_test_utils::PgDatabase),
}

/// An empty catalog on `backend`; keep the fixture alive while using it.
fn temp_catalog(backend: Backend) -> (Fixture, Catalog) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
            (Fixture::Sqlite(dir), catalog)
        }
        Backend::Postgres => {
            let database = ragd_test_utils::PgDatabase::create();
            let catalog = Catalog::connect_postgres(&database.url).unwrap();
            (Fixture::Postgres(database), catalog)
        }
    }
}

/// A SQLite catalog in a fresh temporary directory, for the tests of SQLite's own schema.
fn temp_sqlite_catalog() -> (tempfile::TempDir, Catalog) {
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

/// The chunks a keyword search for `text` finds, at most 10.
fn keyword_hits(catalog: &Catalog, text: &str) -> Vec<ragd_catalog::KeywordHit> {
    let query =
        ragd_catalog::KeywordQuery { text: text.to_owned(), top_k: 10, document_ids: Vec::new() };
    catalog.keyword_search(&query).unwrap()
}

/// On SQLite, checks that the FTS5 chunk index agrees with its content table row for row;
/// Postgres keeps each chunk's `tsvector` in its row, so there is nothing to drift.
fn check_fts_integrity(fixture: &Fixture) {
    if let Fixture::Sqlite(dir) = fixture {
        raw(dir)
            .execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')", [])
            .unwrap();
    }
}

/// Opens a raw connection to the catalog file, for checks the API does not expose.
fn raw(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("catalog.sqlite3")).unwrap()
}

/// Counts the rows of `table` through a connection of its own.
fn count_rows(fixture: &Fixture, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    match fixture {
        Fixture::Sqlite(dir) => raw(dir).query_row(&sql, [], |row| row.get(0)).unwrap(),
        Fixture::Postgres(database) => postgres::Client::connect(&database.url, postgres::NoTls)
            .unwrap()
            .query_one(&sql, &[])
            .unwrap()
            .get(0),
    }
}
