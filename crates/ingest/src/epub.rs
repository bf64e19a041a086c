//! EPUB e-books: the chapters of the spine, in reading order, each read as HTML.
//!
//! The archive is read within the budget ([`BoundedZip`]). `META-INF/container.xml` names
//! the package document (OPF), whose manifest maps ids to files and whose spine gives the
//! reading order. Each XHTML chapter is rendered like an HTML page ([`crate::html`]: data
//! tables as Markdown tables), and its `h1`..`h6` headings give heading paths across the
//! whole book, so a chunk's heading is its chapter (and section). Spine items that are not
//! (X)HTML, or are missing, are skipped.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::docx::attribute;
use crate::error::{Error, Result};
use crate::extract::{Builder, Extracted, atx_heading};
use crate::guard::{BoundedZip, ExtractLimits, archive_path};

/// Extracts the chapters of an EPUB in reading order.
///
/// # Errors
/// [`Error::Extraction`] when the archive is unreadable or past the limits, has no package
/// document, or no chapter.
pub(crate) fn extract_epub(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let mut zip = BoundedZip::open(bytes, "epub", limits)?;
    let container = zip.read_text("META-INF/container.xml")?.ok_or_else(|| {
        bad("the archive has no META-INF/container.xml; is it an EPUB?".to_owned())
    })?;
    let package = first_attribute(&container, "rootfile", "full-path")
        .ok_or_else(|| bad("META-INF/container.xml names no package document".to_owned()))?;
    let opf = zip
        .read_text(&package)?
        .ok_or_else(|| bad(format!("the package document {package} is missing")))?;
    let base = package.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut builder = Builder::default();
    let mut chapters = 0;
    for href in spine(&opf)? {
        if limits.cancelled() {
            return Err(bad("extraction was cancelled after its time limit".to_owned()));
        }
        let path = archive_path(base, &href);
        let Some(chapter) = zip.read(&path)? else { continue };
        let text = crate::html::extract_html(&chapter, limits)?.text;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let start = builder.push_block(text);
        let mut char_pos = start;
        for line in text.split('\n') {
            if let Some((level, title)) = atx_heading(line.trim_start_matches(' ')) {
                builder.heading(level, title, char_pos);
            }
            char_pos += line.chars().count() + 1;
        }
        chapters += 1;
    }
    if chapters == 0 {
        return Err(bad("the book's spine has no readable chapter".to_owned()));
    }
    Ok(builder.finish())
}

/// An EPUB extraction error.
fn bad(reason: String) -> Error {
    Error::Extraction { format: "epub", reason }
}

/// The attribute `name` of the first element named `local` in `xml`.
fn first_attribute(xml: &str, local: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        let event = reader.read_event().ok()?;
        if let Event::Start(element) | Event::Empty(element) = &event
            && element.local_name().as_ref() == local
        {
            return attribute(element, name);
        }
        if matches!(event, Event::Eof) {
            return None;
        }
    }
}

/// The files of the package's spine, in reading order: (X)HTML manifest items only.
fn spine(opf: &str) -> Result<Vec<String>> {
    let mut reader = Reader::from_str(opf);
    let mut manifest: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    loop {
        let event =
            reader.read_event().map_err(|err| bad(format!("malformed package document: {err}")))?;
        if matches!(event, Event::Eof) {
            break;
        }
        let (Event::Start(element) | Event::Empty(element)) = &event else { continue };
        match element.local_name().as_ref() {
            "item" => {
                let media = attribute(element, "media-type").unwrap_or_default();
                if media.contains("html")
                    && let (Some(id), Some(href)) =
                        (attribute(element, "id"), attribute(element, "href"))
                {
                    manifest.insert(id, href);
                }
            }
            "itemref" => order.extend(attribute(element, "idref")),
            _ => {}
        }
    }
    Ok(order.into_iter().filter_map(|id| manifest.get(&id).cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spine_orders_html_items() {
        let opf = r#"<package><manifest>
            <item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/>
            <item id="css" href="s.css" media-type="text/css"/>
            <item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>
          </manifest><spine><itemref idref="c1"/><itemref idref="css"/><itemref idref="c2"/>
          <itemref idref="gone"/></spine></package>"#;
        assert_eq!(spine(opf).unwrap(), ["one.xhtml", "two.xhtml"]);
    }
}
