//! User metadata of documents in Postgres (`document_metadata`, one row per key) and
//! metadata filters as SQL with numbered parameters.
//!
//! Values keep their type as in SQLite (`crate::metadata`): a `kind` column (`string`,
//! `number`, `bool`) and one typed column per kind (`text_value`, `number_value`,
//! `bool_value`), so `"2020"` never equals `2020` and a range only ever matches numbers. A
//! filter becomes one `id IN (SELECT ...)` clause per condition over `documents`, used by
//! the document list and, resolved to ids, by search before ranking.

use std::collections::HashMap;

use postgres::{GenericClient, types::ToSql};
use ragd_core::{Condition, Document, DocumentId, Metadata, MetadataFilter, MetadataValue};

use crate::{
    error::{Error, Result},
    metadata::check_key_count,
    pg::PostgresCatalog,
    rows::{id_from_sql, id_to_sql},
};

/// The parameters of a query built piece by piece: each value pushed gets the next
/// placeholder (`$1`, `$2`, ...), so clauses can be added in any order.
#[derive(Debug, Default)]
pub(crate) struct SqlParams {
    values: Vec<Box<dyn ToSql + Sync>>,
}

impl SqlParams {
    /// No parameters yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a value and returns its placeholder (`$n`).
    ///
    /// The value's Rust type must match the SQL type the placeholder takes (`String` for
    /// `TEXT`, `i64` for `BIGINT`, `f64` for `DOUBLE PRECISION`, `Vec<String>` for `TEXT[]`).
    pub(crate) fn push(&mut self, value: impl ToSql + Sync + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    /// The values, as the `postgres` client takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|value| &**value as &(dyn ToSql + Sync)).collect()
    }
}

/// A stored value back from its kind and typed columns.
fn from_sql(
    kind: &str,
    text: Option<String>,
    number: Option<f64>,
    flag: Option<bool>,
) -> Result<MetadataValue> {
    let value = match kind {
        "string" => text.map(MetadataValue::String),
        "number" => number.map(MetadataValue::Number),
        "bool" => flag.map(MetadataValue::Bool),
        _ => None,
    };
    value.ok_or_else(|| Error::Corrupt(format!("metadata of kind {kind} holds no value")))
}

/// The key and value of one `document_metadata` row read as
/// `key, kind, text_value, number_value, bool_value` from column `first` on.
fn read_entry(row: &postgres::Row, first: usize) -> Result<(String, MetadataValue)> {
    let key: String = row.try_get(first)?;
    let kind: String = row.try_get(first + 1)?;
    let value =
        from_sql(&kind, row.try_get(first + 2)?, row.try_get(first + 3)?, row.try_get(first + 4)?)?;
    Ok((key, value))
}

/// A document's metadata.
pub(crate) fn read_metadata(client: &mut impl GenericClient, id: DocumentId) -> Result<Metadata> {
    client
        .query(
            "SELECT key, kind, text_value, number_value, bool_value FROM document_metadata \
             WHERE document_id = $1",
            &[&id_to_sql(id)],
        )?
        .iter()
        .map(|row| read_entry(row, 0))
        .collect()
}

/// Fills in the metadata of documents just read, with one query for all of them.
pub(crate) fn attach(client: &mut impl GenericClient, documents: &mut [Document]) -> Result<()> {
    match documents {
        [] => return Ok(()),
        [document] => {
            document.metadata = read_metadata(client, document.id)?;
            return Ok(());
        }
        _ => {}
    }
    let ids: Vec<String> = documents.iter().map(|document| id_to_sql(document.id)).collect();
    let rows = client.query(
        "SELECT document_id, key, kind, text_value, number_value, bool_value \
         FROM document_metadata WHERE document_id = ANY($1)",
        &[&ids],
    )?;
    let mut by_document: HashMap<String, Metadata> = HashMap::new();
    for row in &rows {
        let document_id: String = row.try_get(0)?;
        let (key, value) = read_entry(row, 1)?;
        by_document.entry(document_id).or_default().insert(key, value);
    }
    for document in documents {
        document.metadata = by_document.remove(&id_to_sql(document.id)).unwrap_or_default();
    }
    Ok(())
}

/// One value as a test on the typed column of its kind, its value pushed to `params`.
fn value_test(value: &MetadataValue, params: &mut SqlParams) -> String {
    match value {
        MetadataValue::String(text) => {
            format!("(kind = 'string' AND text_value = {})", params.push(text.clone()))
        }
        MetadataValue::Number(number) => {
            format!("(kind = 'number' AND number_value = {})", params.push(*number))
        }
        MetadataValue::Bool(flag) => {
            format!("(kind = 'bool' AND bool_value = {})", params.push(*flag))
        }
    }
}

/// One condition as SQL over `document_metadata` (`key = $n AND ...`), its values pushed.
fn condition_sql(key: &str, condition: &Condition, params: &mut SqlParams) -> String {
    let key = params.push(key.to_owned());
    let test = match condition {
        Condition::Equals(value) => value_test(value, params),
        Condition::In(options) => {
            let tests: Vec<String> =
                options.iter().map(|value| value_test(value, params)).collect();
            // `MetadataFilter` refuses an empty list; were one to get here, it matches nothing.
            if tests.is_empty() { "FALSE".to_owned() } else { format!("({})", tests.join(" OR ")) }
        }
        Condition::Range { gt, gte, lt, lte } => {
            let mut test = "kind = 'number'".to_owned();
            for (operator, bound) in [(">", gt), (">=", gte), ("<", lt), ("<=", lte)] {
                if let Some(bound) = bound {
                    let placeholder = params.push(*bound);
                    test.push_str(&format!(" AND number_value {operator} {placeholder}"));
                }
            }
            test
        }
    };
    format!("id IN (SELECT document_id FROM document_metadata WHERE key = {key} AND {test})")
}

/// The clauses of a filter over `documents`, to join with AND, their values pushed to
/// `params` (numbered after the ones already there).
pub(crate) fn filter_sql(filter: &MetadataFilter, params: &mut SqlParams) -> Vec<String> {
    filter.conditions.iter().map(|(key, condition)| condition_sql(key, condition, params)).collect()
}

/// Sets keys of a document's metadata and removes others inside `tx`; fails with nothing
/// to commit when the document would hold more than [`ragd_core::MAX_METADATA_KEYS`] keys.
///
/// Removals apply before the keys set, as in SQLite. The caller holds the document's row
/// lock (or has just inserted it), so the key count cannot race another writer.
pub(crate) fn write_metadata(
    tx: &mut impl GenericClient,
    id: DocumentId,
    set: &Metadata,
    remove: &[String],
) -> Result<()> {
    let document_id = id_to_sql(id);
    if !remove.is_empty() {
        tx.execute(
            "DELETE FROM document_metadata WHERE document_id = $1 AND key = ANY($2)",
            &[&document_id, &remove],
        )?;
    }
    if !set.is_empty() {
        let mut keys: Vec<&str> = Vec::with_capacity(set.len());
        let mut kinds: Vec<&str> = Vec::with_capacity(set.len());
        let mut texts: Vec<Option<&str>> = Vec::with_capacity(set.len());
        let mut numbers: Vec<Option<f64>> = Vec::with_capacity(set.len());
        let mut flags: Vec<Option<bool>> = Vec::with_capacity(set.len());
        for (key, value) in set {
            let (text, number, flag) = match value {
                MetadataValue::String(text) => (Some(text.as_str()), None, None),
                MetadataValue::Number(number) => (None, Some(*number), None),
                MetadataValue::Bool(flag) => (None, None, Some(*flag)),
            };
            keys.push(key.as_str());
            kinds.push(value.kind());
            texts.push(text);
            numbers.push(number);
            flags.push(flag);
        }
        tx.execute(
            "INSERT INTO document_metadata \
                 (document_id, key, kind, text_value, number_value, bool_value) \
             SELECT $1::text, m.key, m.kind, m.text_value, m.number_value, m.bool_value \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::boolean[]) \
                 AS m (key, kind, text_value, number_value, bool_value) \
             ON CONFLICT (document_id, key) DO UPDATE SET kind = excluded.kind, \
                 text_value = excluded.text_value, number_value = excluded.number_value, \
                 bool_value = excluded.bool_value",
            &[&document_id, &keys, &kinds, &texts, &numbers, &flags],
        )?;
    }
    let count: i64 = tx
        .query_one(
            "SELECT count(*) FROM document_metadata WHERE document_id = $1",
            &[&document_id],
        )?
        .try_get(0)?;
    check_key_count(count)
}

impl PostgresCatalog {
    /// Sets keys of a document's metadata (replacing their values) and removes others;
    /// returns the document with its metadata now.
    ///
    /// The document's row is locked first, so concurrent writers of its metadata take
    /// turns and the key limit holds.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an unknown document; [`Error::InvalidInput`] when the
    /// document would hold more than [`ragd_core::MAX_METADATA_KEYS`] keys (nothing is
    /// changed then).
    pub(crate) fn update_document_metadata(
        &self,
        id: DocumentId,
        set: &Metadata,
        remove: &[String],
    ) -> Result<Document> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let locked = tx.query_opt(
            "SELECT 1 FROM documents WHERE id = $1 FOR NO KEY UPDATE",
            &[&id_to_sql(id)],
        )?;
        if locked.is_none() {
            return Err(Error::not_found("document", id));
        }
        write_metadata(&mut tx, id, set, remove)?;
        let document = crate::pg::documents::read_document(&mut tx, id)?;
        tx.commit()?;
        Ok(document)
    }

    /// Every document whose metadata satisfies `filter` (all of them for an empty one), in
    /// id order.
    ///
    /// # Errors
    ///
    /// [`Error::Postgres`] when the query fails.
    pub(crate) fn documents_matching(&self, filter: &MetadataFilter) -> Result<Vec<DocumentId>> {
        let mut params = SqlParams::new();
        let clauses = filter_sql(filter, &mut params);
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        self.client()?
            .query(&format!("SELECT id FROM documents{filter} ORDER BY id"), &params.refs())?
            .iter()
            .map(|row| id_from_sql(&row.try_get::<_, String>(0)?))
            .collect()
    }
}
