//! The error type of `ragd-vector-store`.
//!
//! LanceDB and Arrow errors are kept as boxed sources, so their types never appear in this
//! crate's public API (architecture invariant); callers see a message and an [`ErrorKind`].

use ragd_core::ErrorKind;
use ragd_core::error::BoxError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a stored table should have been built with, and what it was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// The `ragd.schema_version` of the table.
    pub schema_version: String,
    /// The embedding model id that produced the table's vectors.
    pub model_id: String,
    /// The length of the table's vectors.
    pub dimensions: usize,
}

/// Everything that can go wrong in `ragd-vector-store`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// LanceDB (or Arrow underneath it) reported a failure while doing `operation`.
    ///
    /// The kind is decided when the error is built: timeouts are [`ErrorKind::Timeout`],
    /// object-store failures [`ErrorKind::Unavailable`], anything else
    /// [`ErrorKind::Internal`].
    #[error("vector store failed to {operation}: {source}")]
    Storage {
        /// What the store was doing, as a verb phrase ("open table chunks").
        operation: String,
        /// The classification of the failure.
        kind: ErrorKind,
        /// The LanceDB or Arrow error, boxed so its type stays private.
        #[source]
        source: BoxError,
    },
    /// The caller passed something the store cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A table on disk was built with another embedding model, dimension or schema version.
    ///
    /// This is [`ErrorKind::Conflict`]: the stored vectors cannot be compared with the ones
    /// this configuration produces, and nothing was changed.
    #[error(
        "vector table {table} was built with schema version {}, embedding model {:?} and \
         {} dimensions, but this ragd expects schema version {}, model {:?} and {} \
         dimensions; re-embed the index with this model or open it with the model it was \
         built with",
        found.schema_version, found.model_id, found.dimensions,
        expected.schema_version, expected.model_id, expected.dimensions
    )]
    ShapeMismatch {
        /// The table's name.
        table: String,
        /// What the table on disk was built with.
        found: Box<TableShape>,
        /// What this configuration expects.
        expected: Box<TableShape>,
    },
    /// A table on disk lacks the metadata ragd writes, or its schema is not ragd's.
    ///
    /// This is [`ErrorKind::Conflict`] for the same reason as [`Error::ShapeMismatch`].
    #[error(
        "vector table {table} was not written by this version of ragd ({reason}); re-embed \
         the index or remove the table to rebuild it"
    )]
    ForeignTable {
        /// The table's name.
        table: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored value could not be read back (a malformed id, an unexpected column type).
    #[error("vector store data is corrupt: {0}")]
    Corrupt(String),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Storage { kind, .. } => *kind,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::ShapeMismatch { .. } | Self::ForeignTable { .. } => ErrorKind::Conflict,
            Self::Corrupt(_) => ErrorKind::Internal,
        }
    }

    /// Wraps a LanceDB failure that happened while doing `operation`.
    pub(crate) fn lance(operation: impl Into<String>, source: lancedb::Error) -> Self {
        let kind = lance_kind(&source);
        Self::Storage { operation: operation.into(), kind, source: Box::new(source) }
    }

    /// Wraps an Arrow failure that happened while doing `operation`.
    pub(crate) fn arrow(
        operation: impl Into<String>,
        source: lancedb::arrow::arrow_schema::ArrowError,
    ) -> Self {
        Self::Storage {
            operation: operation.into(),
            kind: ErrorKind::Internal,
            source: Box::new(source),
        }
    }
}

/// Classifies a LanceDB failure.
///
/// `matches!` is used on purpose: `lancedb::Error` is another crate's growing enum, and
/// every variant not named here is a bug or an unexpected failure ([`ErrorKind::Internal`]).
fn lance_kind(err: &lancedb::Error) -> ErrorKind {
    if matches!(err, lancedb::Error::Timeout { .. }) {
        ErrorKind::Timeout
    } else if matches!(err, lancedb::Error::ObjectStore { .. }) {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Internal
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        let converted = Self::new(err.kind(), err.to_string());
        match err {
            Error::Storage { source, .. } => converted.with_source(source),
            Error::InvalidInput(_)
            | Error::ShapeMismatch { .. }
            | Error::ForeignTable { .. }
            | Error::Corrupt(_) => converted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(model_id: &str, dimensions: usize) -> Box<TableShape> {
        Box::new(TableShape { schema_version: "1".into(), model_id: model_id.into(), dimensions })
    }

    #[test]
    fn kinds_are_mapped() {
        assert_eq!(Error::InvalidInput("x".into()).kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::Corrupt("x".into()).kind(), ErrorKind::Internal);
        let mismatch = Error::ShapeMismatch {
            table: "chunks".to_owned(),
            found: shape("a", 3),
            expected: shape("b", 4),
        };
        assert_eq!(mismatch.kind(), ErrorKind::Conflict);
        let foreign =
            Error::ForeignTable { table: "chunks".to_owned(), reason: "no metadata".into() };
        assert_eq!(foreign.kind(), ErrorKind::Conflict);
        let timeout = Error::lance("search", lancedb::Error::Timeout { message: "slow".into() });
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        let other = Error::lance("search", lancedb::Error::Runtime { message: "boom".into() });
        assert_eq!(other.kind(), ErrorKind::Internal);
    }

    #[test]
    fn converts_into_core_error_keeping_the_source() {
        let err: ragd_core::Error =
            Error::lance("open table chunks", lancedb::Error::Runtime { message: "boom".into() })
                .into();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().starts_with("vector store failed to open table chunks"));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn mismatch_message_says_how_to_recover() {
        let err = Error::ShapeMismatch {
            table: "chunks".to_owned(),
            found: shape("a", 3),
            expected: shape("b", 4),
        };
        let message = err.to_string();
        assert!(message.contains("re-embed the index"), "{message}");
        assert!(!message.contains("/api/"), "a library error names no route: {message}");
    }
}
