//! Documents in Postgres: inserting with deduplication, reading, listing, status updates
//! and deletion, with the rules (validation, errors, ordering) of SQLite's `documents.rs`.

use chrono::Utc;
use postgres::{GenericClient, IsolationLevel, error::SqlState, types::ToSql};
use ragd_core::{Document, DocumentId, DocumentStatus};

use crate::{
    catalog::Page,
    documents::{
        DocumentQuery, InsertOutcome, NewDocument, check_progress, content_taken, escape_like,
        normalize_sha256, replace_refused, requeue_refused, warnings_to_sql,
    },
    error::{Error, Result},
    pg::{
        PostgresCatalog, count,
        metadata::{SqlParams, attach, filter_sql, write_metadata},
    },
    rows::{DOCUMENT_COLUMNS, DocumentRow, id_to_sql, int_to_sql, status_to_sql, time_to_sql},
};

/// ASCII letters for `translate`, which folds ASCII case only, as SQLite's `LIKE` does
/// (`lower`/`ILIKE` would fold other letters too, by the database's locale).
const ASCII_UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The lowercase of [`ASCII_UPPER`], letter for letter.
const ASCII_LOWER: &str = "abcdefghijklmnopqrstuvwxyz";

/// Runs a document query and converts every row, metadata included.
pub(crate) fn collect_documents(
    client: &mut impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Document>> {
    let mut documents = client
        .query(sql, params)?
        .iter()
        .map(|row| DocumentRow::read_pg(row)?.into_document())
        .collect::<Result<Vec<_>>>()?;
    attach(client, &mut documents)?;
    Ok(documents)
}

/// Reads one document (with its metadata) by a column value, if it exists.
fn select_document_by(
    client: &mut impl GenericClient,
    column: &str,
    value: &str,
) -> Result<Option<Document>> {
    let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM documents WHERE {column} = $1");
    Ok(collect_documents(client, &sql, &[&value])?.into_iter().next())
}

/// Reads one document with its metadata.
pub(crate) fn read_document(client: &mut impl GenericClient, id: DocumentId) -> Result<Document> {
    select_document_by(client, "id", &id_to_sql(id))?
        .ok_or_else(|| Error::not_found("document", id))
}

impl PostgresCatalog {
    /// Stores a new upload as `queued` with progress 0, unless a document with the same
    /// sha256 exists, in which case that one is returned untouched.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed sha256 or a size over `i64::MAX`;
    /// [`Error::Postgres`] (kind `Conflict`) when the id is already used by another document.
    pub(crate) fn insert_document(&self, new: NewDocument) -> Result<InsertOutcome> {
        self.insert_document_with_metadata(new, &ragd_core::Metadata::new())
    }

    /// [`PostgresCatalog::insert_document`], giving a new document `metadata` in the same
    /// transaction; an existing document's metadata is left as it is.
    ///
    /// Two replicas storing the same bytes at once race on the sha256 unique index: the
    /// second insert waits for the first to commit, then does nothing and reads the first's
    /// document.
    ///
    /// # Errors
    ///
    /// As [`PostgresCatalog::insert_document`]; [`Error::InvalidInput`] for more than
    /// [`ragd_core::MAX_METADATA_KEYS`] keys (nothing is stored then).
    pub(crate) fn insert_document_with_metadata(
        &self,
        new: NewDocument,
        metadata: &ragd_core::Metadata,
    ) -> Result<InsertOutcome> {
        let sha256 = normalize_sha256(&new.sha256)?;
        let bytes = int_to_sql(new.bytes, "document size")?;
        let now = time_to_sql(Utc::now());
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO documents \
                 (id, filename, mime, sha256, bytes, status, progress, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, $7) \
             ON CONFLICT (sha256) DO NOTHING",
            &[
                &id_to_sql(new.id),
                &new.filename,
                &new.mime,
                &sha256,
                &bytes,
                &status_to_sql(DocumentStatus::Queued),
                &now,
            ],
        )?;
        if inserted > 0 && !metadata.is_empty() {
            write_metadata(&mut tx, new.id, metadata, &[])?;
        }
        let document = select_document_by(&mut tx, "sha256", &sha256)?
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
        read_document(&mut *self.client()?, id)
    }

    /// Lists documents matching `query`, newest first, with the total number of matches.
    ///
    /// The total and the page are read in one repeatable-read transaction, so they come
    /// from the same snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn list_documents(&self, query: &DocumentQuery) -> Result<Page<Document>> {
        let mut params = SqlParams::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(status) = query.status {
            clauses.push(format!("status = {}", params.push(status_to_sql(status).to_owned())));
        }
        if let Some(mime) = &query.mime {
            clauses.push(format!("mime = {}", params.push(mime.clone())));
        }
        if let Some(part) = &query.filename_contains {
            // SQLite's LIKE: literal text, ASCII letters in either case, others exactly.
            let pattern = params.push(format!("%{}%", escape_like(&part.to_ascii_lowercase())));
            clauses.push(format!(
                r"translate(filename, '{ASCII_UPPER}', '{ASCII_LOWER}') LIKE {pattern} ESCAPE E'\\'"
            ));
        }
        if let Some(collection) = query.collection {
            clauses.push(format!(
                "id IN (SELECT document_id FROM collection_documents WHERE collection_id = {})",
                params.push(id_to_sql(collection))
            ));
        }
        if let Some(collections) = &query.in_any_collection {
            let ids: Vec<String> = collections.iter().map(id_to_sql).collect();
            clauses.push(format!(
                "id IN (SELECT document_id FROM collection_documents \
                 WHERE collection_id = ANY({}))",
                params.push(ids)
            ));
        }
        clauses.extend(filter_sql(&query.metadata, &mut params));
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };

        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let total: i64 = tx
            .query_one(&format!("SELECT count(*) FROM documents{filter}"), &params.refs())?
            .try_get(0)?;
        let limit = params.push(i64::from(query.limit));
        let offset = params.push(i64::from(query.offset));
        let items = collect_documents(
            &mut tx,
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents{filter} \
                 ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
            ),
            &params.refs(),
        )?;
        tx.commit()?;
        Ok(Page { items, total: count(total) })
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
        let updated = self.client()?.execute(
            "UPDATE documents SET status = $1, progress = $2, error = $3, updated_at = $4 \
             WHERE id = $5",
            &[
                &status_to_sql(status),
                &i64::from(progress),
                &error,
                &time_to_sql(Utc::now()),
                &id_to_sql(id),
            ],
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
        let updated = self.client()?.execute(
            "UPDATE documents SET warnings = $1 WHERE id = $2",
            &[&json, &id_to_sql(id)],
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
        let updated = self.client()?.execute(
            "UPDATE documents SET status = $1, progress = 0, error = NULL, updated_at = $2 \
             WHERE id = $3 AND status IN ($4, $5)",
            &[
                &status_to_sql(DocumentStatus::Queued),
                &time_to_sql(Utc::now()),
                &id_to_sql(id),
                &status_to_sql(DocumentStatus::Ready),
                &status_to_sql(DocumentStatus::Failed),
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
    /// The document's row is locked first, so its status cannot change under the check.
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
        let document_id = id_to_sql(id);
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        if tx
            .query_opt("SELECT 1 FROM documents WHERE id = $1 FOR UPDATE", &[&document_id])?
            .is_none()
        {
            return Err(Error::not_found("document", id));
        }
        let before = read_document(&mut tx, id)?;
        if !before.status.is_terminal() {
            return Err(replace_refused(id));
        }
        if let Some(other) = select_document_by(&mut tx, "sha256", &sha256)?
            && other.id != id
        {
            return Err(content_taken(&other));
        }
        tx.execute(
            "UPDATE documents SET filename = $1, mime = $2, sha256 = $3, bytes = $4, status = $5, \
                 progress = 0, error = NULL, updated_at = $6 WHERE id = $7",
            &[
                &new.filename,
                &new.mime,
                &sha256,
                &bytes,
                &status_to_sql(DocumentStatus::Queued),
                &time_to_sql(Utc::now()),
                &document_id,
            ],
        )
        .map_err(|err| {
            if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                // Another replica stored the same bytes after the check above.
                Error::InUse {
                    what: "this content".to_owned(),
                    by: "another document holds the same bytes".to_owned(),
                }
            } else {
                Error::from(err)
            }
        })?;
        tx.commit()?;
        Ok(before)
    }

    /// Deletes a document with its text, chunks and full-text entries.
    ///
    /// Returns `false` when no document had this id.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the delete fails.
    pub(crate) fn delete_document(&self, id: DocumentId) -> Result<bool> {
        // Text, chunks (with their generated `tsvector`s), metadata and links go by
        // `ON DELETE CASCADE`.
        let deleted =
            self.client()?.execute("DELETE FROM documents WHERE id = $1", &[&id_to_sql(id)])?;
        Ok(deleted > 0)
    }

    /// Every document in one of `statuses`, oldest first, for resuming work after a
    /// restart. An empty slice returns nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails, [`Error::Corrupt`] for an unreadable row.
    pub(crate) fn documents_with_status(
        &self,
        statuses: &[DocumentStatus],
    ) -> Result<Vec<Document>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = statuses.iter().map(|status| status_to_sql(*status)).collect();
        collect_documents(
            &mut *self.client()?,
            &format!(
                "SELECT {DOCUMENT_COLUMNS} FROM documents \
                 WHERE status = ANY($1) ORDER BY created_at, id"
            ),
            &[&names],
        )
    }
}
