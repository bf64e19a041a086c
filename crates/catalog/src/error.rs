//! The error type of `ragd-catalog`.

use ragd_core::ErrorKind;
use rusqlite::ErrorCode;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-catalog`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite reported a failure.
    ///
    /// A busy or locked database is [`ErrorKind::Unavailable`], a violated constraint
    /// (for example a reused id) is [`ErrorKind::Conflict`], anything else is
    /// [`ErrorKind::Internal`].
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Postgres reported a failure.
    ///
    /// A violated constraint is [`ErrorKind::Conflict`], a serialization failure, deadlock
    /// or lost connection [`ErrorKind::Unavailable`], anything else [`ErrorKind::Internal`].
    #[error("catalog database error: {0}")]
    Postgres(#[from] postgres::Error),
    /// The Postgres server could not be reached or refused the connection.
    #[error("cannot connect to the Postgres catalog at {target}: {}", with_causes(source))]
    Connect {
        /// `user@host:port/dbname`, never the password.
        target: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// No connection to the Postgres server could be had in time.
    #[error("catalog database unavailable: {0}")]
    Pool(#[from] r2d2_postgres::r2d2::Error),
    /// The addressed row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked up (`document`, `chunk`, `document text`).
        what: &'static str,
        /// The id that was looked up.
        id: String,
    },
    /// The caller passed something the catalog cannot accept.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A name that must be unique is taken.
    #[error("a {what} named {name:?} already exists")]
    NameTaken {
        /// What is named (`collection`).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A row cannot be deleted while something else depends on it.
    #[error("{what} is in use: {by}")]
    InUse {
        /// What was to be deleted.
        what: String,
        /// What uses it, and what to do.
        by: String,
    },
    /// The database was written by a newer ragd whose schema this build does not know.
    ///
    /// This is [`ErrorKind::Conflict`]: the stored data conflicts with this version of the
    /// code, and nothing was changed. Upgrade ragd or point it at another data directory.
    #[error(
        "catalog schema version {found} is newer than the newest this ragd supports \
         ({supported}); upgrade ragd or use another data directory"
    )]
    SchemaTooNew {
        /// The `user_version` found in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// A stored value could not be read back (an unknown status, a malformed id or time).
    #[error("catalog data is corrupt: {0}")]
    Corrupt(String),
    /// A stored value could not be parsed back (a malformed id, time or metadata).
    #[error("catalog data is corrupt: {what}: {source}")]
    CorruptValue {
        /// What was being read.
        what: String,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A call run through [`crate::Catalog::run`] panicked or was cancelled.
    #[error("a catalog call did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Sqlite(err) => sqlite_kind(err),
            Self::Postgres(err) => postgres_kind(err),
            Self::Pool(_) | Self::Connect { .. } => ErrorKind::Unavailable,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::SchemaTooNew { .. } | Self::NameTaken { .. } | Self::InUse { .. } => {
                ErrorKind::Conflict
            }
            Self::Corrupt(_) | Self::CorruptValue { .. } | Self::Task(_) => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        Self::NotFound { what, id: id.to_string() }
    }
}

/// `err` and its causes, `: `-separated: the client's connection errors keep the reason
/// (a refused certificate, a wrong password) in their source.
fn with_causes(err: &postgres::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(err) = cause {
        let more = err.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = err.source();
    }
    text
}

/// Classifies a SQLite failure by its primary result code.
fn sqlite_kind(err: &rusqlite::Error) -> ErrorKind {
    let Some(code) = err.sqlite_error_code() else {
        return ErrorKind::Internal;
    };
    if matches!(code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) {
        ErrorKind::Unavailable
    } else if code == ErrorCode::ConstraintViolation {
        ErrorKind::Conflict
    } else {
        ErrorKind::Internal
    }
}

/// Classifies a Postgres failure by its SQLSTATE class.
fn postgres_kind(err: &postgres::Error) -> ErrorKind {
    let Some(state) = err.code() else {
        // No SQLSTATE: the connection failed or closed.
        return if err.is_closed() { ErrorKind::Unavailable } else { ErrorKind::Internal };
    };
    match state.code() {
        // Integrity constraint violation.
        code if code.starts_with("23") => ErrorKind::Conflict,
        // Transaction rollback (serialization failure, deadlock), connection exception,
        // insufficient resources, operator intervention.
        code if ["40", "08", "53", "57"].iter().any(|class| code.starts_with(class)) => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        let converted = Self::new(err.kind(), err.to_string());
        match err {
            Error::Sqlite(source) => converted.with_source(source),
            Error::Postgres(source) => converted.with_source(source),
            Error::Pool(source) => converted.with_source(source),
            Error::Connect { source, .. } => converted.with_source(source),
            Error::Task(source) => converted.with_source(source),
            Error::CorruptValue { source, .. } => converted.with_source(source),
            Error::NotFound { .. }
            | Error::InvalidInput(_)
            | Error::NameTaken { .. }
            | Error::InUse { .. }
            | Error::SchemaTooNew { .. }
            | Error::Corrupt(_) => converted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_mapped() {
        assert_eq!(Error::not_found("document", "x").kind(), ErrorKind::NotFound);
        assert_eq!(Error::InvalidInput("x".into()).kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::SchemaTooNew { found: 9, supported: 1 }.kind(), ErrorKind::Conflict);
        assert_eq!(Error::Corrupt("x".into()).kind(), ErrorKind::Internal);
        assert_eq!(Error::Sqlite(rusqlite::Error::InvalidQuery).kind(), ErrorKind::Internal);
    }

    #[test]
    fn converts_into_core_error_with_message() {
        let err: ragd_core::Error = Error::not_found("chunk", "abc").into();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "chunk abc not found");
    }

    #[test]
    fn a_corrupt_value_keeps_the_parser_error_as_its_source() {
        let parse = uuid::Uuid::parse_str("not-a-uuid").unwrap_err();
        let err = Error::CorruptValue { what: "id \"not-a-uuid\"".into(), source: parse.into() };
        assert_eq!(err.kind(), ErrorKind::Internal);
        let core: ragd_core::Error = err.into();
        assert!(core.message().starts_with("catalog data is corrupt: id"), "{}", core.message());
        assert!(std::error::Error::source(&core).is_some());
    }
}
