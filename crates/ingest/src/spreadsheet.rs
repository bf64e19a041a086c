//! Spreadsheets (XLSX, ODS) and CSV files as Markdown tables.
//!
//! Each sheet becomes its name, as a heading line, then one Markdown table of its used
//! range ([`markdown_table`]: the first non-empty row is the header). Rows that are empty
//! are left out, and so are empty columns at the right. The chunker cuts tables by rows and
//! repeats the header in every chunk, and every chunk's heading is its sheet's name.
//!
//! - XLSX and ODS: read by `calamine` from the archive as [`BoundedZip::rebuilt`] copied it
//!   within the budget (zip bombs fail before calamine inflates anything). Numbers are
//!   written as Rust prints them (`3`, `2.5`), dates as `YYYY-MM-DD` (with the time when it
//!   is not midnight), errors as their spreadsheet code (`#DIV/0!`). Hidden sheets are read
//!   too. A sheet whose used range holds more cells than the budget allows bytes fails.
//! - CSV: decoded like text (UTF-8, UTF-16 with a BOM, Latin-1), then parsed by the `csv`
//!   crate with quotes and ragged rows allowed. The delimiter is whichever of `,` `;` tab
//!   `|` splits the first records into the most columns consistently. A CSV file is one table
//!   without a heading.

use std::io::Cursor;

use calamine::{Data, Reader, open_workbook_auto_from_rs};

use crate::error::{Error, Result};
use crate::extract::{Builder, Extracted, decode_text, normalize};
use crate::guard::{BoundedZip, ExtractLimits};
use crate::table::markdown_table;

/// How many records of a CSV file the delimiter guess reads.
const SNIFF_RECORDS: usize = 50;

/// Extracts every sheet of an XLSX or ODS workbook; `format` is `xlsx` or `ods`.
///
/// # Errors
/// [`Error::Extraction`] when the archive is unreadable, inflates past the limits, or
/// calamine cannot read it.
pub(crate) fn extract_workbook(
    format: &'static str,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<Extracted> {
    let bad = |reason: String| Error::Extraction { format, reason };
    let checked = BoundedZip::open(bytes, format, limits)?.rebuilt(|name| {
        name.starts_with("xl/media/") || name.starts_with("Pictures/") || name.contains("thumbnail")
    })?;
    let mut workbook = open_workbook_auto_from_rs(Cursor::new(checked))
        .map_err(|err| bad(format!("not a readable workbook: {err}")))?;
    let mut builder = Builder::default();
    // A cell costs at least a few bytes of text; a range larger than that is refused.
    let max_cells = usize::try_from(limits.max_extracted_bytes / 2).unwrap_or(usize::MAX);
    for name in workbook.sheet_names() {
        if limits.cancelled() {
            return Err(bad("extraction was cancelled after its time limit".to_owned()));
        }
        let range = workbook
            .worksheet_range(&name)
            .map_err(|err| bad(format!("cannot read sheet {name:?}: {err}")))?;
        let (height, width) = range.get_size();
        if height.saturating_mul(width) > max_cells {
            return Err(limits.too_much(format));
        }
        let rows: Vec<Vec<String>> =
            range.rows().map(|row| row.iter().map(cell_text).collect()).collect();
        push_table(&mut builder, &name, rows);
    }
    Ok(builder.finish())
}

/// A cell as text.
fn cell_text(cell: &Data) -> String {
    if let Data::DateTime(value) = cell
        && value.is_datetime()
    {
        let (year, month, day, hour, minute, second, _) = value.to_ymd_hms_milli();
        if (hour, minute, second) == (0, 0, 0) {
            format!("{year:04}-{month:02}-{day:02}")
        } else {
            format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
        }
    } else {
        cell.to_string()
    }
}

/// Appends a table under the heading `title`, without its empty rows and right-hand empty
/// columns; nothing for a table without text.
fn push_table(builder: &mut Builder, title: &str, rows: Vec<Vec<String>>) {
    let mut rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(|cell| normalize(cell.trim())).collect::<Vec<_>>())
        .filter(|row| row.iter().any(|cell| !cell.is_empty()))
        .collect();
    let width = rows
        .iter()
        .map(|row| row.iter().rposition(|cell| !cell.is_empty()).map_or(0, |last| last + 1))
        .max()
        .unwrap_or(0);
    for row in &mut rows {
        row.truncate(width);
    }
    let table = markdown_table(&rows);
    if table.is_empty() {
        return;
    }
    let title = title.trim();
    if !title.is_empty() {
        let start = builder.push_block(title);
        builder.heading(1, title, start);
    }
    builder.push_block(&table);
}

/// Extracts a CSV (or TSV) file as one Markdown table.
///
/// # Errors
/// [`Error::Extraction`] when the file is larger than the limits or a record cannot be
/// read.
pub(crate) fn extract_csv(bytes: &[u8], limits: &ExtractLimits) -> Result<Extracted> {
    let bad = |reason: String| Error::Extraction { format: "csv", reason };
    if bytes.len() as u64 > limits.max_extracted_bytes {
        return Err(limits.too_much("csv"));
    }
    let text = decode_text(bytes);
    let delimiter = guess_delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        if index % 4096 == 0 && limits.cancelled() {
            return Err(bad("extraction was cancelled after its time limit".to_owned()));
        }
        let record = record.map_err(|err| bad(format!("unreadable record: {err}")))?;
        rows.push(record.iter().map(str::to_owned).collect());
    }
    let mut builder = Builder::default();
    push_table(&mut builder, "", rows);
    Ok(builder.finish())
}

/// The delimiter among `,` `;` tab `|` that splits the first records of `text` (quotes
/// respected, so a quoted line break stays inside its field) into the most fields, the same
/// number in nine records of ten; `,` when none splits them into more than one.
fn guess_delimiter(text: &str) -> u8 {
    let mut best = (b',', 1);
    for delimiter in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes())
            .records()
            .take(SNIFF_RECORDS)
            .map_while(std::result::Result::ok)
            .map(|record| record.len())
            .collect();
        let Some(&first) = counts.first() else { continue };
        let same = counts.iter().filter(|&&count| count == first).count();
        if first > best.1 && same * 10 >= counts.len() * 9 {
            best = (delimiter, first);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_guessed_from_consistent_columns() {
        assert_eq!(guess_delimiter("a,b,c\n1,2,3\n"), b',');
        assert_eq!(guess_delimiter("a;b\n\"1,5\";2\n"), b';');
        assert_eq!(guess_delimiter("a\tb\n1\t2\n"), b'\t');
        assert_eq!(guess_delimiter("just words\nmore words\n"), b',');
        // A quoted line break does not make a record of its own.
        assert_eq!(guess_delimiter("a;b;c\n\"x,1\";\"two\nlines\";3\n"), b';');
    }

    #[test]
    fn csv_becomes_one_table() {
        let csv = "name,price\n\"Tea, green\",3\n\n,\nScone,2.5\n";
        let extracted = extract_csv(csv.as_bytes(), &ExtractLimits::default()).unwrap();
        assert_eq!(
            extracted.text,
            "| name | price |\n| --- | --- |\n| Tea, green | 3 |\n| Scone | 2.5 |"
        );
        assert!(extracted.headings.is_empty());
    }
}
