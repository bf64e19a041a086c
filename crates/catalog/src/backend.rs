//! [`CatalogBackend`]: the catalog's operations, one trait that each database implements.
//!
//! [`SqliteCatalog`](crate::SqliteCatalog) (the default, one file) and
//! [`PostgresCatalog`](crate::PostgresCatalog) (a server several ragd replicas share)
//! implement it with the same behaviour, checked by one test suite run on both; an integrator
//! may implement it for another store and hand it to [`Catalog::from_backend`](crate::Catalog::from_backend).
//!
//! Every method blocks on its database; async callers go through
//! [`Catalog::run`](crate::Catalog::run).

use std::{collections::HashSet, fmt, ops::Range};

use ragd_core::{
    Chunk, ChunkId, Collection, CollectionId, Document, DocumentId, DocumentStatus, Message,
    MessageId, Metadata, MetadataFilter, Session, SessionId,
};
use uuid::Uuid;

#[allow(unused_imports)] // Named by the docs.
use crate::error::Error;
use crate::{
    CollectionUpdate, DocumentQuery, InsertOutcome, KeywordHit, KeywordQuery, NewCollection,
    NewDocument, NewMessage, NewSession, Page, SessionQuery, SessionUpdate, VectorGeneration,
    error::Result, leases::Lease,
};

/// The catalog's operations: documents, their text and chunks, keyword search, metadata,
/// collections, vector generations, chat sessions and messages.
///
/// Implementations are shared between threads (`Send + Sync`) and block the calling thread.
pub trait CatalogBackend: Send + Sync + fmt::Debug {
    /// The schema version stored in the database.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn schema_version(&self) -> Result<i64>;

    /// How many documents are stored.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn count_documents(&self) -> Result<u64>;

    /// How many chunks are stored, in all documents or in one.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn count_chunks(&self, document: Option<DocumentId>) -> Result<u64>;

    /// The ids of every chunk, to find vectors whose chunk is gone.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable id.
    fn all_chunk_ids(&self) -> Result<HashSet<Uuid>>;

    /// The ids of every message, to find memory vectors whose exchange is gone.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable id.
    fn all_message_ids(&self) -> Result<HashSet<Uuid>>;

    /// Stores a new upload as `queued` with progress 0, unless a document with the same
    /// sha256 exists, in which case that one is returned untouched.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed sha256 or a size over `i64::MAX`;
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) (kind `Conflict`) when the id is already used by another document.
    fn insert_document(&self, new: NewDocument) -> Result<InsertOutcome>;

    /// [`Catalog::insert_document`], giving a new document `metadata` in the same
    /// transaction (so no crash can leave it stored without them); an existing document's
    /// metadata is left as it is.
    ///
    /// # Errors
    ///
    /// As [`Catalog::insert_document`]; [`Error::InvalidInput`] for more than
    /// [`ragd_core::MAX_METADATA_KEYS`] keys (nothing is stored then).
    fn insert_document_with_metadata(
        &self,
        new: NewDocument,
        metadata: &ragd_core::Metadata,
    ) -> Result<InsertOutcome>;

    /// Reads one document.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no document has this id.
    fn get_document(&self, id: DocumentId) -> Result<Document>;

    /// Lists documents matching `query`, newest first, with the total number of matches.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable row.
    fn list_documents(&self, query: &DocumentQuery) -> Result<Page<Document>>;

    /// Sets a document's state, progress (0 to 100) and error message, and its
    /// `updated_at` to now.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id, [`Error::InvalidInput`] for progress over 100.
    fn set_status(
        &self,
        id: DocumentId,
        status: DocumentStatus,
        progress: u8,
        error: Option<&str>,
    ) -> Result<()>;

    /// Replaces what the document's last extraction left out (see
    /// [`ragd_core::Document::warnings`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    fn set_warnings(&self, id: DocumentId, warnings: &[String]) -> Result<()>;

    /// Queues a finished (`ready` or `failed`) document again (progress 0, no error), in
    /// one statement, so two callers cannot both queue it.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while it is being processed.
    fn requeue_finished(&self, id: DocumentId) -> Result<()>;

    /// Points a finished (`ready` or `failed`) document at a new stored file and queues it
    /// again, keeping its id, chunks (until reprocessed), collections and metadata. Returns
    /// the document as it was before.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while it is being processed,
    /// or when another document already holds this content (sha256);
    /// [`Error::InvalidInput`] for a malformed sha256.
    fn replace_document_file(&self, id: DocumentId, new: &NewDocument) -> Result<Document>;

    /// Deletes a document with its text, chunks and full-text entries.
    ///
    /// Returns `false` when no document had this id.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the delete fails.
    fn delete_document(&self, id: DocumentId) -> Result<bool>;

    /// Every document in one of `statuses`, oldest first, for resuming work after a
    /// restart. An empty slice returns nothing.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable row.
    fn documents_with_status(&self, statuses: &[DocumentStatus]) -> Result<Vec<Document>>;

    /// Removes a document's extracted text and chunks (with their full-text entries), so
    /// that a document that failed keeps nothing searchable from an earlier content.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the delete fails.
    fn clear_document_content(&self, id: DocumentId) -> Result<()>;

    /// Stores a document's extracted text and chunks, replacing any earlier ones, in one
    /// transaction. Used for the first ingest and for reindexing.
    ///
    /// Every chunk must belong to `id`, ids and ordinals must be unique, and
    /// `char_start..char_end` must lie within `text` (counted in chars).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document, [`Error::InvalidInput`] for chunks that
    /// break the rules above, a database error ([`Error::Sqlite`], [`Error::Postgres`]) (kind `Conflict`) when a chunk id is used
    /// by another document. Nothing is changed on error.
    fn replace_chunks(&self, id: DocumentId, text: &str, chunks: &[Chunk]) -> Result<()>;

    /// A document's extracted text, whole or the chars in `range`.
    ///
    /// `range` counts Unicode scalar values (Rust `char`s), not bytes, and is end-exclusive.
    /// It is not clamped: a range that ends before it starts or past the end of the text is
    /// refused.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] with `what == "document"` for an unknown document and with
    /// `what == "document text"` when no text is stored yet; [`Error::InvalidInput`] for a
    /// bad range.
    fn document_text(&self, id: DocumentId, range: Option<Range<usize>>) -> Result<String>;

    /// A page of a document's chunks in ordinal order, with the document's chunk count.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document.
    fn list_chunks(&self, id: DocumentId, limit: u32, offset: u32) -> Result<Page<Chunk>>;

    /// Reads one chunk.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no chunk has this id.
    fn get_chunk(&self, id: ChunkId) -> Result<Chunk>;

    /// Reads the chunks with the given ids, in the order given, skipping ids that are not
    /// stored (for hydrating vector search hits). A repeated id is returned each time.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable row.
    fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>>;

    /// Sets keys of a document's metadata (replacing their values) and removes others;
    /// returns the document with its metadata now.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document; [`Error::InvalidInput`] when the
    /// document would hold more than [`MAX_METADATA_KEYS`] keys (nothing is changed then).
    fn update_document_metadata(
        &self,
        id: DocumentId,
        set: &Metadata,
        remove: &[String],
    ) -> Result<Document>;

    /// Every document whose metadata satisfies `filter` (all of them for an empty one), in
    /// id order.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn documents_matching(&self, filter: &MetadataFilter) -> Result<Vec<DocumentId>>;

    /// Finds the chunks that best match `query.text` by BM25, best first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the text has no searchable word (for example only
    /// punctuation); a database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn keyword_search(&self, query: &KeywordQuery) -> Result<Vec<KeywordHit>>;

    /// Stores a new, empty collection.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or description, [`Error::NameTaken`] when
    /// another collection has the name.
    fn create_collection(&self, new: NewCollection) -> Result<Collection>;

    /// One collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    fn get_collection(&self, id: CollectionId) -> Result<Collection>;

    /// The collection with this id (a UUID) or else this name (ignoring ASCII case).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when neither matches.
    fn find_collection(&self, id_or_name: &str) -> Result<Collection>;

    /// A page of collections by name.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn list_collections(&self, limit: u32, offset: u32) -> Result<Page<Collection>>;

    /// Renames a collection or changes its description.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id, [`Error::InvalidInput`] for a bad name or
    /// description, [`Error::NameTaken`] when another collection has the name.
    fn update_collection(&self, id: CollectionId, update: CollectionUpdate) -> Result<Collection>;

    /// Deletes a collection; its documents stay stored.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while a session's retrieval
    /// is restricted to it.
    fn delete_collection(&self, id: CollectionId) -> Result<()>;

    /// Adds documents to a collection (ones already in it are left as they are) and
    /// returns the collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection or naming the first unknown document
    /// (nothing is added then); [`Error::InvalidInput`] for more than
    /// [`MAX_COLLECTION_CHANGE`] documents.
    fn add_to_collection(&self, id: CollectionId, documents: &[DocumentId]) -> Result<Collection>;

    /// Takes documents out of a collection (they stay stored; ones not in it are ignored)
    /// and returns the collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection; [`Error::InvalidInput`] for more than
    /// [`MAX_COLLECTION_CHANGE`] documents.
    fn remove_from_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection>;

    /// The newest document of a collection with exactly this file name, if any.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection.
    fn collection_document_named(
        &self,
        collection: CollectionId,
        filename: &str,
    ) -> Result<Option<DocumentId>>;

    /// The collections a document is in, by name.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn collections_of_document(&self, document: DocumentId) -> Result<Vec<CollectionId>>;

    /// Every document of the given collections (their union, each once, in id order): what
    /// a search or session restricted to them may read.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] naming the first unknown collection.
    fn collection_documents(&self, collections: &[CollectionId]) -> Result<Vec<DocumentId>>;

    /// Every recorded generation, oldest first.
    ///
    /// # Errors
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails, [`Error::Corrupt`] for an unreadable row.
    fn vector_generations(&self) -> Result<Vec<VectorGeneration>>;

    /// Records the generation in use when none is recorded yet (a data directory from
    /// before generations, or a new one) and returns the active generation.
    ///
    /// # Errors
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the statements fail.
    fn ensure_active_generation(
        &self,
        generation: u32,
        model_id: &str,
        dimensions: usize,
    ) -> Result<VectorGeneration>;

    /// Starts a new `building` generation for `model_id`, numbered after every recorded
    /// one.
    ///
    /// # Errors
    /// [`Error::InUse`] when a generation is already building,
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the statements fail.
    fn start_generation(&self, model_id: &str, dimensions: usize) -> Result<VectorGeneration>;

    /// Activates the building generation `generation` and retires the active one, in one
    /// transaction; returns the retired generation's number.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `generation` is not building, a database error ([`Error::Sqlite`], [`Error::Postgres`]) when the
    /// statements fail.
    fn activate_generation(&self, generation: u32) -> Result<Option<u32>>;

    /// Forgets a retired or building generation (its tables are gone); the active one is
    /// never forgotten.
    ///
    /// # Errors
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the statement fails.
    fn forget_generation(&self, generation: u32) -> Result<bool>;

    /// Stores a new session, with `created_at` and `last_activity_at` set to now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or tag, or too many tags or documents;
    /// [`Error::NotFound`] naming the first document that does not exist;
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) (kind `Conflict`) when the id is taken.
    fn create_session(&self, new: NewSession) -> Result<Session>;

    /// Reads one session with its documents and tags.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no session has this id.
    fn get_session(&self, id: SessionId) -> Result<Session>;

    /// Lists sessions matching `query`, most recently active first, with the total count.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a `text` without a searchable word or a bad `tag`;
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn list_sessions(&self, query: &SessionQuery) -> Result<Page<Session>>;

    /// Renames a session, replaces its documents, adds user tags and removes tags.
    /// Removals apply before additions.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session or document; [`Error::InvalidInput`] for a
    /// bad name or tag, or too many tags or documents.
    fn update_session(&self, id: SessionId, update: &SessionUpdate) -> Result<Session>;

    /// Replaces the session's automatic tags with `tags`, keeping user tags, up to
    /// [`MAX_TAGS`] in all (later automatic tags are dropped). Returns the session.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session; invalid tags are skipped, not errors,
    /// because they come from text analysis rather than the user.
    fn set_auto_tags(&self, id: SessionId, tags: &[String]) -> Result<Session>;

    /// Stores the summary of the session's history up to and including message `through`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session.
    fn set_session_summary(&self, id: SessionId, summary: &str, through: MessageId) -> Result<()>;

    /// Deletes a session with its messages, tags, document links and search entries.
    /// Returns `false` when no session had this id.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the delete fails.
    fn delete_session(&self, id: SessionId) -> Result<bool>;

    /// Stores a message and sets the session's `last_activity_at` to its time (and the
    /// session's model to the message's, when it names one), in one transaction.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist (it may have been deleted);
    /// [`Error::InvalidInput`] for a message over [`MAX_MESSAGE_BYTES`] or metadata that is
    /// not a JSON object.
    fn append_message(&self, new: NewMessage) -> Result<Message>;

    /// Records on message `id` that its reply failed: `metadata.error` becomes `{code,
    /// message}` (the rest of the metadata is kept), so a reader of the history sees why a
    /// question has no answer.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown message.
    fn set_message_error(&self, id: MessageId, code: &str, message: &str) -> Result<()>;

    /// A page of a session's messages, oldest first, with the session's message count.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown session.
    fn list_messages(&self, session: SessionId, limit: u32, offset: u32) -> Result<Page<Message>>;

    /// The session's last `count` messages, oldest first.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn recent_messages(&self, session: SessionId, count: u32) -> Result<Vec<Message>>;

    /// The session's messages after `after` (all when `None`) and before `before`, both
    /// exclusive, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn messages_between(
        &self,
        session: SessionId,
        after: Option<MessageId>,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// The messages with these ids that exist, in the order of `ids`.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn get_messages(&self, ids: &[MessageId]) -> Result<Vec<Message>>;

    /// How many messages the session holds.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]) when the query fails.
    fn count_messages(&self, session: SessionId) -> Result<u64>;

    /// Claims unfinished work for `lease.owner` until `lease.duration` from now: the
    /// document `document` when given, else the oldest claimable one. A document is
    /// claimable while it is unfinished (`queued` to `embedding`) and not leased to another
    /// owner whose lease is still running; the owner's own lease is simply extended.
    /// Returns the claimed document, or `None` when there is nothing to claim.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an empty owner or a lease too long to store; a database
    /// error ([`Error::Sqlite`], [`Error::Postgres`]).
    fn claim_document(
        &self,
        lease: &Lease,
        document: Option<DocumentId>,
    ) -> Result<Option<Document>>;

    /// Extends `lease.owner`'s lease of a document to `lease.duration` from now. `false`
    /// when the owner no longer holds it (it expired and another owner claimed it, or the
    /// lease was released, or the document is gone): the owner must stop working on it.
    ///
    /// # Errors
    ///
    /// As [`CatalogBackend::claim_document`].
    fn renew_lease(&self, id: DocumentId, lease: &Lease) -> Result<bool>;

    /// [`CatalogBackend::set_status`] only while `owner` holds the document's lease, in
    /// one statement: `false`, with nothing changed, when another owner or none holds it.
    /// "Holds" is as for [`CatalogBackend::renew_lease`]: the lease names `owner`, even
    /// past its expiry as long as no other owner has claimed the document.
    /// A worker records its stages with it, so one that stalled past its lease and lost
    /// the document never overwrites what the new owner records.
    ///
    /// # Errors
    ///
    /// As [`CatalogBackend::set_status`].
    fn set_status_leased(
        &self,
        id: DocumentId,
        owner: &str,
        status: DocumentStatus,
        progress: u8,
        error: Option<&str>,
    ) -> Result<bool>;

    /// [`CatalogBackend::replace_chunks`] only while `owner` holds the document's lease,
    /// checked in the same transaction: `false`, with nothing changed, when another owner
    /// or none holds it.
    ///
    /// # Errors
    ///
    /// As [`CatalogBackend::replace_chunks`].
    fn replace_chunks_leased(
        &self,
        id: DocumentId,
        owner: &str,
        text: &str,
        chunks: &[Chunk],
    ) -> Result<bool>;

    /// Ends `owner`'s lease of a document (finished, failed or abandoned work); another
    /// owner's lease is left alone.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]).
    fn release_lease(&self, id: DocumentId, owner: &str) -> Result<()>;

    /// Ends every lease, returning how many there were: for a process that owns the catalog
    /// alone (SQLite in its data directory), whose leases at start-up are a dead process's.
    /// Never call it on a catalog other live processes share.
    ///
    /// # Errors
    ///
    /// A database error ([`Error::Sqlite`], [`Error::Postgres`]).
    fn clear_leases(&self) -> Result<u64>;
}

/// Implements [`CatalogBackend`] for a type whose inherent `pub(crate)` methods have the
/// trait's names and signatures (each backend's topic modules), so the forwarding is
/// written once. The trait's types must be in scope where it is invoked.
macro_rules! forward_catalog_backend {
    ($backend:ty) => {
        impl $crate::backend::CatalogBackend for $backend {
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

            fn update_collection(
                &self,
                id: CollectionId,
                update: CollectionUpdate,
            ) -> Result<Collection> {
                Self::update_collection(self, id, update)
            }

            fn delete_collection(&self, id: CollectionId) -> Result<()> {
                Self::delete_collection(self, id)
            }

            fn add_to_collection(
                &self,
                id: CollectionId,
                documents: &[DocumentId],
            ) -> Result<Collection> {
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

            fn collection_documents(
                &self,
                collections: &[CollectionId],
            ) -> Result<Vec<DocumentId>> {
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

            fn start_generation(
                &self,
                model_id: &str,
                dimensions: usize,
            ) -> Result<VectorGeneration> {
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

            fn set_session_summary(
                &self,
                id: SessionId,
                summary: &str,
                through: MessageId,
            ) -> Result<()> {
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

            fn list_messages(
                &self,
                session: SessionId,
                limit: u32,
                offset: u32,
            ) -> Result<Page<Message>> {
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

            fn set_status_leased(
                &self,
                id: DocumentId,
                owner: &str,
                status: DocumentStatus,
                progress: u8,
                error: Option<&str>,
            ) -> Result<bool> {
                Self::set_status_leased(self, id, owner, status, progress, error)
            }

            fn replace_chunks_leased(
                &self,
                id: DocumentId,
                owner: &str,
                text: &str,
                chunks: &[Chunk],
            ) -> Result<bool> {
                Self::replace_chunks_leased(self, id, owner, text, chunks)
            }

            fn release_lease(&self, id: DocumentId, owner: &str) -> Result<()> {
                Self::release_lease(self, id, owner)
            }

            fn clear_leases(&self) -> Result<u64> {
                Self::clear_leases(self)
            }
        }
    };
}

pub(crate) use forward_catalog_backend;
