//! Fuzz target: every extractor on arbitrary bytes, as the server would run them.
//!
//! Each input goes through `detect` and the extractor it picks (the upload path), and
//! through the extractor chosen by its first byte on the rest (so every format sees every
//! input, magic bytes or not). ragd's contract is that extraction returns `Ok` or a clean
//! error within its limits: a panic that escapes, an abort, a stack overflow, a hang (the
//! libFuzzer `-timeout`) or runaway memory (`-rss_limit_mb`) is a finding.
//!
//! Like the server, each extraction has a deadline: after [`DEADLINE`] its cancel flag is
//! set, which stops the PDF renderer at its next character (the committed
//! `exponential-forms.pdf` renders 2^40 words otherwise). A parser that ignores the flag
//! still hangs into libFuzzer's `-timeout`: in the server, only killing its worker process
//! would stop it. Parser panics that ragd catches are part of the contract, so
//! libfuzzer-sys's abort-on-any-panic hook is replaced by the default one: a panic that
//! escapes still aborts at the FFI boundary.
//!
//! When `XTASK_FUZZ_PDFIUM` names the PDFium library (`cargo xtask fuzz extract` sets it),
//! PDFs are also read through it, OCR off. PDFium cannot be cancelled inside a page, so a
//! hang there is a finding even though the server's worker process would be killed.

#![no_main]

use std::sync::atomic::Ordering;
use std::path::PathBuf;
use std::sync::{Arc, Once, OnceLock, mpsc};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ragd_ingest::{DocumentKind, ExtractLimits, OcrMode, detect, extract_with};

/// How long one extraction may run before it is cancelled.
const DEADLINE: Duration = Duration::from_secs(2);

/// The extracted-text budget of every run.
const MAX_TEXT: u64 = 1 << 20;

static DEFAULT_PANIC_HOOK: Once = Once::new();

/// The PDFium library, when the environment names one.
fn pdfium() -> Option<PathBuf> {
    static PDFIUM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PDFIUM.get_or_init(|| std::env::var_os("XTASK_FUZZ_PDFIUM").map(PathBuf::from)).clone()
}

fuzz_target!(|data: &[u8]| {
    DEFAULT_PANIC_HOOK.call_once(|| drop(std::panic::take_hook()));
    if let Ok(kind) = detect(data, "upload") {
        extract_within_deadline(kind, data);
    }
    if let Some((&first, rest)) = data.split_first() {
        let kind = DocumentKind::ALL[usize::from(first) % DocumentKind::ALL.len()];
        extract_within_deadline(kind, rest);
    }
});

/// Extracts with a watchdog that cancels at [`DEADLINE`]; successful extractions stay
/// within the byte budget.
fn extract_within_deadline(kind: DocumentKind, bytes: &[u8]) {
    let limits = ExtractLimits { max_extracted_bytes: MAX_TEXT, ..ExtractLimits::default() };
    if kind == DocumentKind::Pdf
        && let Some(library) = pdfium()
    {
        let mut limits = ExtractLimits { pdfium: Some(library), ..limits.clone() };
        limits.ocr.mode = OcrMode::Never;
        limits.cancel = Arc::default();
        extract_checked(kind, bytes, limits);
    }
    extract_checked(kind, bytes, limits);
}

/// [`extract_within_deadline`] with one set of limits.
fn extract_checked(kind: DocumentKind, bytes: &[u8], limits: ExtractLimits) {
    let cancel = Arc::clone(&limits.cancel);
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout) {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    let result = extract_with(kind, bytes, &limits);
    drop(done);
    let _ = watchdog.join();
    if let Ok(extracted) = result {
        assert!(extracted.text.len() as u64 <= MAX_TEXT, "text past the budget");
    }
}
