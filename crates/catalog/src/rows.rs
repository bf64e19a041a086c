//! Conversions between stored rows (SQLite's and Postgres') and the domain types.
//!
//! Rows are first read into plain structs of SQL types, then converted with checks, so a
//! malformed stored value becomes [`Error::Corrupt`] instead of a panic.

use std::{fmt::Display, str::FromStr};

use chrono::{DateTime, SecondsFormat, Utc};
use ragd_core::{Chunk, Document, DocumentStatus};
use rusqlite::Row;

use crate::error::{Error, Result};

/// The document columns of a query on `documents` (not aliased), in the order
/// [`DocumentRow::read`] expects; the chunk count is read from the `(document_id, ordinal)`
/// index.
pub(crate) const DOCUMENT_COLUMNS: &str = "id, filename, mime, sha256, bytes, status, progress, error, created_at, updated_at, warnings, \
     (SELECT count(*) FROM chunks WHERE chunks.document_id = documents.id)";

/// The chunk columns of a table aliased `c`, in the order [`ChunkRow::read`] expects.
pub(crate) const CHUNK_COLUMNS: &str = "c.id, c.document_id, c.ordinal, c.text, c.char_start, \
     c.char_end, c.token_count, c.page, c.heading";

/// The number of columns in [`CHUNK_COLUMNS`].
pub(crate) const CHUNK_COLUMN_COUNT: usize = 9;

/// The stored name of a status: its `snake_case` name, as `ragd_core` serializes it.
pub(crate) const fn status_to_sql(status: DocumentStatus) -> &'static str {
    match status {
        DocumentStatus::Queued => "queued",
        DocumentStatus::Extracting => "extracting",
        DocumentStatus::Chunking => "chunking",
        DocumentStatus::Embedding => "embedding",
        DocumentStatus::Ready => "ready",
        DocumentStatus::Failed => "failed",
    }
}

/// Every status, for reverse lookup.
const STATUSES: [DocumentStatus; 6] = [
    DocumentStatus::Queued,
    DocumentStatus::Extracting,
    DocumentStatus::Chunking,
    DocumentStatus::Embedding,
    DocumentStatus::Ready,
    DocumentStatus::Failed,
];

/// Parses a stored status name; an unknown name means the data is corrupt.
pub(crate) fn status_from_sql(text: &str) -> Result<DocumentStatus> {
    STATUSES
        .into_iter()
        .find(|status| status_to_sql(*status) == text)
        .ok_or_else(|| Error::Corrupt(format!("unknown document status {text:?}")))
}

/// Formats a time for storage: RFC 3339 in UTC with nanoseconds, fixed width, so the text
/// sorts in time order.
pub(crate) fn time_to_sql(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a stored RFC 3339 time.
pub(crate) fn time_from_sql(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|err| {
        Error::CorruptValue { what: format!("timestamp {text:?}"), source: err.into() }
    })
}

/// Formats an id for storage (a hyphenated lowercase UUID).
pub(crate) fn id_to_sql(id: impl Display) -> String {
    id.to_string()
}

/// Parses a stored id.
pub(crate) fn id_from_sql<T>(text: &str) -> Result<T>
where
    T: FromStr<Err = ragd_core::IdParseError>,
{
    text.parse().map_err(|err: ragd_core::IdParseError| Error::CorruptValue {
        what: format!("id {text:?}"),
        source: err.into(),
    })
}

/// Parses a stored id as a plain UUID (for sets of ids of any kind).
pub(crate) fn uuid_from_sql(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text)
        .map_err(|err| Error::CorruptValue { what: format!("id {text:?}"), source: err.into() })
}

/// Converts a stored integer to a narrower or unsigned type.
fn int_from_sql<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::Corrupt(format!("{column} {value} is out of range")))
}

/// Converts an unsigned value to a SQLite integer, refusing what does not fit.
pub(crate) fn int_to_sql(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::InvalidInput(format!("{what} {value} is too large to store")))
}

/// A `documents` row as stored.
#[derive(Debug)]
pub(crate) struct DocumentRow {
    id: String,
    filename: String,
    mime: String,
    sha256: String,
    bytes: i64,
    status: String,
    progress: i64,
    error: Option<String>,
    created_at: String,
    updated_at: String,
    /// A JSON array of sentences.
    warnings: String,
    chunk_count: i64,
}

impl DocumentRow {
    /// Reads the [`DOCUMENT_COLUMNS`] of a row.
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            filename: row.get(1)?,
            mime: row.get(2)?,
            sha256: row.get(3)?,
            bytes: row.get(4)?,
            status: row.get(5)?,
            progress: row.get(6)?,
            error: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
            warnings: row.get(10)?,
            chunk_count: row.get(11)?,
        })
    }

    /// Reads the [`DOCUMENT_COLUMNS`] of a Postgres row.
    pub(crate) fn read_pg(row: &postgres::Row) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            filename: row.try_get(1)?,
            mime: row.try_get(2)?,
            sha256: row.try_get(3)?,
            bytes: row.try_get(4)?,
            status: row.try_get(5)?,
            progress: row.try_get(6)?,
            error: row.try_get(7)?,
            created_at: row.try_get(8)?,
            updated_at: row.try_get(9)?,
            warnings: row.try_get(10)?,
            chunk_count: row.try_get(11)?,
        })
    }

    /// Converts to the domain type, checking every value.
    pub(crate) fn into_document(self) -> Result<Document> {
        Ok(Document {
            id: id_from_sql(&self.id)?,
            filename: self.filename,
            mime: self.mime,
            sha256: self.sha256,
            bytes: int_from_sql(self.bytes, "bytes")?,
            status: status_from_sql(&self.status)?,
            progress: int_from_sql(self.progress, "progress")?,
            error: self.error,
            created_at: time_from_sql(&self.created_at)?,
            updated_at: time_from_sql(&self.updated_at)?,
            warnings: serde_json::from_str(&self.warnings).map_err(|err| Error::CorruptValue {
                what: format!("documents.warnings {:?}", self.warnings),
                source: err.into(),
            })?,
            chunk_count: int_from_sql(self.chunk_count, "chunk count")?,
            // Filled in by the reader (`metadata::attach`), which holds the connection.
            metadata: ragd_core::Metadata::new(),
        })
    }
}

/// A `chunks` row as stored.
#[derive(Debug)]
pub(crate) struct ChunkRow {
    id: String,
    document_id: String,
    ordinal: i64,
    text: String,
    char_start: i64,
    char_end: i64,
    token_count: i64,
    page: Option<i64>,
    heading: Option<String>,
}

impl ChunkRow {
    /// Reads the [`CHUNK_COLUMNS`] at the start of a row.
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            document_id: row.get(1)?,
            ordinal: row.get(2)?,
            text: row.get(3)?,
            char_start: row.get(4)?,
            char_end: row.get(5)?,
            token_count: row.get(6)?,
            page: row.get(7)?,
            heading: row.get(8)?,
        })
    }

    /// Reads the [`CHUNK_COLUMNS`] at the start of a Postgres row.
    pub(crate) fn read_pg(row: &postgres::Row) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            document_id: row.try_get(1)?,
            ordinal: row.try_get(2)?,
            text: row.try_get(3)?,
            char_start: row.try_get(4)?,
            char_end: row.try_get(5)?,
            token_count: row.try_get(6)?,
            page: row.try_get(7)?,
            heading: row.try_get(8)?,
        })
    }

    /// Converts to the domain type, checking every value.
    pub(crate) fn into_chunk(self) -> Result<Chunk> {
        Ok(Chunk {
            id: id_from_sql(&self.id)?,
            document_id: id_from_sql(&self.document_id)?,
            ordinal: int_from_sql(self.ordinal, "ordinal")?,
            text: self.text,
            char_start: int_from_sql(self.char_start, "char_start")?,
            char_end: int_from_sql(self.char_end, "char_end")?,
            token_count: int_from_sql(self.token_count, "token_count")?,
            page: self.page.map(|page| int_from_sql(page, "page")).transpose()?,
            heading: self.heading,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_serde_and_round_trip() {
        for status in STATUSES {
            let name = status_to_sql(status);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{name}\""));
            assert_eq!(status_from_sql(name).unwrap(), status);
        }
        let err = status_from_sql("done").unwrap_err();
        assert_eq!(err.kind(), ragd_core::ErrorKind::Internal);
    }

    #[test]
    fn times_round_trip_and_sort_as_text() {
        let early = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().to_utc();
        let late = DateTime::parse_from_rfc3339("2024-01-01T00:00:00.5Z").unwrap().to_utc();
        assert_eq!(time_from_sql(&time_to_sql(early)).unwrap(), early);
        assert!(time_to_sql(early) < time_to_sql(late));
        assert!(time_from_sql("yesterday").is_err());
    }
}
