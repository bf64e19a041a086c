//! The error type of `ragd-telemetry`.
//!
//! Almost nothing here is an error: a value the platform cannot give is `None` in the
//! snapshot, and a missing GPU is `gpus: []` with a reason. What remains is the platform
//! refusing to report anything at all, or the sampler thread failing to start.

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-telemetry`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The platform does not report system information.
    #[error("system information is not available on this platform: {0}")]
    Unsupported(#[source] sysinfo::Error),
    /// The sampler thread could not be started.
    #[error("cannot start the system sampler thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Thread(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        Self::new(err.kind(), err.to_string()).with_source(err)
    }
}
