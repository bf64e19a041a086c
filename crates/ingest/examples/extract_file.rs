//! Prints the text ragd extracts from a file, as an upload would see it.
//!
//! ```text
//! extract_file [--pdfium LIBRARY] [--ocr auto|always|never] PATH
//! ```
//!
//! Detects the format from the file's bytes and name, extracts it within the default limits
//! (PDFs through the PDFium library given, else `pdf-extract`) and prints the text; the
//! format, page and heading counts and the time extraction took go to stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)] // Printing the text is the program's job.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use ragd_ingest::{ExtractLimits, OcrMode, detect, extract_with};

const USAGE: &str = "usage: extract_file [--pdfium LIBRARY] [--ocr auto|always|never] PATH";

fn main() -> Result<(), Box<dyn Error>> {
    let mut limits = ExtractLimits::default();
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pdfium" => limits.pdfium = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            "--ocr" => {
                limits.ocr.mode = match args.next().as_deref() {
                    Some("auto") => OcrMode::Auto,
                    Some("always") => OcrMode::Always,
                    Some("never") => OcrMode::Never,
                    _ => return Err(USAGE.into()),
                };
            }
            _ if path.is_none() => path = Some(arg),
            _ => return Err(USAGE.into()),
        }
    }
    let path = path.ok_or(USAGE)?;
    let bytes = std::fs::read(&path)?;
    let kind = detect(&bytes, &path)?;
    let started = Instant::now();
    let extracted = extract_with(kind, &bytes, &limits)?;
    eprintln!(
        "{kind:?}: {} chars, {} pages, {} headings, extracted in {:.1} ms",
        extracted.text.chars().count(),
        extracted.pages.len(),
        extracted.headings.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("{}", extracted.text);
    Ok(())
}
