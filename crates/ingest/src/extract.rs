//! Text extraction: bytes of a detected [`DocumentKind`] in, plain text with page and
//! heading positions out.
//!
//! [`extract`] is CPU-bound and synchronous (a large PDF can take seconds); async callers
//! run it inside `tokio::task::spawn_blocking`, or, like the pipeline, on a thread of its
//! own with a deadline. [`extract_with`] takes explicit [`ExtractLimits`]; whatever the
//! format, text larger than [`ExtractLimits::max_extracted_bytes`] is an error.
//!
//! Every offset in [`Extracted`] counts `char`s (Unicode scalar values) into
//! [`Extracted::text`], never bytes, so they can be stored and compared across languages.
//! The text is normalised: `\r\n` and lone `\r` become `\n`, and NUL characters are removed.
//!
//! Per format:
//! - PDF ([`crate::pdfium`] when [`ExtractLimits::pdfium`] names the library, which
//!   `cargo xtask assets` provides; pages without text are rendered and read by Tesseract,
//!   see [`crate::ocr`]), else `pdf-extract`: one text segment per page, separated by a
//!   blank line; each page is a [`PageSpan`]. With `pdf-extract` the parser may panic on
//!   malformed files; panics are caught and
//!   returned as [`Error::Extraction`] (the process panic hook still logs them). Text is
//!   rendered through ragd's own `OutputDev` (pdf-extract's plain-text spacing rules) that
//!   stops at [`ExtractLimits::max_extracted_bytes`] or when [`ExtractLimits::cancel`] is
//!   set, after [`check_pdf_streams`] refused compression bombs and [`check_pdf_structure`]
//!   cyclic page trees and self-invoking forms.
//! - DOCX ([`crate::docx`], a pull parser over the bounded archive): paragraphs and tables
//!   in document order, separated by blank lines; tables as Markdown tables; paragraphs
//!   with heading styles become [`HeadingSpan`]s with paths such as `A > B`.
//! - HTML ([`crate::html`], `html2text`): the rendered text, data tables as Markdown tables;
//!   `h1`..`h6` are rendered as `#`-prefixed lines, which give heading paths.
//! - XLSX, ODS and CSV ([`crate::spreadsheet`]): each sheet's name as a heading, then its
//!   cells as one Markdown table.
//! - ODT ([`crate::odt`]) like DOCX; PPTX ([`crate::pptx`]) one page per slide with its
//!   notes, the title as heading; EPUB ([`crate::epub`]) the spine's chapters read as HTML;
//!   EML ([`crate::eml`]) the headers, the body and a list of the attachments.
//! - PNG, JPEG, TIFF and WebP ([`crate::ocr`]): one page, the text Tesseract reads.
//! - Markdown and text: decoded as UTF-8 (BOM stripped), UTF-16 LE/BE with a BOM, or
//!   Latin-1 as the fallback. Markdown ATX headings (`#`..`######`) give heading paths.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::detect::DocumentKind;
use crate::error::{Error, Result};
use crate::guard::{ExtractLimits, check_pdf_form_draws, check_pdf_streams, check_pdf_structure};

/// The text of a document and where its pages and headings are.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    /// The normalised text of the whole document.
    pub text: String,
    /// Page positions, in order; empty for formats without pages.
    pub pages: Vec<PageSpan>,
    /// Heading positions, in order; empty for formats without headings.
    pub headings: Vec<HeadingSpan>,
    /// What was left out without failing the document (a PDF page OCR could not read),
    /// one sentence each.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Extracted {
    /// The page containing the char offset `char_pos`: the last page starting at or before it.
    #[must_use]
    pub fn page_at(&self, char_pos: usize) -> Option<u32> {
        let after = self.pages.partition_point(|page| page.char_start <= char_pos);
        after.checked_sub(1).map(|index| self.pages[index].page)
    }

    /// The path of the last heading starting at or before the char offset `char_pos`.
    #[must_use]
    pub fn heading_at(&self, char_pos: usize) -> Option<&str> {
        let after = self.headings.partition_point(|heading| heading.char_start <= char_pos);
        after.checked_sub(1).map(|index| self.headings[index].path.as_str())
    }
}

/// Where one page of a paged document lies in [`Extracted::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageSpan {
    /// Page number, from 1.
    pub page: u32,
    /// Char offset of the page's first char.
    pub char_start: usize,
    /// Char offset just past the page's last char.
    pub char_end: usize,
}

/// Where a heading starts in [`Extracted::text`], with the headings above it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadingSpan {
    /// The heading and its ancestors, outermost first, joined by ` > `.
    pub path: String,
    /// Char offset of the heading's first char.
    pub char_start: usize,
}

/// Extracts the text of a document of `kind` within the default [`ExtractLimits`].
///
/// Synchronous and CPU-bound: run it on a blocking thread.
///
/// # Errors
/// As [`extract_with`].
pub fn extract(kind: DocumentKind, bytes: &[u8]) -> Result<Extracted> {
    extract_with(kind, bytes, &ExtractLimits::default())
}

/// Extracts the text of a document of `kind`, refusing documents that expand past
/// `limits` (see [`crate::guard`]). The time limit is not enforced here: a caller that
/// needs one runs this on a thread it can abandon and sets [`ExtractLimits::cancel`].
///
/// # Errors
/// [`Error::Empty`] for no bytes; [`Error::Extraction`] when the file is malformed (a
/// truncated PDF, a DOCX that is not a zip archive, a parser panic), hostile (a zip bomb, a
/// cyclic PDF) or larger than the limits.
pub fn extract_with(kind: DocumentKind, bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let extracted = match kind {
        DocumentKind::Pdf => extract_pdf(bytes, limits)?,
        DocumentKind::Docx => crate::docx::extract_docx(bytes, limits)?,
        DocumentKind::Html => crate::html::extract_html(bytes, limits)?,
        DocumentKind::Xlsx => crate::spreadsheet::extract_workbook("xlsx", bytes, limits)?,
        DocumentKind::Ods => crate::spreadsheet::extract_workbook("ods", bytes, limits)?,
        DocumentKind::Csv => crate::spreadsheet::extract_csv(bytes, limits)?,
        DocumentKind::Odt => crate::odt::extract_odt(bytes, limits)?,
        DocumentKind::Pptx => crate::pptx::extract_pptx(bytes, limits)?,
        DocumentKind::Epub => crate::epub::extract_epub(bytes, limits)?,
        DocumentKind::Eml => crate::eml::extract_eml(bytes, limits)?,
        DocumentKind::Png | DocumentKind::Jpeg | DocumentKind::Tiff | DocumentKind::Webp => {
            crate::ocr::extract_image(kind, bytes, limits)?
        }
        DocumentKind::Markdown | DocumentKind::Text => {
            if bytes.len() as u64 > limits.max_extracted_bytes {
                return Err(limits.too_much(format_name(kind)));
            }
            let text = normalize(&decode_text(bytes));
            let headings =
                if kind == DocumentKind::Markdown { markdown_headings(&text) } else { Vec::new() };
            Extracted { text, pages: Vec::new(), headings, warnings: Vec::new() }
        }
    };
    if extracted.text.len() as u64 > limits.max_extracted_bytes {
        return Err(limits.too_much(format_name(kind)));
    }
    Ok(extracted)
}

/// The short name of a format in error messages.
pub(crate) const fn format_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Pdf => "pdf",
        DocumentKind::Docx => "docx",
        DocumentKind::Html => "html",
        DocumentKind::Markdown => "markdown",
        DocumentKind::Text => "text",
        DocumentKind::Xlsx => "xlsx",
        DocumentKind::Ods => "ods",
        DocumentKind::Csv => "csv",
        DocumentKind::Odt => "odt",
        DocumentKind::Pptx => "pptx",
        DocumentKind::Epub => "epub",
        DocumentKind::Eml => "eml",
        DocumentKind::Png => "png",
        DocumentKind::Jpeg => "jpeg",
        DocumentKind::Tiff => "tiff",
        DocumentKind::Webp => "webp",
    }
}

/// Decodes text bytes: UTF-8 (BOM stripped), UTF-16 with a BOM, else Latin-1.
#[must_use]
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return decode_utf16(rest, u16::from_be_bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        // Every byte is a Latin-1 code point, so this decoding cannot fail.
        Err(_) => bytes.iter().map(|&byte| char::from(byte)).collect(),
    }
}

/// Decodes UTF-16 code units built by `unit`; unpaired surrogates and an odd trailing byte
/// become U+FFFD.
fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut text: String = char::decode_utf16(units)
        .map(|decoded| decoded.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if bytes.len() % 2 == 1 {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

/// Turns `\r\n` and lone `\r` into `\n` and removes NUL characters.
#[must_use]
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\0' => {}
            other => out.push(other),
        }
    }
    out
}

/// Builds the extracted text block by block, tracking char offsets and the heading stack.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    /// The text so far.
    text: String,
    /// Chars in `text`, kept so offsets need no rescans.
    chars: usize,
    /// Headings recorded so far.
    headings: Vec<HeadingSpan>,
    /// The open headings: level and title, outermost first.
    stack: Vec<(u32, String)>,
}

impl Builder {
    /// Appends a block (a paragraph, a table) after a blank line; returns its char offset.
    pub(crate) fn push_block(&mut self, block: &str) -> usize {
        if !self.text.is_empty() {
            self.push_str("\n\n");
        }
        let start = self.chars;
        self.push_str(block);
        start
    }

    /// Appends raw text.
    pub(crate) fn push_str(&mut self, text: &str) {
        self.text.push_str(text);
        self.chars += text.chars().count();
    }

    /// Chars of text so far: the offset of what comes next.
    pub(crate) const fn chars(&self) -> usize {
        self.chars
    }

    /// The text and headings built, without pages.
    pub(crate) fn finish(self) -> Extracted {
        Extracted {
            text: self.text,
            pages: Vec::new(),
            headings: self.headings,
            warnings: Vec::new(),
        }
    }

    /// Records a heading of `level` titled `title` starting at `char_start`.
    pub(crate) fn heading(&mut self, level: u32, title: &str, char_start: usize) {
        self.stack.retain(|(open, _)| *open < level);
        self.stack.push((level, title.to_owned()));
        let path =
            self.stack.iter().map(|(_, title)| title.as_str()).collect::<Vec<_>>().join(" > ");
        self.headings.push(HeadingSpan { path, char_start });
    }
}

/// Extracts a PDF page by page, through PDFium when [`ExtractLimits::pdfium`] names it,
/// else through `pdf-extract`; a parser panic becomes [`Error::Extraction`].
fn extract_pdf(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let (pages, warnings) = match &limits.pdfium {
        Some(library) => crate::ocr::pdf_pages(library, bytes, limits)?,
        None => {
            let outcome = catch_unwind(AssertUnwindSafe(|| pdf_pages(bytes, limits)));
            match outcome {
                Ok(pages) => (pages?, Vec::new()),
                Err(panic) => {
                    return Err(Error::Extraction {
                        format: "pdf",
                        reason: panic_reason(panic.as_ref()),
                    });
                }
            }
        }
    };
    let mut builder = Builder::default();
    let mut spans = Vec::with_capacity(pages.len());
    for (index, page) in pages.iter().enumerate() {
        let page_text = normalize(page);
        let page_text = page_text.trim_matches('\n');
        if index > 0 {
            builder.push_str("\n\n");
        }
        let char_start = builder.chars;
        builder.push_str(page_text);
        let page = u32::try_from(index + 1).map_err(|_| Error::Extraction {
            format: "pdf",
            reason: "too many pages".to_owned(),
        })?;
        spans.push(PageSpan { page, char_start, char_end: builder.chars });
    }
    Ok(Extracted { text: builder.text, pages: spans, headings: Vec::new(), warnings })
}

/// [`check_pdf_streams`], [`check_pdf_structure`] and [`check_pdf_form_draws`] on a PDF
/// that `lopdf` can parse: the guards PDFium's reading is preceded by. A file `lopdf`
/// cannot parse (PDFium repairs many such files) is left to PDFium only where
/// [`ExtractLimits::unchecked_pdfs`] allows it, that is inside a worker process whose
/// memory and time limits stop what the guards could not look at; elsewhere it fails.
pub(crate) fn check_pdf(bytes: &[u8], limits: &ExtractLimits) -> Result<()> {
    let unchecked = |reason: String| {
        if limits.unchecked_pdfs {
            Ok(())
        } else {
            Err(Error::Extraction {
                format: "pdf",
                reason: format!(
                    "the file is damaged in a way ragd's checks cannot read past ({reason}); \
                     PDFium reads such files only in an isolated extraction worker"
                ),
            })
        }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let mut doc = match pdf_extract::Document::load_mem(bytes) {
            Ok(doc) => doc,
            Err(err) => return unchecked(err.to_string()),
        };
        if doc.is_encrypted() && doc.decrypt("").is_err() {
            return unchecked("it is encrypted".to_owned());
        }
        check_pdf_streams(&doc, limits)?;
        check_pdf_structure(&doc)?;
        check_pdf_form_draws(&doc)
    }));
    outcome.unwrap_or_else(|panic| unchecked(panic_reason(panic.as_ref())))
}

/// The text of each page, like `pdf_extract::extract_text_from_mem_by_pages` (pages up to
/// the first one that fails to render), after [`check_pdf_streams`] and
/// [`check_pdf_structure`], with the output
/// bounded by `limits`.
fn pdf_pages(bytes: &[u8], limits: &ExtractLimits) -> Result<Vec<String>> {
    let bad = |reason: String| Error::Extraction { format: "pdf", reason };
    let mut doc = pdf_extract::Document::load_mem(bytes).map_err(|err| bad(err.to_string()))?;
    if doc.is_encrypted() {
        doc.decrypt("").map_err(|err| bad(format!("the file is encrypted: {err}")))?;
    }
    check_pdf_streams(&doc, limits)?;
    check_pdf_structure(&doc)?;
    let mut output = PdfText::new(limits);
    let rendered = pdf_extract::output_doc(&doc, &mut output);
    if let Some(stop) = output.stop {
        return Err(stop);
    }
    if let Err(err) = rendered {
        tracing::debug!(%err, pages = output.pages.len(), "PDF rendering stopped early");
    }
    Ok(output.pages)
}

/// `pdf_extract::PlainTextOutput` with limits: the same spacing rules, one string per page,
/// and a stop when the caller gave up or the text passes `max_extracted_bytes`.
struct PdfText<'a> {
    limits: &'a ExtractLimits,
    /// Finished pages.
    pages: Vec<String>,
    /// The page being rendered.
    page: String,
    /// Bytes of text so far, all pages.
    bytes: u64,
    /// Why rendering was stopped, when it was.
    stop: Option<Error>,
    /// Page height, for flipping y so that it grows downwards.
    height: f64,
    last_end: f64,
    last_y: f64,
    first_char: bool,
}

impl<'a> PdfText<'a> {
    fn new(limits: &'a ExtractLimits) -> Self {
        Self {
            limits,
            pages: Vec::new(),
            page: String::new(),
            bytes: 0,
            stop: None,
            height: 0.0,
            last_end: 100_000.0,
            last_y: 0.0,
            first_char: false,
        }
    }

    /// Stops rendering with `err`.
    fn halt(&mut self, err: Error) -> std::result::Result<(), pdf_extract::OutputError> {
        self.stop = Some(err);
        Err(pdf_extract::OutputError::FormatError(std::fmt::Error))
    }

    /// Appends text, within the byte budget.
    fn write(&mut self, text: &str) -> std::result::Result<(), pdf_extract::OutputError> {
        self.bytes += text.len() as u64;
        if self.bytes > self.limits.max_extracted_bytes {
            let err = self.limits.too_much("pdf");
            return self.halt(err);
        }
        self.page.push_str(text);
        Ok(())
    }
}

impl pdf_extract::OutputDev for PdfText<'_> {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &pdf_extract::MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> std::result::Result<(), pdf_extract::OutputError> {
        self.height = media_box.ury - media_box.lly;
        self.page.clear();
        self.last_end = 100_000.0;
        self.last_y = 0.0;
        self.first_char = false;
        Ok(())
    }

    fn end_page(&mut self) -> std::result::Result<(), pdf_extract::OutputError> {
        self.pages.push(std::mem::take(&mut self.page));
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> std::result::Result<(), pdf_extract::OutputError> {
        if self.limits.cancelled() {
            return self.halt(Error::Extraction {
                format: "pdf",
                reason: "extraction was cancelled after its time limit".to_owned(),
            });
        }
        // The text position with y flipped, and the font size in device space (the side
        // of the square with the area of the transformed size vector), as pdf-extract does.
        let (x, y) = (trm.m31, self.height - trm.m32);
        let scaled_x = font_size * trm.m11 + font_size * trm.m21;
        let scaled_y = font_size * trm.m12 + font_size * trm.m22;
        let size = (scaled_x * scaled_y).sqrt();
        if self.first_char {
            if (y - self.last_y).abs() > size * 1.5 {
                self.write("\n")?;
            }
            if x < self.last_end && (y - self.last_y).abs() > size * 0.5 {
                self.write("\n")?;
            }
            if x > self.last_end + size * 0.1 {
                self.write(" ")?;
            }
        }
        self.write(text)?;
        self.first_char = false;
        self.last_y = y;
        self.last_end = x + width * size;
        Ok(())
    }

    fn begin_word(&mut self) -> std::result::Result<(), pdf_extract::OutputError> {
        self.first_char = true;
        Ok(())
    }

    fn end_word(&mut self) -> std::result::Result<(), pdf_extract::OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> std::result::Result<(), pdf_extract::OutputError> {
        Ok(())
    }
}

/// A readable reason from a caught panic payload.
pub(crate) fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_owned());
    format!("the parser failed on malformed input ({message})")
}

/// Heading paths of Markdown ATX headings (`#`..`######`), skipping fenced code blocks.
pub(crate) fn markdown_headings(text: &str) -> Vec<HeadingSpan> {
    let mut builder = Builder::default();
    let mut fence: Option<&str> = None;
    let mut char_pos = 0;
    for line in text.split('\n') {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        if indent <= 3 {
            if let Some(open) = fence {
                if trimmed.starts_with(open) {
                    fence = None;
                }
            } else if trimmed.starts_with("```") {
                fence = Some("```");
            } else if trimmed.starts_with("~~~") {
                fence = Some("~~~");
            } else if let Some((level, title)) = atx_heading(trimmed) {
                builder.heading(level, title, char_pos);
            }
        }
        char_pos += line.chars().count() + 1;
    }
    builder.headings
}

/// The level and title of an ATX heading line (leading indentation already removed).
pub(crate) fn atx_heading(line: &str) -> Option<(u32, &str)> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let title = rest.trim();
    // A closing sequence of hashes (after white space) is not part of the title.
    let without_closing = title.trim_end_matches('#');
    let title = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        title
    };
    if title.is_empty() {
        return None;
    }
    let level = u32::try_from(hashes).ok()?;
    Some((level, title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_line_endings_and_nuls() {
        assert_eq!(normalize("a\r\nb\rc\0d\n"), "a\nb\ncd\n");
    }

    #[test]
    fn decodes_every_supported_encoding() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFcaf\xC3\xA9"), "café");
        assert_eq!(decode_text(b"caf\xE9"), "café");
        assert_eq!(decode_text(b"\xFF\xFEc\x00\xE9\x00"), "cé");
        assert_eq!(decode_text(b"\xFE\xFF\x00c\x00\xE9"), "cé");
    }

    #[test]
    fn atx_headings_build_paths() {
        let text = "# A\nintro\n## B ##\n```\n# not a heading\n```\n### C\n## D\n#nope\n";
        let paths: Vec<_> =
            markdown_headings(text).into_iter().map(|h| (h.path, h.char_start)).collect();
        assert_eq!(
            paths,
            vec![
                ("A".to_owned(), 0),
                ("A > B".to_owned(), 10),
                ("A > B > C".to_owned(), 42),
                ("A > D".to_owned(), 48),
            ]
        );
    }
}
