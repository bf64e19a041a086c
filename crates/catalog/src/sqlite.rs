//! The SQLite catalog, [`SqliteCatalog`]: opening the database and sharing its connections.
//!
//! The default backend: one file in the data directory, WAL journaling, FTS5 for keyword
//! search. Its methods live in the topic modules (`documents.rs`, `chunks.rs`, ...); the
//! [`CatalogBackend`](crate::CatalogBackend) implementation at the end forwards to them.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use std::collections::HashSet;

use ragd_core::DocumentId;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use std::ops::Range;

use ragd_core::{
    Chunk, ChunkId, Collection, CollectionId, Document, DocumentStatus, Message, MessageId,
    Metadata, MetadataFilter, Session, SessionId,
};

use crate::{
    CollectionUpdate, DocumentQuery, InsertOutcome, KeywordHit, KeywordQuery, NewCollection,
    NewDocument, NewMessage, NewSession, Page, SessionQuery, SessionUpdate, VectorGeneration,
    leases::Lease,
};

use crate::{
    error::{Error, Result},
    rows::{id_to_sql, uuid_from_sql},
    schema,
};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most read-only connections a file catalog opens for searches.
const MAX_READERS: usize = 8;

/// The catalog in a SQLite database.
///
/// Cloning is cheap and every clone shares one read-write connection behind a mutex, so
/// writes (and reads that must see a transaction's own writes) are serialized. A catalog
/// opened from a file also keeps a few read-only connections for searches, which in WAL
/// mode run beside each other and beside a writer. Every method blocks on SQLite; async
/// callers run them through [`Catalog::run`](crate::Catalog::run), on Tokio's blocking pool.
#[derive(Clone)]
pub struct SqliteCatalog {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
    path: Option<Arc<PathBuf>>,
}

/// Read-only connections, one per core up to [`MAX_READERS`]; none for an in-memory
/// catalog, whose reads share the one connection.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    /// Where the next reader that finds every connection busy waits.
    next: AtomicUsize,
}

impl Readers {
    fn new(conns: Vec<Mutex<Connection>>) -> Self {
        Self { conns, next: AtomicUsize::new(0) }
    }
}

impl fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SqliteCatalog");
        match &self.path {
            Some(path) => out.field("path", path),
            None => out.field("path", &":memory:"),
        };
        out.finish_non_exhaustive()
    }
}

impl SqliteCatalog {
    /// Opens (creating if needed) the database file at `path` and migrates it to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    ///
    /// The parent directory must exist. The connection uses WAL journaling,
    /// `synchronous=NORMAL`, enforced foreign keys and a busy timeout.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaTooNew`] when the file was written by a newer ragd (nothing is
    /// changed), [`Error::Sqlite`] when the file cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        let journal_mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), journal_mode, "catalog is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut catalog = Self::configure(conn, Some(path.to_path_buf()))?;
        // Opened after the migration, so they read the current schema.
        let count = std::thread::available_parallelism().map_or(2, usize::from).min(MAX_READERS);
        let conns = (0..count)
            .map(|_| {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let reader = Connection::open_with_flags(path, flags)?;
                reader.busy_timeout(BUSY_TIMEOUT)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>>>()?;
        catalog.readers = Arc::new(Readers::new(conns));
        tracing::debug!(path = %path.display(), readers = count, "opened catalog");
        Ok(catalog)
    }

    /// Opens a private, empty in-memory database, for tests.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when SQLite cannot allocate or migrate it.
    pub fn open_in_memory() -> Result<Self> {
        Self::configure(Connection::open_in_memory()?, None)
    }

    /// Applies the settings shared by every connection, migrates, and wraps it.
    fn configure(mut conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleting a document relies on cascades, so refuse a build that ignores them.
        let foreign_keys: bool = conn.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
        if !foreign_keys {
            return Err(Error::Corrupt("SQLite refused to enable foreign keys".to_owned()));
        }
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Readers::new(Vec::new())),
            path: path.map(Arc::new),
        })
    }

    /// Takes the connection.
    ///
    /// A panic while the lock was held cannot leave a transaction open (a dropped
    /// `rusqlite::Transaction` rolls back), so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a read-only connection: an idle one if there is one, else the next in turn
    /// (the read-write connection for an in-memory catalog). It sees every committed write
    /// but not an open transaction's, and refuses to write.
    pub(crate) fn read(&self) -> MutexGuard<'_, Connection> {
        let conns = &self.readers.conns;
        if conns.is_empty() {
            return self.lock();
        }
        for conn in conns {
            match conn.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let turn = self.readers.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        conns[turn].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version stored in the database.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn schema_version(&self) -> Result<i64> {
        schema::user_version(&self.lock())
    }

    /// How many documents are stored.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn count_documents(&self) -> Result<u64> {
        let count: i64 =
            self.lock().query_row("SELECT count(*) FROM documents", [], |row| row.get(0))?;
        Ok(count.unsigned_abs())
    }

    /// How many chunks are stored, in all documents or in one.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn count_chunks(&self, document: Option<DocumentId>) -> Result<u64> {
        let conn = self.lock();
        let count: i64 = match document {
            Some(id) => conn.query_row(
                "SELECT count(*) FROM chunks WHERE document_id = ?1",
                [id_to_sql(id)],
                |row| row.get(0),
            )?,
            None => conn.query_row("SELECT count(*) FROM chunks", [], |row| row.get(0))?,
        };
        Ok(count.unsigned_abs())
    }
}

impl SqliteCatalog {
    /// The ids of every chunk, to find vectors whose chunk is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable id.
    pub(crate) fn all_chunk_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM chunks")
    }

    /// The ids of every message, to find memory vectors whose exchange is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable id.
    pub(crate) fn all_message_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM messages")
    }

    fn all_ids(&self, sql: &str) -> Result<HashSet<Uuid>> {
        let conn = self.lock();
        let mut statement = conn.prepare(sql)?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|id| uuid_from_sql(&id?)).collect()
    }
}

crate::backend::forward_catalog_backend!(SqliteCatalog);

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)] // A failed setup fails the test loudly.

    use std::{sync::mpsc, thread};

    use ragd_core::{Chunk, ChunkId};

    use super::*;
    use crate::{KeywordQuery, NewDocument};

    /// A file catalog holding one document with one chunk of `text`.
    pub(crate) fn seeded(text: &str) -> (tempfile::TempDir, SqliteCatalog, DocumentId, ChunkId) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        let document = catalog
            .insert_document(NewDocument {
                id: DocumentId::new(),
                filename: "notes.txt".to_owned(),
                mime: "text/plain".to_owned(),
                sha256: format!("{:064x}", 1),
                bytes: 10,
            })
            .unwrap()
            .into_document();
        let chunk = Chunk {
            id: ChunkId::new(),
            document_id: document.id,
            ordinal: 0,
            text: text.to_owned(),
            char_start: 0,
            char_end: text.chars().count() as u64,
            token_count: 3,
            page: None,
            heading: None,
        };
        catalog.replace_chunks(document.id, text, std::slice::from_ref(&chunk)).unwrap();
        (dir, catalog, document.id, chunk.id)
    }

    #[test]
    fn searches_and_lookups_go_on_while_the_write_connection_is_held() {
        let (_dir, catalog, document, chunk) = seeded("the quokka crossed the road");
        let writing = catalog.lock();
        let (sender, receiver) = mpsc::channel();
        let reader = catalog.clone();
        thread::spawn(move || {
            let query =
                KeywordQuery { text: "quokka".to_owned(), top_k: 5, document_ids: Vec::new() };
            let hits = reader.keyword_search(&query).map(|hits| hits.len());
            let chunks = reader.get_chunks(&[chunk]).map(|chunks| chunks.len());
            let filename = reader.get_document(document).map(|document| document.filename);
            // The receiver may be gone when the test already failed.
            let _ = sender.send((hits, chunks, filename));
        });
        let read = receiver.recv_timeout(Duration::from_secs(20));
        drop(writing);
        let (hits, chunks, filename) = read.expect("the reads waited for the write connection");
        assert_eq!(hits.unwrap(), 1);
        assert_eq!(chunks.unwrap(), 1);
        assert_eq!(filename.unwrap(), "notes.txt");
    }

    #[test]
    fn readers_see_every_committed_write_and_refuse_to_write() {
        let (_dir, catalog, document, _chunk) = seeded("the quokka crossed the road");
        let query =
            |text: &str| KeywordQuery { text: text.to_owned(), top_k: 5, document_ids: Vec::new() };
        let readers = catalog.readers.conns.len();
        assert!(readers >= 1, "a file catalog opened no reader connections");
        // Each round busies the readers before the one it means to ask, so each answers.
        for round in 0..readers * 2 {
            let busy: Vec<_> = catalog.readers.conns[..round % readers]
                .iter()
                .map(|conn| conn.lock().unwrap())
                .collect();
            let text = format!("the wombat{round} dug a burrow");
            let chunk = Chunk {
                id: ChunkId::new(),
                document_id: document,
                ordinal: 0,
                text: text.clone(),
                char_start: 0,
                char_end: text.chars().count() as u64,
                token_count: 5,
                page: None,
                heading: None,
            };
            catalog.replace_chunks(document, &text, &[chunk]).unwrap();
            let hits = catalog.keyword_search(&query(&format!("wombat{round}"))).unwrap();
            assert_eq!(hits.len(), 1, "round {round}");
            assert!(catalog.keyword_search(&query("quokka")).unwrap().is_empty(), "round {round}");
            drop(busy);
        }
        let written = catalog.read().execute("DELETE FROM chunks", []);
        assert!(written.is_err(), "a reader connection wrote: {written:?}");
    }

    #[test]
    fn an_in_memory_catalog_reads_on_its_one_connection() {
        let catalog = SqliteCatalog::open_in_memory().unwrap();
        assert!(catalog.readers.conns.is_empty());
        assert_eq!(
            catalog.read().query_row("SELECT 1", [], |row| row.get::<_, i64>(0)).unwrap(),
            1
        );
    }
}
