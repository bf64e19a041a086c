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

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use ragd_catalog::{Catalog, DocumentQuery, InsertOutcome, NewDocument, Page};
use ragd_core::{
    Chunk, ChunkId, DeleteRequest, Document, DocumentId, DocumentStatus, EmbeddedRecord, Embedder,
    TableName, VectorFilter, VectorStore,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::chunk::{ChunkPiece, Chunker, ChunkerConfig};
use crate::detect::{DocumentKind, detect};
use crate::error::{Error, Result};
use crate::extract::{extract_with, format_name};
use crate::guard::ExtractLimits;
use crate::isolate::{Isolation, extract_in_worker, extraction_thread};

/// How many leading bytes of an upload are kept for type detection.
const DETECT_PREFIX_BYTES: usize = 8 * 1024;

/// Extractions of one document interrupted by a crash before it fails instead of retrying.
const MAX_EXTRACT_ATTEMPTS: u32 = 2;

/// The prefix of partial uploads in the uploads directory.
const PARTIAL_UPLOAD_PREFIX: &str = ".upload-";

/// The prefix of extraction attempt markers in the uploads directory.
const ATTEMPT_MARKER_PREFIX: &str = ".extracting-";

/// The statuses a worker may still change; documents left in one of them by a previous
/// process are re-queued by [`Ingestor::recover`].
const UNFINISHED: [DocumentStatus; 4] = [
    DocumentStatus::Queued,
    DocumentStatus::Extracting,
    DocumentStatus::Chunking,
    DocumentStatus::Embedding,
];

/// Settings of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Where uploaded files are kept, named by their sha256.
    pub uploads_dir: PathBuf,
    /// Documents processed at the same time.
    pub workers: usize,
    /// The largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Chunk size and overlap, in tokens.
    pub chunker: ChunkerConfig,
    /// Chunks per embedding call (also the progress step of the `embedding` stage).
    pub embed_batch_size: usize,
    /// The most bytes one document may expand to (inflated DOCX parts, extracted text).
    pub max_extracted_bytes: u64,
    /// How long extracting one document may take.
    pub extract_timeout: Duration,
    /// The most files one upload request may carry (enforced by the HTTP handler).
    pub max_files_per_upload: usize,
    /// Documents with more chunks than this fail.
    pub max_chunks_per_document: usize,
    /// Where extraction runs: on a thread of this process, or in a worker process.
    pub isolation: Isolation,
}

impl IngestConfig {
    /// Defaults for a data directory: uploads in `<data_dir>/uploads`, 2 workers, 100 MB
    /// uploads, 256-token chunks with 32 tokens of overlap, 32 chunks per embedding call,
    /// 128 MiB of extracted bytes and 120 s of extraction per document, 100 files per
    /// upload, 50 000 chunks per document, extraction on threads.
    pub fn new(data_dir: &Path) -> Self {
        let limits = ExtractLimits::default();
        Self {
            uploads_dir: data_dir.join("uploads"),
            workers: 2,
            max_upload_bytes: 100 * 1024 * 1024,
            chunker: ChunkerConfig::default(),
            embed_batch_size: 32,
            max_extracted_bytes: limits.max_extracted_bytes,
            extract_timeout: limits.timeout,
            max_files_per_upload: 100,
            max_chunks_per_document: 50_000,
            isolation: Isolation::Thread,
        }
    }
}

/// What the pipeline works with. Everything but the catalog is optional, so a server
/// without models still serves documents it already has.
#[derive(Debug)]
pub struct IngestParts {
    /// The source of truth for documents and chunks.
    pub catalog: Catalog,
    /// The token-aware chunker; without it uploads answer `Unavailable` with this reason.
    pub chunker: std::result::Result<Chunker, String>,
    /// Embeds chunk text.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Stores chunk vectors.
    pub store: Option<Arc<dyn VectorStore>>,
}

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
    embedder: Option<Arc<dyn Embedder>>,
    store: Option<Arc<dyn VectorStore>>,
    config: IngestConfig,
    workers: Arc<Semaphore>,
    queued: AtomicU64,
}

/// Why a worker stopped early.
enum Stop {
    /// The document was deleted while it was processed; nothing to record.
    Gone,
    /// The document failed; the reason is recorded.
    Failed(String),
}

impl<E: Into<Error>> From<E> for Stop {
    fn from(err: E) -> Self {
        let err: Error = err.into();
        if let Error::Catalog(catalog) = &err
            && catalog.kind() == ragd_core::ErrorKind::NotFound
        {
            return Self::Gone;
        }
        Self::Failed(err.to_string())
    }
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
                embedder: parts.embedder,
                store: parts.store,
                config,
                workers,
                queued: AtomicU64::new(0),
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

    /// Re-queues documents a previous process left unfinished (crash or kill mid-way) and
    /// returns how many. Call once at start-up, inside a Tokio runtime.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn recover(&self) -> Result<usize> {
        let unfinished = self.db(|c| c.documents_with_status(&UNFINISHED)).await?;
        let keep: Vec<String> = unfinished
            .iter()
            .map(|document| format!("{ATTEMPT_MARKER_PREFIX}{}", document.id))
            .collect();
        self.remove_stale_files(&keep).await;
        for document in &unfinished {
            tracing::info!(document_id = %document.id, status = ?document.status, "resuming unfinished document");
            self.enqueue(document.id);
        }
        Ok(unfinished.len())
    }

    /// Stores an upload and queues it. `stream` yields the file's bytes.
    ///
    /// # Errors
    /// `PayloadTooLarge` past `max_upload_bytes`, `InvalidInput` for an empty file or a
    /// broken stream, `UnsupportedMediaType` for formats ragd cannot read, `Unavailable`
    /// when no tokenizer is loaded. Nothing is kept after an error.
    pub async fn ingest_stream<S, B, E>(&self, filename: &str, stream: S) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        if let Err(reason) = &self.inner.chunker {
            return Err(Error::Unavailable(reason.clone()));
        }
        let filename = clean_filename(filename);
        let upload = self.receive(&filename, stream).await?;
        let new = NewDocument {
            id: DocumentId::new(),
            filename,
            mime: upload.kind.mime().to_owned(),
            sha256: upload.sha256,
            bytes: upload.bytes,
        };
        match self.db(move |c| c.insert_document(new)).await? {
            InsertOutcome::Created(document) => {
                tracing::info!(document_id = %document.id, filename = %document.filename, bytes = document.bytes, "document queued");
                self.enqueue(document.id);
                Ok(Ingested { document, duplicate: false })
            }
            InsertOutcome::Existing(document) => {
                tracing::info!(document_id = %document.id, "duplicate upload; existing document returned");
                Ok(Ingested { document, duplicate: true })
            }
        }
    }

    /// Stores a file from disk and queues it, like an upload.
    ///
    /// # Errors
    /// As [`Ingestor::ingest_stream`], plus I/O errors reading `path`.
    pub async fn ingest_file(&self, path: &Path) -> Result<Ingested> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let name = path.file_name().map_or_else(|| "upload".into(), |n| n.to_string_lossy());
        self.ingest_stream(&name, tokio_util::io::ReaderStream::new(file)).await
    }

    /// Processes a stored document again from its uploaded file (new chunks and vectors).
    ///
    /// # Errors
    /// `NotFound` for an unknown id, `Conflict` while the document is still processing.
    pub async fn reindex(&self, id: DocumentId) -> Result<Document> {
        let document = self.db(move |c| c.get_document(id)).await?;
        if !document.status.is_terminal() {
            return Err(Error::Busy(format!(
                "document {id} is still {}; reindex it once it is ready or failed",
                status_name(document.status)
            )));
        }
        self.db(move |c| c.set_status(id, DocumentStatus::Queued, 0, None)).await?;
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

    /// A page of documents matching `query`, newest first.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn documents(&self, query: DocumentQuery) -> Result<Page<Document>> {
        self.db(move |c| c.list_documents(&query)).await
    }

    /// The extracted text of a document, or the chars in `range` of it.
    ///
    /// # Errors
    /// `NotFound` for an unknown document or one without text yet, `InvalidInput` for a
    /// range outside the text.
    pub async fn text(&self, id: DocumentId, range: Option<Range<usize>>) -> Result<String> {
        self.db(move |c| c.document_text(id, range)).await
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

    /// Removes `uploads/.upload-*` files (uploads cut off by a crash: none can be in flight
    /// before [`Ingestor::recover`] has run) and attempt markers other than `keep` (those of
    /// documents no longer unfinished).
    async fn remove_stale_files(&self, keep: &[String]) {
        let dir = &self.inner.config.uploads_dir;
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name.starts_with(PARTIAL_UPLOAD_PREFIX)
                || (name.starts_with(ATTEMPT_MARKER_PREFIX) && !keep.contains(&name));
            if stale {
                let path = entry.path();
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed a file left by a stopped process");
                    }
                    Err(err) => {
                        tracing::warn!(path = %path.display(), %err, "cannot remove a stale file");
                    }
                }
            }
        }
    }

    /// Runs a catalog call on the blocking pool.
    async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        Ok(self.inner.catalog.run(f).await?)
    }

    fn upload_path(&self, sha256: &str) -> PathBuf {
        self.inner.config.uploads_dir.join(sha256)
    }

    fn enqueue(&self, id: DocumentId) {
        let depth = self.inner.queued.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(ragd_core::metric_names::INGEST_QUEUE_DEPTH).set(depth as f64);
        let this = self.clone();
        let work = async move {
            let permit = this.inner.workers.clone().acquire_owned().await;
            if permit.is_ok() {
                this.process(id).await;
            }
            let depth = this.inner.queued.fetch_sub(1, Ordering::Relaxed) - 1;
            metrics::gauge!(ragd_core::metric_names::INGEST_QUEUE_DEPTH).set(depth as f64);
        };
        tokio::spawn(work.instrument(tracing::info_span!("ingest.process", document_id = %id)));
    }
}

/// A received upload, stored under its sha256.
struct Upload {
    kind: DocumentKind,
    sha256: String,
    bytes: u64,
}

/// Removes a partial upload unless it was kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep
            && let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove partial upload");
        }
    }
}

impl Ingestor {
    /// Streams `stream` into a temporary file while hashing it, checks size and type, and
    /// moves it to `uploads/<sha256>`. The file is synced before the document is recorded,
    /// so an acknowledged upload survives a crash.
    async fn receive<S, B, E>(&self, filename: &str, mut stream: S) -> Result<Upload>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let dir = &self.inner.config.uploads_dir;
        let limit = self.inner.config.max_upload_bytes;
        let temp = TempFile {
            path: dir.join(format!("{PARTIAL_UPLOAD_PREFIX}{}", DocumentId::new())),
            keep: false,
        };
        let io_err = |source| Error::Io { path: temp.path.clone(), source };
        let mut file = tokio::fs::File::create(&temp.path).await.map_err(io_err)?;
        let mut hasher = Sha256::new();
        let mut prefix = Vec::with_capacity(DETECT_PREFIX_BYTES);
        let mut bytes: u64 = 0;
        while let Some(piece) = stream.next().await {
            let piece = piece
                .map_err(|err| Error::Upload(format!("reading {filename:?} failed: {err}")))?;
            let piece = piece.as_ref();
            bytes += piece.len() as u64;
            if bytes > limit {
                return Err(Error::TooLarge { limit });
            }
            hasher.update(piece);
            let room = DETECT_PREFIX_BYTES.saturating_sub(prefix.len());
            prefix.extend_from_slice(&piece[..room.min(piece.len())]);
            file.write_all(piece).await.map_err(io_err)?;
        }
        let kind = detect(&prefix, filename)?;
        file.sync_all().await.map_err(io_err)?;
        drop(file);

        let sha256: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let stored = self.upload_path(&sha256);
        if !tokio::fs::try_exists(&stored).await.unwrap_or(false) {
            tokio::fs::rename(&temp.path, &stored)
                .await
                .map_err(|source| Error::Io { path: stored.clone(), source })?;
        }
        Ok(Upload { kind, sha256, bytes })
    }

    /// Runs every stage for one document and records the outcome.
    async fn process(&self, id: DocumentId) {
        match self.run_stages(id).await {
            Ok(chunks) => {
                metrics::counter!(ragd_core::metric_names::INGEST_DOCUMENTS_TOTAL, "status" => "ready").increment(1);
                tracing::info!(document_id = %id, chunks, "document ready");
            }
            Err(Stop::Gone) => {
                tracing::info!(document_id = %id, "document deleted while processing");
                if let Err(err) = self.delete_vectors(id).await {
                    tracing::warn!(document_id = %id, %err, "cannot remove vectors of a deleted document");
                }
            }
            Err(Stop::Failed(reason)) => {
                metrics::counter!(ragd_core::metric_names::INGEST_DOCUMENTS_TOTAL, "status" => "failed").increment(1);
                tracing::warn!(document_id = %id, %reason, "document failed");
                let stored = reason.clone();
                let recorded = self
                    .db(move |c| {
                        let progress = c.get_document(id)?.progress;
                        c.set_status(id, DocumentStatus::Failed, progress, Some(&stored))
                    })
                    .await;
                if let Err(err) = recorded {
                    tracing::warn!(document_id = %id, %err, "cannot record the failure");
                }
            }
        }
    }

    async fn set_status(
        &self,
        id: DocumentId,
        status: DocumentStatus,
        progress: u8,
    ) -> std::result::Result<(), Stop> {
        self.db(move |c| c.set_status(id, status, progress, None)).await?;
        Ok(())
    }

    /// Extract, chunk, store, embed. Returns the number of chunks.
    async fn run_stages(&self, id: DocumentId) -> std::result::Result<usize, Stop> {
        let document = self.db(move |c| c.get_document(id)).await?;
        let kind = DocumentKind::from_mime(&document.mime).ok_or_else(|| {
            Stop::Failed(format!("unsupported stored media type {}", document.mime))
        })?;
        let chunker = match &self.inner.chunker {
            Ok(chunker) => Arc::clone(chunker),
            Err(reason) => return Err(Stop::Failed(format!("no chunker: {reason}"))),
        };

        self.set_status(id, DocumentStatus::Extracting, 0).await?;
        let path = self.upload_path(&document.sha256);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        let extracted = self.extract_guarded(id, kind, bytes).await?;
        if extracted.text.trim().is_empty() {
            return Err(Stop::Failed(
                "no text could be extracted (a scanned PDF without a text layer?)".to_owned(),
            ));
        }

        self.set_status(id, DocumentStatus::Chunking, 0).await?;
        let (extracted, pieces) = blocking(move || {
            let pieces = chunker.chunk(kind, &extracted)?;
            Ok((extracted, pieces))
        })
        .await?;
        let max_chunks = self.inner.config.max_chunks_per_document;
        if pieces.len() > max_chunks {
            return Err(Stop::Failed(format!(
                "the document has {} chunks, more than ingest.max_chunks_per_document ({max_chunks})",
                pieces.len()
            )));
        }
        let chunks: Vec<Chunk> = pieces.into_iter().map(|piece| to_chunk(id, piece)).collect();
        let count = chunks.len();
        let text = extracted.text;
        let stored = chunks.clone();
        self.db(move |c| c.replace_chunks(id, &text, &stored)).await?;
        metrics::counter!(ragd_core::metric_names::INGEST_CHUNKS_TOTAL).increment(count as u64);

        self.set_status(id, DocumentStatus::Embedding, 0).await?;
        self.embed_chunks(id, &chunks).await?;

        // A delete that raced with the stages above leaves nothing to mark ready.
        self.db(move |c| c.get_document(id)).await?;
        self.set_status(id, DocumentStatus::Ready, 100).await?;
        Ok(count)
    }

    /// Extracts in a worker process or on a thread of its own within the configured limits
    /// and deadline, counting
    /// the attempt in a marker file so that a file that crashes the process is not retried
    /// forever (see the module documentation).
    async fn extract_guarded(
        &self,
        id: DocumentId,
        kind: DocumentKind,
        bytes: Vec<u8>,
    ) -> std::result::Result<crate::Extracted, Stop> {
        let marker = self.inner.config.uploads_dir.join(format!("{ATTEMPT_MARKER_PREFIX}{id}"));
        let attempts: u32 = tokio::fs::read_to_string(&marker)
            .await
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if attempts >= MAX_EXTRACT_ATTEMPTS {
            let _ = tokio::fs::remove_file(&marker).await;
            return Err(Stop::Failed(format!(
                "extraction was interrupted {attempts} times (the server stopped while reading \
                 this file, possibly because of it); it is not retried: reindex to try again"
            )));
        }
        tokio::fs::write(&marker, (attempts + 1).to_string())
            .await
            .map_err(|source| Error::Io { path: marker.clone(), source })?;
        let limits = ExtractLimits {
            max_extracted_bytes: self.inner.config.max_extracted_bytes,
            timeout: self.inner.config.extract_timeout,
            ..ExtractLimits::default()
        };
        let outcome = match &self.inner.config.isolation {
            Isolation::Thread => extract_on_thread(kind, bytes, limits).await,
            Isolation::Process(command) => extract_in_worker(command, kind, bytes, &limits).await,
        };
        if let Err(err) = tokio::fs::remove_file(&marker).await {
            tracing::warn!(path = %marker.display(), %err, "cannot remove the extraction marker");
        }
        Ok(outcome?)
    }

    /// Replaces the document's vectors batch by batch, reporting progress.
    async fn embed_chunks(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
    ) -> std::result::Result<(), Stop> {
        let (Some(embedder), Some(store)) = (&self.inner.embedder, &self.inner.store) else {
            tracing::debug!(document_id = %id, "no embedder or vector store configured; no vectors written");
            return Ok(());
        };
        self.delete_vectors(id).await?;
        let batch = self.inner.config.embed_batch_size.max(1);
        let mut done = 0;
        for part in chunks.chunks(batch) {
            let texts = part.iter().map(|c| c.text.clone()).collect();
            let vectors = embedder.embed_documents(texts).await.map_err(Error::from)?;
            if vectors.len() != part.len() {
                return Err(Stop::Failed(format!(
                    "the embedder returned {} vectors for {} chunks",
                    vectors.len(),
                    part.len()
                )));
            }
            let records = part
                .iter()
                .zip(vectors)
                .map(|(chunk, vector)| EmbeddedRecord {
                    id: *chunk.id.as_uuid(),
                    document_id: Some(id),
                    session_id: None,
                    vector,
                })
                .collect();
            store.upsert(TableName::Chunks, records).await.map_err(Error::from)?;
            done += part.len();
            metrics::counter!(ragd_core::metric_names::EMBEDDING_TEXTS_TOTAL, "table" => "chunks")
                .increment(part.len() as u64);
            let progress = u8::try_from(done * 100 / chunks.len()).unwrap_or(100);
            self.set_status(id, DocumentStatus::Embedding, progress).await?;
        }
        Ok(())
    }

    async fn delete_vectors(&self, id: DocumentId) -> Result<u64> {
        let Some(store) = &self.inner.store else { return Ok(0) };
        let filter = VectorFilter { document_ids: vec![id], session_ids: Vec::new() };
        Ok(store.delete(DeleteRequest { table: TableName::Chunks, filter }).await?)
    }
}

/// Runs [`extract_with`] on a new thread with a large stack and waits at most
/// `limits.timeout`; on time-out the cancel flag is set and the thread abandoned.
async fn extract_on_thread(
    kind: DocumentKind,
    bytes: Vec<u8>,
    limits: ExtractLimits,
) -> Result<crate::Extracted> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let timeout = limits.timeout;
    let cancel = Arc::clone(&limits.cancel);
    extraction_thread()
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                extract_with(kind, &bytes, &limits)
            }))
            .unwrap_or_else(|_| {
                Err(Error::Extraction {
                    format: format_name(kind),
                    reason: "the parser panicked on malformed input".to_owned(),
                })
            });
            if tx.send(result).is_err() {
                tracing::warn!(elapsed = ?started.elapsed(), "an abandoned extraction finished");
            }
        })
        .map_err(|err| Error::Task(format!("cannot start an extraction thread: {err}")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::Task("the extraction thread stopped without an answer".into())),
        Err(_) => {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(?timeout, "extraction timed out; its thread is abandoned");
            Err(Error::Extraction {
                format: format_name(kind),
                reason: format!(
                    "extraction took longer than {} s (ingest.extract_timeout_secs); the file \
                     may be crafted to make the parser loop",
                    timeout.as_secs_f64()
                ),
            })
        }
    }
}

/// Runs CPU-bound work on the blocking pool; a panic becomes an error, not a crash.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|err| Error::Task(err.to_string()))?
}

fn to_chunk(document_id: DocumentId, piece: ChunkPiece) -> Chunk {
    Chunk {
        id: ChunkId::new(),
        document_id,
        ordinal: piece.ordinal,
        text: piece.text,
        char_start: piece.char_start as u64,
        char_end: piece.char_end as u64,
        token_count: u32::try_from(piece.token_count).unwrap_or(u32::MAX),
        page: piece.page,
        heading: piece.heading,
    }
}

/// The name as given, without any directory part (so `../../etc/passwd` is stored as
/// `passwd`) and without control characters; `upload` when nothing is left.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "upload".to_owned()
    } else {
        cleaned.to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_directories_and_control_chars() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\docs\\a.pdf"), "a.pdf");
        assert_eq!(clean_filename("a\u{0}b\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "upload");
        assert_eq!(clean_filename(""), "upload");
    }
}
