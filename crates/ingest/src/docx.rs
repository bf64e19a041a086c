//! Office Open XML word-processing documents (DOCX), read part by part with a pull parser.
//!
//! The main part (found through `_rels/.rels`, else `word/document.xml`) is read within the
//! budget ([`BoundedZip`]) and streamed through `quick-xml`: only the elements that carry
//! text or structure are looked at, so attribute values the parser does not need (the
//! booleans `true`/`on`/`1` of formatting, unknown extensions) can never make a valid
//! document fail, and nesting costs no recursion.
//!
//! - Paragraphs (`w:p`) become blocks separated by blank lines; runs' text (`w:t`), tabs,
//!   line breaks and non-breaking hyphens are kept; deleted text and field codes are not.
//! - A paragraph is a heading when its style is a heading in `styles.xml` (name `heading N`
//!   or `Title`, or an outline level) or its style id reads `HeadingN`/`Title`, or it has an
//!   outline level of its own; headings give [`HeadingSpan`] paths such as `A > B`.
//! - Tables (`w:tbl`) become Markdown tables ([`markdown_table`]): one row per `w:tr`, a
//!   cell's paragraphs joined by spaces, horizontally merged cells (`w:gridSpan`) padded
//!   with empty cells; a table inside a cell contributes its text to that cell. A table
//!   without two rows of two cells is page layout, and its cells become paragraphs.
//! - Text boxes are read once: the `mc:Fallback` copy of alternate content is skipped.

use std::collections::HashMap;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::error::{Error, Result};
use crate::extract::{Builder, Extracted, normalize};
use crate::guard::{BoundedZip, ExtractLimits};
use crate::table::markdown_table;

/// How many parser events pass between two checks of the cancellation flag.
const CANCEL_CHECK_EVERY: usize = 4096;

/// Extracts the text, headings and tables of a DOCX document.
///
/// # Errors
/// [`Error::Extraction`] when the file is not a zip archive, has no main document part,
/// holds malformed XML, inflates past the limits or the caller cancelled.
pub(crate) fn extract_docx(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let mut zip = BoundedZip::open(bytes, "docx", limits)?;
    let main = main_part(&mut zip)?;
    let xml = zip.read_text(&main)?.ok_or_else(|| {
        bad(format!("the archive has no main document part ({main}); is it a DOCX document?"))
    })?;
    let styles_path = match main.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/styles.xml"),
        None => "styles.xml".to_owned(),
    };
    let styles = match zip.read_text(&styles_path)? {
        Some(styles) => heading_styles(&styles)?,
        None => HashMap::new(),
    };
    Ok(push_blocks(body_blocks(&xml, &styles, limits)?))
}

/// The extracted text of word-processing blocks: paragraphs (headings recorded) and tables
/// (Markdown tables; one of fewer than two rows of two cells is page layout, and its cells
/// become paragraphs), separated by blank lines.
pub(crate) fn push_blocks(blocks: Vec<Block>) -> Extracted {
    let mut builder = Builder::default();
    for block in blocks {
        match block {
            Block::Paragraph { text, level } => {
                let text = normalize(&text);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let start = builder.push_block(text);
                if let Some(level) = level {
                    builder.heading(level, text, start);
                }
            }
            Block::Table(mut rows) => {
                for row in &mut rows {
                    while row.last().is_some_and(String::is_empty) {
                        row.pop();
                    }
                }
                if rows.iter().filter(|row| row.len() >= 2).count() < 2 {
                    for cell in rows.iter().flatten() {
                        let text = normalize(cell);
                        if !text.trim().is_empty() {
                            builder.push_block(text.trim());
                        }
                    }
                    continue;
                }
                let table = markdown_table(&rows);
                if !table.is_empty() {
                    builder.push_block(&normalize(&table));
                }
            }
        }
    }
    builder.finish()
}

/// A DOCX extraction error.
fn bad(reason: String) -> Error {
    Error::Extraction { format: "docx", reason }
}

/// The name of the main document part: the target of the package's `officeDocument`
/// relationship, else `word/document.xml`.
fn main_part(zip: &mut BoundedZip<'_>) -> Result<String> {
    let fallback = "word/document.xml".to_owned();
    let Some(rels) = zip.read_text("_rels/.rels")? else {
        return Ok(fallback);
    };
    let mut reader = Reader::from_str(&rels);
    loop {
        let Ok(event) = reader.read_event() else { return Ok(fallback) };
        if let Event::Empty(element) | Event::Start(element) = &event
            && element.local_name().as_ref() == "Relationship"
            && attribute(element, "Type").is_some_and(|kind| kind.ends_with("/officeDocument"))
            && let Some(target) = attribute(element, "Target")
        {
            return Ok(target.trim_start_matches('/').to_owned());
        }
        if matches!(event, Event::Eof) {
            return Ok(fallback);
        }
    }
}

/// The value of the attribute whose local name is `name`, unescaped.
pub(crate) fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element.attributes().flatten().find(|attr| attr.key.local_name().as_ref() == name).map(|attr| {
        attr.normalized_value(XmlVersion::Implicit1_0)
            .map_or_else(|_| attr.value.clone().into_owned(), std::borrow::Cow::into_owned)
    })
}

/// The heading level of each paragraph style of `styles.xml` that is a heading.
fn heading_styles(xml: &str) -> Result<HashMap<String, u32>> {
    let mut levels = HashMap::new();
    let mut reader = Reader::from_str(xml);
    // The style being read: its id, and the level found so far.
    let mut current: Option<(String, Option<u32>)> = None;
    loop {
        let event = reader.read_event().map_err(|err| bad(format!("malformed styles: {err}")))?;
        match event {
            Event::Start(element) | Event::Empty(element) => {
                let name = element.local_name();
                match name.as_ref() {
                    "style" => {
                        let paragraph = attribute(&element, "type").as_deref() == Some("paragraph");
                        current = attribute(&element, "styleId").filter(|_| paragraph).map(|id| {
                            let level = heading_level(&id);
                            (id, level)
                        });
                    }
                    "name" => {
                        if let Some((_, level)) = current.as_mut() {
                            let by_name =
                                attribute(&element, "val").and_then(|v| heading_level(&v));
                            *level = by_name.or(*level);
                        }
                    }
                    "outlineLvl" => {
                        if let Some((_, level)) = current.as_mut() {
                            *level = level.or_else(|| outline_level(&element));
                        }
                    }
                    _ => {}
                }
            }
            Event::End(element) if element.local_name().as_ref() == "style" => {
                if let Some((id, Some(level))) = current.take() {
                    levels.insert(id, level);
                }
            }
            Event::Eof => return Ok(levels),
            Event::End(_)
            | Event::Text(_)
            | Event::CData(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_)
            | Event::GeneralRef(_) => {}
        }
    }
}

/// The heading level of a style id or name: `Title` is 0, `Heading1`..`Heading9` (or
/// `heading 1`..) are 1..9.
pub(crate) fn heading_level(style: &str) -> Option<u32> {
    let lower = style.to_ascii_lowercase();
    if lower == "title" {
        return Some(0);
    }
    let level: u32 = lower.strip_prefix("heading")?.trim().parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}

/// The heading level of an `outlineLvl` element (0-based in the file; 9 means body text).
fn outline_level(element: &BytesStart<'_>) -> Option<u32> {
    let level: u32 = attribute(element, "val")?.trim().parse().ok()?;
    (level < 9).then_some(level + 1)
}

/// A block of a word-processing document's body.
#[derive(Debug)]
pub(crate) enum Block {
    Paragraph { text: String, level: Option<u32> },
    Table(Vec<Vec<String>>),
}

/// The tables being read: how many are open, and the outermost one's rows, current row and
/// cell (a table inside a cell adds its text to that cell).
#[derive(Default)]
pub(crate) struct Tables {
    /// Open tables.
    pub(crate) open: usize,
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    /// The text of the current cell of the outermost table.
    pub(crate) cell: String,
    /// Columns the current cell spans.
    span: usize,
}

impl Tables {
    pub(crate) fn start_table(&mut self) {
        self.open += 1;
        if self.open == 1 {
            self.rows.clear();
        }
    }

    pub(crate) fn start_row(&mut self) {
        if self.open == 1 {
            self.row.clear();
        }
    }

    /// Starts a cell of the outermost table spanning `span` columns.
    pub(crate) fn start_cell(&mut self, span: usize) {
        if self.open == 1 {
            self.cell.clear();
            self.set_span(span);
        }
    }

    /// The columns the current cell of the outermost table spans (1 to 64).
    pub(crate) fn set_span(&mut self, span: usize) {
        if self.open == 1 {
            self.span = span.clamp(1, 64);
        }
    }

    /// Ends a cell: its text, then an empty cell for each further column it spans.
    pub(crate) fn end_cell(&mut self) {
        if self.open == 1 {
            self.row.push(self.cell.trim().to_owned());
            self.row.extend(std::iter::repeat_n(String::new(), self.span.saturating_sub(1)));
            self.span = 1;
        }
    }

    pub(crate) fn end_row(&mut self) {
        if self.open == 1 {
            let row = std::mem::take(&mut self.row);
            self.rows.push(row);
        }
    }

    /// Ends a table; the rows of the outermost one when it is the one that ends.
    pub(crate) fn end_table(&mut self) -> Option<Vec<Vec<String>>> {
        if self.open == 0 {
            return None;
        }
        self.open -= 1;
        if self.open == 0 {
            return Some(std::mem::take(&mut self.rows));
        }
        self.cell.push(' ');
        None
    }
}

/// The blocks of a word-processing body as they are read (DOCX and ODT): paragraphs that
/// may nest (text boxes), and tables.
#[derive(Default)]
pub(crate) struct Body {
    pub(crate) blocks: Vec<Block>,
    /// Open paragraphs.
    pub(crate) paragraphs: usize,
    /// The outermost paragraph's text and heading level.
    paragraph: String,
    level: Option<u32>,
    /// The tables being read.
    pub(crate) tables: Tables,
}

impl Body {
    /// Where text goes: the cell of the outermost table, else the paragraph.
    pub(crate) fn sink(&mut self) -> &mut String {
        if self.tables.open > 0 { &mut self.tables.cell } else { &mut self.paragraph }
    }

    /// Whether the parser is in a paragraph of the body itself (not nested, not in a table),
    /// whose style may make it a heading.
    pub(crate) const fn in_body_paragraph(&self) -> bool {
        self.paragraphs == 1 && self.tables.open == 0
    }

    /// Opens a paragraph; an outermost one outside tables starts with heading `level`.
    pub(crate) fn start_paragraph(&mut self, level: Option<u32>) {
        self.paragraphs += 1;
        if self.tables.open == 0 {
            if self.paragraphs == 1 {
                self.paragraph.clear();
                self.level = level;
            } else if !self.paragraph.is_empty() && !self.paragraph.ends_with('\n') {
                self.paragraph.push('\n');
            }
        }
    }

    /// The heading level of the body paragraph being read.
    pub(crate) fn set_level(&mut self, level: impl FnOnce(Option<u32>) -> Option<u32>) {
        if self.in_body_paragraph() {
            self.level = level(self.level);
        }
    }

    /// Closes a paragraph: a block when it is outermost, a line (or a space in a table)
    /// when it is nested.
    pub(crate) fn end_paragraph(&mut self) {
        if self.paragraphs == 0 {
            return;
        }
        self.paragraphs -= 1;
        if self.tables.open > 0 {
            self.tables.cell.push(' ');
        } else if self.paragraphs == 0 {
            let text = std::mem::take(&mut self.paragraph);
            self.blocks.push(Block::Paragraph { text, level: self.level.take() });
        } else {
            self.paragraph.push('\n');
        }
    }

    /// A line break: a line feed, or a space in a table cell.
    pub(crate) fn line_break(&mut self) {
        let separator = if self.tables.open > 0 { ' ' } else { '\n' };
        self.sink().push(separator);
    }

    /// Closes a table; the outermost becomes a block.
    pub(crate) fn end_table(&mut self) {
        if let Some(rows) = self.tables.end_table() {
            self.blocks.push(Block::Table(rows));
        }
    }
}

/// Where the parser is in the body.
struct State<'s> {
    /// Heading levels of the paragraph styles.
    styles: &'s HashMap<String, u32>,
    body: Body,
    /// Open runs.
    runs: usize,
    /// Inside a `w:t` element.
    in_text: bool,
    /// Open `mc:Fallback` elements, whose content repeats the chosen alternative.
    skipped: usize,
}

impl BodyReader for State<'_> {
    fn start(&mut self, element: &BytesStart<'_>, empty: bool) {
        let name = element.local_name();
        match name.as_ref() {
            "Fallback" if !empty => self.skipped += 1,
            _ if self.skipped > 0 => {}
            "p" if !empty => self.body.start_paragraph(None),
            "r" if !empty => self.runs += 1,
            "t" if !empty && self.runs > 0 => self.in_text = true,
            "tab" if self.runs > 0 => self.body.sink().push('\t'),
            "br" | "cr" if self.runs > 0 => self.body.line_break(),
            "noBreakHyphen" if self.runs > 0 => self.body.sink().push('-'),
            "pStyle" => {
                if let Some(id) = attribute(element, "val") {
                    let level = self.styles.get(&id).copied().or_else(|| heading_level(&id));
                    self.body.set_level(|_| level);
                }
            }
            "outlineLvl" => self.body.set_level(|level| level.or_else(|| outline_level(element))),
            "tbl" if !empty => self.body.tables.start_table(),
            "tr" if !empty => self.body.tables.start_row(),
            "tc" if !empty => self.body.tables.start_cell(1),
            "gridSpan" => {
                let span = attribute(element, "val").and_then(|v| v.trim().parse().ok());
                self.body.tables.set_span(span.unwrap_or(1));
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "Fallback" if self.skipped > 0 => self.skipped -= 1,
            _ if self.skipped > 0 => {}
            "p" => self.body.end_paragraph(),
            "r" => self.runs = self.runs.saturating_sub(1),
            "t" => self.in_text = false,
            "tc" => self.body.tables.end_cell(),
            "tr" => self.body.tables.end_row(),
            "tbl" => self.body.end_table(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.in_text && self.skipped == 0 {
            self.body.sink().push_str(text);
        }
    }

    fn reference(&mut self, reference: &BytesRef<'_>) {
        if !self.in_text || self.skipped > 0 {
            return;
        }
        if let Some(text) = resolve(reference) {
            self.body.sink().push_str(&text);
        }
    }
}

/// The text of a character reference or predefined entity (`&#233;`, `&amp;`); `None` for
/// anything else (XML documents declare no other entities ragd would expand).
pub(crate) fn resolve(reference: &BytesRef<'_>) -> Option<String> {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Some(c.to_string()),
        Ok(None) => {
            let name = reference.xml10_content();
            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
        }
        Err(_) => None,
    }
}

/// The paragraphs and tables of the main document part, in order.
fn body_blocks(
    xml: &str,
    styles: &HashMap<String, u32>,
    limits: &ExtractLimits,
) -> Result<Vec<Block>> {
    let mut state = State { styles, body: Body::default(), runs: 0, in_text: false, skipped: 0 };
    read_body(xml, "docx", limits, &mut state)?;
    Ok(state.body.blocks)
}

/// What reads a word-processing body's events ([`read_body`]).
pub(crate) trait BodyReader {
    /// An element starts (`empty`: it also ends: `<x/>`).
    fn start(&mut self, element: &BytesStart<'_>, empty: bool);
    /// An element ends; `name` is its local name.
    fn end(&mut self, name: &str);
    /// Text between tags.
    fn text(&mut self, text: &str);
    /// A character reference or entity.
    fn reference(&mut self, reference: &BytesRef<'_>);
}

/// Streams the events of `xml` to `reader`, checking the cancel flag as it goes.
///
/// # Errors
/// [`Error::Extraction`] (of `format`) for malformed XML or a cancelled extraction.
pub(crate) fn read_body(
    xml: &str,
    format: &'static str,
    limits: &ExtractLimits,
    reader: &mut impl BodyReader,
) -> Result<()> {
    let bad = |reason: String| Error::Extraction { format, reason };
    let mut events = Reader::from_str(xml);
    for count in 0_usize.. {
        if count % CANCEL_CHECK_EVERY == 0 && limits.cancelled() {
            return Err(bad("extraction was cancelled after its time limit".to_owned()));
        }
        let event = events.read_event().map_err(|err| {
            bad(format!("malformed XML at byte {}: {err}", events.error_position()))
        })?;
        match event {
            Event::Start(element) => reader.start(&element, false),
            Event::Empty(element) => reader.start(&element, true),
            Event::End(element) => reader.end(element.local_name().as_ref()),
            Event::Text(text) => reader.text(&text.xml10_content()),
            Event::CData(text) => reader.text(&text.xml10_content()),
            Event::GeneralRef(reference) => reader.reference(&reference),
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_levels_from_styles() {
        assert_eq!(heading_level("Title"), Some(0));
        assert_eq!(heading_level("Heading2"), Some(2));
        assert_eq!(heading_level("heading 3"), Some(3));
        assert_eq!(heading_level("Normal"), None);
        assert_eq!(heading_level("Heading0"), None);
    }

    #[test]
    fn styles_map_ids_to_levels_by_name_and_outline() {
        let xml = r#"<w:styles xmlns:w="w">
            <w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>
            <w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="Custom"/>
              <w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
            <w:style w:type="paragraph" w:styleId="Body"><w:name w:val="Body Text"/></w:style>
            <w:style w:type="character" w:styleId="Heading1Char"><w:name w:val="heading 1"/></w:style>
        </w:styles>"#;
        let levels = heading_styles(xml).unwrap();
        assert_eq!(levels.get("berschrift1"), Some(&1));
        assert_eq!(levels.get("Custom"), Some(&3));
        assert_eq!(levels.len(), 2, "{levels:?}");
    }

    #[test]
    fn body_keeps_text_tables_and_skips_fallbacks() {
        let xml = r#"<w:document xmlns:w="w" xmlns:mc="mc"><w:body>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/><w:tabs><w:tab w:val="left"/></w:tabs></w:pPr>
            <w:r><w:rPr><w:b w:val="true"/></w:rPr><w:t>Fish &amp; chips</w:t></w:r></w:p>
          <w:p><w:r><w:t xml:space="preserve">a </w:t><w:tab/><w:t>b</w:t><w:br/><w:t>c&#233;</w:t></w:r>
            <w:r><w:delText>gone</w:delText><w:instrText>PAGE</w:instrText></w:r>
            <w:r><mc:AlternateContent><mc:Choice><w:txbxContent><w:p><w:r><w:t>box</w:t></w:r></w:p>
              </w:txbxContent></mc:Choice><mc:Fallback><w:p><w:r><w:t>box again</w:t></w:r></w:p>
              </mc:Fallback></mc:AlternateContent></w:r></w:p>
          <w:tbl><w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>wide</w:t></w:r></w:p></w:tc>
            <w:tc><w:p><w:r><w:t>x|y</w:t></w:r></w:p></w:tc></w:tr>
            <w:tr><w:tc><w:p><w:r><w:t>1</w:t></w:r></w:p><w:p><w:r><w:t>more</w:t></w:r></w:p></w:tc>
            <w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>inner</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc>
            <w:tc><w:p/></w:tc></w:tr></w:tbl>
        </w:body></w:document>"#;
        let blocks = body_blocks(xml, &HashMap::new(), &ExtractLimits::default()).unwrap();
        let debug: Vec<String> = blocks.iter().map(|b| format!("{b:?}")).collect();
        assert_eq!(
            debug,
            vec![
                r#"Paragraph { text: "Fish & chips", level: Some(1) }"#.to_owned(),
                r#"Paragraph { text: "a \tb\ncé\nbox\n", level: None }"#.to_owned(),
                r#"Table([["wide", "", "x|y"], ["1 more", "inner", ""]])"#.to_owned(),
            ]
        );
    }
}
