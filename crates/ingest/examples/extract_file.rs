//! Prints the text ragd extracts from a file, as an upload would see it.
//!
//! ```text
//! extract_file PATH
//! ```
//!
//! Detects the format from the file's bytes and name, extracts it within the default limits
//! and prints the text; the format, page and heading counts go to stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)] // Printing the text is the program's job.

use std::error::Error;

use ragd_ingest::{detect, extract};

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args().nth(1).ok_or("usage: extract_file PATH")?;
    let bytes = std::fs::read(&path)?;
    let kind = detect(&bytes, &path)?;
    let extracted = extract(kind, &bytes)?;
    eprintln!(
        "{kind:?}: {} chars, {} pages, {} headings",
        extracted.text.chars().count(),
        extracted.pages.len(),
        extracted.headings.len()
    );
    println!("{}", extracted.text);
    Ok(())
}
