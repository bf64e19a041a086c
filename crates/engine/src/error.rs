//! The engine's error: why it could not open.

use std::path::PathBuf;

use ragd_core::ErrorKind;

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the engine could not open. Components that are optional (the embedding model, the
/// vector store, the chat model) do not fail the engine: it opens without them and reports
/// why in [`crate::Health`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The SQLite catalog could not be opened or migrated.
    #[error("cannot open the catalog: {0}")]
    Catalog(#[from] ragd_catalog::Error),
    /// The documents service could not be set up, or recovery failed.
    #[error("documents: {0}")]
    Ingest(#[from] ragd_ingest::Error),
    /// The chat service refused its configuration.
    #[error("chat: {0}")]
    Chat(#[from] ragd_chat::Error),
    /// The model manager refused the chat model given to the builder.
    #[error("chat model: {0}")]
    Model(#[source] ragd_core::Error),
    /// A blocking start-up task panicked.
    #[error("a start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// The classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidConfig(_) => ErrorKind::InvalidInput,
            Self::Catalog(err) => err.kind(),
            Self::Ingest(err) => err.kind(),
            Self::Chat(err) => err.kind(),
            Self::Model(err) => err.kind(),
            Self::DataDir { .. } | Self::Task(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        Self::new(err.kind(), err.to_string()).with_source(err)
    }
}
