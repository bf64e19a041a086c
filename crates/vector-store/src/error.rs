//! The error type of `ragd-vector-store`.

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-vector-store`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure reported through a boundary trait.
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Core(err) => err.kind(),
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(err) => err,
        }
    }
}
