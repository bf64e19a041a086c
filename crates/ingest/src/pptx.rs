//! Office Open XML presentations (PPTX): one page per slide, speaker notes included.
//!
//! The slides are read in the presentation's order (`p:sldIdLst` through
//! `ppt/_rels/presentation.xml.rels`), each part within the budget ([`BoundedZip`]). On a
//! slide, every shape's paragraphs (`a:p`, runs' `a:t`, line breaks) form one block, and
//! tables (`a:tbl`) become Markdown tables. The title placeholder's text is the slide's
//! heading. The notes slide (from the slide's relationships) follows as `Notes:` and its
//! text, without the slide-number and slide-image placeholders. Each slide is a
//! [`PageSpan`], so chunks carry their slide number as their page.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::docx::{attribute, resolve};
use crate::error::{Error, Result};
use crate::extract::{Builder, Extracted, PageSpan, normalize};
use crate::guard::{BoundedZip, ExtractLimits, archive_path};
use crate::table::markdown_table;

/// Extracts the slides (and their notes) of a presentation in order.
///
/// # Errors
/// [`Error::Extraction`] when the archive is unreadable or past the limits, names no
/// slides, or holds malformed XML.
pub(crate) fn extract_pptx(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let mut zip = BoundedZip::open(bytes, "pptx", limits)?;
    let presentation = "ppt/presentation.xml";
    let xml = zip.read_text(presentation)?.ok_or_else(|| {
        bad("the archive has no ppt/presentation.xml; is it a PPTX presentation?".to_owned())
    })?;
    let rels = relationships(&mut zip, presentation)?;
    let mut builder = Builder::default();
    let mut pages = Vec::new();
    for (index, id) in slide_ids(&xml)?.iter().enumerate() {
        if limits.cancelled() {
            return Err(bad("extraction was cancelled after its time limit".to_owned()));
        }
        let Some((_, target)) = rels.get(id) else { continue };
        let path = resolve_target(presentation, target);
        let Some(slide) = zip.read_text(&path)? else { continue };
        let mut blocks = shapes(&slide)?;
        let notes = relationships(&mut zip, &path)?
            .into_values()
            .find(|(kind, _)| kind.ends_with("/notesSlide"))
            .map(|(_, target)| resolve_target(&path, &target));
        if let Some(notes) = notes
            && let Some(xml) = zip.read_text(&notes)?
        {
            let text: Vec<String> = shapes(&xml)?.into_iter().filter_map(Shape::text).collect();
            if !text.is_empty() {
                blocks.push(Shape::Text {
                    text: format!("Notes: {}", text.join("\n")),
                    title: false,
                });
            }
        }
        let page = u32::try_from(index + 1).map_err(|_| bad("too many slides".to_owned()))?;
        let mut start = None;
        for shape in blocks {
            let (text, title) = match shape {
                Shape::Text { text, title } => (normalize(text.trim()), title),
                Shape::Table(rows) => (markdown_table(&rows), false),
            };
            if text.trim().is_empty() {
                continue;
            }
            let at = builder.push_block(&text);
            start.get_or_insert(at);
            if title {
                builder.heading(1, &text.replace('\n', " "), at);
            }
        }
        if let Some(char_start) = start {
            pages.push(PageSpan { page, char_start, char_end: builder.chars() });
        }
    }
    let mut extracted = builder.finish();
    extracted.pages = pages;
    Ok(extracted)
}

/// A PPTX extraction error.
fn bad(reason: String) -> Error {
    Error::Extraction { format: "pptx", reason }
}

/// The relationships of part `part`: id to (type, target).
fn relationships(
    zip: &mut BoundedZip<'_>,
    part: &str,
) -> Result<HashMap<String, (String, String)>> {
    let (dir, file) = part.rsplit_once('/').unwrap_or(("", part));
    let path = if dir.is_empty() {
        format!("_rels/{file}.rels")
    } else {
        format!("{dir}/_rels/{file}.rels")
    };
    let mut rels = HashMap::new();
    let Some(xml) = zip.read_text(&path)? else { return Ok(rels) };
    let mut reader = Reader::from_str(&xml);
    loop {
        let event = reader.read_event().map_err(|err| bad(format!("malformed {path}: {err}")))?;
        if matches!(event, Event::Eof) {
            return Ok(rels);
        }
        if let Event::Start(element) | Event::Empty(element) = &event
            && element.local_name().as_ref() == "Relationship"
            && let (Some(id), Some(kind), Some(target)) =
                (attribute(element, "Id"), attribute(element, "Type"), attribute(element, "Target"))
        {
            rels.insert(id, (kind, target));
        }
    }
}

/// A relationship target of the part `from`, as an archive path.
fn resolve_target(from: &str, target: &str) -> String {
    archive_path(from.rsplit_once('/').map_or("", |(dir, _)| dir), target)
}

/// The relationship ids of the slides, in the presentation's order.
fn slide_ids(xml: &str) -> Result<Vec<String>> {
    let mut reader = Reader::from_str(xml);
    let mut ids = Vec::new();
    loop {
        let event =
            reader.read_event().map_err(|err| bad(format!("malformed presentation: {err}")))?;
        if matches!(event, Event::Eof) {
            return Ok(ids);
        }
        if let Event::Start(element) | Event::Empty(element) = &event
            && element.local_name().as_ref() == "sldId"
            && let Some(id) = relationship_id(element)
        {
            ids.push(id);
        }
    }
}

/// The `r:id` attribute of an element (the prefixed `id`, not the element's own number).
fn relationship_id(element: &BytesStart<'_>) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|attr| attr.key.local_name().as_ref() == "id" && attr.key.prefix().is_some())
        .map(|attr| attr.value.into_owned())
}

/// What a slide shows: a shape's text (and whether it is the title), or a table.
#[derive(Debug)]
enum Shape {
    Text { text: String, title: bool },
    Table(Vec<Vec<String>>),
}

impl Shape {
    /// The text of a text shape, trimmed; `None` for an empty one or a table.
    fn text(self) -> Option<String> {
        match self {
            Self::Text { text, .. } if !text.trim().is_empty() => Some(text.trim().to_owned()),
            Self::Text { .. } | Self::Table(_) => None,
        }
    }
}

/// The shapes and tables of a slide (or notes slide), in document order.
fn shapes(xml: &str) -> Result<Vec<Shape>> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let (mut text, mut title, mut skip_shape) = (String::new(), false, false);
    let (mut in_shape, mut in_text) = (false, false);
    let (mut tables, mut rows, mut row, mut cell) =
        (0_usize, Vec::new(), Vec::new(), String::new());
    loop {
        let event = reader.read_event().map_err(|err| bad(format!("malformed slide: {err}")))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Eof => return Ok(out),
            Event::Start(element) | Event::Empty(element) => match element.local_name().as_ref() {
                "sp" => {
                    (in_shape, title, skip_shape) = (true, false, false);
                    text.clear();
                }
                "ph" => {
                    let kind = attribute(&element, "type").unwrap_or_default();
                    title = matches!(kind.as_str(), "title" | "ctrTitle");
                    skip_shape =
                        matches!(kind.as_str(), "sldNum" | "sldImg" | "dt" | "ftr" | "hdr");
                }
                "t" => in_text = !empty,
                "br" if tables > 0 => cell.push(' '),
                "br" => text.push('\n'),
                "tbl" => {
                    tables += 1;
                    if tables == 1 {
                        rows = Vec::new();
                    }
                }
                "tr" if tables == 1 => row = Vec::new(),
                "tc" if tables == 1 => cell.clear(),
                _ => {}
            },
            Event::End(element) => match element.local_name().as_ref() {
                "t" => in_text = false,
                "p" if tables > 0 => cell.push(' '),
                "p" if in_shape => text.push('\n'),
                "sp" => {
                    in_shape = false;
                    if !skip_shape {
                        out.push(Shape::Text { text: std::mem::take(&mut text), title });
                    }
                }
                "tc" if tables == 1 => row.push(cell.trim().to_owned()),
                "tr" if tables == 1 => rows.push(std::mem::take(&mut row)),
                "tbl" => {
                    tables = tables.saturating_sub(1);
                    if tables == 0 {
                        out.push(Shape::Table(std::mem::take(&mut rows)));
                    }
                }
                _ => {}
            },
            Event::Text(content) if in_text => {
                let sink = if tables > 0 { &mut cell } else { &mut text };
                sink.push_str(&content.xml10_content());
            }
            Event::GeneralRef(reference) if in_text => {
                let sink = if tables > 0 { &mut cell } else { &mut text };
                sink.extend(resolve(&reference));
            }
            Event::Text(_)
            | Event::GeneralRef(_)
            | Event::CData(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_against_their_part() {
        assert_eq!(
            resolve_target("ppt/presentation.xml", "slides/slide1.xml"),
            "ppt/slides/slide1.xml"
        );
        assert_eq!(
            resolve_target("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(resolve_target("ppt/slides/slide1.xml", "/ppt/x.xml"), "ppt/x.xml");
    }

    #[test]
    fn shapes_keep_titles_tables_and_skip_slide_numbers() {
        let xml = r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr>
            <p:txBody><a:p><a:r><a:t>Tides &amp; moons</a:t></a:r></a:p></p:txBody></p:sp>
          <p:sp><p:txBody><a:p><a:r><a:t>Line one</a:t></a:r><a:br/><a:r><a:t>two</a:t></a:r></a:p>
            <a:p><a:r><a:t>Third</a:t></a:r></a:p></p:txBody></p:sp>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr>
            <p:txBody><a:p><a:r><a:t>7</a:t></a:r></a:p></p:txBody></p:sp>
          <p:graphicFrame><a:graphic><a:graphicData><a:tbl>
            <a:tr><a:tc><a:txBody><a:p><a:r><a:t>A</a:t></a:r></a:p></a:txBody></a:tc>
                  <a:tc><a:txBody><a:p><a:r><a:t>B</a:t></a:r></a:p></a:txBody></a:tc></a:tr>
          </a:tbl></a:graphicData></a:graphic></p:graphicFrame>
        </p:spTree></p:cSld></p:sld>"#;
        let shapes: Vec<String> = shapes(xml).unwrap().iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(
            shapes,
            [
                r#"Text { text: "Tides & moons\n", title: true }"#,
                r#"Text { text: "Line one\ntwo\nThird\n", title: false }"#,
                r#"Table([["A", "B"]])"#,
            ]
        );
    }
}
