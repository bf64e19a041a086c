//! The regression corpus: real documents from Debian packages, made by many producers
//! (pdfTeX, xdvipdfmx, Apache FOP, Texinfo, DocBook, pandoc, Sphinx...), fetched by
//! `fixtures/ingest-corpus/fetch.py` into the folder `XTASK_CORPUS_DIR` names (`cargo xtask
//! test` fetches it first; nothing of it is committed).
//!
//! Every file must extract, and every PDF's text must hold at least [`MIN_PDF_LINES`] of the
//! lines `pdftotext` (Poppler) finds, sampled: a real engine reads these files, so ragd must.
//! PDFs are read as the server reads them with its assets: through PDFium.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod fixtures;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use ragd_core::extraction_check::{comparable, line_coverage, sampled_lines, word_coverage};
use ragd_ingest::{
    DocumentKind, ExtractLimits, Extracted, OcrMode, OcrSettings, detect, extract_with,
};
use ragd_test_utils::{corpus_dir, corpus_documents};

/// The share of sampled `pdftotext` lines every PDF's text must contain.
const MIN_PDF_LINES: f64 = 0.95;

/// The most lines sampled from one PDF.
const SAMPLED_LINES: usize = 200;

/// Extracts as ragd does with its assets installed: PDFs through PDFium. OCR is off (the
/// corpus is about text layers; a blank page would cost a Tesseract run).
fn extract(kind: DocumentKind, bytes: &[u8]) -> ragd_ingest::Result<Extracted> {
    let library = fixtures::pdfium_library();
    let ocr = OcrSettings { mode: OcrMode::Never, ..OcrSettings::default() };
    // Real files, read as the server's worker process reads them: damaged ones included.
    let limits =
        ExtractLimits { pdfium: Some(library), ocr, unchecked_pdfs: true, ..Default::default() };
    extract_with(kind, bytes, &limits)
}

/// The share of `pdftotext`'s sampled lines found in `text`, and the first few missed.
fn pdf_coverage(path: &Path, text: &str) -> (f64, usize, Vec<String>) {
    let output = Command::new("pdftotext").arg(path).arg("-").output().unwrap_or_else(|err| {
        panic!(
            "cannot run pdftotext (apt-get install poppler-utils; `cargo xtask test` does): {err}"
        )
    });
    assert!(output.status.success(), "pdftotext failed on {}", path.display());
    let reference = String::from_utf8_lossy(&output.stdout);
    let coverage = line_coverage(&reference, text, SAMPLED_LINES);
    assert!(
        coverage.sampled >= 10,
        "pdftotext found only {} lines in {}",
        coverage.sampled,
        path.display()
    );
    (coverage.share(), coverage.sampled, coverage.missed)
}

#[test]
fn every_real_document_extracts_and_pdfs_keep_what_pdftotext_reads() {
    let files = corpus_documents();
    assert!(files.len() >= 60, "the corpus has {} files", files.len());
    let mut failures = String::new();
    let mut pdfs = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let kind = match detect(&bytes, &name) {
            Ok(kind) => kind,
            Err(err) => {
                writeln!(failures, "{name}: not detected: {err}").unwrap();
                continue;
            }
        };
        let extracted = match extract(kind, &bytes) {
            Ok(extracted) => extracted,
            Err(err) => {
                writeln!(failures, "{name}: {err}").unwrap();
                continue;
            }
        };
        if extracted.text.trim().is_empty() {
            writeln!(failures, "{name}: no text").unwrap();
        }
        if kind == DocumentKind::Pdf {
            pdfs += 1;
            let (found, sampled, missed) = pdf_coverage(path, &extracted.text);
            eprintln!("{name}: {:.1} % of {sampled} pdftotext lines", found * 100.0);
            if found < MIN_PDF_LINES {
                writeln!(
                    failures,
                    "{name}: only {:.1} % of {sampled} pdftotext lines found; missed e.g. {missed:?}",
                    found * 100.0
                )
                .unwrap();
            }
        }
    }
    assert!(pdfs >= 5, "only {pdfs} PDFs in the corpus");
    assert!(failures.is_empty(), "real documents that failed:\n{failures}");
}

/// Words of one document are not found in another: the comparison can fail.
#[test]
fn the_pdf_comparison_tells_documents_apart() {
    let dir = corpus_dir();
    let (a, b) = (dir.join("r-faq.pdf"), dir.join("fhs-3.0.pdf"));
    let text_of =
        |path: &Path| extract(DocumentKind::Pdf, &std::fs::read(path).unwrap()).unwrap().text;
    let (own, _, _) = pdf_coverage(&a, &text_of(&a));
    let (other, _, _) = pdf_coverage(&a, &text_of(&b));
    assert!(own >= MIN_PDF_LINES, "{own}");
    assert!(other < 0.1, "r-faq.pdf's lines found in fhs-3.0.pdf's text: {other}");
}

/// Every Markdown file of the corpus, turned into a DOCX by pandoc (the writer whose
/// `w:val="true"` booleans once failed ragd), extracts with 98 % of the words pandoc itself
/// renders as plain text.
#[test]
fn pandoc_docx_of_the_corpus_extracts_with_its_text() {
    let dir = corpus_dir();
    let work = tempfile::tempdir().unwrap();
    let mut converted = 0;
    let mut failures = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let docx = work.path().join("out.docx");
        let pandoc = |args: &[&str]| {
            let output = Command::new("pandoc")
                .args(["--from", "markdown"])
                .args(args)
                .arg(&path)
                .output()
                .unwrap_or_else(|err| {
                    panic!("cannot run pandoc (`cargo xtask test` installs it): {err}")
                });
            assert!(output.status.success(), "pandoc failed on {}", path.display());
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        pandoc(&["--to", "docx", "--output", docx.to_str().unwrap()]);
        let plain = pandoc(&["--to", "plain", "--wrap", "none"]);
        let bytes = std::fs::read(&docx).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match extract(detect(&bytes, "converted.docx").unwrap(), &bytes) {
            Ok(extracted) => {
                let (found, total) = word_coverage(&plain, &extracted.text);
                if found * 100 < total * 98 {
                    writeln!(failures, "{name}: {found} of {total} words").unwrap();
                }
            }
            Err(err) => writeln!(failures, "{name}: {err}").unwrap(),
        }
        converted += 1;
    }
    assert!(converted >= 5, "only {converted} Markdown files in the corpus");
    assert!(failures.is_empty(), "pandoc DOCX that failed:\n{failures}");
}

#[test]
fn comparison_ignores_spacing_and_glyph_choices_but_not_words() {
    assert_eq!(comparable("The  ﬁrst – “quoted”\nline"), "thefirst-\"quoted\"line");
    assert_eq!(comparable("hyphen-\nated, Germany\u{84}"), "hyphenated,germany");
    let lines = sampled_lines("Short\nThree words here\n12 34 56 78\nand another good line\n", 10);
    assert_eq!(lines, ["threewordshere", "andanothergoodline"]);
    assert_ne!(comparable("first line"), comparable("fist line"));
    assert_eq!(word_coverage("-   a b, [c] a", "A b c"), (3, 4));
}
