//! The ingest pipeline: upload -> `queued -> extracting -> chunking -> embedding -> ready |
//! failed(reason)`, run by a bounded pool of workers.
//!
//! [`Ingestor`] is the documents service the HTTP API and the `ragd ingest` CLI share:
//!
//! - [`Ingestor::ingest_stream`] streams an upload to `uploads/<sha256>` (never holding it
//!   whole in memory), detects its type from the first bytes, records it in the catalog
//!   (deduplicated by sha256) and queues it. It returns at once; a worker does the rest.
//! - Workers extract (on a blocking thread; a parser panic fails the document, it never
//!   takes the server down), chunk with the embedder's tokenizer, store text and chunks in
//!   SQLite, then embed the chunks and write the vectors. A document is `ready` only once
//!   both stores hold it. Any failure marks the document `failed` with the reason.
//! - [`Ingestor::recover`] re-queues documents a previous process left unfinished, and
//!   removes partial uploads (`uploads/.upload-*`) a killed process left behind.
//!
//! Limits against hostile files (see also [`crate::guard`]):
//!
//! - Extraction runs where [`IngestConfig::isolation`] says (see [`crate::isolate`]), and
//!   the worker waits for it at most [`IngestConfig::extract_timeout`]. On time-out the
//!   document fails with a reason. With [`Isolation::Process`] the extraction process is
//!   killed and its memory is limited. With [`Isolation::Thread`] (the default of this
//!   library), [`ExtractLimits::cancel`] is set (the PDF renderer stops at its next
//!   character) and the thread is abandoned: Rust cannot kill a thread, so a parser stuck
//!   in a loop that never reaches a cancellation point keeps one core busy until it
//!   returns. The worker slot is freed either way, and every time-out is logged.
//! - On a thread, a stack overflow or an abort in a parser takes the process down (they are
//!   not panics). So that one such file cannot crash the server at every restart, a marker
//!   `uploads/.extracting-<document id>` counts attempts: it is written before extraction
//!   and removed after; a document whose extraction was interrupted
//!   `MAX_EXTRACT_ATTEMPTS` times fails instead of being tried again.
//! - A document with more than [`IngestConfig::max_chunks_per_document`] chunks fails
//!   before anything is stored.
//!
//! It is written against `ragd-core` traits and `ragd-catalog`; concrete embedders and
//! vector stores are wired in by the binary. Without an embedder and store (or with only
//! one of them), the `embedding` stage records that no vectors are written and completes.
//!
//! The service is split by responsibility: `config` holds [`IngestConfig`] and
//! [`IngestParts`]; `receive` streams uploads to disk; `queue` queues documents on the
//! worker pool and recovers after a restart; `stages` is the stage machine; `extraction`
//! keeps the crash markers and runs extraction within its limits; `embed` writes vectors.
//! This module holds [`Ingestor`] itself and the reads, deletes and reindexing.
//!
//! [`Isolation::Process`]: crate::isolate::Isolation::Process
//! [`Isolation::Thread`]: crate::isolate::Isolation::Thread
//! [`ExtractLimits::cancel`]: crate::guard::ExtractLimits::cancel

mod config;
mod embed;
mod extraction;
mod queue;
mod receive;

pub use receive::Replaced;
pub(crate) use receive::clean_filename;
mod stages;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ragd_catalog::{Catalog, DocumentQuery, Page};
use ragd_core::{Chunk, ChunkId, Document, DocumentId, DocumentStatus, Vectors};
use tokio::sync::Semaphore;

pub use self::config::{IngestConfig, IngestParts, QueueMode};
use crate::chunk::Chunker;
use crate::error::{Error, Result};

/// The outcome of an upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// The stored document (the existing one for a duplicate).
    pub document: Document,
    /// `true` when the same bytes were uploaded before; nothing new was stored.
    pub duplicate: bool,
}

/// The ingest service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingestor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    catalog: Catalog,
    chunker: std::result::Result<Arc<Chunker>, String>,
    vectors: Option<Arc<dyn Vectors>>,
    uploads: Option<Arc<dyn crate::UploadStore>>,
    config: IngestConfig,
    /// This process's lease owner id: unique per pipeline, so a restarted replica never
    /// mistakes a dead process's claims for its own.
    owner: String,
    workers: Arc<Semaphore>,
    queued: AtomicU64,
    /// Documents whose next processing may keep the vectors of unchanged chunks (their
    /// content was replaced while they were `ready`). Lost in a crash, which only means a
    /// full re-embed.
    reuse: std::sync::Mutex<std::collections::HashSet<DocumentId>>,
    /// Documents whose lease this process lost while working on them.
    lost_leases: std::sync::Mutex<std::collections::HashSet<DocumentId>>,
    /// What the last processing of a replaced document did to its chunks.
    diffs: std::sync::Mutex<std::collections::HashMap<DocumentId, ChunkDiff>>,
}

/// How a replaced document's chunks changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkDiff {
    /// Chunks whose text was unchanged: their vectors were kept, not embedded again.
    pub kept: usize,
    /// New or changed chunks, embedded.
    pub added: usize,
    /// Old chunks that are gone, with their vectors.
    pub removed: usize,
}

impl Ingestor {
    /// A pipeline over `parts`. Workers start as documents are queued.
    ///
    /// # Errors
    /// When the uploads directory cannot be created.
    pub fn new(parts: IngestParts, config: IngestConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.uploads_dir)
            .map_err(|source| Error::Io { path: config.uploads_dir.clone(), source })?;
        let workers = Arc::new(Semaphore::new(config.workers.max(1)));
        Ok(Self {
            inner: Arc::new(Inner {
                catalog: parts.catalog,
                chunker: parts.chunker.map(Arc::new),
                vectors: parts.vectors,
                uploads: parts.uploads,
                config,
                owner: format!("ragd-{}", uuid::Uuid::now_v7()),
                workers,
                queued: AtomicU64::new(0),
                reuse: std::sync::Mutex::default(),
                lost_leases: std::sync::Mutex::default(),
                diffs: std::sync::Mutex::default(),
            }),
        })
    }

    /// The catalog this pipeline writes to.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &IngestConfig {
        &self.inner.config
    }

    /// Documents queued or being processed.
    #[must_use]
    pub fn queue_depth(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Processes a stored document again from its uploaded file (new chunks and vectors).
    ///
    /// # Errors
    /// `NotFound` for an unknown id, `Conflict` while the document is still processing.
    pub async fn reindex(&self, id: DocumentId) -> Result<Document> {
        // One conditional update: a concurrent reindex or replacement cannot queue it twice.
        self.db(move |c| c.requeue_finished(id)).await?;
        self.enqueue(id);
        self.db(move |c| c.get_document(id)).await
    }

    /// Deletes a document: its rows, text, chunks, FTS entries, vectors and stored file.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; store or file-system errors.
    pub async fn delete(&self, id: DocumentId) -> Result<()> {
        let document = self.db(move |c| c.get_document(id)).await?;
        self.db(move |c| c.delete_document(id)).await?;
        self.delete_vectors(id).await?;
        let path = self.upload_path(&document.sha256);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path, source }),
        }
        if let Some(uploads) = &self.inner.uploads {
            uploads.delete(&document.sha256).await?;
        }
        tracing::info!(document_id = %id, "document deleted");
        Ok(())
    }

    /// One document.
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn document(&self, id: DocumentId) -> Result<Document> {
        self.db(move |c| c.get_document(id)).await
    }

    /// How many vectors the index holds for document `id` (in the space queries use);
    /// `None` when there is no vector index to ask.
    ///
    /// # Errors
    /// When the vector store cannot be read.
    pub async fn vector_count(&self, id: DocumentId) -> Result<Option<u64>> {
        let Some(vectors) = &self.inner.vectors else { return Ok(None) };
        let Some(space) = vectors.query_space().await else { return Ok(None) };
        let filter = ragd_core::VectorFilter {
            document_ids: vec![id],
            session_ids: Vec::new(),
            ids: Vec::new(),
        };
        Ok(Some(space.store.count(ragd_core::TableName::Chunks, filter).await?))
    }

    /// A page of documents matching `query`, newest first.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn documents(&self, query: DocumentQuery) -> Result<Page<Document>> {
        self.db(move |c| c.list_documents(&query)).await
    }

    /// The extracted text of a document, or the chars from `start` (default 0) to `end`
    /// (default: the end of the text) of it. An `end` past the text stops at the end, so
    /// "the first n chars" reads a shorter text whole.
    ///
    /// # Errors
    /// `NotFound` for an unknown document or one without text yet, `InvalidInput` for a
    /// `start` past the end of the text or an `end` before `start`.
    pub async fn text(
        &self,
        id: DocumentId,
        start: Option<usize>,
        end: Option<usize>,
    ) -> Result<String> {
        let invalid = |message: String| Error::Catalog(ragd_catalog::Error::InvalidInput(message));
        let start = match (start, end) {
            (None, None) => return self.db(move |c| c.document_text(id, None)).await,
            (start, Some(end)) => {
                let start = start.unwrap_or(0);
                if end < start {
                    return Err(invalid(format!(
                        "char range {start}..{end} ends before it starts"
                    )));
                }
                // The common case, a range inside the text, is sliced by the catalog.
                let range: Range<usize> = start..end;
                match self.db(move |c| c.document_text(id, Some(range))).await {
                    Err(Error::Catalog(ragd_catalog::Error::InvalidInput(_))) => start,
                    other => return other,
                }
            }
            (Some(start), None) => start,
        };
        let whole = self.db(move |c| c.document_text(id, None)).await?;
        let len = whole.chars().count();
        if start > len {
            return Err(invalid(format!(
                "start {start} is past the end of the text ({len} chars)"
            )));
        }
        let count = end.map_or(usize::MAX, |end| end - start);
        Ok(whole.chars().skip(start).take(count).collect())
    }

    /// A page of a document's chunks, in order.
    ///
    /// # Errors
    /// `NotFound` for an unknown document.
    pub async fn chunks(&self, id: DocumentId, limit: u32, offset: u32) -> Result<Page<Chunk>> {
        self.db(move |c| {
            c.get_document(id)?;
            c.list_chunks(id, limit, offset)
        })
        .await
    }

    /// One chunk by id.
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn chunk(&self, id: ChunkId) -> Result<Chunk> {
        self.db(move |c| c.get_chunk(id)).await
    }

    /// Polls until the document is `ready` or `failed` and returns it; for the CLI and
    /// tests.
    ///
    /// # Errors
    /// `NotFound` if the document disappears; `Timeout` after `timeout`.
    pub async fn wait_until_done(&self, id: DocumentId, timeout: Duration) -> Result<Document> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let document = self.db(move |c| c.get_document(id)).await?;
            if document.status.is_terminal() {
                return Ok(document);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "document {id} is still {} after {timeout:?}",
                    status_name(document.status)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Marks `id` so that its next processing keeps the vectors of unchanged chunks.
    pub(crate) fn allow_reuse(&self, id: DocumentId) {
        self.inner.reuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id);
    }

    /// Whether `id` may keep vectors this time (and forgets it).
    pub(crate) fn take_reuse(&self, id: DocumentId) -> bool {
        self.inner.reuse.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id)
    }

    /// Records what processing a replaced document did to its chunks.
    pub(crate) fn record_diff(&self, id: DocumentId, diff: ChunkDiff) {
        self.inner.diffs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, diff);
    }

    /// Takes the recorded chunk diff of `id`, if any.
    pub(crate) fn take_diff(&self, id: DocumentId) -> Option<ChunkDiff> {
        self.inner.diffs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id)
    }

    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        Ok(self.inner.catalog.run(f).await?)
    }

    fn upload_path(&self, sha256: &str) -> PathBuf {
        self.inner.config.uploads_dir.join(sha256)
    }
}

const fn status_name(status: DocumentStatus) -> &'static str {
    match status {
        DocumentStatus::Queued => "queued",
        DocumentStatus::Extracting => "extracting",
        DocumentStatus::Chunking => "chunking",
        DocumentStatus::Embedding => "embedding",
        DocumentStatus::Ready => "ready",
        DocumentStatus::Failed => "failed",
    }
}
