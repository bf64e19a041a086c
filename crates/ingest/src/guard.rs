//! Defences against hostile documents, applied by [`crate::extract`] before and while a
//! parser runs.
//!
//! Every upload is untrusted: small files can be crafted to expand, recurse or loop.
//! [`ExtractLimits`] bounds what one document may cost, and each format gets a guard:
//!
//! - Zip-based formats (DOCX, XLSX, ODS; zip bombs): [`BoundedZip`] reads the archive with
//!   the `zip` crate, inflating each part through a reader that stops one byte past the
//!   budget, so a 10 KB file whose `word/document.xml` claims (or really has) gigabytes
//!   costs at most [`ExtractLimits::max_extracted_bytes`] of work before it fails. The
//!   declared sizes in the archive are never trusted. Parsers that open the archive
//!   themselves (calamine, for spreadsheets) get [`BoundedZip::rebuilt`]: the parts they
//!   read copied, uncompressed, into a new in-memory archive, so they see exactly the bytes
//!   that were counted; media parts, which carry no text, are left out.
//! - HTML (deep nesting): `html2text` walks some structures recursively (table size
//!   estimates) and renders in time that grows with depth, so [`flatten_deep_html`] drops
//!   the tags (never the text) of elements nested deeper than [`MAX_HTML_DEPTH`] before
//!   parsing. `<script>` and `<style>` bodies are never exposed as text by this.
//! - PDF (cycles): `pdf-extract` follows `/Parent` links and form XObjects (`Do`) by
//!   recursion, without cycle checks; a page whose parent is itself, or a form that draws
//!   itself, overflows the stack, which aborts the whole process (a stack overflow is not
//!   a panic and cannot be caught). [`check_pdf_structure`] walks those links first,
//!   iteratively and with a depth cap, and refuses such files. Text output is also
//!   bounded and checks a cancellation flag, see [`crate::extract`].
//!
//! - PDF (compression bombs): a content stream of a few kilobytes can inflate to
//!   gigabytes, and `lopdf` inflates whole streams into memory. [`check_pdf_streams`]
//!   decodes every stream the text renderer may read (all but images) through writers that
//!   stop one byte past the budget, before anything else touches them.
//! - PDF read by PDFium ([`crate::pdfium`]): the checks above run first wherever `lopdf`
//!   can parse the file, and [`check_pdf_form_draws`] refuses pages whose forms multiply
//!   (PDFium cannot be stopped inside a page; 2^40 nested draws took 6.6 GB in 30 s). A
//!   file `lopdf` cannot parse is read by PDFium only inside a worker process
//!   ([`ExtractLimits::unchecked_pdfs`]), whose limits stop it (the fuzzer found a damaged
//!   file of multiplying forms that PDFium repairs and then expands without end); in
//!   process such a file fails. An allocation failure inside PDFium aborts the process (a
//!   C++ exception cannot cross into Rust): one more reason the binary's default is
//!   process isolation.
//!
//! What remains is bounded by time and memory, not structure: the pipeline runs extraction
//! in a worker process with a memory limit that it kills at the deadline, or on a thread of
//! its own with a deadline (see [`crate::isolate`] and [`crate::pipeline`]).

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use pdf_extract::{Dictionary, Document, Object, ObjectId};

use crate::error::{Error, Result};
use crate::ocr::OcrSettings;

/// Elements nested deeper than this in an HTML page lose their tags (their text is kept).
pub const MAX_HTML_DEPTH: usize = 256;

/// The most entries a zip-based document may have.
const MAX_ZIP_ENTRIES: usize = 10_000;

/// How deep `/Parent` chains and nested form XObjects may go in a PDF.
const MAX_PDF_NESTING: usize = 64;

/// The most form XObjects one PDF page may draw, counting each nested invocation as often
/// as it runs: PDFium cannot be stopped inside a page, so forms that invoke each other
/// twice, forty deep (2^40 draws), must be refused before it starts.
pub const MAX_PDF_FORM_DRAWS: u64 = 1_000_000;

/// The decoded streams of a PDF (content, forms, fonts; not images) may be this many times
/// [`ExtractLimits::max_extracted_bytes`]: drawing operators and font programs are several
/// times larger than the text they produce.
const PDF_STREAM_FACTOR: u64 = 4;

/// What one document may cost to extract.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// The most bytes a document may expand to: the inflated parts of a DOCX archive, and
    /// the extracted text of any format.
    pub max_extracted_bytes: u64,
    /// How long one extraction may run (enforced by the pipeline, see
    /// [`crate::pipeline`]).
    pub timeout: Duration,
    /// Set when the caller gave up waiting; parsers that report progress (PDF text output)
    /// stop at the next character.
    pub cancel: Arc<AtomicBool>,
    /// Whether and in which languages images are read ([`crate::ocr`]).
    pub ocr: OcrSettings,
    /// The PDFium library PDFs are read with ([`crate::pdfium`]); without it, `pdf-extract`
    /// reads them and scanned pages stay empty.
    pub pdfium: Option<std::path::PathBuf>,
    /// How much of the document is done, in percent, where the extractor can tell (PDF
    /// pages through PDFium, OCR included); the pipeline shows it as the `extracting`
    /// stage's progress.
    pub progress: Arc<AtomicU8>,
    /// Whether PDFium may read a PDF the structural guards cannot parse (`lopdf` fails on
    /// it; PDFium repairs many such files). The guards cannot vouch for such a file, and
    /// PDFium cannot be stopped inside a page, so only an extraction whose process is
    /// killed at the deadline and limited in memory should allow it: the worker of
    /// [`crate::isolate`] does. Off by default: such files then fail.
    pub unchecked_pdfs: bool,
}

impl Default for ExtractLimits {
    /// 128 MiB of extracted bytes and two minutes.
    fn default() -> Self {
        Self {
            max_extracted_bytes: 128 * 1024 * 1024,
            timeout: Duration::from_secs(120),
            cancel: Arc::new(AtomicBool::new(false)),
            ocr: OcrSettings::default(),
            pdfium: None,
            progress: Arc::new(AtomicU8::new(0)),
            unchecked_pdfs: false,
        }
    }
}

impl ExtractLimits {
    /// Whether the caller gave up waiting.
    #[must_use]
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The error for text larger than [`ExtractLimits::max_extracted_bytes`].
    pub(crate) fn too_much(&self, format: &'static str) -> Error {
        Error::Extraction { format, reason: self.too_much_reason() }
    }

    /// The reason of [`ExtractLimits::too_much`].
    pub(crate) fn too_much_reason(&self) -> String {
        format!(
            "the document expands to more than {} bytes (ingest.max_extracted_bytes)",
            self.max_extracted_bytes
        )
    }
}

/// A zip-based document (DOCX, PPTX, XLSX, ODT, EPUB...) whose parts are inflated within
/// one budget: [`ExtractLimits::max_extracted_bytes`] for all parts read together.
///
/// Each part is inflated through a reader that stops one byte past what is left of the
/// budget, so a zip bomb costs at most the budget before it fails, whatever sizes the
/// archive declares. Names are looked up in the central directory only.
#[derive(Debug)]
pub struct BoundedZip<'b> {
    archive: zip::ZipArchive<Cursor<&'b [u8]>>,
    format: &'static str,
    limits: ExtractLimits,
    /// Bytes of the budget not spent yet.
    left: u64,
}

impl<'b> BoundedZip<'b> {
    /// Opens `bytes` as the archive of a document in `format` (the name used in errors).
    ///
    /// # Errors
    /// [`Error::Extraction`] when the bytes are not a zip archive or it has more than
    /// 10 000 entries.
    pub fn open(bytes: &'b [u8], format: &'static str, limits: &ExtractLimits) -> Result<Self> {
        let bad = |reason: String| Error::Extraction { format, reason };
        if !bytes.starts_with(b"PK\x03\x04") {
            return Err(bad(format!(
                "the file is not a zip archive, so it cannot be a {} document",
                format.to_ascii_uppercase()
            )));
        }
        let archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|err| bad(format!("not a readable zip archive: {err}")))?;
        if archive.len() > MAX_ZIP_ENTRIES {
            return Err(bad(format!(
                "the archive has {} entries, more than the {MAX_ZIP_ENTRIES} allowed",
                archive.len()
            )));
        }
        let left = limits.max_extracted_bytes;
        Ok(Self { archive, format, limits: limits.clone(), left })
    }

    /// The names of the archive's entries, in the central directory's order (names that
    /// are not UTF-8 are left out).
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(|name| name.ok().map(std::borrow::Cow::into_owned))
            .collect()
    }

    /// The inflated bytes of the part `name`, or `None` when the archive has no such part.
    ///
    /// # Errors
    /// [`Error::Extraction`] when the part is encrypted or corrupt, or inflates past what is
    /// left of the budget.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let format = self.format;
        let bad = |reason: String| Error::Extraction { format, reason };
        let mut entry = match self.archive.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(err) => return Err(bad(format!("cannot read archive entry {name:?}: {err}"))),
        };
        let mut out = Vec::new();
        // One byte more than the budget left tells "exactly full" from "too big" without
        // ever inflating further.
        let mut limited = (&mut entry).take(self.left.saturating_add(1));
        let copied = copy_entry(&mut limited, &mut out)
            .map_err(|err| bad(format!("cannot inflate archive entry {name:?}: {err}")))?;
        if copied > self.left {
            return Err(self.limits.too_much(format));
        }
        self.left -= copied;
        Ok(Some(out))
    }

    /// [`BoundedZip::read`], decoded as text (UTF-8, or UTF-16 with a byte order mark).
    ///
    /// # Errors
    /// As [`BoundedZip::read`].
    pub fn read_text(&mut self, name: &str) -> Result<Option<String>> {
        Ok(self.read(name)?.map(|bytes| crate::extract::decode_text(&bytes)))
    }

    /// A new archive holding every part except those `skip` names, uncompressed, each
    /// inflated within the budget: for parsers that open the archive themselves, so they see
    /// exactly the bytes that were counted (never a second reading of a malformed archive).
    ///
    /// # Errors
    /// As [`BoundedZip::read`], and when the archive cannot be rebuilt.
    pub fn rebuilt(mut self, skip: impl Fn(&str) -> bool) -> Result<Vec<u8>> {
        let format = self.format;
        let bad = |reason: String| Error::Extraction { format, reason };
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let mut seen = HashSet::new();
        for name in self.names() {
            if name.ends_with('/') || skip(&name) || !seen.insert(name.clone()) {
                continue;
            }
            let Some(bytes) = self.read(&name)? else { continue };
            out.start_file(name.as_str(), options)
                .map_err(|err| bad(format!("cannot copy archive entry {name:?}: {err}")))?;
            out.write_all(&bytes)
                .map_err(|err| bad(format!("cannot copy archive entry {name:?}: {err}")))?;
        }
        let archive =
            out.finish().map_err(|err| bad(format!("cannot rebuild the archive: {err}")))?;
        Ok(archive.into_inner())
    }
}

/// The archive path a reference from a part in folder `base` names: `href` relative to
/// `base` (or to the root when it starts with `/`), `.` and `..` resolved, a `#fragment`
/// dropped and `%20`-style escapes decoded (EPUB hrefs and OOXML relationship targets).
pub(crate) fn archive_path(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or_default();
    let (base, href) = match href.strip_prefix('/') {
        Some(absolute) => ("", absolute),
        None => (base, href),
    };
    let href = percent_decode(href);
    let mut parts: Vec<&str> = base.split('/').filter(|part| !part.is_empty()).collect();
    for part in href.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// `%20`-style escapes of a URL path decoded (invalid ones kept as they are).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|pair| {
            std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok())
        });
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Copies a reader into a writer in 64 KiB steps and returns the bytes copied.
fn copy_entry(reader: &mut impl Read, writer: &mut impl Write) -> std::io::Result<u64> {
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut total = 0;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        writer.write_all(&buffer[..read])?;
        total += read as u64;
    }
}

/// HTML elements whose content is raw text (no tags inside).
const RAW_TEXT: [&str; 6] = ["script", "style", "textarea", "title", "xmp", "noscript"];

/// HTML elements that never have content, so they do not nest.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// The HTML with the tags of elements nested deeper than `max_depth` removed; their text
/// stays. Borrowed unchanged when nothing is that deep.
///
/// The scan is a tag tokenizer, not a parser: it keeps a stack of open elements (an end tag
/// closes up to its matching open element and is ignored when there is none), skips
/// comments and declarations, and copies raw-text elements (`<script>`, `<style>`, ...)
/// whole. It over-estimates depth where browsers close elements implicitly (`<p>`, `<li>`),
/// which only flattens earlier. A raw-text element below the cut is dropped with its
/// content, so scripts never become text.
#[must_use]
pub fn flatten_deep_html(html: &str, max_depth: usize) -> std::borrow::Cow<'_, str> {
    let bytes = html.as_bytes();
    let mut out = String::new();
    let mut stack: Vec<String> = Vec::new();
    // Everything in `html[..copied_to]` has been decided (copied or dropped).
    let mut copied_to = 0;
    let mut changed = false;
    let mut pos = 0;
    while let Some(offset) = memchr(b'<', &bytes[pos..]) {
        let start = pos + offset;
        let rest = &html[start..];
        let tag = if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(html.len(), |end| start + end + 3);
            Tag::Other(end)
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            Tag::Other(rest.find('>').map_or(html.len(), |end| start + end + 1))
        } else {
            parse_tag(html, start)
        };
        match tag {
            Tag::Other(end) => pos = end,
            Tag::Start { name, end, self_closing } => {
                let raw = RAW_TEXT.contains(&name.as_str());
                let element_end = if raw { raw_text_end(html, end, &name) } else { end };
                let nests = !self_closing && !raw && !VOID.contains(&name.as_str());
                let too_deep = stack.len() + usize::from(nests || raw) > max_depth;
                if too_deep {
                    out.push_str(&html[copied_to..start]);
                    copied_to = element_end;
                    changed = true;
                }
                if nests {
                    stack.push(name);
                }
                pos = element_end;
            }
            Tag::End { name, end } => {
                let open = stack.iter().rposition(|open| *open == name);
                // An end tag without an open element is left for the parser to ignore.
                if let Some(index) = open {
                    stack.truncate(index);
                    if index >= max_depth {
                        out.push_str(&html[copied_to..start]);
                        copied_to = end;
                        changed = true;
                    }
                }
                pos = end;
            }
            Tag::Text => pos = start + 1,
        }
        if pos >= html.len() {
            break;
        }
    }
    if !changed {
        return std::borrow::Cow::Borrowed(html);
    }
    out.push_str(&html[copied_to.min(html.len())..]);
    std::borrow::Cow::Owned(out)
}

/// What [`parse_tag`] found at a `<`.
enum Tag {
    /// A start tag `<name ...>`, ending at byte `end`.
    Start { name: String, end: usize, self_closing: bool },
    /// An end tag `</name ...>`.
    End { name: String, end: usize },
    /// A comment or declaration ending at the byte given.
    Other(usize),
    /// A `<` that starts no tag (plain text).
    Text,
}

/// Reads the tag starting at `start` (a `<`).
fn parse_tag(html: &str, start: usize) -> Tag {
    let bytes = html.as_bytes();
    let mut pos = start + 1;
    let closing = bytes.get(pos) == Some(&b'/');
    if closing {
        pos += 1;
    }
    let name_start = pos;
    while bytes.get(pos).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':')) {
        pos += 1;
    }
    if pos == name_start || !bytes[name_start].is_ascii_alphabetic() {
        return Tag::Text;
    }
    let name = html[name_start..pos].to_ascii_lowercase();
    // The tag ends at the first `>` outside a quoted attribute value.
    let mut quote = None;
    while let Some(&byte) = bytes.get(pos) {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(byte),
            (Some(open), _) if byte == open => quote = None,
            (None, b'>') => break,
            _ => {}
        }
        pos += 1;
    }
    let end = (pos + 1).min(html.len());
    if closing {
        return Tag::End { name, end };
    }
    let self_closing = pos > 0 && bytes.get(pos - 1) == Some(&b'/');
    Tag::Start { name, end, self_closing }
}

/// Where a raw-text element whose start tag ends at `from` ends: past `</name ...>`, or the
/// end of the input.
fn raw_text_end(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut pos = from;
    while let Some(offset) = memchr(b'<', &bytes[pos..]) {
        let at = pos + offset;
        let name_end = at + 2 + name.len();
        if bytes.get(at + 1) == Some(&b'/')
            && bytes
                .get(at + 2..name_end)
                .is_some_and(|found| found.eq_ignore_ascii_case(name.as_bytes()))
        {
            return memchr(b'>', &bytes[name_end..]).map_or(html.len(), |end| name_end + end + 1);
        }
        pos = at + 1;
    }
    html.len()
}

/// The first position of `needle` in `haystack`.
fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

/// Refuses PDFs whose streams decode to more than [`PDF_STREAM_FACTOR`] times
/// [`ExtractLimits::max_extracted_bytes`] in total, without ever holding more than that.
///
/// Every stream but images is decoded the way `lopdf` would (its filters in order:
/// `FlateDecode`, with the raw-deflate fallback, `LZWDecode` and `ASCII85Decode`) into a
/// writer that fails one byte past what is left of the budget. Images are skipped: the text
/// renderer never decodes them, and scans are legitimately large. Streams with other filters
/// are counted at their stored size (`lopdf` cannot decode them, so they cost nothing more).
///
/// # Errors
/// [`Error::Extraction`] when the budget is passed.
pub fn check_pdf_streams(doc: &Document, limits: &ExtractLimits) -> Result<()> {
    let budget = limits.max_extracted_bytes.saturating_mul(PDF_STREAM_FACTOR);
    let mut used: u64 = 0;
    for object in doc.objects.values() {
        let Ok(stream) = object.as_stream() else { continue };
        let is_image = stream.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Image");
        if is_image {
            continue;
        }
        let room = budget - used;
        match decoded_size(stream, room) {
            Some(size) => used += size,
            None => {
                return Err(Error::Extraction {
                    format: "pdf",
                    reason: format!(
                        "its compressed streams inflate to more than {budget} bytes \
                         ({PDF_STREAM_FACTOR} x ingest.max_extracted_bytes): a compression bomb"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The size of a stream after its filters, or `None` when it passes `cap` bytes (decoding
/// stops there).
fn decoded_size(stream: &pdf_extract::Stream, cap: u64) -> Option<u64> {
    let Ok(filters) = stream.filters() else {
        let stored = stream.content.len() as u64;
        return (stored <= cap).then_some(stored);
    };
    let mut data: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(&stream.content);
    let stages = filters.len();
    for (stage, filter) in filters.into_iter().enumerate() {
        // Only a stage that feeds another one keeps its output; the last one just counts.
        let mut out = Capped { bytes: Vec::new(), len: 0, cap, keep: stage + 1 < stages };
        match filter {
            b"FlateDecode" => {
                let inflated = std::io::copy(&mut flate2::read::ZlibDecoder::new(&*data), &mut out);
                if out.over() {
                    return None;
                }
                // lopdf retries a broken zlib stream as raw deflate when nothing came out.
                if inflated.is_err() && out.len == 0 && data.len() > 2 {
                    let raw = flate2::read::DeflateDecoder::new(&data[2..]);
                    let _ = std::io::copy(&mut { raw }, &mut out);
                }
            }
            b"LZWDecode" => {
                let mut decoder =
                    weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
                let _ = decoder.into_stream(&mut out).decode_all(&*data).status;
            }
            // Four bytes out per input byte at most, and the input is in memory already.
            b"ASCII85Decode" => {
                let mut single = stream.clone();
                single.dict.set("Filter", Object::Name(b"ASCII85Decode".to_vec()));
                single.content = data.into_owned();
                let decoded = single.decompressed_content().unwrap_or_default();
                let _ = out.write_all(&decoded);
            }
            // lopdf refuses other filters, so the renderer never sees more than the stored bytes.
            _ => return Some(data.len() as u64).filter(|&size| size <= cap),
        }
        if out.over() {
            return None;
        }
        if stage + 1 == stages {
            return Some(out.len);
        }
        data = std::borrow::Cow::Owned(out.bytes);
    }
    Some(data.len() as u64)
}

/// A writer that counts (and, with `keep`, stores) what is written to it, and fails once
/// more than `cap` bytes were written: it takes one byte past the cap, so "exactly full" and
/// "too big" differ.
struct Capped {
    bytes: Vec<u8>,
    len: u64,
    cap: u64,
    keep: bool,
}

impl Capped {
    fn over(&self) -> bool {
        self.len > self.cap
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.cap.saturating_add(1) - self.len).unwrap_or(usize::MAX);
        if room == 0 {
            return Err(std::io::Error::other("decoded stream passes the budget"));
        }
        let take = buf.len().min(room);
        if self.keep {
            self.bytes.extend_from_slice(&buf[..take]);
        }
        self.len += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses PDFs whose page tree or form XObjects are cyclic or nested deeper than
/// `pdf-extract` can recurse through safely.
///
/// `pdf-extract` looks `/Resources` and `/MediaBox` up through `/Parent` links, and runs a
/// form XObject's content when a content stream invokes it with `Do` (with the form's own
/// resources, or its caller's when it has none). Both recurse without cycle checks. This
/// walks the same links, iteratively, and fails when a chain repeats or passes
/// `MAX_PDF_NESTING`.
///
/// # Errors
/// [`Error::Extraction`] naming the cycle.
pub fn check_pdf_structure(doc: &Document) -> Result<()> {
    let bad = |reason: String| Error::Extraction { format: "pdf", reason };
    let empty = Dictionary::new();
    for (number, page_id) in doc.get_pages() {
        let page = doc
            .get_dictionary(page_id)
            .map_err(|err| bad(format!("page {number} is not a dictionary: {err}")))?;
        let resources = inherited_resources(doc, page, page_id)
            .map_err(|reason| bad(format!("page {number}: {reason}")))?
            .unwrap_or(&empty);
        let content = doc.get_page_content(page_id).unwrap_or_default();
        check_forms(doc, &content, resources)
            .map_err(|reason| bad(format!("page {number}: {reason}")))?;
    }
    Ok(())
}

/// Refuses pages that draw more than [`MAX_PDF_FORM_DRAWS`] form XObjects, counting every
/// nested invocation: forms that multiply. Run after [`check_pdf_structure`], which rules
/// out cycles and deep nesting, so the count's recursion is bounded.
///
/// # Errors
/// [`Error::Extraction`] naming the page.
pub fn check_pdf_form_draws(doc: &Document) -> Result<()> {
    let empty = Dictionary::new();
    for (number, page_id) in doc.get_pages() {
        let Ok(page) = doc.get_dictionary(page_id) else { continue };
        let resources = inherited_resources(doc, page, page_id).ok().flatten().unwrap_or(&empty);
        let content = doc.get_page_content(page_id).unwrap_or_default();
        let draws = form_draws(doc, &content, resources, &mut HashMap::new(), 0);
        if draws > MAX_PDF_FORM_DRAWS {
            return Err(Error::Extraction {
                format: "pdf",
                reason: format!(
                    "page {number}: its forms invoke each other so often that drawing it takes \
                     more than {MAX_PDF_FORM_DRAWS} form XObjects"
                ),
            });
        }
    }
    Ok(())
}

/// Form XObjects drawn by `content` in `resources`, nested invocations included, at most
/// a little past [`MAX_PDF_FORM_DRAWS`]. `memo` holds the count of each (form, resources)
/// pair already walked.
fn form_draws(
    doc: &Document,
    content: &[u8],
    resources: &Dictionary,
    memo: &mut HashMap<(ObjectId, usize), u64>,
    depth: usize,
) -> u64 {
    let cap = MAX_PDF_FORM_DRAWS + 1;
    if depth > MAX_PDF_NESTING {
        return cap;
    }
    let mut total = 0_u64;
    for (name, times) in form_invocations(content) {
        let Some((id, stream, form_resources)) = invoked_form(doc, resources, &name) else {
            continue;
        };
        let key = id.map(|id| (id, std::ptr::from_ref(form_resources) as usize));
        let inner = match key.and_then(|key| memo.get(&key)) {
            Some(&known) => known,
            None => {
                let inner = form_draws(doc, &form_content(stream), form_resources, memo, depth + 1);
                if let Some(key) = key {
                    memo.insert(key, inner);
                }
                inner
            }
        };
        total = total.saturating_add(times.saturating_mul(inner.saturating_add(1))).min(cap);
        if total >= cap {
            break;
        }
    }
    total
}

/// The page's `/Resources`, looked up through `/Parent` links like `pdf-extract` does,
/// refusing cycles and chains longer than `MAX_PDF_NESTING`.
fn inherited_resources<'a>(
    doc: &'a Document,
    page: &'a Dictionary,
    page_id: ObjectId,
) -> std::result::Result<Option<&'a Dictionary>, String> {
    let mut seen = HashSet::from([page_id]);
    let mut node = page;
    let mut resources = None;
    for _ in 0..MAX_PDF_NESTING {
        if resources.is_none() {
            resources = node.get(b"Resources").ok().and_then(|obj| deref_dict(doc, obj));
        }
        let Ok(parent) = node.get(b"Parent").and_then(Object::as_reference) else {
            return Ok(resources);
        };
        if !seen.insert(parent) {
            return Err("its /Parent chain is a cycle".to_owned());
        }
        match doc.get_dictionary(parent) {
            Ok(dict) => node = dict,
            Err(_) => return Ok(resources),
        }
    }
    Err(format!("its /Parent chain is deeper than {MAX_PDF_NESTING}"))
}

/// A dictionary, directly or through references.
fn deref_dict<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    doc.dereference(object).ok().and_then(|(_, object)| object.as_dict().ok())
}

/// Follows every `Do` of `content` into form XObjects, depth first with an explicit stack,
/// refusing a form that (transitively) invokes itself or nesting past `MAX_PDF_NESTING`.
fn check_forms(
    doc: &Document,
    content: &[u8],
    resources: &Dictionary,
) -> std::result::Result<(), String> {
    // Each frame: the forms invoked by one content stream, the resources they resolve in,
    // and the chain of form ids that led there.
    struct Frame<'a> {
        invoked: Vec<Vec<u8>>,
        resources: &'a Dictionary,
        chain: Vec<ObjectId>,
    }
    let mut stack = vec![Frame { invoked: invoked_forms(content), resources, chain: Vec::new() }];
    let mut checked = HashSet::new();
    while let Some(mut frame) = stack.pop() {
        let Some(name) = frame.invoked.pop() else { continue };
        let resources = frame.resources;
        let chain = frame.chain.clone();
        stack.push(frame);
        let Some((id, stream, form_resources)) = invoked_form(doc, resources, &name) else {
            continue;
        };
        if let Some(id) = id
            && chain.contains(&id)
        {
            return Err(format!("form XObject {} {} invokes itself (a cycle)", id.0, id.1));
        }
        if chain.len() + 1 >= MAX_PDF_NESTING {
            return Err(format!("form XObjects are nested deeper than {MAX_PDF_NESTING}"));
        }
        // A form drawn with the same resources behaves the same wherever it is invoked
        // from, so each (form, resources) pair is walked once: shared forms cost no
        // exponential walk.
        if let Some(id) = id
            && !checked.insert((id, std::ptr::from_ref(form_resources) as usize))
        {
            continue;
        }
        let mut chain = chain;
        chain.extend(id);
        let invoked = invoked_forms(&form_content(stream));
        stack.push(Frame { invoked, resources: form_resources, chain });
    }
    Ok(())
}

/// The XObject a content stream drawn with `resources` invokes as `name`, when it is a
/// stream (a form; images are streams too and invoke nothing): its id when it is an
/// indirect object, the stream, and the resources its content is drawn with (its own,
/// else its caller's, as `pdf-extract` and PDFium look them up).
fn invoked_form<'d>(
    doc: &'d Document,
    resources: &'d Dictionary,
    name: &[u8],
) -> Option<(Option<ObjectId>, &'d pdf_extract::Stream, &'d Dictionary)> {
    let xobjects = resources.get(b"XObject").ok().and_then(|obj| deref_dict(doc, obj))?;
    let (id, object) = doc.dereference(xobjects.get(name).ok()?).ok()?;
    let stream = object.as_stream().ok()?;
    let own = stream.dict.get(b"Resources").ok().and_then(|obj| deref_dict(doc, obj));
    Some((id, stream, own.unwrap_or(resources)))
}

/// A form's content stream, decoded (as stored when it cannot be decoded).
fn form_content(stream: &pdf_extract::Stream) -> Vec<u8> {
    stream.decompressed_content().unwrap_or_else(|_| stream.content.clone())
}

/// The XObject names a content stream invokes with `Do`.
fn invoked_forms(content: &[u8]) -> Vec<Vec<u8>> {
    form_invocations(content).into_keys().collect()
}

/// The XObject names a content stream invokes with `Do`, each with how often it does.
fn form_invocations(content: &[u8]) -> std::collections::BTreeMap<Vec<u8>, u64> {
    let mut names = std::collections::BTreeMap::new();
    let Ok(content) = pdf_extract::content::Content::decode(content) else {
        return names;
    };
    for operation in content.operations.iter().filter(|operation| operation.operator == "Do") {
        if let Some(name) = operation.operands.first().and_then(|name| name.as_name().ok()) {
            *names.entry(name.to_vec()).or_insert(0_u64) += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_resolve_against_their_folder() {
        assert_eq!(archive_path("OEBPS", "text/ch1.xhtml#top"), "OEBPS/text/ch1.xhtml");
        assert_eq!(archive_path("OEBPS/pkg", "../text/a%20b.xhtml"), "OEBPS/text/a b.xhtml");
        assert_eq!(archive_path("", "./ch.html"), "ch.html");
        assert_eq!(archive_path("ppt/slides", "../notesSlides/n1.xml"), "ppt/notesSlides/n1.xml");
        assert_eq!(archive_path("ppt/slides", "/ppt/x.xml"), "ppt/x.xml");
    }

    /// A stream of `content` with the filter (or chain) `filter`.
    fn stream(filter: Object, content: Vec<u8>) -> pdf_extract::Stream {
        let mut dict = Dictionary::new();
        dict.set("Filter", filter);
        pdf_extract::Stream::new(dict, content)
    }

    #[test]
    fn decoded_sizes_follow_the_filters_and_stop_at_the_cap() -> std::io::Result<()> {
        let text = b"BT /F1 12 Tf (decoded) Tj ET ".repeat(400);
        let len = text.len() as u64;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&text)?;
        let flate = stream(Object::Name(b"FlateDecode".to_vec()), zlib.finish()?);
        assert_eq!(decoded_size(&flate, len), Some(len));
        assert_eq!(decoded_size(&flate, len - 1), None);

        let lzw = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(&text)
            .map_err(std::io::Error::other)?;
        let lzw = stream(Object::Name(b"LZWDecode".to_vec()), lzw);
        assert_eq!(decoded_size(&lzw, len), Some(len));
        assert_eq!(decoded_size(&lzw, 100), None);

        // A chain: the first stage's output feeds the second.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&text)?;
        let mut twice = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        twice.write_all(&zlib.finish()?)?;
        let chain = Object::Array(vec![
            Object::Name(b"FlateDecode".to_vec()),
            Object::Name(b"FlateDecode".to_vec()),
        ]);
        let chained = stream(chain, twice.finish()?);
        assert_eq!(decoded_size(&chained, len), Some(len));
        assert_eq!(decoded_size(&chained, len - 1), None);

        // Unknown filters and plain streams count their stored bytes.
        let plain = pdf_extract::Stream::new(Dictionary::new(), text.clone());
        assert_eq!(decoded_size(&plain, len), Some(len));
        let odd = stream(Object::Name(b"JBIG2Decode".to_vec()), text);
        assert_eq!(decoded_size(&odd, len - 1), None);
        Ok(())
    }

    #[test]
    fn shallow_html_is_borrowed_unchanged() {
        let html = "<html><body><div><p>a &lt; b</p><br><img src=x></div></body></html>";
        assert!(matches!(flatten_deep_html(html, 4), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn deep_html_keeps_text_and_loses_deep_tags() {
        let html = format!("{}deep text{}", "<div>".repeat(10), "</div>".repeat(10));
        let flat = flatten_deep_html(&html, 3);
        assert_eq!(flat, "<div><div><div>deep text</div></div></div>");
    }

    #[test]
    fn scripts_below_the_cut_are_dropped_whole() {
        let html = "<div><div><script>var x = '<div>';</script>seen</div></div>";
        let flat = flatten_deep_html(html, 1);
        assert_eq!(flat, "<div>seen</div>");
        let kept = flatten_deep_html(html, 3);
        assert_eq!(kept, html);
    }

    #[test]
    fn comments_and_stray_end_tags_do_not_count() {
        let html = "<!-- <div><div><div> --></p></p><div>x</div>";
        assert_eq!(flatten_deep_html(html, 1), html);
        let tricky = "<div title='>'><div a=\"<div>\">x</div></div>";
        assert_eq!(flatten_deep_html(tricky, 1), "<div title='>'>x</div>");
    }
}
