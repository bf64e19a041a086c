//! Tables as Markdown: rendering rows of cells as a GitHub-flavoured Markdown table, and
//! finding such tables in extracted text so that chunking can keep their header.
//!
//! Every extractor that meets a table (DOCX, HTML, spreadsheets, CSV) writes it with
//! [`markdown_table`]: the first row is the header, a delimiter row follows, and every row
//! has as many cells as the widest. Cell text is put on one line (line breaks become spaces)
//! and `|` is escaped as `\|`, so a row is always exactly one line.
//!
//! [`find_tables`] finds GitHub-flavoured tables in any text (those ragd wrote and those a
//! Markdown author wrote): a line with a `|`, then a delimiter row with as many cells, then
//! every following line up to the first blank one or one without a `|`.

use std::ops::Range;

/// Renders `rows` (the first one is the header) as a Markdown table, one line per row and no
/// line feed after the last. Rows shorter than the widest are padded with empty cells.
/// Returns an empty string when there are no rows or every cell is blank.
#[must_use]
pub fn markdown_table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 || rows.iter().flatten().all(|cell| cell.trim().is_empty()) {
        return String::new();
    }
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        push_row(&mut out, row.iter().map(String::as_str), width);
        if index == 0 {
            out.push('\n');
            push_row(&mut out, std::iter::repeat_n("---", width), width);
        }
    }
    out
}

/// Appends `| a | b |` for the first `width` cells of `cells`, padded with empty cells.
fn push_row<'c>(out: &mut String, cells: impl Iterator<Item = &'c str>, width: usize) {
    out.push('|');
    let mut written = 0;
    for cell in cells.take(width) {
        out.push(' ');
        push_cell(out, cell);
        out.push_str(" |");
        written += 1;
    }
    for _ in written..width {
        out.push_str("  |");
    }
}

/// Appends a cell's text on one line: runs of white space become one space, `|` is escaped.
fn push_cell(out: &mut String, cell: &str) {
    for (index, word) in cell.split_whitespace().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        for c in word.chars() {
            if c == '|' {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

/// Where a Markdown table lies in a text, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpan {
    /// The whole table: from the header row's first byte to just past the last row's line
    /// feed (or the end of the text).
    pub range: Range<usize>,
    /// Bytes of the header: the header row and the delimiter row, with their line feeds.
    pub header_len: usize,
}

/// The Markdown tables of `text`, in order; see the module documentation for the rule.
#[must_use]
pub fn find_tables(text: &str) -> Vec<TableSpan> {
    let mut tables = Vec::new();
    let mut lines = Lines { text, at: 0 };
    let mut previous: Option<Range<usize>> = None;
    while let Some(line) = lines.next() {
        let header = previous.take();
        let body = line_body(&text[line.clone()]);
        let Some(header) = header else {
            previous = body.contains('|').then_some(line);
            continue;
        };
        let columns = delimiter_cells(body);
        if columns == 0 || columns != cell_count(line_body(&text[header.clone()])) {
            previous = body.contains('|').then_some(line);
            continue;
        }
        let header_len = line.end - header.start;
        let mut end = line.end;
        while let Some(row) = lines.peek() {
            let row_body = line_body(&text[row.clone()]);
            if row_body.trim().is_empty() || !row_body.contains('|') {
                break;
            }
            end = row.end;
            lines.next();
        }
        tables.push(TableSpan { range: header.start..end, header_len });
    }
    tables
}

/// The lines of a text as byte ranges, each with its line feed.
struct Lines<'t> {
    text: &'t str,
    at: usize,
}

impl Lines<'_> {
    fn peek(&self) -> Option<Range<usize>> {
        if self.at >= self.text.len() {
            return None;
        }
        let end = self.text[self.at..].find('\n').map_or(self.text.len(), |i| self.at + i + 1);
        Some(self.at..end)
    }
}

impl Iterator for Lines<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let line = self.peek()?;
        self.at = line.end;
        Some(line)
    }
}

/// A line without its line feed.
fn line_body(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

/// The cells of a row, outer pipes removed, escaped pipes kept inside their cell.
fn cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = if row.ends_with('|') && !row.ends_with("\\|") { &row[..row.len() - 1] } else { row };
    let mut cells = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, c) in row.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => {
                cells.push(&row[start..index]);
                start = index + 1;
            }
            _ => escaped = false,
        }
    }
    cells.push(&row[start..]);
    cells
}

/// How many cells a row has.
fn cell_count(row: &str) -> usize {
    cells(row).len()
}

/// How many cells a delimiter row (`| --- | :-: |`) has, or 0 when the line is not one.
fn delimiter_cells(row: &str) -> usize {
    if !row.contains('-') {
        return 0;
    }
    let cells = cells(row);
    let valid = cells.iter().all(|cell| {
        let cell = cell.trim();
        let cell = cell.strip_prefix(':').unwrap_or(cell);
        let cell = cell.strip_suffix(':').unwrap_or(cell);
        !cell.is_empty() && cell.bytes().all(|byte| byte == b'-')
    });
    if valid { cells.len() } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter().map(|row| row.iter().map(|&cell| cell.to_owned()).collect()).collect()
    }

    #[test]
    fn renders_header_delimiter_and_padded_rows() {
        let table = markdown_table(&rows(&[
            &["Name", "Price"],
            &["Tea", "3 €"],
            &["a | b", "line\nbreak  and   spaces"],
            &["only one"],
        ]));
        assert_eq!(
            table,
            "| Name | Price |\n| --- | --- |\n| Tea | 3 € |\n| a \\| b | line break and spaces |\n\
             | only one |  |"
        );
        assert_eq!(markdown_table(&[]), "");
        assert_eq!(markdown_table(&rows(&[&["", " "], &[""]])), "");
    }

    #[test]
    fn finds_the_tables_it_renders_and_hand_written_ones() {
        let rendered = markdown_table(&rows(&[&["a", "b|c"], &["1", "2"], &["3", "4"]]));
        let text = format!(
            "Intro | with a pipe\n\n{rendered}\nafter\n\n|x|y|\n|:-|-:|\n|1|2|\n\n| not | a |\n| table |\n"
        );
        let tables = find_tables(&text);
        assert_eq!(tables.len(), 2, "{tables:?}");
        let first = &text[tables[0].range.clone()];
        assert_eq!(first, format!("{rendered}\n"));
        assert_eq!(&first[..tables[0].header_len], "| a | b\\|c |\n| --- | --- |\n");
        assert_eq!(&text[tables[1].range.clone()], "|x|y|\n|:-|-:|\n|1|2|\n");
        // A table at the very end, without a final line feed.
        let tail = find_tables("| a |\n| - |\n| 1 |");
        assert_eq!(tail, vec![TableSpan { range: 0..17, header_len: 12 }]);
    }

    #[test]
    fn a_delimiter_row_must_match_the_header() {
        assert!(find_tables("| a | b |\n| --- |\n| 1 | 2 |\n").is_empty());
        assert!(find_tables("| a |\n| --x |\n").is_empty());
        assert!(find_tables("| --- |\n| --- |\n").len() == 1);
    }
}
