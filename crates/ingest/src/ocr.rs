//! Images (PNG, JPEG, TIFF, WebP) read by optical character recognition: Tesseract.
//!
//! An image upload is a one-page document whose text is what the `tesseract` program
//! (Debian's `tesseract-ocr` and its language packs) reads in it. Before anything decodes
//! it, the image's size is taken from its header (`imagesize`), and an image of more than
//! [`MAX_OCR_PIXELS`] is refused: a header claiming 100 000 x 100 000 pixels costs nothing.
//! The image goes to `tesseract` on its stdin, one OCR thread (`OMP_THREAD_LIMIT=1`), in the
//! languages of [`OcrSettings::languages`]; the run is killed when the extraction's deadline
//! passes or the caller cancels, and its text is bounded by the byte budget.
//!
//! PDF pages ([`pdf_pages`], through [`crate::pdfium`]) keep their text layer; a page with
//! almost no text (fewer than [`SPARSE_PAGE_CHARS`] visible characters: a scan) is
//! rendered at [`OCR_DPI`] and read the same way, each page within [`PAGE_OCR_TIMEOUT`].
//! With [`OcrMode::Always`] every page is read, its text layer ignored (for PDFs whose text
//! layer is garbage). A page whose reading fails is left empty and named in
//! [`Extracted::warnings`]; the document fails only when no page has any text. Progress
//! is reported page by page ([`ExtractLimits::progress`]).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::detect::DocumentKind;
use crate::error::{Error, Result};
use crate::extract::{Extracted, PageSpan, normalize};
use crate::guard::ExtractLimits;
use crate::pdfium::{PdfDocument, Pdfium};

/// The most pixels an image may have to be read (50 megapixels: an A4 page at 600 dpi is
/// 35).
pub const MAX_OCR_PIXELS: u64 = 50_000_000;

/// A PDF page with fewer visible characters than this is read by OCR in
/// [`OcrMode::Auto`]: page numbers and running heads alone do not make a text layer.
pub const SPARSE_PAGE_CHARS: usize = 16;

/// The resolution PDF pages are rendered at for OCR (Tesseract's recommended 300 dpi).
pub const OCR_DPI: f32 = 300.0;

/// The longest one PDF page may be read for; a slower page is left empty.
pub const PAGE_OCR_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running OCR is checked for its deadline and the cancel flag.
const POLL: Duration = Duration::from_millis(20);

/// Whether and how images are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OcrMode {
    /// Read images and the PDF pages that have (almost) no text (the default).
    #[default]
    Auto,
    /// Read images and every PDF page, ignoring PDFs' text layers.
    Always,
    /// Never run OCR: image uploads fail with the reason, PDF pages keep what text they
    /// have.
    Never,
}

/// The OCR settings of an extraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcrSettings {
    /// Whether images are read.
    pub mode: OcrMode,
    /// Tesseract's languages, joined by `+` (`eng`, `eng+deu`); each needs its language
    /// pack (`tesseract-ocr-deu`...).
    pub languages: String,
}

impl Default for OcrSettings {
    /// OCR on, in English.
    fn default() -> Self {
        Self { mode: OcrMode::Auto, languages: "eng".to_owned() }
    }
}

impl OcrSettings {
    /// Checks the language list: names of letters, digits and `_`, joined by `+`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty list or a name with other characters.
    pub fn validate(&self) -> Result<()> {
        let valid = !self.languages.is_empty()
            && self.languages.split('+').all(|name| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if valid {
            Ok(())
        } else {
            Err(Error::InvalidConfig(format!(
                "OCR languages {:?} are not Tesseract language names joined by '+' (eng+deu)",
                self.languages
            )))
        }
    }
}

/// Reads the text of an image of `kind` with Tesseract.
///
/// # Errors
/// [`Error::Extraction`] when OCR is off, the header is unreadable or the image too large,
/// `tesseract` cannot run or fails, the deadline passes, or the text is over the budget.
pub(crate) fn extract_image(
    kind: DocumentKind,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<Extracted> {
    let format = crate::extract::format_name(kind);
    let bad = |reason: String| Error::Extraction { format, reason };
    if limits.ocr.mode == OcrMode::Never {
        return Err(bad("the document is an image and OCR is turned off".to_owned()));
    }
    limits.ocr.validate().map_err(|err| bad(err.to_string()))?;
    let size = imagesize::blob_size(bytes)
        .map_err(|err| bad(format!("not a readable image header: {err}")))?;
    let pixels = (size.width as u64).saturating_mul(size.height as u64);
    if pixels > MAX_OCR_PIXELS {
        return Err(bad(format!(
            "the image is {} x {} pixels, more than the {MAX_OCR_PIXELS} OCR reads",
            size.width, size.height
        )));
    }
    let text = run_tesseract(bytes, limits, Instant::now() + limits.timeout).map_err(bad)?;
    let text = normalize(text.trim());
    let chars = text.chars().count();
    Ok(Extracted {
        text,
        pages: vec![PageSpan { page: 1, char_start: 0, char_end: chars }],
        headings: Vec::new(),
        warnings: Vec::new(),
    })
}

/// The text of each page of a PDF read by PDFium (`library`), scanned pages read by OCR,
/// after the structural guards of [`crate::extract::check_pdf`], and a warning for each
/// page left empty because OCR failed on it. [`ExtractLimits::progress`] follows the
/// pages.
///
/// # Errors
/// [`Error::Extraction`] when PDFium cannot be loaded or cannot read the file, the text is
/// over the budget, the caller cancelled, or every page is empty and some failed OCR.
pub(crate) fn pdf_pages(
    library: &Path,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<(Vec<String>, Vec<String>)> {
    let bad = |reason: String| Error::Extraction { format: "pdf", reason };
    crate::extract::check_pdf(bytes, limits)?;
    if limits.ocr.mode != OcrMode::Never {
        limits.ocr.validate().map_err(|err| bad(err.to_string()))?;
    }
    let pdfium = Pdfium::load(library)?;
    let doc = pdfium.open_document(bytes, &limits.cancel)?;
    let started = Instant::now();
    let count = doc.page_count();
    let mut pages = Vec::with_capacity(count);
    let mut failures = Vec::new();
    let mut total = 0_u64;
    for index in 0..count {
        if limits.cancelled() {
            return Err(bad("the extraction was cancelled".to_owned()));
        }
        let text = read_page(&doc, index, limits, started, &mut failures);
        total += text.len() as u64;
        if total > limits.max_extracted_bytes {
            return Err(limits.too_much("pdf"));
        }
        pages.push(text);
        // At most 100, and `count` is at least `index + 1`.
        #[allow(clippy::cast_possible_truncation)]
        limits.progress.store(((index + 1) * 100 / count) as u8, Ordering::Relaxed);
    }
    if !failures.is_empty() {
        if pages.iter().all(|page| visible_chars(page) == 0) {
            return Err(bad(format!("no page has text: {}", failures.join("; "))));
        }
        tracing::warn!(?failures, "PDF pages left out or only partly read");
    }
    Ok((pages, failures))
}

/// The text of page `index`: its text layer, or what OCR reads in it (see the module doc).
/// A page PDFium cannot load, render or OCR cannot read gives what it has (often nothing)
/// and a sentence in `failures`.
fn read_page(
    doc: &PdfDocument<'_>,
    index: usize,
    limits: &ExtractLimits,
    started: Instant,
    failures: &mut Vec<String>,
) -> String {
    let number = index + 1;
    let mut text = match doc.page_text(index) {
        Ok(text) => text,
        Err(err) => {
            failures.push(format!("page {number} was left empty: {}", reason_of(&err)));
            return String::new();
        }
    };
    let read = match limits.ocr.mode {
        OcrMode::Never => false,
        OcrMode::Always => true,
        OcrMode::Auto => visible_chars(&text) < SPARSE_PAGE_CHARS,
    };
    if !read {
        return text;
    }
    let deadline = (started + limits.timeout).min(Instant::now() + PAGE_OCR_TIMEOUT);
    let scanned = doc
        .render_gray(index, OCR_DPI, MAX_OCR_PIXELS)
        .map_err(|err| reason_of(&err))
        .and_then(|image| run_tesseract(&image.to_pgm(), limits, deadline));
    match scanned {
        Ok(scanned) if limits.ocr.mode == OcrMode::Always => text = scanned,
        Ok(scanned) if visible_chars(&scanned) > visible_chars(&text) => text = scanned,
        Ok(_) => {}
        Err(reason) if visible_chars(&text) == 0 => {
            failures.push(format!("page {number} was left empty: OCR failed ({reason})"));
        }
        Err(reason) => {
            failures.push(format!("page {number} kept its text layer: OCR failed ({reason})"));
        }
    }
    text
}

/// An extraction error's reason, without the format prefix.
fn reason_of(err: &Error) -> String {
    if let Error::Extraction { reason, .. } = err { reason.clone() } else { err.to_string() }
}

/// Characters of `text` that are not white space.
fn visible_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Runs `tesseract` on the image and returns its text, or the reason it failed; it is
/// killed at `deadline` or when the caller cancels.
fn run_tesseract(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: Instant,
) -> std::result::Result<String, String> {
    let allowed = deadline.saturating_duration_since(Instant::now());
    let mut child = Command::new("tesseract")
        .args(["stdin", "stdout", "-l", &limits.ocr.languages])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run tesseract (install tesseract-ocr): {err}"))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        return Err("tesseract's pipes were not opened".to_owned());
    };
    let budget = limits.max_extracted_bytes;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // A write error means tesseract stopped reading: its exit status tells why.
            let _ = stdin.write_all(bytes);
        });
        let reading = scope.spawn(move || {
            let mut text = Vec::new();
            let read = (&mut stdout).take(budget.saturating_add(1)).read_to_end(&mut text);
            read.map(|_| text)
        });
        let errors = scope.spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut text);
            text
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline || limits.cancelled() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "OCR did not finish within its time limit ({} s)",
                        allowed.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(err) => return Err(format!("cannot wait for tesseract: {err}")),
            }
        };
        let text = reading
            .join()
            .map_err(|_| "reading tesseract's output failed".to_owned())?
            .map_err(|err| format!("cannot read tesseract's output: {err}"))?;
        let errors = errors.join().unwrap_or_default();
        if !status.success() {
            let last = errors.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("");
            return Err(format!("tesseract failed ({status}): {last}"));
        }
        if text.len() as u64 > budget {
            return Err(limits.too_much_reason());
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_names_joined_by_plus() {
        let settings =
            |languages: &str| OcrSettings { mode: OcrMode::Auto, languages: languages.to_owned() };
        assert!(settings("eng").validate().is_ok());
        assert!(settings("eng+deu+chi_sim").validate().is_ok());
        for bad in ["", "eng+", "eng deu", "-l", "../x", "eng;rm"] {
            assert!(settings(bad).validate().is_err(), "{bad:?}");
        }
    }
}
