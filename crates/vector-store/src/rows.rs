//! Conversions between ragd records and Arrow record batches.

use std::sync::Arc;

use lancedb::arrow::arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, cast::AsArray as _,
};
use lancedb::arrow::arrow_schema::SchemaRef;
use ragd_core::{DocumentId, EmbeddedRecord, ScoredRecord, SessionId};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::schema::{COL_DISTANCE, COL_DOCUMENT_ID, COL_ID, COL_SESSION_ID, vector_item_field};

/// One record batch holding `records`, whose vectors have already been checked to be
/// `dimensions` long.
pub(crate) fn to_batch(
    schema: SchemaRef,
    dimensions: i32,
    records: &[EmbeddedRecord],
) -> Result<RecordBatch> {
    let ids = StringArray::from_iter_values(records.iter().map(|r| r.id.hyphenated().to_string()));
    let documents: StringArray =
        records.iter().map(|r| r.document_id.map(|id| id.to_string())).collect();
    let sessions: StringArray =
        records.iter().map(|r| r.session_id.map(|id| id.to_string())).collect();
    let values =
        Float32Array::from_iter_values(records.iter().flat_map(|r| r.vector.iter().copied()));
    let vectors =
        FixedSizeListArray::try_new(vector_item_field(), dimensions, Arc::new(values), None)
            .map_err(|err| Error::arrow("build the vector column", err))?;
    let columns: Vec<ArrayRef> =
        vec![Arc::new(ids), Arc::new(documents), Arc::new(sessions), Arc::new(vectors)];
    RecordBatch::try_new(schema, columns).map_err(|err| Error::arrow("build a record batch", err))
}

/// The search hits in a result batch; the score is `1 - cosine distance`.
pub(crate) fn scored_records(batch: &RecordBatch) -> Result<Vec<ScoredRecord>> {
    let ids = string_column(batch, COL_ID)?;
    let documents = string_column(batch, COL_DOCUMENT_ID)?;
    let sessions = string_column(batch, COL_SESSION_ID)?;
    let distances = batch
        .column_by_name(COL_DISTANCE)
        .and_then(|c| c.as_primitive_opt::<lancedb::arrow::arrow_array::types::Float32Type>())
        .ok_or_else(|| Error::Corrupt(format!("search results have no Float32 {COL_DISTANCE}")))?;
    (0..batch.num_rows())
        .map(|row| {
            Ok(ScoredRecord {
                id: required_uuid(ids, row, COL_ID)?,
                document_id: optional_uuid(documents, row, COL_DOCUMENT_ID)?
                    .map(DocumentId::from_uuid),
                session_id: optional_uuid(sessions, row, COL_SESSION_ID)?.map(SessionId::from_uuid),
                score: 1.0 - distances.value(row),
            })
        })
        .collect()
}

/// The ids in a batch that has an `id` column.
pub(crate) fn ids(batch: &RecordBatch) -> Result<Vec<Uuid>> {
    let ids = string_column(batch, COL_ID)?;
    (0..batch.num_rows()).map(|row| required_uuid(ids, row, COL_ID)).collect()
}

/// The string column `name` of `batch`.
fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Corrupt(format!("result batch has no Utf8 column {name}")))
}

/// The UUID in a non-null cell.
fn required_uuid(column: &StringArray, row: usize, name: &str) -> Result<Uuid> {
    optional_uuid(column, row, name)?
        .ok_or_else(|| Error::Corrupt(format!("column {name} is null in row {row}")))
}

/// The UUID in a nullable cell.
fn optional_uuid(column: &StringArray, row: usize, name: &str) -> Result<Option<Uuid>> {
    if column.is_null(row) {
        return Ok(None);
    }
    let text = column.value(row);
    Uuid::parse_str(text)
        .map(Some)
        .map_err(|_| Error::Corrupt(format!("column {name} holds {text:?}, not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::data_schema;

    #[test]
    fn records_become_a_batch_of_the_table_schema() {
        let records = vec![
            EmbeddedRecord {
                id: Uuid::now_v7(),
                document_id: Some(DocumentId::new()),
                session_id: None,
                vector: vec![1.0, 0.0],
            },
            EmbeddedRecord {
                id: Uuid::now_v7(),
                document_id: None,
                session_id: Some(SessionId::new()),
                vector: vec![0.0, 1.0],
            },
        ];
        let batch = to_batch(data_schema(2), 2, &records).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(ids(&batch).unwrap(), vec![records[0].id, records[1].id]);
    }
}
