//! `ragd-ingest`: document type detection, text extraction, chunking and the ingest pipeline.
//!
//! It owns: detecting a file's type from its bytes (PDF, DOCX, HTML, text, Markdown),
//! extracting text with page numbers and heading paths, token-aware chunking with char
//! offsets, and the pipeline `extract -> chunk -> embed -> store`.
//!
//! Architecture invariant: written against the `ragd-core` traits (and `ragd-catalog` rows)
//! only; it never depends on `ragd-embedding`, `ragd-vector-store` or `ragd-llm-backends`.

pub mod error;

pub use error::{Error, Result};
