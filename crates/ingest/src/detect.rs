//! Document type detection from the first bytes of a file and its name.
//!
//! [`detect`] looks at a prefix of the file (the first few KiB are enough; the whole file
//! works too) and at the file name the client gave. The content wins over the name, except
//! where the name is the only evidence available:
//!
//! 1. `%PDF-` within the first 1024 bytes is a PDF; a PNG, JPEG, TIFF or WebP signature at
//!    the start is that image (read by OCR).
//! 2. A zip archive (`PK\x03\x04`) is a DOCX when the prefix contains the
//!    `word/document.xml` entry name, an XLSX when it contains `xl/workbook.xml`, a PPTX
//!    when it contains `ppt/presentation.xml`, an ODS, ODT or EPUB when it contains that
//!    format's media type (their `mimetype` entry comes first); else the name decides
//!    (`.docx`, `.xlsx`, `.pptx`, `.ods`, `.odt`, `.epub`); any other zip is refused.
//! 3. Those names give their kind even when the bytes are not a zip, so that the extractor
//!    reports a precise "not a zip archive" error instead of indexing junk.
//! 4. Anything else must look like text: a UTF-16 byte order mark, or no NUL bytes and
//!    almost no control characters. Binary files (images, archives, executables) are
//!    refused with [`Error::UnsupportedType`].
//! 5. Text is HTML when it starts (after a BOM and white space) with `<!doctype html`,
//!    `<html`, `<head` or `<body`, or when the name ends in `.html`, `.htm` or `.xhtml`;
//!    Markdown when the name ends in `.md` or `.markdown`; CSV when it ends in `.csv` or
//!    `.tsv`; an e-mail message when it ends in `.eml` or starts with a header field only
//!    mail transport writes first (`Received:`, `Return-Path:`, `MIME-Version:`...) and has
//!    a `From:` or `Subject:` field; plain text otherwise.

use std::path::Path;

use crate::error::{Error, Result};

/// How many bytes at the start of a file are searched for the PDF header.
const PDF_HEADER_WINDOW: usize = 1024;

/// How many bytes of the prefix the text heuristic reads.
const TEXT_SNIFF_WINDOW: usize = 8192;

/// The largest share of control bytes (other than tab, line feed, form feed, carriage
/// return and escape) that a text file may contain, as a fraction.
const MAX_CONTROL_RATIO: f64 = 0.05;

/// A document format ragd can extract text from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A PDF file with a text layer.
    Pdf,
    /// An Office Open XML word-processing document.
    Docx,
    /// An HTML page.
    Html,
    /// A Markdown file.
    Markdown,
    /// Plain text in UTF-8, UTF-16 (with a byte order mark) or Latin-1.
    Text,
    /// An Office Open XML spreadsheet.
    Xlsx,
    /// An OpenDocument spreadsheet.
    Ods,
    /// Comma-separated (or semicolon- or tab-separated) values.
    Csv,
    /// An OpenDocument text.
    Odt,
    /// An Office Open XML presentation.
    Pptx,
    /// An EPUB e-book.
    Epub,
    /// An e-mail message (RFC 5322 with MIME).
    Eml,
    /// A PNG image, read by OCR.
    Png,
    /// A JPEG image, read by OCR.
    Jpeg,
    /// A TIFF image, read by OCR.
    Tiff,
    /// A WebP image, read by OCR.
    Webp,
}

impl DocumentKind {
    /// Every kind, for exhaustive tests.
    pub const ALL: [Self; 16] = [
        Self::Pdf,
        Self::Docx,
        Self::Html,
        Self::Markdown,
        Self::Text,
        Self::Xlsx,
        Self::Ods,
        Self::Csv,
        Self::Odt,
        Self::Pptx,
        Self::Epub,
        Self::Eml,
        Self::Png,
        Self::Jpeg,
        Self::Tiff,
        Self::Webp,
    ];

    /// The media type stored with the document.
    #[must_use]
    pub const fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html",
            Self::Markdown => "text/markdown",
            Self::Text => "text/plain",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Self::Csv => "text/csv",
            Self::Odt => "application/vnd.oasis.opendocument.text",
            Self::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Self::Epub => "application/epub+zip",
            Self::Eml => "message/rfc822",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Tiff => "image/tiff",
            Self::Webp => "image/webp",
        }
    }

    /// Whether documents of this kind are images, read by OCR.
    #[must_use]
    pub const fn is_image(self) -> bool {
        matches!(self, Self::Png | Self::Jpeg | Self::Tiff | Self::Webp)
    }

    /// The kind whose [`DocumentKind::mime`] is `mime`, for reading stored documents back.
    #[must_use]
    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.mime() == mime)
    }
}

/// Detects the format of a file from its first bytes and its name.
///
/// `bytes_prefix` may be the whole file or only its start (a few KiB); `filename` is the
/// name given at upload and only its extension is used. See the module documentation for
/// the exact rules.
///
/// # Errors
/// [`Error::Empty`] when `bytes_prefix` is empty, [`Error::UnsupportedType`] when the
/// bytes are neither a supported container nor text.
pub fn detect(bytes_prefix: &[u8], filename: &str) -> Result<DocumentKind> {
    if bytes_prefix.is_empty() {
        return Err(Error::Empty);
    }
    let extension = extension(filename);
    let pdf_window = &bytes_prefix[..bytes_prefix.len().min(PDF_HEADER_WINDOW)];
    if contains(pdf_window, b"%PDF-") {
        return Ok(DocumentKind::Pdf);
    }
    if let Some(kind) = image_kind(bytes_prefix) {
        return Ok(kind);
    }
    if bytes_prefix.starts_with(b"PK\x03\x04") {
        if contains(bytes_prefix, b"word/document.xml") {
            return Ok(DocumentKind::Docx);
        }
        if contains(bytes_prefix, b"xl/workbook.xml") {
            return Ok(DocumentKind::Xlsx);
        }
        if contains(bytes_prefix, b"ppt/presentation.xml") {
            return Ok(DocumentKind::Pptx);
        }
        if contains(bytes_prefix, b"application/vnd.oasis.opendocument.spreadsheet") {
            return Ok(DocumentKind::Ods);
        }
        if contains(bytes_prefix, b"application/vnd.oasis.opendocument.text") {
            return Ok(DocumentKind::Odt);
        }
        if contains(bytes_prefix, b"application/epub+zip") {
            return Ok(DocumentKind::Epub);
        }
        return by_zip_extension(&extension).ok_or_else(|| {
            unsupported(filename, "a zip archive that is not a supported document")
        });
    }
    if let Some(kind) = by_zip_extension(&extension) {
        return Ok(kind);
    }
    if !looks_like_text(bytes_prefix) {
        return Err(unsupported(filename, "binary content that is not text"));
    }
    if sniff_html(bytes_prefix) || matches!(extension.as_str(), "html" | "htm" | "xhtml") {
        return Ok(DocumentKind::Html);
    }
    if matches!(extension.as_str(), "md" | "markdown") {
        return Ok(DocumentKind::Markdown);
    }
    if matches!(extension.as_str(), "csv" | "tsv") {
        return Ok(DocumentKind::Csv);
    }
    if extension == "eml" || sniff_email(bytes_prefix) {
        return Ok(DocumentKind::Eml);
    }
    Ok(DocumentKind::Text)
}

/// The image format whose signature starts the bytes.
fn image_kind(prefix: &[u8]) -> Option<DocumentKind> {
    if prefix.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(DocumentKind::Png)
    } else if prefix.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(DocumentKind::Jpeg)
    } else if prefix.starts_with(b"II*\0") || prefix.starts_with(b"MM\0*") {
        Some(DocumentKind::Tiff)
    } else if prefix.len() >= 12 && prefix.starts_with(b"RIFF") && &prefix[8..12] == b"WEBP" {
        Some(DocumentKind::Webp)
    } else {
        None
    }
}

/// The zip-based kind a file extension names.
fn by_zip_extension(extension: &str) -> Option<DocumentKind> {
    match extension {
        "docx" => Some(DocumentKind::Docx),
        "xlsx" => Some(DocumentKind::Xlsx),
        "ods" => Some(DocumentKind::Ods),
        "odt" => Some(DocumentKind::Odt),
        "pptx" => Some(DocumentKind::Pptx),
        "epub" => Some(DocumentKind::Epub),
        _ => None,
    }
}

/// Builds the error for a file that is none of the supported formats.
fn unsupported(filename: &str, reason: &str) -> Error {
    Error::UnsupportedType { filename: filename.to_owned(), reason: reason.to_owned() }
}

/// The lower-cased extension of `filename`, or an empty string.
fn extension(filename: &str) -> String {
    Path::new(filename)
        .extension()
        .map(|ext| ext.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether `needle` occurs anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Whether the bytes look like text: a UTF-16 byte order mark, or no NUL bytes and few
/// control characters.
fn looks_like_text(prefix: &[u8]) -> bool {
    if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    let window = &prefix[..prefix.len().min(TEXT_SNIFF_WINDOW)];
    if window.contains(&0) {
        return false;
    }
    let controls = window
        .iter()
        .filter(|&&byte| byte < 0x20 && !matches!(byte, b'\t' | b'\n' | 0x0C | b'\r' | 0x1B))
        .count();
    // Precision loss is irrelevant for a ratio of two counts no larger than the window.
    #[allow(clippy::cast_precision_loss)]
    let ratio = controls as f64 / window.len() as f64;
    ratio <= MAX_CONTROL_RATIO
}

/// Header fields that only mail transport writes first: a text starting with one of them,
/// whose head also has a `From:` or `Subject:` field, is an e-mail message.
const MAIL_FIRST_FIELDS: [&[u8]; 6] = [
    b"Return-Path:",
    b"Received:",
    b"Delivered-To:",
    b"MIME-Version:",
    b"Message-ID:",
    b"X-Mozilla-Status:",
];

/// Whether the text starts like an e-mail message (see [`MAIL_FIRST_FIELDS`]).
fn sniff_email(prefix: &[u8]) -> bool {
    let starts = MAIL_FIRST_FIELDS.iter().any(|field| {
        prefix.len() >= field.len() && prefix[..field.len()].eq_ignore_ascii_case(field)
    });
    let head = &prefix[..prefix.len().min(TEXT_SNIFF_WINDOW)];
    starts && (contains(head, b"\nFrom:") || contains(head, b"\nSubject:"))
}

/// Whether the text starts (after a UTF-8 BOM and white space) with an HTML tag.
fn sniff_html(prefix: &[u8]) -> bool {
    let without_bom = prefix.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(prefix);
    let start = without_bom.iter().position(|byte| !byte.is_ascii_whitespace());
    let Some(start) = start else {
        return false;
    };
    let rest = &without_bom[start..];
    [&b"<!doctype html"[..], b"<html", b"<head", b"<body"]
        .iter()
        .any(|tag| rest.len() >= tag.len() && rest[..tag.len()].eq_ignore_ascii_case(tag))
}

#[cfg(test)]
mod tests {
    use ragd_core::ErrorKind;

    use super::*;

    #[test]
    fn mime_round_trips() {
        for kind in DocumentKind::ALL {
            assert_eq!(DocumentKind::from_mime(kind.mime()), Some(kind));
        }
        assert_eq!(DocumentKind::from_mime("image/gif"), None);
    }

    #[test]
    fn magic_bytes_beat_the_name() {
        assert_eq!(detect(b"%PDF-1.4\n", "notes.txt").unwrap(), DocumentKind::Pdf);
        assert_eq!(detect(b"  <!DOCTYPE html><p>x", "page.txt").unwrap(), DocumentKind::Html);
        assert_eq!(detect(b"\xEF\xBB\xBF\n<HTML>", "a").unwrap(), DocumentKind::Html);
        assert_eq!(detect(b"<body>x</body>", "a.md").unwrap(), DocumentKind::Html);
    }

    #[test]
    fn zips_are_docx_only_when_they_say_so() {
        let zip = b"PK\x03\x04\x14\x00\x00\x00word/document.xml";
        assert_eq!(detect(zip, "upload").unwrap(), DocumentKind::Docx);
        assert_eq!(detect(b"PK\x03\x04rest", "a.DOCX").unwrap(), DocumentKind::Docx);
        let err = detect(b"PK\x03\x04rest", "a.zip").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
        let xlsx = b"PK\x03\x04\x14\x00[Content_Types].xml...xl/workbook.xml";
        assert_eq!(detect(xlsx, "upload").unwrap(), DocumentKind::Xlsx);
        let ods = b"PK\x03\x04\x14\x00mimetypeapplication/vnd.oasis.opendocument.spreadsheet";
        assert_eq!(detect(ods, "upload.docx").unwrap(), DocumentKind::Ods);
        assert_eq!(detect(b"PK\x03\x04rest", "a.ods").unwrap(), DocumentKind::Ods);
        assert_eq!(detect(b"not a zip", "a.xlsx").unwrap(), DocumentKind::Xlsx);
        let pptx = b"PK\x03\x04\x14\x00[Content_Types].xml...ppt/presentation.xml";
        assert_eq!(detect(pptx, "upload").unwrap(), DocumentKind::Pptx);
        let odt = b"PK\x03\x04\x14\x00mimetypeapplication/vnd.oasis.opendocument.text";
        assert_eq!(detect(odt, "upload").unwrap(), DocumentKind::Odt);
        let epub = b"PK\x03\x04\x14\x00mimetypeapplication/epub+zip";
        assert_eq!(detect(epub, "book.zip").unwrap(), DocumentKind::Epub);
    }

    #[test]
    fn extensions_pick_text_flavours() {
        assert_eq!(detect(b"# Title\n", "a.md").unwrap(), DocumentKind::Markdown);
        assert_eq!(detect(b"# Title\n", "a.markdown").unwrap(), DocumentKind::Markdown);
        assert_eq!(detect(b"<p>hi</p>", "a.htm").unwrap(), DocumentKind::Html);
        assert_eq!(detect(b"plain words", "a").unwrap(), DocumentKind::Text);
        assert_eq!(detect(b"a,b\n1,2\n", "a.CSV").unwrap(), DocumentKind::Csv);
        assert_eq!(detect(b"a\tb\n1\t2\n", "a.tsv").unwrap(), DocumentKind::Csv);
        let mail = b"Received: from a by b\r\nFrom: x@y\r\nSubject: hi\r\n\r\nbody";
        assert_eq!(detect(mail, "upload").unwrap(), DocumentKind::Eml);
        assert_eq!(detect(b"From: me\n\nhi", "note.eml").unwrap(), DocumentKind::Eml);
        assert_eq!(detect(b"Received: the parcel\nthanks", "a.txt").unwrap(), DocumentKind::Text);
        assert_eq!(detect(b"caf\xE9 au lait", "a.txt").unwrap(), DocumentKind::Text);
        assert_eq!(detect(b"\xFF\xFEh\x00i\x00", "a.txt").unwrap(), DocumentKind::Text);
    }

    #[test]
    fn images_are_known_by_their_signature() {
        let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
        assert_eq!(detect(png, "scan.txt").unwrap(), DocumentKind::Png);
        assert_eq!(detect(b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "a").unwrap(), DocumentKind::Jpeg);
        assert_eq!(detect(b"II*\x00\x08\x00", "a").unwrap(), DocumentKind::Tiff);
        assert_eq!(detect(b"MM\x00*\x00\x08", "a").unwrap(), DocumentKind::Tiff);
        assert_eq!(detect(b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a").unwrap(), DocumentKind::Webp);
        assert!(DocumentKind::Png.is_image() && !DocumentKind::Pdf.is_image());
    }

    #[test]
    fn binary_and_empty_are_refused() {
        assert_eq!(detect(b"", "a.txt").unwrap_err().kind(), ErrorKind::InvalidInput);
        let zip = b"PK\x03\x04\x14\x00\x00\x00other.bin";
        assert_eq!(detect(zip, "a.zip").unwrap_err().kind(), ErrorKind::UnsupportedMediaType);
        let controls = [1_u8, 2, 3, 4, 5, 6, 7, 8];
        let err = detect(&controls, "a.txt").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
    }
}
