//! Collections: named sets of documents. Creating, reading, listing, renaming and deleting
//! them, adding and removing documents, and resolving collections to the documents a search
//! or a session is restricted to.
//!
//! A document may be in several collections. Deleting a document takes it out of every
//! collection (cascade); deleting a collection leaves its documents stored, and is refused
//! while a session's retrieval is restricted to it (the session would otherwise silently
//! search every document).

use std::collections::BTreeSet;

use chrono::Utc;
use ragd_core::{Collection, CollectionId, DocumentId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::rows::{id_from_sql, id_to_sql, time_from_sql, time_to_sql};
use crate::{catalog::Page, sqlite::SqliteCatalog};

/// The longest collection name, in chars.
pub const MAX_COLLECTION_NAME_CHARS: usize = 100;

/// The longest collection description, in chars.
pub const MAX_COLLECTION_DESCRIPTION_CHARS: usize = 2000;

/// The most documents one call may add to or remove from a collection.
pub const MAX_COLLECTION_CHANGE: usize = 1000;

/// What [`Catalog::create_collection`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    /// The id to give the collection.
    pub id: CollectionId,
    /// Its name: 1 to [`MAX_COLLECTION_NAME_CHARS`] chars after trimming, unique regardless
    /// of ASCII case, not a UUID (so a name and an id can never be confused).
    pub name: String,
    /// What it holds, for people.
    pub description: Option<String>,
}

/// Changes for [`Catalog::update_collection`]; `None` changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionUpdate {
    /// A new name (same rules as [`NewCollection::name`]).
    pub name: Option<String>,
    /// A new description; `Some(None)` removes it.
    pub description: Option<Option<String>>,
}

/// Trims and checks a collection name.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput("a collection name must not be empty".to_owned()));
    }
    if name.chars().count() > MAX_COLLECTION_NAME_CHARS {
        return Err(Error::InvalidInput(format!(
            "a collection name must be at most {MAX_COLLECTION_NAME_CHARS} chars"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a collection name must not contain control chars".to_owned(),
        ));
    }
    if name.parse::<CollectionId>().is_ok() {
        return Err(Error::InvalidInput(
            "a collection name must not be a UUID (ids and names are both accepted where a \
             collection is named)"
                .to_owned(),
        ));
    }
    Ok(name.to_owned())
}

/// Trims and checks a description; an empty one is none.
pub(crate) fn normalize_description(description: Option<&str>) -> Result<Option<String>> {
    let Some(text) = description.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_COLLECTION_DESCRIPTION_CHARS {
        return Err(Error::InvalidInput(format!(
            "a collection description must be at most {MAX_COLLECTION_DESCRIPTION_CHARS} chars"
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Fails with [`Error::NameTaken`] when `name` is taken by another collection than `except`.
fn check_name_free(conn: &Connection, name: &str, except: Option<CollectionId>) -> Result<()> {
    let taken: Option<String> = conn
        .query_row("SELECT id FROM collections WHERE name = ?1 COLLATE NOCASE", [name], |row| {
            row.get(0)
        })
        .optional()?;
    match taken {
        Some(id) if except.is_none_or(|except| id_to_sql(except) != id) => Err(name_taken(name)),
        Some(_) | None => Ok(()),
    }
}

/// The error for a name another collection has.
pub(crate) fn name_taken(name: &str) -> Error {
    Error::NameTaken { what: "collection", name: name.to_owned() }
}

/// The error for deleting a collection that `sessions` chat sessions are restricted to.
pub(crate) fn in_use(id: CollectionId, sessions: i64) -> Error {
    Error::InUse {
        what: format!("collection {id}"),
        by: format!("{sessions} chat session(s) restricted to it; take it out of them first"),
    }
}

/// The error for a collection that a transaction wrote and then could not read back.
pub(crate) fn vanished(id: CollectionId) -> Error {
    Error::Corrupt(format!("collection {id} vanished"))
}

/// Fails with [`Error::InvalidInput`] when one call would add or remove more than
/// [`MAX_COLLECTION_CHANGE`] documents.
pub(crate) fn check_change_size(count: usize) -> Result<()> {
    if count > MAX_COLLECTION_CHANGE {
        return Err(Error::InvalidInput(format!(
            "at most {MAX_COLLECTION_CHANGE} documents may be added or removed at once"
        )));
    }
    Ok(())
}

/// The documents to add, each once in id order, checked against [`MAX_COLLECTION_CHANGE`]
/// (after repeats are dropped).
pub(crate) fn unique_documents(ids: &[DocumentId]) -> Result<Vec<DocumentId>> {
    let unique: Vec<DocumentId> =
        ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    check_change_size(unique.len())?;
    Ok(unique)
}

/// The columns of a collection (table aliased `c`) with its document count, in the order
/// [`CollectionRow`] reads them; plain SQL for SQLite and Postgres.
pub(crate) const COLLECTION_COLUMNS: &str = "c.id, c.name, c.description, c.created_at, c.updated_at, \
     (SELECT count(*) FROM collection_documents d WHERE d.collection_id = c.id)";

/// A `collections` row with its document count, as stored.
pub(crate) struct CollectionRow {
    id: String,
    name: String,
    description: Option<String>,
    created_at: String,
    updated_at: String,
    document_count: i64,
}

impl CollectionRow {
    /// Reads the [`COLLECTION_COLUMNS`] of a SQLite row.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
            document_count: row.get(5)?,
        })
    }

    /// Reads the [`COLLECTION_COLUMNS`] of a Postgres row.
    pub(crate) fn read_pg(row: &postgres::Row) -> Result<Self> {
        Ok(Self {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            description: row.try_get(2)?,
            created_at: row.try_get(3)?,
            updated_at: row.try_get(4)?,
            document_count: row.try_get(5)?,
        })
    }

    /// Converts to the domain type, checking every value.
    pub(crate) fn into_collection(self) -> Result<Collection> {
        Ok(Collection {
            id: id_from_sql(&self.id)?,
            name: self.name,
            description: self.description,
            created_at: time_from_sql(&self.created_at)?,
            updated_at: time_from_sql(&self.updated_at)?,
            document_count: self.document_count.unsigned_abs(),
        })
    }
}

/// Reads one collection, if it exists.
fn select_collection(conn: &Connection, id: CollectionId) -> Result<Option<Collection>> {
    conn.query_row(
        &format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = ?1"),
        [id_to_sql(id)],
        CollectionRow::read,
    )
    .optional()?
    .map(CollectionRow::into_collection)
    .transpose()
}

/// Fails with `NotFound` unless the collection exists.
pub(crate) fn require_collection(conn: &Connection, id: CollectionId) -> Result<()> {
    if conn.prepare_cached("SELECT 1 FROM collections WHERE id = ?1")?.exists([id_to_sql(id)])? {
        Ok(())
    } else {
        Err(Error::not_found("collection", id))
    }
}

/// Fails with `NotFound` naming the first document that does not exist; repeats dropped.
fn existing_documents(conn: &Connection, ids: &[DocumentId]) -> Result<Vec<DocumentId>> {
    let unique = unique_documents(ids)?;
    let mut statement = conn.prepare_cached("SELECT 1 FROM documents WHERE id = ?1")?;
    for id in &unique {
        if !statement.exists([id_to_sql(id)])? {
            return Err(Error::not_found("document", id));
        }
    }
    Ok(unique)
}

fn touch(conn: &Connection, id: CollectionId) -> Result<()> {
    conn.execute(
        "UPDATE collections SET updated_at = ?2 WHERE id = ?1",
        params![id_to_sql(id), time_to_sql(Utc::now())],
    )?;
    Ok(())
}

impl SqliteCatalog {
    /// Stores a new, empty collection.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or description, [`Error::NameTaken`] when
    /// another collection has the name.
    pub(crate) fn create_collection(&self, new: NewCollection) -> Result<Collection> {
        let name = normalize_name(&new.name)?;
        let description = normalize_description(new.description.as_deref())?;
        let now = time_to_sql(Utc::now());
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_name_free(&tx, &name, None)?;
        tx.execute(
            "INSERT INTO collections (id, name, description, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id_to_sql(new.id), name, description, now],
        )?;
        let collection = select_collection(&tx, new.id)?.ok_or_else(|| vanished(new.id))?;
        tx.commit()?;
        Ok(collection)
    }

    /// One collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    pub(crate) fn get_collection(&self, id: CollectionId) -> Result<Collection> {
        select_collection(&self.lock(), id)?.ok_or_else(|| Error::not_found("collection", id))
    }

    /// The collection with this id (a UUID) or else this name (ignoring ASCII case).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when neither matches.
    pub(crate) fn find_collection(&self, id_or_name: &str) -> Result<Collection> {
        if let Ok(id) = id_or_name.parse::<CollectionId>() {
            return self.get_collection(id);
        }
        let conn = self.lock();
        conn.query_row(
            &format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c \
                 WHERE c.name = ?1 COLLATE NOCASE"
            ),
            [id_or_name.trim()],
            CollectionRow::read,
        )
        .optional()?
        .map(CollectionRow::into_collection)
        .transpose()?
        .ok_or_else(|| Error::not_found("collection", id_or_name))
    }

    /// A page of collections by name.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn list_collections(&self, limit: u32, offset: u32) -> Result<Page<Collection>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let total: i64 = tx.query_row("SELECT count(*) FROM collections", [], |row| row.get(0))?;
        let items = {
            let mut statement = tx.prepare(&format!(
                "SELECT {COLLECTION_COLUMNS} FROM collections c \
                 ORDER BY c.name COLLATE NOCASE, c.id LIMIT ?1 OFFSET ?2"
            ))?;
            let rows = statement.query_map(params![limit, offset], CollectionRow::read)?;
            rows.map(|row| row?.into_collection()).collect::<Result<Vec<_>>>()?
        };
        tx.commit()?;
        Ok(Page { items, total: total.unsigned_abs() })
    }

    /// Renames a collection or changes its description.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id, [`Error::InvalidInput`] for a bad name or
    /// description, [`Error::NameTaken`] when another collection has the name.
    pub(crate) fn update_collection(
        &self,
        id: CollectionId,
        update: CollectionUpdate,
    ) -> Result<Collection> {
        let name = update.name.as_deref().map(normalize_name).transpose()?;
        let description = update
            .description
            .as_ref()
            .map(|description| normalize_description(description.as_deref()))
            .transpose()?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_collection(&tx, id)?;
        if let Some(name) = &name {
            check_name_free(&tx, name, Some(id))?;
            tx.execute(
                "UPDATE collections SET name = ?2 WHERE id = ?1",
                params![id_to_sql(id), name],
            )?;
        }
        if let Some(description) = &description {
            tx.execute(
                "UPDATE collections SET description = ?2 WHERE id = ?1",
                params![id_to_sql(id), description],
            )?;
        }
        touch(&tx, id)?;
        let collection = select_collection(&tx, id)?.ok_or_else(|| vanished(id))?;
        tx.commit()?;
        Ok(collection)
    }

    /// Deletes a collection; its documents stay stored.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id; [`Error::InUse`] while a session's retrieval
    /// is restricted to it.
    pub(crate) fn delete_collection(&self, id: CollectionId) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_collection(&tx, id)?;
        let sessions: i64 = tx.query_row(
            "SELECT count(*) FROM session_collections WHERE collection_id = ?1",
            [id_to_sql(id)],
            |row| row.get(0),
        )?;
        if sessions > 0 {
            return Err(in_use(id, sessions));
        }
        tx.execute("DELETE FROM collections WHERE id = ?1", [id_to_sql(id)])?;
        tx.commit()?;
        Ok(())
    }

    /// Adds documents to a collection (ones already in it are left as they are) and
    /// returns the collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection or naming the first unknown document
    /// (nothing is added then); [`Error::InvalidInput`] for more than
    /// [`MAX_COLLECTION_CHANGE`] documents.
    pub(crate) fn add_to_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_collection(&tx, id)?;
        let documents = existing_documents(&tx, documents)?;
        let now = time_to_sql(Utc::now());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO collection_documents (collection_id, document_id, added_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for document in &documents {
                insert.execute(params![id_to_sql(id), id_to_sql(document), now])?;
            }
        }
        touch(&tx, id)?;
        let collection = select_collection(&tx, id)?.ok_or_else(|| vanished(id))?;
        tx.commit()?;
        Ok(collection)
    }

    /// Takes documents out of a collection (they stay stored; ones not in it are ignored)
    /// and returns the collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection; [`Error::InvalidInput`] for more than
    /// [`MAX_COLLECTION_CHANGE`] documents.
    pub(crate) fn remove_from_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection> {
        check_change_size(documents.len())?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        require_collection(&tx, id)?;
        {
            let mut delete = tx.prepare_cached(
                "DELETE FROM collection_documents WHERE collection_id = ?1 AND document_id = ?2",
            )?;
            for document in documents {
                delete.execute([id_to_sql(id), id_to_sql(document)])?;
            }
        }
        touch(&tx, id)?;
        let collection = select_collection(&tx, id)?.ok_or_else(|| vanished(id))?;
        tx.commit()?;
        Ok(collection)
    }

    /// The newest document of a collection with exactly this file name, if any.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection.
    pub(crate) fn collection_document_named(
        &self,
        collection: CollectionId,
        filename: &str,
    ) -> Result<Option<DocumentId>> {
        let conn = self.lock();
        require_collection(&conn, collection)?;
        let id: Option<String> = conn
            .query_row(
                "SELECT d.id FROM documents d \
                 JOIN collection_documents m ON m.document_id = d.id \
                 WHERE m.collection_id = ?1 AND d.filename = ?2 \
                 ORDER BY d.created_at DESC, d.id DESC LIMIT 1",
                params![id_to_sql(collection), filename],
                |row| row.get(0),
            )
            .optional()?;
        id.map(|id| id_from_sql(&id)).transpose()
    }

    /// The collections a document is in, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn collections_of_document(
        &self,
        document: DocumentId,
    ) -> Result<Vec<CollectionId>> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached(
            "SELECT c.id FROM collection_documents d JOIN collections c ON c.id = d.collection_id \
             WHERE d.document_id = ?1 ORDER BY c.name COLLATE NOCASE",
        )?;
        let rows = statement.query_map([id_to_sql(document)], |row| row.get::<_, String>(0))?;
        rows.map(|id| id_from_sql(&id?)).collect()
    }

    /// Every document of the given collections (their union, each once, in id order): what
    /// a search or session restricted to them may read.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] naming the first unknown collection.
    pub(crate) fn collection_documents(
        &self,
        collections: &[CollectionId],
    ) -> Result<Vec<DocumentId>> {
        let conn = self.lock();
        let mut documents = BTreeSet::new();
        let mut statement = conn.prepare_cached(
            "SELECT document_id FROM collection_documents WHERE collection_id = ?1",
        )?;
        for id in collections {
            require_collection(&conn, *id)?;
            let rows = statement.query_map([id_to_sql(id)], |row| row.get::<_, String>(0))?;
            for document in rows {
                documents.insert(id_from_sql::<DocumentId>(&document?)?);
            }
        }
        Ok(documents.into_iter().collect())
    }
}
