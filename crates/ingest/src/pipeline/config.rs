//! The settings of the pipeline ([`IngestConfig`]) and what it works with ([`IngestParts`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ragd_catalog::Catalog;
use ragd_core::Vectors;

use crate::chunk::{Chunker, ChunkerConfig};
use crate::guard::ExtractLimits;
use crate::isolate::Isolation;
use crate::ocr::OcrSettings;
use crate::uploads::UploadStore;

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
    /// Whether and in which languages images are read.
    pub ocr: OcrSettings,
    /// The PDFium library PDFs are read with (`None`: `pdf-extract`, no OCR of scans).
    pub pdfium: Option<std::path::PathBuf>,
    /// Whether this process owns the document queue or shares it with other replicas.
    pub queue: QueueMode,
    /// How long a claim on a document holds unless renewed; a worker renews it every third
    /// of this while it works, and another replica takes the document over once it expired.
    pub lease: Duration,
}

/// Who works on the catalog's unfinished documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// This process alone (SQLite in its data directory): leases left at start-up are a
    /// dead process's and are cleared, and only documents this process receives or
    /// recovers are worked on.
    Exclusive,
    /// Several replicas share the catalog: leases are never cleared, and an idle worker
    /// looks every `poll` for a document to claim (one received by another replica, or one
    /// whose lease expired because its replica died).
    Shared {
        /// How often an idle worker looks for work.
        poll: Duration,
    },
}

impl IngestConfig {
    /// Defaults for a data directory: uploads in `<data_dir>/uploads`, 2 workers, 100 MB
    /// uploads, 256-token chunks with 32 tokens of overlap, 32 chunks per embedding call,
    /// 128 MiB of extracted bytes and 120 s of extraction per document, 100 files per
    /// upload, 50 000 chunks per document, extraction on threads, OCR of images in English,
    /// PDFs read by `pdf-extract`, an exclusive queue with 60 s leases.
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
            ocr: OcrSettings::default(),
            pdfium: None,
            queue: QueueMode::Exclusive,
            lease: Duration::from_secs(60),
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
    /// Embeds chunk text and stores chunk vectors.
    pub vectors: Option<Arc<dyn Vectors>>,
    /// Where uploads are shared with other replicas; `None` keeps them on this disk only.
    pub uploads: Option<Arc<dyn UploadStore>>,
}
