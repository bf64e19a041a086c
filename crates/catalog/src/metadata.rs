//! User metadata of documents (`document_metadata`, one row per key) and metadata filters
//! as SQL.
//!
//! Values keep their type: a `kind` column (`string`, `number`, `bool`) next to an untyped
//! `value` column holding TEXT, REAL or INTEGER 0/1, so `"2020"` never equals `2020` and a
//! range only ever matches numbers. A filter becomes one `id IN (SELECT ...)` clause per
//! condition over `documents`, used by the document list and, resolved to ids, by search
//! before ranking.

use ragd_core::{
    Condition, Document, DocumentId, MAX_METADATA_KEYS, Metadata, MetadataFilter, MetadataValue,
};
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};

use crate::error::{Error, Result};
use crate::rows::{id_from_sql, id_to_sql};
use crate::sqlite::SqliteCatalog;

/// A value as its `kind` and the SQL value stored for it.
fn to_sql(value: &MetadataValue) -> (&'static str, Value) {
    let sql = match value {
        MetadataValue::Bool(b) => Value::Integer(i64::from(*b)),
        MetadataValue::Number(n) => Value::Real(*n),
        MetadataValue::String(s) => Value::Text(s.clone()),
    };
    (value.kind(), sql)
}

/// A stored value back, checked against its kind.
fn from_sql(kind: &str, value: Value) -> Result<MetadataValue> {
    #[allow(clippy::cast_precision_loss)] // Numbers were stored as REAL; an INTEGER is exact.
    match (kind, value) {
        ("bool", Value::Integer(i)) => Ok(MetadataValue::Bool(i != 0)),
        ("number", Value::Real(n)) => Ok(MetadataValue::Number(n)),
        ("number", Value::Integer(i)) => Ok(MetadataValue::Number(i as f64)),
        ("string", Value::Text(s)) => Ok(MetadataValue::String(s)),
        (kind, value) => Err(Error::Corrupt(format!("metadata of kind {kind} holds {value:?}"))),
    }
}

/// A document's metadata.
pub(crate) fn read_metadata(conn: &Connection, id: DocumentId) -> Result<Metadata> {
    let mut statement = conn.prepare_cached(
        "SELECT key, kind, value FROM document_metadata WHERE document_id = ?1 ORDER BY key",
    )?;
    let rows = statement.query_map([id_to_sql(id)], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Value>(2)?))
    })?;
    rows.map(|row| {
        let (key, kind, value) = row?;
        Ok((key, from_sql(&kind, value)?))
    })
    .collect()
}

/// Fills in the metadata of documents just read.
pub(crate) fn attach(conn: &Connection, documents: &mut [Document]) -> Result<()> {
    for document in documents {
        document.metadata = read_metadata(conn, document.id)?;
    }
    Ok(())
}

/// One condition as SQL over `document_metadata` (`key = ? AND ...`) with its values.
fn condition_sql(key: &str, condition: &Condition, values: &mut Vec<Value>) -> String {
    values.push(Value::Text(key.to_owned()));
    let test = match condition {
        Condition::Equals(value) => {
            let (kind, value) = to_sql(value);
            values.extend([Value::Text(kind.to_owned()), value]);
            "kind = ? AND value = ?".to_owned()
        }
        Condition::In(options) => {
            let tests: Vec<&str> = options
                .iter()
                .map(|value| {
                    let (kind, value) = to_sql(value);
                    values.extend([Value::Text(kind.to_owned()), value]);
                    "(kind = ? AND value = ?)"
                })
                .collect();
            format!("({})", tests.join(" OR "))
        }
        Condition::Range { gt, gte, lt, lte } => {
            let mut test = "kind = 'number'".to_owned();
            for (operator, bound) in [(">", gt), (">=", gte), ("<", lt), ("<=", lte)] {
                if let Some(bound) = bound {
                    test.push_str(&format!(" AND value {operator} ?"));
                    values.push(Value::Real(*bound));
                }
            }
            test
        }
    };
    format!("id IN (SELECT document_id FROM document_metadata WHERE key = ? AND {test})")
}

/// The clauses of a filter over `documents`, to join with AND, and their values.
pub(crate) fn filter_sql(filter: &MetadataFilter, values: &mut Vec<Value>) -> Vec<String> {
    filter.conditions.iter().map(|(key, condition)| condition_sql(key, condition, values)).collect()
}

/// Sets keys of a document's metadata and removes others inside `tx`; fails with nothing
/// to commit when the document would hold more than [`MAX_METADATA_KEYS`] keys.
pub(crate) fn write_metadata(
    tx: &rusqlite::Transaction<'_>,
    id: DocumentId,
    set: &Metadata,
    remove: &[String],
) -> Result<()> {
    {
        let mut delete =
            tx.prepare_cached("DELETE FROM document_metadata WHERE document_id = ?1 AND key = ?2")?;
        for key in remove {
            delete.execute(params![id_to_sql(id), key])?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO document_metadata (document_id, key, kind, value) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (document_id, key) DO UPDATE SET kind = ?3, value = ?4",
        )?;
        for (key, value) in set {
            let (kind, value) = to_sql(value);
            upsert.execute(params![id_to_sql(id), key, kind, value])?;
        }
    }
    let count: i64 = tx.query_row(
        "SELECT count(*) FROM document_metadata WHERE document_id = ?1",
        [id_to_sql(id)],
        |row| row.get(0),
    )?;
    check_key_count(count)
}

/// Refuses a document holding `count` metadata keys, more than [`MAX_METADATA_KEYS`].
pub(crate) fn check_key_count(count: i64) -> Result<()> {
    if count.unsigned_abs() > MAX_METADATA_KEYS as u64 {
        return Err(Error::InvalidInput(format!(
            "a document may hold at most {MAX_METADATA_KEYS} metadata keys"
        )));
    }
    Ok(())
}

impl SqliteCatalog {
    /// Sets keys of a document's metadata (replacing their values) and removes others;
    /// returns the document with its metadata now.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document; [`Error::InvalidInput`] when the
    /// document would hold more than [`MAX_METADATA_KEYS`] keys (nothing is changed then).
    pub(crate) fn update_document_metadata(
        &self,
        id: DocumentId,
        set: &Metadata,
        remove: &[String],
    ) -> Result<Document> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !tx.prepare_cached("SELECT 1 FROM documents WHERE id = ?1")?.exists([id_to_sql(id)])? {
            return Err(Error::not_found("document", id));
        }
        write_metadata(&tx, id, set, remove)?;
        let document = crate::documents::read_document(&tx, id)?;
        tx.commit()?;
        Ok(document)
    }

    /// Every document whose metadata satisfies `filter` (all of them for an empty one), in
    /// id order.
    ///
    /// # Errors
    ///
    /// [`Error::Sqlite`] when the query fails.
    pub(crate) fn documents_matching(&self, filter: &MetadataFilter) -> Result<Vec<DocumentId>> {
        let mut values = Vec::new();
        let clauses = filter_sql(filter, &mut values);
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let conn = self.lock();
        let mut statement =
            conn.prepare(&format!("SELECT id FROM documents{filter} ORDER BY id"))?;
        let rows =
            statement.query_map(params_from_iter(values.iter()), |row| row.get::<_, String>(0))?;
        rows.map(|id| id_from_sql(&id?)).collect()
    }
}
