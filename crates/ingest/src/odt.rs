//! OpenDocument text (ODT), read from `content.xml` with a pull parser.
//!
//! Like DOCX ([`crate::docx`]): paragraphs (`text:p`) and headings (`text:h`, whose
//! `outline-level` gives heading paths) become blocks separated by blank lines, with their
//! spaces (`text:s`), tabs and line breaks; list items are paragraphs; text boxes are read
//! in their paragraph. Tables (`table:table`) become Markdown tables, spanned cells padded
//! with empty ones; a table without two rows of two cells becomes paragraphs. Tracked
//! deletions, annotations and footnote bodies are left out.

use quick_xml::events::{BytesRef, BytesStart};

use crate::docx::{Body, BodyReader, attribute, push_blocks, read_body};
use crate::error::{Error, Result};
use crate::extract::Extracted;
use crate::guard::{BoundedZip, ExtractLimits};

/// Extracts the text, headings and tables of an ODT document.
///
/// # Errors
/// [`Error::Extraction`] when the archive is unreadable or past the limits, has no
/// `content.xml`, or holds malformed XML.
pub(crate) fn extract_odt(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let mut zip = BoundedZip::open(bytes, "odt", limits)?;
    let xml = zip.read_text("content.xml")?.ok_or_else(|| {
        bad("the archive has no content.xml; is it an OpenDocument text?".to_owned())
    })?;
    let mut state = State::default();
    read_body(&xml, "odt", limits, &mut state)?;
    Ok(push_blocks(state.body.blocks))
}

/// An ODT extraction error.
fn bad(reason: String) -> Error {
    Error::Extraction { format: "odt", reason }
}

/// Where the parser is in the body.
#[derive(Default)]
struct State {
    body: Body,
    /// Open elements whose content is skipped (tracked changes, annotations, notes).
    skipped: usize,
}

impl BodyReader for State {
    fn start(&mut self, element: &BytesStart<'_>, empty: bool) {
        let name = element.local_name();
        let body = &mut self.body;
        match name.as_ref() {
            "tracked-changes" | "annotation" | "note-body" | "note-citation" if !empty => {
                self.skipped += 1;
            }
            _ if self.skipped > 0 => {}
            "p" if !empty => body.start_paragraph(None),
            "h" if !empty => {
                let level = attribute(element, "outline-level")
                    .and_then(|level| level.trim().parse().ok())
                    .unwrap_or(1_u32);
                body.start_paragraph(Some(level.clamp(1, 9)));
            }
            "s" if body.paragraphs > 0 => {
                let count: usize =
                    attribute(element, "c").and_then(|c| c.trim().parse().ok()).unwrap_or(1);
                body.sink().push_str(&" ".repeat(count.clamp(1, 64)));
            }
            "tab" if body.paragraphs > 0 => body.sink().push('\t'),
            "line-break" if body.paragraphs > 0 => body.line_break(),
            "table" if !empty => body.tables.start_table(),
            "table-row" if !empty => body.tables.start_row(),
            "table-cell" => {
                let spanned: usize = attribute(element, "number-columns-spanned")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(1);
                let repeated: usize = attribute(element, "number-columns-repeated")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(1);
                body.tables.start_cell(spanned.clamp(1, 64) * repeated.clamp(1, 64));
                if empty {
                    body.tables.end_cell();
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "tracked-changes" | "annotation" | "note-body" | "note-citation"
                if self.skipped > 0 =>
            {
                self.skipped -= 1;
            }
            _ if self.skipped > 0 => {}
            "p" | "h" => self.body.end_paragraph(),
            "table-cell" => self.body.tables.end_cell(),
            "table-row" => self.body.tables.end_row(),
            "table" => self.body.end_table(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.body.paragraphs > 0 && self.skipped == 0 {
            // ODF collapses runs of white space to one space; `text:s` writes the others.
            let sink = self.body.sink();
            let mut last_space = sink.ends_with(' ');
            for c in text.chars() {
                if matches!(c, ' ' | '\t' | '\n' | '\r') {
                    if !last_space {
                        sink.push(' ');
                    }
                    last_space = true;
                } else {
                    sink.push(c);
                    last_space = false;
                }
            }
        }
    }

    fn reference(&mut self, reference: &BytesRef<'_>) {
        if self.body.paragraphs > 0
            && self.skipped == 0
            && let Some(text) = crate::docx::resolve(reference)
        {
            self.body.sink().push_str(&text);
        }
    }
}
