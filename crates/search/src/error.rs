//! The error type of `ragd-search`.

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-search`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query is empty, `top_k` is out of range, or a weight is negative.
    #[error("{0}")]
    InvalidInput(String),
    /// Semantic search needs an embedder and a vector store, and one is missing.
    #[error("semantic search is unavailable: {0}")]
    Unavailable(String),
    /// Reranking was asked for and the searcher has no reranker.
    #[error("reranking is unavailable: no reranker is loaded")]
    NoReranker,
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] ragd_catalog::Error),
    /// The embedder or the vector store failed.
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Unavailable(_) | Self::NoReranker => ErrorKind::Unavailable,
            Self::Catalog(err) => err.kind(),
            Self::Core(err) => err.kind(),
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(err) => err,
            Error::Catalog(err) => err.into(),
            Error::InvalidInput(_) | Error::Unavailable(_) | Error::NoReranker => {
                Self::new(err.kind(), err.to_string())
            }
        }
    }
}
