//! Collections on Postgres: [`PostgresCatalog`]'s side of `crate::collections`, with the
//! same validation, errors and order of results as SQLite's.
//!
//! - Names are unique regardless of case through the unique index on `lower(name)`, and
//!   are looked up the same way. The check before a write gives [`Error::NameTaken`]; a
//!   name taken by a concurrent writer between that check and the write violates the index,
//!   and that violation becomes the same error.
//! - Listings order names as SQLite's `NOCASE` collation does (ASCII letters folded to lower
//!   case, then byte order), whatever the database's locale, so both backends page alike.
//! - A write first locks the collection's row (`FOR UPDATE`), so changes to one collection
//!   run one at a time as under SQLite's single writer, and a collection cannot be deleted
//!   while a session is being restricted to it (inserting that link locks the row too).
//!   Documents being added are locked (`FOR KEY SHARE`) so they cannot be deleted between
//!   the check and the insert.
//! - Reads that take more than one statement run in one read-only `REPEATABLE READ`
//!   transaction, so a page and its total come from the same snapshot.

use std::collections::{BTreeSet, HashSet};

use chrono::Utc;
use postgres::{GenericClient, IsolationLevel, error::SqlState};
use ragd_core::{Collection, CollectionId, DocumentId};

use super::{PostgresCatalog, count};
use crate::{
    catalog::Page,
    collections::{
        COLLECTION_COLUMNS, CollectionRow, CollectionUpdate, NewCollection, check_change_size,
        in_use, name_taken, normalize_description, normalize_name, unique_documents, vanished,
    },
    error::{Error, Result},
    rows::{id_from_sql, id_to_sql, time_to_sql},
};

/// The unique index on `lower(name)` (see `schema.rs`).
const NAME_INDEX: &str = "collections_name";

/// A collection's name (table aliased `c`) as SQLite's `NOCASE` collation sorts it: ASCII
/// letters folded to lower case, then compared byte by byte (`"C"`), not by the locale.
const NAME_ORDER: &str = "translate(c.name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
     'abcdefghijklmnopqrstuvwxyz') COLLATE \"C\"";

/// Refuses a description that Postgres `text` cannot hold (a NUL char); SQLite stores it.
fn check_storable_description(description: Option<&str>) -> Result<()> {
    if description.is_some_and(|text| text.contains('\0')) {
        return Err(Error::InvalidInput(
            "a collection description must not contain NUL chars".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `err` is a violation of the unique index on collection names.
fn violates_name_index(err: &postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && err.as_db_error().and_then(postgres::error::DbError::constraint) == Some(NAME_INDEX)
}

/// The outcome of a statement that stores `name`, a violation of the name index being
/// [`Error::NameTaken`] (another writer took the name after [`check_name_free`]).
fn name_write(result: std::result::Result<u64, postgres::Error>, name: &str) -> Result<u64> {
    result.map_err(|err| if violates_name_index(&err) { name_taken(name) } else { err.into() })
}

/// Fails with [`Error::NameTaken`] when `name` is taken by another collection than `except`
/// (comparing as the unique index does, through `lower`).
fn check_name_free(
    client: &mut impl GenericClient,
    name: &str,
    except: Option<CollectionId>,
) -> Result<()> {
    let Some(row) =
        client.query_opt("SELECT id FROM collections WHERE lower(name) = lower($1)", &[&name])?
    else {
        return Ok(());
    };
    let id: String = row.try_get(0)?;
    if except.is_some_and(|except| id_to_sql(except) == id) {
        Ok(())
    } else {
        Err(name_taken(name))
    }
}

/// Reads one collection, if it exists.
fn select_collection(
    client: &mut impl GenericClient,
    id: CollectionId,
) -> Result<Option<Collection>> {
    client
        .query_opt(
            &format!("SELECT {COLLECTION_COLUMNS} FROM collections c WHERE c.id = $1"),
            &[&id_to_sql(id)],
        )?
        .map(|row| CollectionRow::read_pg(&row)?.into_collection())
        .transpose()
}

/// Reads a collection this transaction has just written.
fn reread(client: &mut impl GenericClient, id: CollectionId) -> Result<Collection> {
    select_collection(client, id)?.ok_or_else(|| vanished(id))
}

/// Locks the collection's row until the transaction ends; `NotFound` unless it exists.
fn lock_collection(client: &mut impl GenericClient, id: CollectionId) -> Result<()> {
    let row = client
        .query_opt("SELECT 1 FROM collections WHERE id = $1 FOR UPDATE", &[&id_to_sql(id)])?;
    if row.is_some() { Ok(()) } else { Err(Error::not_found("collection", id)) }
}

/// Sets the collection's `updated_at` to now.
fn touch(client: &mut impl GenericClient, id: CollectionId) -> Result<()> {
    client.execute(
        "UPDATE collections SET updated_at = $2 WHERE id = $1",
        &[&id_to_sql(id), &time_to_sql(Utc::now())],
    )?;
    Ok(())
}

impl PostgresCatalog {
    /// Stores a new, empty collection.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a bad name or description, [`Error::NameTaken`] when
    /// another collection has the name.
    pub(crate) fn create_collection(&self, new: NewCollection) -> Result<Collection> {
        let name = normalize_name(&new.name)?;
        let description = normalize_description(new.description.as_deref())?;
        check_storable_description(description.as_deref())?;
        let now = time_to_sql(Utc::now());
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        check_name_free(&mut tx, &name, None)?;
        name_write(
            tx.execute(
                "INSERT INTO collections (id, name, description, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
                &[&id_to_sql(new.id), &name, &description, &now],
            ),
            &name,
        )?;
        let collection = reread(&mut tx, new.id)?;
        tx.commit()?;
        Ok(collection)
    }

    /// One collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown id.
    pub(crate) fn get_collection(&self, id: CollectionId) -> Result<Collection> {
        let mut client = self.client()?;
        select_collection(&mut *client, id)?.ok_or_else(|| Error::not_found("collection", id))
    }

    /// The collection with this id (a UUID) or else this name (ignoring case).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when neither matches.
    pub(crate) fn find_collection(&self, id_or_name: &str) -> Result<Collection> {
        if let Ok(id) = id_or_name.parse::<CollectionId>() {
            return self.get_collection(id);
        }
        let name = id_or_name.trim();
        // No stored name holds a NUL (names refuse control chars), and Postgres refuses
        // one in a parameter.
        if name.contains('\0') {
            return Err(Error::not_found("collection", id_or_name));
        }
        let mut client = self.client()?;
        client
            .query_opt(
                &format!(
                    "SELECT {COLLECTION_COLUMNS} FROM collections c \
                     WHERE lower(c.name) = lower($1)"
                ),
                &[&name],
            )?
            .map(|row| CollectionRow::read_pg(&row)?.into_collection())
            .transpose()?
            .ok_or_else(|| Error::not_found("collection", id_or_name))
    }

    /// A page of collections by name.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn list_collections(&self, limit: u32, offset: u32) -> Result<Page<Collection>> {
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let total: i64 = tx.query_one("SELECT count(*) FROM collections", &[])?.try_get(0)?;
        let items = tx
            .query(
                &format!(
                    "SELECT {COLLECTION_COLUMNS} FROM collections c \
                     ORDER BY {NAME_ORDER}, c.id COLLATE \"C\" LIMIT $1 OFFSET $2"
                ),
                &[&i64::from(limit), &i64::from(offset)],
            )?
            .iter()
            .map(|row| CollectionRow::read_pg(row)?.into_collection())
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(Page { items, total: count(total) })
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
        if let Some(description) = &description {
            check_storable_description(description.as_deref())?;
        }
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_collection(&mut tx, id)?;
        if let Some(name) = &name {
            check_name_free(&mut tx, name, Some(id))?;
            name_write(
                tx.execute(
                    "UPDATE collections SET name = $2 WHERE id = $1",
                    &[&id_to_sql(id), name],
                ),
                name,
            )?;
        }
        if let Some(description) = &description {
            tx.execute(
                "UPDATE collections SET description = $2 WHERE id = $1",
                &[&id_to_sql(id), description],
            )?;
        }
        touch(&mut tx, id)?;
        let collection = reread(&mut tx, id)?;
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
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // The lock waits for any transaction linking a session to it (which holds a key
        // share lock on the row) and keeps new links out until the delete commits.
        lock_collection(&mut tx, id)?;
        let sessions: i64 = tx
            .query_one(
                "SELECT count(*) FROM session_collections WHERE collection_id = $1",
                &[&id_to_sql(id)],
            )?
            .try_get(0)?;
        if sessions > 0 {
            return Err(in_use(id, sessions));
        }
        tx.execute("DELETE FROM collections WHERE id = $1", &[&id_to_sql(id)])?;
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
    /// [`MAX_COLLECTION_CHANGE`](crate::MAX_COLLECTION_CHANGE) documents.
    pub(crate) fn add_to_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_collection(&mut tx, id)?;
        let documents = unique_documents(documents)?;
        if !documents.is_empty() {
            let ids: Vec<String> = documents.iter().map(id_to_sql).collect();
            // Locked so that none is deleted before the links below are stored.
            let found: HashSet<String> = tx
                .query("SELECT id FROM documents WHERE id = ANY($1) FOR KEY SHARE", &[&ids])?
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<std::result::Result<HashSet<String>, postgres::Error>>()?;
            if let Some(missing) =
                documents.iter().find(|document| !found.contains(&id_to_sql(document)))
            {
                return Err(Error::not_found("document", missing));
            }
            let now = time_to_sql(Utc::now());
            tx.execute(
                "INSERT INTO collection_documents (collection_id, document_id, added_at) \
                 SELECT $1::text, u.document_id, $3::text FROM unnest($2::text[]) AS u (document_id) \
                 ON CONFLICT DO NOTHING",
                &[&id_to_sql(id), &ids, &now],
            )?;
        }
        touch(&mut tx, id)?;
        let collection = reread(&mut tx, id)?;
        tx.commit()?;
        Ok(collection)
    }

    /// Takes documents out of a collection (they stay stored; ones not in it are ignored)
    /// and returns the collection.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown collection; [`Error::InvalidInput`] for more than
    /// [`MAX_COLLECTION_CHANGE`](crate::MAX_COLLECTION_CHANGE) documents.
    pub(crate) fn remove_from_collection(
        &self,
        id: CollectionId,
        documents: &[DocumentId],
    ) -> Result<Collection> {
        check_change_size(documents.len())?;
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        lock_collection(&mut tx, id)?;
        if !documents.is_empty() {
            let ids: Vec<String> = documents.iter().map(id_to_sql).collect();
            tx.execute(
                "DELETE FROM collection_documents \
                 WHERE collection_id = $1 AND document_id = ANY($2)",
                &[&id_to_sql(id), &ids],
            )?;
        }
        touch(&mut tx, id)?;
        let collection = reread(&mut tx, id)?;
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
        // No stored file name holds a NUL (Postgres refuses one), so such a name matches
        // nothing; NULL compares equal to nothing.
        let filename = (!filename.contains('\0')).then_some(filename);
        let mut client = self.client()?;
        // One statement: the existence check and the lookup see the same snapshot.
        let row = client.query_one(
            "SELECT EXISTS (SELECT 1 FROM collections WHERE id = $1), \
                    (SELECT d.id FROM documents d \
                     JOIN collection_documents m ON m.document_id = d.id \
                     WHERE m.collection_id = $1 AND d.filename = $2 \
                     ORDER BY d.created_at COLLATE \"C\" DESC, d.id COLLATE \"C\" DESC \
                     LIMIT 1)",
            &[&id_to_sql(collection), &filename],
        )?;
        let exists: bool = row.try_get(0)?;
        if !exists {
            return Err(Error::not_found("collection", collection));
        }
        let id: Option<String> = row.try_get(1)?;
        id.map(|id| id_from_sql(&id)).transpose()
    }

    /// The collections a document is in, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn collections_of_document(
        &self,
        document: DocumentId,
    ) -> Result<Vec<CollectionId>> {
        let mut client = self.client()?;
        client
            .query(
                &format!(
                    "SELECT c.id FROM collection_documents d \
                     JOIN collections c ON c.id = d.collection_id \
                     WHERE d.document_id = $1 ORDER BY {NAME_ORDER}"
                ),
                &[&id_to_sql(document)],
            )?
            .iter()
            .map(|row| id_from_sql(&row.try_get::<_, String>(0)?))
            .collect()
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
        if collections.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = collections.iter().map(id_to_sql).collect();
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let found: HashSet<String> = tx
            .query("SELECT id FROM collections WHERE id = ANY($1)", &[&ids])?
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<std::result::Result<HashSet<String>, postgres::Error>>()?;
        if let Some(missing) = ids.iter().find(|id| !found.contains(*id)) {
            return Err(Error::not_found("collection", missing));
        }
        let mut documents = BTreeSet::new();
        for row in tx.query(
            "SELECT DISTINCT document_id FROM collection_documents \
             WHERE collection_id = ANY($1)",
            &[&ids],
        )? {
            documents.insert(id_from_sql::<DocumentId>(&row.try_get::<_, String>(0)?)?);
        }
        tx.commit()?;
        Ok(documents.into_iter().collect())
    }
}
