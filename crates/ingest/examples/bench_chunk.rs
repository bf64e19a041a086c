//! Chunking throughput on one text file, for profiling the chunker.
//!
//! ```text
//! bench_chunk --tokenizer tokenizer.json --text big.txt [--max-tokens 256] [--overlap 32]
//!             [--catalog DIR]
//! ```
//!
//! Chunks the file's text as a plain-text document with the tokenizer's count and prints one
//! JSON line: `bytes`, `chunks`, `seconds`, `mb_per_s`. With `--catalog`, the text and its
//! chunks are then stored in a new catalog in `DIR` as the pipeline stores them
//! (`Catalog::replace_chunks`), and `store_seconds` is added: the pipeline's `chunking` state
//! covers both.

#![allow(clippy::print_stdout)] // The JSON result line is this program's output.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use ragd_catalog::{Catalog, NewDocument};
use ragd_core::{Chunk, DocumentId};
use ragd_ingest::{Chunker, ChunkerConfig, DocumentKind, Extracted};

fn main() -> Result<(), Box<dyn Error>> {
    let mut tokenizer = None;
    let mut text = None;
    let mut catalog = None;
    let mut config = ChunkerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tokenizer" => tokenizer = Some(PathBuf::from(value)),
            "--text" => text = Some(PathBuf::from(value)),
            "--max-tokens" => config.max_tokens = value.parse()?,
            "--overlap" => config.overlap_tokens = value.parse()?,
            "--catalog" => catalog = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let tokenizer = tokenizer.ok_or("--tokenizer is required")?;
    let text = std::fs::read_to_string(text.ok_or("--text is required")?)?;
    let chunker = Chunker::from_file(config, &tokenizer)?;
    let bytes = text.len();
    let extracted =
        Extracted { text, pages: Vec::new(), headings: Vec::new(), warnings: Vec::new() };
    let started = Instant::now();
    let pieces = chunker.chunk(DocumentKind::Text, &extracted)?;
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // A rate for people to read.
    let mb_per_s = bytes as f64 / 1e6 / seconds;
    let chunks = pieces.len();
    let store = match catalog {
        Some(dir) => {
            let seconds = store(&dir, &extracted.text, pieces)?;
            format!(", \"store_seconds\": {seconds:.3}")
        }
        None => String::new(),
    };
    println!(
        "{{\"bytes\": {bytes}, \"chunks\": {chunks}, \"seconds\": {seconds:.3}, \"mb_per_s\": {mb_per_s:.3}{store}}}"
    );
    Ok(())
}

/// Stores `text` and its chunks in a new catalog in `dir`; returns the seconds the store took.
fn store(
    dir: &std::path::Path,
    text: &str,
    pieces: Vec<ragd_ingest::ChunkPiece>,
) -> Result<f64, Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let catalog = Catalog::open(&dir.join("catalog.db"))?;
    let id = DocumentId::new();
    let new = NewDocument {
        id,
        filename: "big.txt".to_owned(),
        mime: "text/plain".to_owned(),
        sha256: format!("{:064x}", id.as_uuid().as_u128()),
        bytes: text.len() as u64,
    };
    catalog.insert_document(new)?;
    let chunks: Vec<Chunk> = pieces.into_iter().map(|piece| piece.into_chunk(id)).collect();
    let started = Instant::now();
    catalog.replace_chunks(id, text, &chunks)?;
    Ok(started.elapsed().as_secs_f64())
}
