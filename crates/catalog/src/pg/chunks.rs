//! A document's extracted text and its chunks in Postgres, with the rules of SQLite's
//! `chunks.rs` (its validation and char slicing are shared).
//!
//! Chunks are written with one `INSERT ... SELECT FROM UNNEST(...)` per batch of
//! [`INSERT_BATCH`] chunks, their columns sent as arrays, rather than one round trip per
//! chunk; the full-text `tsvector` of each chunk is a generated column.

use std::{collections::HashMap, ops::Range};

use chrono::Utc;
use postgres::{GenericClient, IsolationLevel, types::ToSql};
use ragd_core::{Chunk, ChunkId, DocumentId};

use crate::{
    catalog::Page,
    chunks::{char_slice, validate_chunks},
    error::{Error, Result},
    pg::{PostgresCatalog, count},
    rows::{CHUNK_COLUMNS, ChunkRow, id_to_sql, int_to_sql, time_to_sql},
};

/// How many chunks one `INSERT` statement writes.
const INSERT_BATCH: usize = 1000;

/// Fails with [`Error::NotFound`] unless the document exists.
fn ensure_document(client: &mut impl GenericClient, id: DocumentId) -> Result<()> {
    let sql = "SELECT 1 FROM documents WHERE id = $1";
    if client.query_opt(sql, &[&id_to_sql(id)])?.is_none() {
        return Err(Error::not_found("document", id));
    }
    Ok(())
}

/// Runs a chunk query and converts every row.
fn collect_chunks(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Chunk>> {
    client.query(sql, params)?.iter().map(|row| ChunkRow::read_pg(row)?.into_chunk()).collect()
}

/// Inserts `chunks` of the document `document_id` with one statement.
fn insert_chunks(
    client: &mut impl GenericClient,
    document_id: &str,
    chunks: &[Chunk],
) -> Result<()> {
    let mut ids = Vec::with_capacity(chunks.len());
    let mut ordinals = Vec::with_capacity(chunks.len());
    let mut texts: Vec<&str> = Vec::with_capacity(chunks.len());
    let mut starts = Vec::with_capacity(chunks.len());
    let mut ends = Vec::with_capacity(chunks.len());
    let mut token_counts = Vec::with_capacity(chunks.len());
    let mut pages: Vec<Option<i64>> = Vec::with_capacity(chunks.len());
    let mut headings: Vec<Option<&str>> = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        ids.push(id_to_sql(chunk.id));
        ordinals.push(i64::from(chunk.ordinal));
        texts.push(chunk.text.as_str());
        starts.push(int_to_sql(chunk.char_start, "char_start")?);
        ends.push(int_to_sql(chunk.char_end, "char_end")?);
        token_counts.push(i64::from(chunk.token_count));
        pages.push(chunk.page.map(i64::from));
        headings.push(chunk.heading.as_deref());
    }
    client.execute(
        "INSERT INTO chunks (id, document_id, ordinal, text, char_start, char_end, \
             token_count, page, heading) \
         SELECT c.id, $1::text, c.ordinal, c.text, c.char_start, c.char_end, c.token_count, \
             c.page, c.heading \
         FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], \
             $7::bigint[], $8::bigint[], $9::text[]) \
             AS c (id, ordinal, text, char_start, char_end, token_count, page, heading)",
        &[&document_id, &ids, &ordinals, &texts, &starts, &ends, &token_counts, &pages, &headings],
    )?;
    Ok(())
}

impl PostgresCatalog {
    /// Removes a document's extracted text and chunks (with their full-text entries), so
    /// that a document that failed keeps nothing searchable from an earlier content.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the delete fails.
    pub(crate) fn clear_document_content(&self, id: DocumentId) -> Result<()> {
        let document_id = id_to_sql(id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // Wait for a `replace_chunks` of this document in progress, so both deletes see
        // what it wrote (an unknown document has nothing to clear).
        tx.query_opt("SELECT 1 FROM documents WHERE id = $1 FOR NO KEY UPDATE", &[&document_id])?;
        tx.execute("DELETE FROM chunks WHERE document_id = $1", &[&document_id])?;
        tx.execute("DELETE FROM document_texts WHERE document_id = $1", &[&document_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a document's extracted text and chunks, replacing any earlier ones, in one
    /// transaction. Used for the first ingest and for reindexing.
    ///
    /// Every chunk must belong to `id`, ids and ordinals must be unique, and
    /// `char_start..char_end` must lie within `text` (counted in chars). The document's row
    /// is locked first, so two replacements of one document take turns.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document, [`Error::InvalidInput`] for chunks that
    /// break the rules above, [`Error::Postgres`] (kind `Conflict`) when a chunk id is used
    /// by another document. Nothing is changed on error.
    pub(crate) fn replace_chunks(
        &self,
        id: DocumentId,
        text: &str,
        chunks: &[Chunk],
    ) -> Result<()> {
        self.write_chunks(id, None, text, chunks).map(drop)
    }

    /// [`Self::replace_chunks`] when `owner` holds the document's work lease, checked
    /// under the row's lock; `false`, with nothing changed, when another owner or none
    /// holds it.
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
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let row = tx
            .query_opt(
                "SELECT lease_owner FROM documents WHERE id = $1 FOR NO KEY UPDATE",
                &[&document_id],
            )?
            .ok_or_else(|| Error::not_found("document", id))?;
        let holder: Option<String> = row.try_get(0)?;
        if let Some(owner) = owner
            && holder.as_deref() != Some(owner)
        {
            return Ok(false);
        }
        tx.execute("DELETE FROM chunks WHERE document_id = $1", &[&document_id])?;
        tx.execute(
            "INSERT INTO document_texts (document_id, text) VALUES ($1, $2) \
             ON CONFLICT (document_id) DO UPDATE SET text = excluded.text",
            &[&document_id, &text],
        )?;
        for batch in chunks.chunks(INSERT_BATCH) {
            insert_chunks(&mut tx, &document_id, batch)?;
        }
        tx.execute(
            "UPDATE documents SET updated_at = $1 WHERE id = $2",
            &[&time_to_sql(Utc::now()), &document_id],
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
        let row = self.client()?.query_opt(
            "SELECT t.text FROM documents d \
             LEFT JOIN document_texts t ON t.document_id = d.id WHERE d.id = $1",
            &[&id_to_sql(id)],
        )?;
        let stored: Option<String> =
            row.ok_or_else(|| Error::not_found("document", id))?.try_get(0)?;
        let text = stored.ok_or_else(|| Error::not_found("document text", id))?;
        match range {
            None => Ok(text),
            Some(range) => char_slice(&text, range).map(str::to_owned),
        }
    }

    /// A page of a document's chunks in ordinal order, with the document's chunk count.
    ///
    /// The count and the page are read in one repeatable-read transaction, so they come
    /// from the same snapshot.
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
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        ensure_document(&mut tx, id)?;
        let total: i64 = tx
            .query_one("SELECT count(*) FROM chunks WHERE document_id = $1", &[&document_id])?
            .try_get(0)?;
        let items = collect_chunks(
            &mut tx,
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.document_id = $1 \
                 ORDER BY c.ordinal LIMIT $2 OFFSET $3"
            ),
            &[&document_id, &i64::from(limit), &i64::from(offset)],
        )?;
        tx.commit()?;
        Ok(Page { items, total: count(total) })
    }

    /// Reads one chunk.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no chunk has this id.
    pub(crate) fn get_chunk(&self, id: ChunkId) -> Result<Chunk> {
        collect_chunks(
            &mut *self.client()?,
            &format!("SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.id = $1"),
            &[&id_to_sql(id)],
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
    /// [`Error::Postgres`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn get_chunks(&self, ids: &[ChunkId]) -> Result<Vec<Chunk>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(id_to_sql).collect();
        let found = collect_chunks(
            &mut *self.client()?,
            &format!("SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.id = ANY($1)"),
            &[&keys],
        )?;
        let by_id: HashMap<ChunkId, Chunk> =
            found.into_iter().map(|chunk| (chunk.id, chunk)).collect();
        Ok(ids.iter().filter_map(|id| by_id.get(id).cloned()).collect())
    }
}
