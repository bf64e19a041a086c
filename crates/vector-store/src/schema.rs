//! The Arrow schema of the vector tables and the shape metadata stored with it.
//!
//! Every table carries, in its Arrow schema metadata, the schema version, the embedding
//! model id and the vector dimension it was built with. Opening a table whose metadata
//! differs from the configuration is refused (architecture invariant 5): vectors from two
//! models cannot be compared, and silently mixing them would return nonsense.

use std::collections::HashMap;
use std::sync::Arc;

use lancedb::arrow::arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result, TableShape};

/// The version of the vector tables' layout; bump it when the columns change.
pub const SCHEMA_VERSION: u32 = 1;

/// Schema metadata key of the layout version.
const KEY_SCHEMA_VERSION: &str = "ragd.schema_version";
/// Schema metadata key of the embedding model id.
const KEY_MODEL_ID: &str = "ragd.model_id";
/// Schema metadata key of the vector dimension.
const KEY_DIMENSIONS: &str = "ragd.dimensions";

/// The row id column (a UUID string).
pub(crate) const COL_ID: &str = "id";
/// The owning document column (a UUID string or null).
pub(crate) const COL_DOCUMENT_ID: &str = "document_id";
/// The owning session column (a UUID string or null).
pub(crate) const COL_SESSION_ID: &str = "session_id";
/// The vector column.
pub(crate) const COL_VECTOR: &str = "vector";
/// The distance column LanceDB adds to vector search results.
pub(crate) const COL_DISTANCE: &str = "_distance";

/// The shape this configuration expects every table to have.
pub(crate) fn expected_shape(model_id: &str, dimensions: usize) -> TableShape {
    TableShape {
        schema_version: SCHEMA_VERSION.to_string(),
        model_id: model_id.to_owned(),
        dimensions,
    }
}

/// The element field of the vector column.
pub(crate) fn vector_item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, true))
}

/// The columns of a table, without metadata (the schema of written batches).
pub(crate) fn data_schema(dimensions: i32) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_ID, DataType::Utf8, false),
        Field::new(COL_DOCUMENT_ID, DataType::Utf8, true),
        Field::new(COL_SESSION_ID, DataType::Utf8, true),
        Field::new(COL_VECTOR, DataType::FixedSizeList(vector_item_field(), dimensions), false),
    ]))
}

/// The schema a new table is created with: the columns plus the shape metadata.
pub(crate) fn table_schema(shape: &TableShape, dimensions: i32) -> SchemaRef {
    let metadata = HashMap::from([
        (KEY_SCHEMA_VERSION.to_owned(), shape.schema_version.clone()),
        (KEY_MODEL_ID.to_owned(), shape.model_id.clone()),
        (KEY_DIMENSIONS.to_owned(), shape.dimensions.to_string()),
    ]);
    Arc::new(data_schema(dimensions).as_ref().clone().with_metadata(metadata))
}

/// The model id and dimension a stored table's metadata records, if it has them.
pub(crate) fn recorded_model(schema: &Schema) -> Option<(String, usize)> {
    let metadata = schema.metadata();
    let model_id = metadata.get(KEY_MODEL_ID)?.clone();
    let dimensions = metadata.get(KEY_DIMENSIONS)?.parse().ok()?;
    Some((model_id, dimensions))
}

/// Checks that a stored table's schema is the one this configuration expects.
///
/// # Errors
/// [`Error::ForeignTable`] when the metadata or columns are not ragd's,
/// [`Error::ShapeMismatch`] when the table was built with another model, dimension or
/// schema version.
pub(crate) fn check(table: &str, schema: &Schema, expected: &TableShape) -> Result<()> {
    let metadata = schema.metadata();
    let get = |key: &str| {
        metadata.get(key).cloned().ok_or_else(|| Error::ForeignTable {
            table: table.to_owned(),
            reason: format!("its schema metadata has no {key}"),
        })
    };
    let schema_version = get(KEY_SCHEMA_VERSION)?;
    let model_id = get(KEY_MODEL_ID)?;
    let dimensions = get(KEY_DIMENSIONS)?;
    let dimensions = dimensions.parse::<usize>().map_err(|_| Error::ForeignTable {
        table: table.to_owned(),
        reason: format!("{KEY_DIMENSIONS} is {dimensions:?}, not a number"),
    })?;
    let found = TableShape { schema_version, model_id, dimensions };
    if &found != expected {
        return Err(Error::ShapeMismatch {
            table: table.to_owned(),
            found: Box::new(found),
            expected: Box::new(expected.clone()),
        });
    }
    check_columns(table, schema, expected.dimensions)
}

/// Checks the column types, so a table whose metadata lies is still refused.
fn check_columns(table: &str, schema: &Schema, dimensions: usize) -> Result<()> {
    let column_type = |name: &str| {
        schema.field_with_name(name).map(|f| f.data_type().clone()).map_err(|_| {
            Error::ForeignTable {
                table: table.to_owned(),
                reason: format!("it has no {name} column"),
            }
        })
    };
    for name in [COL_ID, COL_DOCUMENT_ID, COL_SESSION_ID] {
        let data_type = column_type(name)?;
        if data_type != DataType::Utf8 {
            return Err(Error::ForeignTable {
                table: table.to_owned(),
                reason: format!("its {name} column is {data_type}, not Utf8"),
            });
        }
    }
    let vector_ok = if let DataType::FixedSizeList(item, size) = column_type(COL_VECTOR)? {
        item.data_type() == &DataType::Float32 && usize::try_from(size).ok() == Some(dimensions)
    } else {
        false
    };
    if vector_ok {
        Ok(())
    } else {
        Err(Error::ForeignTable {
            table: table.to_owned(),
            reason: format!("its vector column is not FixedSizeList<Float32>[{dimensions}]"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_schema_passes_its_own_check() {
        let shape = expected_shape("model-a", 4);
        let schema = table_schema(&shape, 4);
        check("chunks", &schema, &shape).unwrap();
    }

    #[test]
    fn another_model_or_dimension_is_a_conflict() {
        let schema = table_schema(&expected_shape("model-a", 4), 4);
        let err = check("chunks", &schema, &expected_shape("model-b", 4)).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
        let err = check("chunks", &schema, &expected_shape("model-a", 8)).unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    }

    #[test]
    fn missing_metadata_is_a_foreign_table() {
        let err = check("chunks", &data_schema(4), &expected_shape("model-a", 4)).unwrap_err();
        assert!(matches!(err, Error::ForeignTable { .. }), "{err}");
    }
}
