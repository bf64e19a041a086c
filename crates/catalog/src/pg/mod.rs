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

use std::{collections::HashSet, fmt, time::Duration};

use postgres::NoTls;
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
    backend::CatalogBackend, leases::Lease,
};

use crate::{
    error::{Error, Result},
    rows::id_to_sql,
};

/// The most connections one catalog holds open.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before failing as unavailable.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled connection: a `postgres::Client` that goes back to the pool when dropped.
pub(crate) type Client = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// The catalog in a Postgres database.
#[derive(Clone)]
pub struct PostgresCatalog {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
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
    /// The connection is not encrypted (no TLS): reach the server over a private network or
    /// a local socket. Concurrent replicas may connect at once: migrations take an advisory
    /// lock, so each script runs once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed URL, [`Error::Connect`] when the server cannot
    /// be reached or refuses the login, [`Error::SchemaTooNew`] when a newer ragd migrated the database,
    /// [`Error::Postgres`] when a migration fails.
    pub fn connect(url: &str) -> Result<Self> {
        let config: postgres::Config = url
            .parse()
            .map_err(|err| Error::InvalidInput(format!("catalog URL is not valid: {err}")))?;
        let target = describe(&config);
        // One connection first, outside the pool: an unreachable server fails at once with
        // the reason, where the pool would wait out its timeout.
        let mut first = config
            .connect(NoTls)
            .map_err(|source| Error::Connect { target: target.clone(), source })?;
        schema::migrate(&mut first)?;
        drop(first);
        let manager = PostgresConnectionManager::new(config, NoTls);
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
        self.client()?
            .query(sql, &[])?
            .iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                Uuid::parse_str(&id).map_err(|err| Error::CorruptValue {
                    what: format!("id {id:?}"),
                    source: err.into(),
                })
            })
            .collect()
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

impl CatalogBackend for PostgresCatalog {
    fn schema_version(&self) -> Result<i64> {
        Self::schema_version(self)
    }

    fn count_documents(&self) -> Result<u64> {
        Self::count_documents(self)
    }

    fn count_chunks(&self, document: Option<DocumentId>) -> Result<u64> {
        Self::count_chunks(self, document)
    }

    fn all_chunk_ids(&self) -> Result<HashSet<Uuid>> {
        Self::all_chunk_ids(self)
    }

    fn all_message_ids(&self) -> Result<HashSet<Uuid>> {
        Self::all_message_ids(self)
    }

    fn insert_document(&self, new: NewDocument) -> Result<InsertOutcome> {
        Self::insert_document(self, new)
    }

    fn insert_document_with_metadata(
        &self,
        new: NewDocument,
        metadata: &ragd_core::Metadata,
    ) -> Result<InsertOutcome> {
        Self::insert_document_with_metadata(self, new, metadata)
    }

    fn get_document(&self, id: DocumentId) -> Result<Document> {
        Self::get_document(self, id)
    }

    fn list_documents(&self, query: &DocumentQuery) -> Result<Page<Document>> {
        Self::list_documents(self, query)
    }

    fn set_status(
        &self,
        id: DocumentId,
        status: DocumentStatus,
        progress: u8,
        error: Option<&str>,
    ) -> Result<()> {
        Self::set_status(self, id, status, progress, error)
    }

    fn set_warnings(&self, id: DocumentId, warnings: &[String]) -> Result<()> {
        Self::set_warnings(self, id, warnings)
    }

    fn requeue_finished(&self, id: DocumentId) -> Result<()> {
        Self::requeue_finished(self, id)
    }

    fn replace_document_file(&self, id: DocumentId, new: &NewDocument) -> Result<Document> {
        Self::replace_document_file(self, id, new)
    }

    fn delete_document(&self, id: DocumentId) -> Result<bool> {
        Self::delete_document(self, id)
    }

    fn documents_with_status(&self, statuses: &[DocumentStatus]) -> Result<Vec<Document>> {
        Self::documents_with_status(self, statuses)
    }

    fn clear_document_content(&self, id: DocumentId) -> Result<()> {
        Self::clear_document_content(self, id)
    }

    fn replace_chunks(&self, id: DocumentId, text: &str, chunks: &[Chunk]) -> Result<()> {
        Self::replace_chunks(self, id, text, chunks)
    }

    fn document_text(&self, id: DocumentId, range: Option<Range<usize>>) -> Result<String> {
        Self::document_text(self, id, range)
    }

    fn list_chunks(&self, id: DocumentId, limit: u32, offset: u32) -> Result<Page<Chunk>> {
        Self::list_chunks(self, id, limit, offset)
    }

    fn get_chunk(&self, id: ChunkId) -> Result<Chunk> {
        Self::get_chunk(self, id)
    }

    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        Self::get_chunks(self, ids)
    }

    fn update_document_metadata(
        &self,
        id: DocumentId,
        set: &Metadata,
        remove: &[String],
    ) -> Result<Document> {
        Self::update_document_metadata(self, id, set, remove)
    }

    fn documents_matching(&self, filter: &MetadataFilter) -> Result<Vec<DocumentId>> {
        Self::documents_matching(self, filter)
    }

    fn keyword_search(&self, query: &KeywordQuery) -> Result<Vec<KeywordHit>> {
        Self::keyword_search(self, query)
    }

    fn create_collection(&self, new: NewCollection) -> Result<Collection> {
        Self::create_collection(self, new)
    }

    fn get_collection(&self, id: CollectionId) -> Result<Collection> {
        Self::get_collection(self, id)
    }

    fn find_collection(&self, id_or_name: &str) -> Result<Collection> {
        Self::find_collection(self, id_or_name)
    }

    fn list_collections(&self, limit: u32, offset: u32) -> Result<Page<Collection>> {
        Self::list_collections(self, limit, offset)
    }

    fn update_collection(&self, id: CollectionId, update: CollectionUpdate) -> Result<Collection> {
        Self::update_collection(self, id, update)
    }

    fn delete_collection(&self, id: CollectionId) -> Result<()> {
        Self::delete_collection(self, id)
    }

    fn add_to_collection(&self, id: CollectionId, documents: &[DocumentId]) -> Result<Collection> {
        Self::add_to_collection(self, id, documents)
    }

    fn remove_from_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection> {
        Self::remove_from_collection(self, id, documents)
    }

    fn collection_document_named(
        &self,
        collection: CollectionId,
        filename: &str,
    ) -> Result<Option<DocumentId>> {
        Self::collection_document_named(self, collection, filename)
    }

    fn collections_of_document(&self, document: DocumentId) -> Result<Vec<CollectionId>> {
        Self::collections_of_document(self, document)
    }

    fn collection_documents(&self, collections: &[CollectionId]) -> Result<Vec<DocumentId>> {
        Self::collection_documents(self, collections)
    }

    fn vector_generations(&self) -> Result<Vec<VectorGeneration>> {
        Self::vector_generations(self)
    }

    fn ensure_active_generation(
        &self,
        generation: u32,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration> {
        Self::ensure_active_generation(self, generation, model_id, dimensions)
    }

    fn start_generation(&self, model_id: &str, dimensions: usize) -> Result<VectorGeneration> {
        Self::start_generation(self, model_id, dimensions)
    }

    fn activate_generation(&self, generation: u32) -> Result<Option<u32>> {
        Self::activate_generation(self, generation)
    }

    fn forget_generation(&self, generation: u32) -> Result<bool> {
        Self::forget_generation(self, generation)
    }

    fn create_session(&self, new: NewSession) -> Result<Session> {
        Self::create_session(self, new)
    }

    fn get_session(&self, id: SessionId) -> Result<Session> {
        Self::get_session(self, id)
    }

    fn list_sessions(&self, query: &SessionQuery) -> Result<Page<Session>> {
        Self::list_sessions(self, query)
    }

    fn update_session(&self, id: SessionId, update: &SessionUpdate) -> Result<Session> {
        Self::update_session(self, id, update)
    }

    fn set_auto_tags(&self, id: SessionId, tags: &[String]) -> Result<Session> {
        Self::set_auto_tags(self, id, tags)
    }

    fn set_session_summary(&self, id: SessionId, summary: &str, through: MessageId) -> Result<()> {
        Self::set_session_summary(self, id, summary, through)
    }

    fn delete_session(&self, id: SessionId) -> Result<bool> {
        Self::delete_session(self, id)
    }

    fn append_message(&self, new: NewMessage) -> Result<Message> {
        Self::append_message(self, new)
    }

    fn set_message_error(&self, id: MessageId, code: &str, message: &str) -> Result<()> {
        Self::set_message_error(self, id, code, message)
    }

    fn list_messages(&self, session: SessionId, limit: u32, offset: u32) -> Result<Page<Message>> {
        Self::list_messages(self, session, limit, offset)
    }

    fn recent_messages(&self, session: SessionId, count: u32) -> Result<Vec<Message>> {
        Self::recent_messages(self, session, count)
    }

    fn messages_between(
        &self,
        session: SessionId,
        after: Option<MessageId>,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        Self::messages_between(self, session, after, before, limit)
    }

    fn get_messages(&self, ids: &[MessageId]) -> Result<Vec<Message>> {
        Self::get_messages(self, ids)
    }

    fn count_messages(&self, session: SessionId) -> Result<u64> {
        Self::count_messages(self, session)
    }

    fn claim_document(
        &self,
        lease: &Lease,
        document: Option<DocumentId>,
    ) -> Result<Option<Document>> {
        Self::claim_document(self, lease, document)
    }

    fn renew_lease(&self, id: DocumentId, lease: &Lease) -> Result<bool> {
        Self::renew_lease(self, id, lease)
    }

    fn release_lease(&self, id: DocumentId, owner: &str) -> Result<()> {
        Self::release_lease(self, id, owner)
    }

    fn clear_leases(&self) -> Result<u64> {
        Self::clear_leases(self)
    }
}
