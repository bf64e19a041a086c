//! `ragd-ingest`: document type detection, text extraction, chunking and the ingest pipeline.
//!
//! It owns: detecting a file's type from its bytes (PDF, DOCX, HTML, text, Markdown, XLSX,
//! ODS, CSV, ODT, PPTX, EPUB, EML; images through OCR), extracting text with page numbers, heading paths and
//! tables as Markdown tables, token-aware chunking with char offsets (table rows under their
//! header), and the pipeline `extract -> chunk -> embed -> store`.
//!
//! - [`detect()`]: bytes and a file name to a [`DocumentKind`].
//! - [`extract()`]: bytes of a kind to [`Extracted`] text with [`PageSpan`]s and
//!   [`HeadingSpan`]s (CPU-bound; run it on a blocking thread); [`extract_with`] within
//!   explicit [`ExtractLimits`].
//! - [`guard`]: the defences against hostile files (zip bombs, deep HTML, cyclic PDFs,
//!   PDF compression bombs).
//! - [`isolate`]: extraction in a worker process with a memory limit, killed at its
//!   deadline ([`Isolation::Process`]), or on a thread ([`Isolation::Thread`]).
//! - [`Chunker`]: [`Extracted`] text to [`ChunkPiece`]s bounded by the embedder's tokens,
//!   with char offsets, page numbers and heading paths.
//! - [`Ingestor`]: the service behind uploads: streams files to disk, records them in the
//!   catalog and runs `queued -> extracting -> chunking -> embedding -> ready | failed` on a
//!   bounded pool of workers, resuming unfinished documents after a restart; collections
//!   and document metadata ([`collections`]); folder sync ([`sync`]).
//!
//! Architecture invariant: written against the `ragd-core` traits (and `ragd-catalog` rows)
//! only; it never depends on `ragd-embedding`, `ragd-vector-store` or `ragd-llm-backends`.

pub mod batch;
pub mod chunk;
pub mod collections;
pub mod detect;
mod docx;
mod eml;
mod epub;
pub mod error;
pub mod extract;
pub mod guard;
mod html;
pub mod isolate;
pub mod ocr;
mod odt;
pub mod pdfium;
pub mod pipeline;
mod pptx;
mod spreadsheet;
pub mod sync;
pub mod table;
mod uploads;

pub use batch::{BatchFile, UploadBatch};
pub use chunk::{ChunkPiece, Chunker, ChunkerConfig};
pub use detect::{DocumentKind, detect};
pub use error::{Error, Result};
pub use extract::{Extracted, HeadingSpan, PageSpan, extract, extract_with};
pub use guard::ExtractLimits;
pub use isolate::{Isolation, WorkerCommand, run_worker};
pub use ocr::{OcrMode, OcrSettings};
pub use pipeline::{ChunkDiff, IngestConfig, IngestParts, Ingested, Ingestor, QueueMode, Replaced};
pub use sync::{SOURCE_PATH, SOURCE_ROOT, SyncChange, SyncItem};
pub use uploads::UploadStore;
