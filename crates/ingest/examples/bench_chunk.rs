//! Chunking throughput on one text file, for profiling the chunker.
//!
//! ```text
//! bench_chunk --tokenizer tokenizer.json --text big.txt [--max-tokens 256] [--overlap 32]
//! ```
//!
//! Chunks the file's text as a plain-text document with the tokenizer's count and prints one
//! JSON line: `bytes`, `chunks`, `seconds`, `mb_per_s`.

#![allow(clippy::print_stdout)] // The JSON result line is this program's output.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use ragd_ingest::{Chunker, ChunkerConfig, DocumentKind, Extracted};

fn main() -> Result<(), Box<dyn Error>> {
    let mut tokenizer = None;
    let mut text = None;
    let mut config = ChunkerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tokenizer" => tokenizer = Some(PathBuf::from(value)),
            "--text" => text = Some(PathBuf::from(value)),
            "--max-tokens" => config.max_tokens = value.parse()?,
            "--overlap" => config.overlap_tokens = value.parse()?,
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
    println!(
        "{{\"bytes\": {bytes}, \"chunks\": {}, \"seconds\": {seconds:.3}, \"mb_per_s\": {mb_per_s:.3}}}",
        pieces.len()
    );
    Ok(())
}
