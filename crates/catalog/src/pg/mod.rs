//! The Postgres catalog, [`PostgresCatalog`]: the same catalog as SQLite's, in a server that
//! several ragd replicas share.
//!
//! Connections come from a bounded pool (`r2d2`), each a synchronous `postgres` client, so
//! the API blocks like SQLite's and async callers use [`Catalog::run`](crate::Catalog::run).
//! The schema (`schema.rs`) mirrors SQLite's: ids and times are stored as the same text
//! (hyphenated UUIDs, fixed-width RFC 3339 with nanoseconds, which sorts in time order and
//! round-trips exactly where `timestamptz` would keep microseconds), so the row conversions
//! in `rows.rs` serve both. Full-text search uses `tsvector` columns with GIN indexes and
//! `ts_rank_cd`, with the query rules of `search.rs`.
//!
//! Several replicas write at once, so each write is one transaction whose races are
//! settled by the database (`ON CONFLICT`, row locks with `FOR UPDATE`), never by a lock
//! in this process.

mod chunks;
mod collections;
mod documents;
mod generations;
mod leases;
mod messages;
mod metadata;
mod schema;
mod search;
mod sessions;
mod tls;

use std::{collections::HashSet, fmt, time::Duration};

use r2d2_postgres::{PostgresConnectionManager, r2d2};
use ragd_core::DocumentId;
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
};

/// The most connections one catalog holds open.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before failing as unavailable.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection: a `postgres::Client` that goes back to the pool when dropped.
pub(crate) type Client = r2d2::PooledConnection<PostgresConnectionManager<tls::Tls>>;

/// The catalog in a Postgres database.
#[derive(Clone)]
pub struct PostgresCatalog {
    pool: r2d2::Pool<PostgresConnectionManager<tls::Tls>>,
    /// Where it connected, without the password, for logs and `Debug`.
    target: String,
}

impl fmt::Debug for PostgresCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCatalog").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PostgresCatalog {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, or
    /// libpq's `key=value` form) and migrates it to the newest schema.
    ///
    /// TLS follows libpq's `sslmode` (`disable`, `prefer` by default, `require`,
    /// `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file, or `system`), so a URL that
    /// works with `psql` works here; only `verify-ca` and `verify-full` authenticate the
    /// server. Concurrent replicas may connect at once: migrations take an advisory lock, so
    /// each script runs once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed URL or unusable root certificates,
    /// [`Error::Connect`] when the server cannot
    /// be reached or refuses the login, [`Error::SchemaTooNew`] when a newer ragd migrated the database,
    /// [`Error::Postgres`] when a migration fails.
    pub fn connect(url: &str) -> Result<Self> {
        let (config, tls) = tls::connector(url)?;
        let target = describe(&config);
        // One connection first, outside the pool: an unreachable server fails at once with
        // the reason, where the pool would wait out its timeout.
        let mut first = config
            .connect(tls.clone())
            .map_err(|source| Error::Connect { target: target.clone(), source })?;
        schema::migrate(&mut first)?;
        drop(first);
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = r2d2::Pool::builder()
            .max_size(MAX_CONNECTIONS)
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_TIMEOUT)
            .build(manager)?;
        let catalog = Self { pool, target };
        tracing::debug!(target = %catalog.target, "opened Postgres catalog");
        Ok(catalog)
    }

    /// Takes a connection from the pool, waiting up to [`CONNECTION_TIMEOUT`].
    pub(crate) fn client(&self) -> Result<Client> {
        Ok(self.pool.get()?)
    }

    fn all_ids(&self, sql: &str) -> Result<HashSet<Uuid>> {
        self.client()?.query(sql, &[])?.iter().map(|row| uuid_from_sql(row.try_get(0)?)).collect()
    }
}

/// `user@host:port/dbname` of a connection, never the password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// Converts a count read as `bigint`.
pub(crate) fn count(value: i64) -> u64 {
    value.unsigned_abs()
}

impl PostgresCatalog {
    pub(crate) fn schema_version(&self) -> Result<i64> {
        schema::stored_version(&mut *self.client()?)
    }

    pub(crate) fn count_documents(&self) -> Result<u64> {
        let row = self.client()?.query_one("SELECT count(*) FROM documents", &[])?;
        Ok(count(row.try_get(0)?))
    }

    pub(crate) fn count_chunks(&self, document: Option<DocumentId>) -> Result<u64> {
        let mut client = self.client()?;
        let row = match document {
            Some(id) => client.query_one(
                "SELECT count(*) FROM chunks WHERE document_id = $1",
                &[&id_to_sql(id)],
            )?,
            None => client.query_one("SELECT count(*) FROM chunks", &[])?,
        };
        Ok(count(row.try_get(0)?))
    }

    pub(crate) fn all_chunk_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM chunks")
    }

    pub(crate) fn all_message_ids(&self) -> Result<HashSet<Uuid>> {
        self.all_ids("SELECT id FROM messages")
    }
}

crate::backend::forward_catalog_backend!(PostgresCatalog);
