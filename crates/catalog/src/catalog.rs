//! The [`Catalog`] handle: opening the database and sharing its connection.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use std::collections::HashSet;

use ragd_core::DocumentId;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    rows::id_to_sql,
    schema,
};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle to the catalog database.
///
/// Cloning is cheap and every clone shares one connection behind a mutex, so calls are
/// serialized. Every method blocks on SQLite; async callers run them through
/// [`Catalog::run`], on Tokio's blocking pool.
#[derive(Clone)]
pub struct Catalog {
    conn: Arc<Mutex<Connection>>,
    path: Option<Arc<PathBuf>>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Catalog");
        match &self.path {
            Some(path) => out.field("path", path),
            None => out.field("path", &":memory:"),
        };
        out.finish_non_exhaustive()
    }
}

impl Catalog {
    /// Runs `f` on this catalog on Tokio's blocking pool: the one way async code calls the
    /// catalog without blocking the runtime.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Task`] when it panicked.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Self) -> Result<T> + Send + 'static,
    {
        let catalog = self.clone();
        tokio::task::spawn_blocking(move || f(&catalog)).await?
    }

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
        let catalog = Self::configure(conn, Some(path.to_path_buf()))?;
        tracing::debug!(path = %path.display(), "opened catalog");
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
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path: path.map(Arc::new) })
    }

    /// Takes the connection.
    ///
    /// A panic while the lock was held cannot leave a transaction open (a dropped
    /// `rusqlite::Transaction` rolls back), so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version stored in the database.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub fn schema_version(&self) -> Result<i64> {
        schema::user_version(&self.lock())
    }

    /// How many documents are stored.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub fn count_documents(&self) -> Result<u64> {
        let count: i64 =
            self.lock().query_row("SELECT count(*) FROM documents", [], |row| row.get(0))?;
        Ok(count.unsigned_abs())
    }

    /// How many chunks are stored, in all documents or in one.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub fn count_chunks(&self, document: Option<DocumentId>) -> Result<u64> {
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

impl Catalog {
    /// The ids of every chunk, to find vectors whose chunk is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable id.
    pub fn all_chunk_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM chunks")
    }

    /// The ids of every message, to find memory vectors whose exchange is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable id.
    pub fn all_message_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM messages")
    }

    fn all_ids(&self, sql: &str) -> Result<HashSet<Uuid>> {
        let conn = self.lock();
        let mut statement = conn.prepare(sql)?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|id| {
            let id = id?;
            Uuid::parse_str(&id).map_err(|err| Error::CorruptValue {
                what: format!("id {id:?}"),
                source: err.into(),
            })
        })
        .collect()
    }
}

/// One page of a listing, with the number of matches over all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match the query, ignoring `limit` and `offset`.
    pub total: u64,
}
