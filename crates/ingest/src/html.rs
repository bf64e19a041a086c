//! HTML pages to text with `html2text`, data tables written as Markdown tables.
//!
//! The page is parsed into html2text's DOM once. Every outermost data table (at least two
//! rows and two columns, no heading or table inside a cell) is rendered with
//! [`markdown_table`] and swapped in the DOM for a paragraph holding a placeholder, which is
//! replaced by the table after html2text renders the rest. Other tables (page layout, a
//! single row or column) are left to html2text, without borders. `<script>`, `<style>` and
//! `<head>` content is dropped; `h1`..`h6` are rendered as `#`-prefixed lines, which give
//! heading paths. Nesting deeper than [`MAX_HTML_DEPTH`] is flattened first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use html2text::{Handle, RcDom};

use crate::error::{Error, Result};
use crate::extract::{Extracted, decode_text, markdown_headings, normalize, panic_reason};
use crate::guard::{ExtractLimits, MAX_HTML_DEPTH, flatten_deep_html};
use crate::table::markdown_table;

/// The wrap width given to `html2text`; wide enough that paragraphs are not broken.
const HTML_WIDTH: usize = 4096;

/// Opens and closes a table placeholder (a private-use character, never in real text).
const MARK: char = '\u{F8F0}';

/// Marks where a cell's text starts in [`cell_texts`].
const CELL: char = '\u{F8F1}';

/// Extracts an HTML page's text; see the module documentation.
///
/// # Errors
/// [`Error::Extraction`] when the page is larger than the limits or the renderer fails.
pub(crate) fn extract_html(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    if bytes.len() as u64 > limits.max_extracted_bytes {
        return Err(limits.too_much("html"));
    }
    let decoded = decode_text(bytes);
    let html = flatten_deep_html(&decoded, MAX_HTML_DEPTH);
    let outcome = catch_unwind(AssertUnwindSafe(|| render(&html)));
    let rendered = match outcome {
        Ok(Ok(rendered)) => rendered,
        Ok(Err(err)) => return Err(Error::Extraction { format: "html", reason: err.to_string() }),
        Err(panic) => {
            return Err(Error::Extraction { format: "html", reason: panic_reason(panic.as_ref()) });
        }
    };
    // html2text pads the lines of borderless layout tables to their column widths.
    let trimmed: Vec<&str> = rendered.trim_end().split('\n').map(str::trim_end).collect();
    let text = normalize(&trimmed.join("\n"));
    let headings = markdown_headings(&text);
    Ok(Extracted { text, pages: Vec::new(), headings, warnings: Vec::new() })
}

/// Renders the page with its data tables as Markdown.
fn render(html: &str) -> std::result::Result<String, html2text::Error> {
    let config = html2text::config::plain_no_decorate().no_table_borders();
    let dom = config.parse_html(html.as_bytes())?;
    let mut tables = Vec::new();
    replace_tables(&config, &dom, &mut tables)?;
    let tree = config.dom_to_render_tree(&dom)?;
    let rendered = config.render_to_string(tree, HTML_WIDTH)?;
    if tables.is_empty() {
        return Ok(rendered);
    }
    let mut out =
        String::with_capacity(rendered.len() + tables.iter().map(String::len).sum::<usize>());
    for line in rendered.split_inclusive('\n') {
        let body = line.trim_end_matches('\n').trim();
        let table = body
            .strip_prefix(MARK)
            .and_then(|rest| rest.strip_suffix(MARK))
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|index| tables.get(index));
        match table {
            Some(table) => {
                out.push_str(table);
                out.push('\n');
            }
            None => out.push_str(line),
        }
    }
    Ok(out)
}

/// Swaps every outermost data table of `dom` for a placeholder paragraph, pushing its
/// Markdown to `tables`; the placeholder's text is [`MARK`], the table's index, [`MARK`].
fn replace_tables<D: html2text::render::TextDecorator>(
    config: &html2text::config::Config<D>,
    dom: &RcDom,
    tables: &mut Vec<String>,
) -> std::result::Result<(), html2text::Error> {
    let mut stack = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        let children: Vec<Handle> = node.children.borrow().clone();
        for (index, child) in children.iter().enumerate() {
            if element_name(child).as_deref() != Some("table") {
                stack.push(child.clone());
                continue;
            }
            let Some(rows) = data_table(config, child)? else {
                stack.push(child.clone());
                continue;
            };
            let placeholder = placeholder(config, tables.len())?;
            placeholder.parent.set(Some(Rc::downgrade(&node)));
            node.children.borrow_mut()[index] = placeholder;
            tables.push(markdown_table(&rows));
        }
    }
    Ok(())
}

/// A `<p>` element whose text is the placeholder of table `index`, parsed from a snippet
/// (html2text's DOM has no public constructor).
fn placeholder<D: html2text::render::TextDecorator>(
    config: &html2text::config::Config<D>,
    index: usize,
) -> std::result::Result<Handle, html2text::Error> {
    let snippet = format!("<p>{MARK}{index}{MARK}</p>");
    let dom = config.parse_html(snippet.as_bytes())?;
    let mut stack = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        let children: Vec<Handle> = node.children.borrow().clone();
        if let Some(p) = children.iter().find(|c| element_name(c).as_deref() == Some("p")) {
            // Out of the snippet's tree before it is dropped: dropping a node empties the
            // children of everything below it, shared or not.
            node.children.borrow_mut().retain(|child| !Rc::ptr_eq(child, p));
            return Ok(p.clone());
        }
        stack.extend(children);
    }
    Err(html2text::Error::Fail)
}

/// The lower-case local name of an element, `None` for other nodes.
fn element_name(node: &Handle) -> Option<String> {
    if let html2text::Element { name, .. } = &node.data {
        Some(name.local.to_string().to_ascii_lowercase())
    } else {
        None
    }
}

/// The value of an element's attribute.
fn attribute(node: &Handle, wanted: &str) -> Option<String> {
    let html2text::Element { attrs, .. } = &node.data else { return None };
    attrs
        .borrow()
        .iter()
        .find(|attr| attr.name.local.to_string().eq_ignore_ascii_case(wanted))
        .map(|attr| attr.value.to_string())
}

/// The rows of `table` when it is a data table: at least two rows of at least two cells,
/// and no heading, list or table inside a cell.
fn data_table<D: html2text::render::TextDecorator>(
    config: &html2text::config::Config<D>,
    table: &Handle,
) -> std::result::Result<Option<Vec<Vec<String>>>, html2text::Error> {
    // Each row's cells and the columns each spans.
    let mut rows: Vec<Vec<(Handle, usize)>> = Vec::new();
    let mut stack: Vec<Handle> = table.children.borrow().iter().rev().cloned().collect();
    while let Some(node) = stack.pop() {
        match element_name(&node).as_deref() {
            Some("tr") => {
                let mut row = Vec::new();
                for cell in node.children.borrow().iter() {
                    if !matches!(element_name(cell).as_deref(), Some("td" | "th")) {
                        continue;
                    }
                    if has_block_structure(cell) {
                        return Ok(None);
                    }
                    let span: usize =
                        attribute(cell, "colspan").and_then(|v| v.trim().parse().ok()).unwrap_or(1);
                    row.push((cell.clone(), span.clamp(1, 64)));
                }
                rows.push(row);
            }
            Some("thead" | "tbody" | "tfoot") => {
                stack.extend(node.children.borrow().iter().rev().cloned());
            }
            _ => {}
        }
    }
    if rows.iter().filter(|row| row.len() >= 2).count() < 2 {
        return Ok(None);
    }
    let cells: Vec<Handle> = rows.iter().flatten().map(|(cell, _)| cell.clone()).collect();
    let mut texts = cell_texts(config, &cells)?.into_iter();
    let rows = rows
        .iter()
        .map(|row| {
            let mut out = Vec::new();
            for (_, span) in row {
                out.push(texts.next().unwrap_or_default());
                out.extend(std::iter::repeat_n(String::new(), span - 1));
            }
            out
        })
        .collect();
    Ok(Some(rows))
}

/// Whether a cell holds a table, heading, list or preformatted text: the table is then
/// page layout, not data.
fn has_block_structure(cell: &Handle) -> bool {
    let mut stack: Vec<Handle> = cell.children.borrow().clone();
    while let Some(node) = stack.pop() {
        if let Some(name) = element_name(&node)
            && matches!(
                name.as_str(),
                "table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "pre"
            )
        {
            return true;
        }
        stack.extend(node.children.borrow().iter().cloned());
    }
    false
}

/// The text of each cell on one line, rendered by html2text in one pass: the cells' content
/// is lent to a document of `<p>`-marker, `<div>`-content pairs, rendered, and cut at the
/// markers (html2text's DOM has no public constructor and no public text accessor).
fn cell_texts<D: html2text::render::TextDecorator>(
    config: &html2text::config::Config<D>,
    cells: &[Handle],
) -> std::result::Result<Vec<String>, html2text::Error> {
    let snippet = format!("<p>{CELL}</p><div></div>").repeat(cells.len());
    let dom = config.parse_html(snippet.as_bytes())?;
    let mut stack = vec![dom.document.clone()];
    let mut divs = Vec::new();
    while let Some(node) = stack.pop() {
        if element_name(&node).as_deref() == Some("div") {
            divs.push(node);
            continue;
        }
        stack.extend(node.children.borrow().iter().rev().cloned());
    }
    if divs.len() != cells.len() {
        return Err(html2text::Error::Fail);
    }
    for (div, cell) in divs.iter().zip(cells) {
        *div.children.borrow_mut() = cell.children.borrow().clone();
    }
    let tree = config.dom_to_render_tree(&dom);
    // The cells' content goes back out before the document is dropped: dropping a node
    // empties the children of everything below it, shared or not.
    for div in &divs {
        div.children.borrow_mut().clear();
    }
    let rendered = config.render_to_string(tree?, HTML_WIDTH)?;
    let mut texts: Vec<String> = Vec::with_capacity(cells.len());
    for line in rendered.lines() {
        if line.trim() == CELL.to_string() {
            texts.push(String::new());
        } else if let Some(text) = texts.last_mut() {
            text.push(' ');
            text.push_str(line);
        }
    }
    Ok(texts.iter().map(|text| text.split_whitespace().collect::<Vec<_>>().join(" ")).collect())
}
