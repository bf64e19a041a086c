//! The error type of `ragd-chat`.

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-chat`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure reported through a boundary trait (embedder, vector store, LLM backend).
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
    /// The catalog failed or refused (unknown session, bad tag, ...).
    #[error(transparent)]
    Catalog(#[from] ragd_catalog::Error),
    /// Retrieval failed.
    #[error(transparent)]
    Search(#[from] ragd_search::Error),
    /// No model is loaded, so nothing can answer.
    #[error("no chat model is loaded")]
    NoModel,
    /// The request cannot be served as given.
    #[error("{0}")]
    InvalidInput(String),
    /// Too many replies are being generated or waiting; retry later.
    #[error("{0}")]
    Overloaded(String),
    /// The message does not fit the model's context window even without any context.
    #[error(
        "the message needs {needed} prompt tokens, but the model's window of {context_length} \
         tokens leaves {available} after reserving {max_new_tokens} for the answer"
    )]
    ContextTooLong {
        /// Tokens of the bare prompt (system prompt and message).
        needed: usize,
        /// What the window leaves for the prompt.
        available: usize,
        /// The model's window.
        context_length: usize,
        /// Tokens reserved for the answer.
        max_new_tokens: u32,
    },
    /// The chat template could not be rendered.
    #[error("chat template: {0}")]
    Template(#[source] minijinja::Error),
    /// Generation stopped with an error after it had started.
    #[error("generation failed: {0}")]
    Generation(ragd_core::Error),
    /// A background task failed.
    #[error("a chat task failed: {0}")]
    Task(String),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Core(err) | Self::Generation(err) => err.kind(),
            Self::Catalog(err) => err.kind(),
            Self::Search(err) => err.kind(),
            Self::NoModel => ErrorKind::Unavailable,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Overloaded(_) => ErrorKind::Overloaded,
            Self::ContextTooLong { .. } => ErrorKind::ContextTooLong,
            Self::Template(_) | Self::Task(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(err) => err,
            other @ (Error::Catalog(_)
            | Error::Search(_)
            | Error::NoModel
            | Error::InvalidInput(_)
            | Error::Overloaded(_)
            | Error::ContextTooLong { .. }
            | Error::Template(_)
            | Error::Generation(_)
            | Error::Task(_)) => Self::new(other.kind(), other.to_string()).with_source(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_mapped() {
        assert_eq!(Error::NoModel.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::InvalidInput("x".into()).kind(), ErrorKind::InvalidInput);
        let long = Error::ContextTooLong {
            needed: 10,
            available: 5,
            context_length: 8,
            max_new_tokens: 3,
        };
        assert_eq!(long.kind(), ErrorKind::ContextTooLong);
        assert!(long.to_string().contains("10 prompt tokens"));
        let converted: ragd_core::Error = Error::NoModel.into();
        assert_eq!(converted.kind(), ErrorKind::Unavailable);
        // The conversion keeps this error as the source.
        let source = std::error::Error::source(&converted).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("no chat model is loaded"));
    }
}
