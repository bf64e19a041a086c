//! Documents: inserting with deduplication, reading, listing, status updates and deletion.

use chrono::Utc;
use ragd_core::{CollectionId, Document, DocumentId, DocumentStatus, MetadataFilter};
use rusqlite::{
    Connection, OptionalExtension, TransactionBehavior, params, params_from_iter, types::Value,
};

use crate::{
    catalog::Page,
    error::{Error, Result},
    rows::{DOCUMENT_COLUMNS, DocumentRow, id_to_sql, int_to_sql, status_to_sql, time_to_sql},
    sqlite::SqliteCatalog,
};

/// What [`Catalog::insert_document`] stores for a new upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    /// The id to give the document if it is new.
    pub id: DocumentId,
    /// The file name given at upload.
    pub filename: String,
    /// Detected media type.
    pub mime: String,
    /// Hex sha256 of the uploaded bytes (64 hex digits, either case; stored lowercase).
    pub sha256: String,
    /// Size of the uploaded file.
    pub bytes: u64,
}

/// The result of [`Catalog::insert_document`].
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// The document was new and has been stored as `queued`.
    Created(Document),
    /// A document with the same sha256 was already stored; it is returned untouched and
    /// the new id is not used.
    Existing(Document),
}

impl InsertOutcome {
    /// The stored document, new or existing.
    #[must_use]
    pub const fn document(&self) -> &Document {
        match self {
            Self::Created(document) | Self::Existing(document) => document,
        }
    }

    /// The stored document, new or existing.
    #[must_use]
    pub fn into_document(self) -> Document {
        match self {
            Self::Created(document) | Self::Existing(document) => document,
        }
    }

    /// `true` when the document was new.
    #[must_use]
    pub const fn is_created(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}

/// Filters and paging for [`Catalog::list_documents`]. Filters combine with AND.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentQuery {
    /// Only documents in this state.
    pub status: Option<DocumentStatus>,
    /// Only documents of exactly this media type.
    pub mime: Option<String>,
    /// Only documents whose file name contains this text. It is matched literally
    /// (`%` and `_` are not wildcards) and ASCII letters match either case.
    pub filename_contains: Option<String>,
    /// Only documents in this collection.
    pub collection: Option<CollectionId>,
    /// Only documents in at least one of these collections (`None`: no condition; an empty
    /// list matches nothing).
    pub in_any_collection: Option<Vec<CollectionId>>,
    /// Only documents whose metadata satisfies this filter (empty: no condition).
    pub metadata: MetadataFilter,
    /// Page size.
    pub limit: u32,
    /// How many matches to skip.
    pub offset: u32,
}

impl Default for DocumentQuery {
    /// No filters, the first 50 documents.
    fn default() -> Self {
        Self {
            status: None,
            mime: None,
            filename_contains: None,
            collection: None,
            in_any_collection: None,
            metadata: MetadataFilter::default(),
            limit: 50,
            offset: 0,
        }
    }
}

/// `n` SQL placeholders separated by commas (`?, ?, ?`); empty for 0 (SQLite reads `IN ()`
/// as matching nothing).
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Checks a hex sha256 and returns it lowercased.
pub(crate) fn normalize_sha256(sha256: &str) -> Result<String> {
    if sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(sha256.to_ascii_lowercase())
    } else {
        Err(Error::InvalidInput(format!("sha256 {sha256:?} is not 64 hex digits")))
    }
}

/// Escapes `\`, `%` and `_` so that `text` matches itself in `LIKE ... ESCAPE '\'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for ch in text.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

/// Refuses a progress over 100.
pub(crate) fn check_progress(progress: u8) -> Result<()> {
    if progress > 100 {
        return Err(Error::InvalidInput(format!("progress {progress} is over 100")));
    }
    Ok(())
}

/// A document's warnings as stored: a JSON array of sentences.
pub(crate) fn warnings_to_sql(warnings: &[String]) -> Result<String> {
    serde_json::to_string(warnings)
        .map_err(|err| Error::Corrupt(format!("warnings do not serialize: {err}")))
}

/// Why a document in `status` (not finished) cannot be queued again yet.
pub(crate) fn requeue_refused(id: DocumentId, status: DocumentStatus) -> Error {
    Error::InUse {
        what: format!("document {id}"),
        by: format!("it is still {}; try again once it is ready or failed", status_to_sql(status)),
    }
}

/// Why a document still being processed cannot have its file replaced.
pub(crate) fn replace_refused(id: DocumentId) -> Error {
    Error::InUse {
        what: format!("document {id}"),
        by: "it is still being processed; replace it once it is ready or failed".to_owned(),
    }
}

/// Why a document cannot take content that `other` already holds.
pub(crate) fn content_taken(other: &Document) -> Error {
    Error::InUse {
        what: "this content".to_owned(),
        by: format!("document {} ({}) holds the same bytes", other.id, other.filename),
    }
}

/// Reads one document (with its metadata) by a column value, if it exists.
fn select_document_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Document>> {
    let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE {column} = ?1");
    let Some(document) = conn
        .prepare_cached(&sql)?
        .query_row([value], DocumentRow::read)
        .optional()?
        .map(DocumentRow::into_document)
        .transpose()?
    else {
        return Ok(None);
    };
    let mut documents = [document];
    crate::metadata::attach(conn, &mut documents)?;
    let [document] = documents;
    Ok(Some(document))
}

/// Reads one document with its metadata.
pub(crate) fn read_document(conn: &Connection, id: DocumentId) -> Result<Document> {
    select_document_by(conn, "id", &id_to_sql(id))?.ok_or_else(|| Error::not_found("document", id))
}

/// Runs a document query and converts every row, metadata included.
fn collect_documents(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Document>> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map(params, DocumentRow::read)?;
    let mut documents = rows
        .map(|row| row.map_err(Error::from).and_then(DocumentRow::into_document))
        .collect::<Result<Vec<_>>>()?;
    crate::metadata::attach(conn, &mut documents)?;
    Ok(documents)
}

impl SqliteCatalog {
    /// Stores a new upload as `queued` with progress 0, unless a document with the same
    /// sha256 exists, in which case that one is returned untouched.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed sha256 or a size over `i64::MAX`;
    /// [`Error::Sqlite`] (kind `Conflict`) when the id is already used by another document.
    pub(crate) fn insert_document(&self, new: NewDocument) -> Result<InsertOutcome> {
        self.insert_document_with_metadata(new, &ragd_core::Metadata::new())
    }

    /// [`Catalog::insert_document`], giving a new document `metadata` in the same
    /// transaction (so no crash can leave it stored without them); an existing document's
    /// metadata is left as it is.
    ///
    /// # Errors
    ///
    /// As [`Catalog::insert_document`]; [`Error::InvalidInput`] for more than
    /// [`ragd_core::MAX_METADATA_KEYS`] keys (nothing is stored then).
    pub(crate) fn insert_document_with_metadata(
        &self,
        new: NewDocument,
        metadata: &ragd_core::Metadata,
    ) -> Result<InsertOutcome> {
        let sha256 = normalize_sha256(&new.sha256)?;
        let bytes = int_to_sql(new.bytes, "document size")?;
        let now = time_to_sql(Utc::now());
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO documents \
                 (id, filename, mime, sha256, bytes, status, progress, error, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, NULL, ?7, ?7) \
             ON CONFLICT (sha256) DO NOTHING",
            params![
                id_to_sql(new.id),
                new.filename,
                new.mime,
                sha256,
                bytes,
                status_to_sql(DocumentStatus::Queued),
                now,
            ],
        )?;
        if inserted > 0 && !metadata.is_empty() {
            crate::metadata::write_metadata(&tx, new.id, metadata, &[])?;
        }
        let document = select_document_by(&tx, "sha256", &sha256)?
            .ok_or_else(|| Error::Corrupt(format!("document with sha256 {sha256} vanished")))?;
        tx.commit()?;
        if inserted == 0 {
            tracing::debug!(id = %document.id, "upload deduplicated by sha256");
            Ok(InsertOutcome::Existing(document))
        } else {
            Ok(InsertOutcome::Created(document))
        }
    }

    /// Reads one document.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no document has this id.
    pub(crate) fn get_document(&self, id: DocumentId) -> Result<Document> {
        select_document_by(&self.read(), "id", &id_to_sql(id))?
            .ok_or_else(|| Error::not_found("document", id))
    }

    /// Lists documents matching `query`, newest first, with the total number of matches.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn list_documents(&self, query: &DocumentQuery) -> Result<Page<Document>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(status) = query.status {
            clauses.push("status = ?");
            values.push(Value::Text(status_to_sql(status).to_owned()));
        }
        if let Some(mime) = &query.mime {
            clauses.push("mime = ?");
            values.push(Value::Text(mime.clone()));
        }
        if let Some(part) = &query.filename_contains {
            clauses.push(r"filename LIKE ? ESCAPE '\'");
            values.push(Value::Text(format!("%{}%", escape_like(part))));
        }
        if let Some(collection) = query.collection {
            clauses.push(
                "id IN (SELECT document_id FROM collection_documents WHERE collection_id = ?)",
            );
            values.push(Value::Text(id_to_sql(collection)));
        }
        let any_clause;
        if let Some(collections) = &query.in_any_collection {
            any_clause = format!(
                "id IN (SELECT document_id FROM collection_documents WHERE collection_id IN ({}))",
                placeholders(collections.len())
            );
            clauses.push(&any_clause);
            values.extend(collections.iter().map(|c| Value::Text(id_to_sql(c))));
        }
        let metadata = crate::metadata::filter_sql(&query.metadata, &mut values);
        clauses.extend(metadata.iter().map(String::as_str));
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };

        let mut conn = self.lock();
        // One read transaction, so the total and the page come from the same snapshot.
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row(
            &format!("SELECT count(*) FROM documents{filter}"),
            params_from_iter(values.iter()),
            |row| row.get(0),
        )?;
        values.push(Value::Integer(i64::from(query.limit)));
        values.push(Value::Integer(i64::from(query.offset)));
        let items = collect_documents(
            &tx,
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents{filter} \
                 ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
            ),
            params_from_iter(values.iter()),
        )?;
        tx.commit()?;
        Ok(Page { items, total: total.unsigned_abs() })
    }

    /// Sets a document's state, progress (0 to 100) and error message, and its
    /// `updated_at` to now.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id, [`Error::InvalidInput`] for progress over 100.
    pub(crate) fn set_status(
        &self,
        id: DocumentId,
        status: DocumentStatus,
        progress: u8,
        error: Option<&str>,
    ) -> Result<()> {
        check_progress(progress)?;
        let updated = self.lock().execute(
            "UPDATE documents SET status = ?1, progress = ?2, error = ?3, updated_at = ?4 \
             WHERE id = ?5",
            params![status_to_sql(status), progress, error, time_to_sql(Utc::now()), id_to_sql(id)],
        )?;
        if updated == 0 {
            return Err(Error::not_found("document", id));
        }
        Ok(())
    }

    /// Replaces what the document's last extraction left out (see
    /// [`ragd_core::Document::warnings`]).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    pub(crate) fn set_warnings(&self, id: DocumentId, warnings: &[String]) -> Result<()> {
        let json = warnings_to_sql(warnings)?;
        let updated = self.lock().execute(
            "UPDATE documents SET warnings = ?1 WHERE id = ?2",
            params![json, id_to_sql(id)],
        )?;
        if updated == 0 {
            return Err(Error::not_found("document", id));
        }
        Ok(())
    }

    /// Queues a finished (`ready` or `failed`) document again (progress 0, no error), in
    /// one statement, so two callers cannot both queue it.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while it is being processed.
    pub(crate) fn requeue_finished(&self, id: DocumentId) -> Result<()> {
        let updated = self.lock().execute(
            "UPDATE documents SET status = ?1, progress = 0, error = NULL, updated_at = ?2 \
             WHERE id = ?3 AND status IN (?4, ?5)",
            params![
                status_to_sql(DocumentStatus::Queued),
                time_to_sql(Utc::now()),
                id_to_sql(id),
                status_to_sql(DocumentStatus::Ready),
                status_to_sql(DocumentStatus::Failed),
            ],
        )?;
        if updated == 1 {
            return Ok(());
        }
        let document = self.get_document(id)?;
        Err(requeue_refused(id, document.status))
    }

    /// Points a finished (`ready` or `failed`) document at a new stored file and queues it
    /// again, keeping its id, chunks (until reprocessed), collections and metadata. Returns
    /// the document as it was before.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while it is being processed,
    /// or when another document already holds this content (sha256);
    /// [`Error::InvalidInput`] for a malformed sha256.
    pub(crate) fn replace_document_file(
        &self,
        id: DocumentId,
        new: &NewDocument,
    ) -> Result<Document> {
        let sha256 = normalize_sha256(&new.sha256)?;
        let bytes = int_to_sql(new.bytes, "document size")?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = read_document(&tx, id)?;
        if !before.status.is_terminal() {
            return Err(replace_refused(id));
        }
        if let Some(other) = select_document_by(&tx, "sha256", &sha256)?
            && other.id != id
        {
            return Err(content_taken(&other));
        }
        tx.execute(
            "UPDATE documents SET filename = ?1, mime = ?2, sha256 = ?3, bytes = ?4, status = ?5, \
                 progress = 0, error = NULL, updated_at = ?6 WHERE id = ?7",
            params![
                new.filename,
                new.mime,
                sha256,
                bytes,
                status_to_sql(DocumentStatus::Queued),
                time_to_sql(Utc::now()),
                id_to_sql(id),
            ],
        )?;
        tx.commit()?;
        Ok(before)
    }

    /// Deletes a document with its text, chunks and full-text entries.
    ///
    /// Returns `false` when no document had this id.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the delete fails.
    pub(crate) fn delete_document(&self, id: DocumentId) -> Result<bool> {
        // Text and chunks go by `ON DELETE CASCADE`; the chunk delete trigger removes the
        // full-text entries.
        let deleted =
            self.lock().execute("DELETE FROM documents WHERE id = ?1", [id_to_sql(id)])?;
        Ok(deleted > 0)
    }

    /// Every document in one of `statuses`, oldest first, for resuming work after a
    /// restart. An empty slice returns nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn documents_with_status(
        &self,
        statuses: &[DocumentStatus],
    ) -> Result<Vec<Document>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        // Status names are plain snake_case words, so they need no JSON escaping.
        let names: Vec<String> =
            statuses.iter().map(|status| format!("\"{}\"", status_to_sql(*status))).collect();
        let json = format!("[{}]", names.join(","));
        collect_documents(
            &self.lock(),
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents \
                 WHERE status IN (SELECT value FROM json_each(?1)) \
                 ORDER BY created_at, id"
            ),
            [json],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escaping_covers_wildcards_and_the_escape() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn sha256_is_checked_and_lowercased() {
        let upper = "A".repeat(64);
        assert_eq!(normalize_sha256(&upper).unwrap(), "a".repeat(64));
        assert!(normalize_sha256("abc").is_err());
        assert!(normalize_sha256(&"g".repeat(64)).is_err());
    }
}
