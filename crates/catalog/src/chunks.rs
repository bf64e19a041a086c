//! A document's extracted text and its chunks.

use std::{collections::HashMap, collections::HashSet, ops::Range};

use chrono::Utc;
use ragd_core::{Chunk, ChunkId, DocumentId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{
    catalog::Page,
    error::{Error, Result},
    rows::{CHUNK_COLUMNS, ChunkRow, id_to_sql, int_to_sql, time_to_sql},
    sqlite::SqliteCatalog,
};

/// Checks that `chunks` fit the document `id` and its text of `text_chars` characters.
pub(crate) fn validate_chunks(id: DocumentId, text_chars: usize, chunks: &[Chunk]) -> Result<()> {
    let text_chars = u64::try_from(text_chars).unwrap_or(u64::MAX);
    let mut ids = HashSet::with_capacity(chunks.len());
    let mut ordinals = HashSet::with_capacity(chunks.len());
    for chunk in chunks {
        if chunk.document_id != id {
            return Err(Error::InvalidInput(format!(
                "chunk {} belongs to document {}, not {id}",
                chunk.id, chunk.document_id
            )));
        }
        if !ids.insert(chunk.id) {
            return Err(Error::InvalidInput(format!("chunk id {} is repeated", chunk.id)));
        }
        if !ordinals.insert(chunk.ordinal) {
            return Err(Error::InvalidInput(format!(
                "chunk ordinal {} is repeated",
                chunk.ordinal
            )));
        }
        if chunk.char_start > chunk.char_end || chunk.char_end > text_chars {
            return Err(Error::InvalidInput(format!(
                "chunk {} spans chars {}..{} of a {text_chars}-char text",
                chunk.id, chunk.char_start, chunk.char_end
            )));
        }
    }
    Ok(())
}

/// The part of `text` from char `range.start` (inclusive) to char `range.end` (exclusive).
pub(crate) fn char_slice(text: &str, range: Range<usize>) -> Result<&str> {
    let out_of_range = || {
        Error::InvalidInput(format!(
            "char range {}..{} is outside a text of {} chars",
            range.start,
            range.end,
            text.chars().count()
        ))
    };
    if range.start > range.end {
        return Err(Error::InvalidInput(format!(
            "char range {}..{} ends before it starts",
            range.start, range.end
        )));
    }
    // The byte offset of every char boundary, the end of the text included.
    let mut boundaries =
        text.char_indices().map(|(offset, _)| offset).chain(std::iter::once(text.len()));
    let start = boundaries.nth(range.start).ok_or_else(out_of_range)?;
    let end = match (range.end - range.start).checked_sub(1) {
        None => start,
        Some(skip) => boundaries.nth(skip).ok_or_else(out_of_range)?,
    };
    text.get(start..end).ok_or_else(out_of_range)
}

/// Fails with [`Error::NotFound`] unless the document exists.
fn ensure_document(conn: &Connection, id: DocumentId) -> Result<()> {
    let exists = conn
        .query_row("SELECT 1 FROM documents WHERE id = ?1", [id_to_sql(id)], |_| Ok(()))
        .optional()?;
    exists.ok_or_else(|| Error::not_found("document", id))
}

/// Runs a chunk query and converts every row.
fn collect_chunks(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Chunk>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, ChunkRow::read)?;
    rows.map(|row| row.map_err(Error::from).and_then(ChunkRow::into_chunk)).collect()
}

impl SqliteCatalog {
    /// Removes a document's extracted text and chunks (with their full-text entries), so
    /// that a document that failed keeps nothing searchable from an earlier content.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the delete fails.
    pub(crate) fn clear_document_content(&self, id: DocumentId) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM chunks WHERE document_id = ?1", [id_to_sql(id)])?;
        tx.execute("DELETE FROM document_texts WHERE document_id = ?1", [id_to_sql(id)])?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a document's extracted text and chunks, replacing any earlier ones, in one
    /// transaction. Used for the first ingest and for reindexing.
    ///
    /// Every chunk must belong to `id`, ids and ordinals must be unique, and
    /// `char_start..char_end` must lie within `text` (counted in chars).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document, [`Error::InvalidInput`] for chunks that
    /// break the rules above, [`Error::Sqlite`] (kind `Conflict`) when a chunk id is used
    /// by another document. Nothing is changed on error.
    pub(crate) fn replace_chunks(
        &self,
        id: DocumentId,
        text: &str,
        chunks: &[Chunk],
    ) -> Result<()> {
        self.write_chunks(id, None, text, chunks).map(drop)
    }

    /// [`Self::replace_chunks`] when `owner` holds the document's work lease (see
    /// `crate::leases`), checked in the same transaction; `false`, with nothing changed,
    /// when another owner or none holds it.
    pub(crate) fn replace_chunks_leased(
        &self,
        id: DocumentId,
        owner: &str,
        text: &str,
        chunks: &[Chunk],
    ) -> Result<bool> {
        self.write_chunks(id, Some(owner), text, chunks)
    }

    /// Replaces the text and chunks, when `owner` is given only while it holds the lease.
    fn write_chunks(
        &self,
        id: DocumentId,
        owner: Option<&str>,
        text: &str,
        chunks: &[Chunk],
    ) -> Result<bool> {
        validate_chunks(id, text.chars().count(), chunks)?;
        let document_id = id_to_sql(id);
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder: Option<String> = tx
            .query_row("SELECT lease_owner FROM documents WHERE id = ?1", [&document_id], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::not_found("document", id))?;
        if let Some(owner) = owner
            && holder.as_deref() != Some(owner)
        {
            return Ok(false);
        }
        tx.execute("DELETE FROM chunks WHERE document_id = ?1", [&document_id])?;
        tx.execute(
            "INSERT INTO document_texts (document_id, text) VALUES (?1, ?2) \
             ON CONFLICT (document_id) DO UPDATE SET text = excluded.text",
            params![document_id, text],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO chunks (id, document_id, ordinal, text, char_start, char_end, \
                     token_count, page, heading) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for chunk in chunks {
                insert.execute(params![
                    id_to_sql(chunk.id),
                    document_id,
                    chunk.ordinal,
                    chunk.text,
                    int_to_sql(chunk.char_start, "char_start")?,
                    int_to_sql(chunk.char_end, "char_end")?,
                    chunk.token_count,
                    chunk.page,
                    chunk.heading,
                ])?;
            }
        }
        tx.execute(
            "UPDATE documents SET updated_at = ?1 WHERE id = ?2",
            params![time_to_sql(Utc::now()), document_id],
        )?;
        tx.commit()?;
        tracing::debug!(document = %id, chunks = chunks.len(), "stored document text and chunks");
        Ok(true)
    }

    /// A document's extracted text, whole or the chars in `range`.
    ///
    /// `range` counts Unicode scalar values (Rust `char`s), not bytes, and is end-exclusive.
    /// It is not clamped: a range that ends before it starts or past the end of the text is
    /// refused.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] with `what == "document"` for an unknown document and with
    /// `what == "document text"` when no text is stored yet; [`Error::InvalidInput`] for a
    /// bad range.
    pub(crate) fn document_text(
        &self,
        id: DocumentId,
        range: Option<Range<usize>>,
    ) -> Result<String> {
        let stored: Option<Option<String>> = self
            .lock()
            .query_row(
                "SELECT t.text FROM documents d \
                 LEFT JOIN document_texts t ON t.document_id = d.id WHERE d.id = ?1",
                [id_to_sql(id)],
                |row| row.get(0),
            )
            .optional()?;
        let text = stored
            .ok_or_else(|| Error::not_found("document", id))?
            .ok_or_else(|| Error::not_found("document text", id))?;
        match range {
            None => Ok(text),
            Some(range) => char_slice(&text, range).map(str::to_owned),
        }
    }

    /// A page of a document's chunks in ordinal order, with the document's chunk count.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document.
    pub(crate) fn list_chunks(
        &self,
        id: DocumentId,
        limit: u32,
        offset: u32,
    ) -> Result<Page<Chunk>> {
        let document_id = id_to_sql(id);
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        ensure_document(&tx, id)?;
        let total: i64 = tx.query_row(
            "SELECT count(*) FROM chunks WHERE document_id = ?1",
            [&document_id],
            |row| row.get(0),
        )?;
        let items = collect_chunks(
            &tx,
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.document_id = ?1 \
                 ORDER BY c.ordinal LIMIT ?2 OFFSET ?3"
            ),
            params![document_id, limit, offset],
        )?;
        tx.commit()?;
        Ok(Page { items, total: total.unsigned_abs() })
    }

    /// Reads one chunk.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no chunk has this id.
    pub(crate) fn get_chunk(&self, id: ChunkId) -> Result<Chunk> {
        collect_chunks(
            &self.lock(),
            &format!("SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.id = ?1"),
            [id_to_sql(id)],
        )?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found("chunk", id))
    }

    /// Reads the chunks with the given ids, in the order given, skipping ids that are not
    /// stored (for hydrating vector search hits). A repeated id is returned each time.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Hyphenated UUIDs need no JSON escaping.
        let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
        let json = format!("[{}]", quoted.join(","));
        let found = collect_chunks(
            &self.read(),
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunks c \
                 WHERE c.id IN (SELECT value FROM json_each(?1))"
            ),
            [json],
        )?;
        let by_id: HashMap<ChunkId, Chunk> =
            found.into_iter().map(|chunk| (chunk.id, chunk)).collect();
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_slice_counts_chars_not_bytes() {
        let text = "héllo wörld 🌍!";
        assert_eq!(char_slice(text, 0..5).unwrap(), "héllo");
        assert_eq!(char_slice(text, 6..11).unwrap(), "wörld");
        assert_eq!(char_slice(text, 12..13).unwrap(), "🌍");
        assert_eq!(char_slice(text, 14..14).unwrap(), "");
        assert_eq!(char_slice(text, 0..14).unwrap(), text);
        assert_eq!(char_slice(text, 3..3).unwrap(), "");
        assert!(char_slice(text, 0..15).is_err());
        assert!(char_slice(text, 15..15).is_err());
        #[allow(clippy::reversed_empty_ranges)] // A backwards range must be refused.
        let backwards = 5..4;
        assert!(char_slice(text, backwards).is_err());
    }
}
