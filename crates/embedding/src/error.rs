//! The error type of `ragd-embedding`.

use std::path::PathBuf;

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-embedding`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the embedder needs (model, tokenizer, runtime library) does not exist.
    #[error("{what} not found at {}", path.display())]
    MissingFile {
        /// Which file was looked for.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The ONNX Runtime shared library exists but could not be loaded.
    #[error("could not load ONNX Runtime from {}: {source}", path.display())]
    Runtime {
        /// The library that was loaded.
        path: PathBuf,
        /// What the loader reported.
        source: ort::LoadDynamicError,
    },
    /// ONNX Runtime refused to set up the environment or to load the model.
    #[error("could not load the embedding model {}: {source}", path.display())]
    Model {
        /// The model file (or the runtime library, for environment failures).
        path: PathBuf,
        /// What ONNX Runtime reported.
        source: ort::Error,
    },
    /// The tokenizer file could not be read or configured.
    #[error("could not load the tokenizer {}: {source}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers library reported.
        source: tokenizers::Error,
    },
    /// The model does not fit the configuration (wrong output size, missing inputs).
    #[error("the embedding model {} does not match its configuration: {message}", path.display())]
    ModelMismatch {
        /// The model file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// The configuration itself is unusable (for example a batch size of zero).
    #[error("invalid embedder configuration: {0}")]
    InvalidConfig(String),
    /// The tokenizer rejected an input text.
    #[error("could not tokenize the input: {0}")]
    Tokenize(tokenizers::Error),
    /// ONNX Runtime failed while running the model.
    #[error("embedding inference failed: {0}")]
    Inference(#[from] ort::Error),
    /// The model returned something other than `[batch, sequence, dimensions]`.
    #[error("unexpected model output: {0}")]
    Output(String),
    /// The inference queue is full; the caller should retry later.
    #[error("the embedding queue is full ({capacity} requests waiting); retry later")]
    Overloaded {
        /// The configured queue capacity.
        capacity: usize,
    },
    /// The inference thread has stopped, so no request can be answered.
    #[error("the embedding worker thread has stopped")]
    WorkerStopped,
    /// The inference thread could not be started.
    #[error("could not start the embedding worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingFile { .. }
            | Self::Runtime { .. }
            | Self::Model { .. }
            | Self::Tokenizer { .. }
            | Self::ModelMismatch { .. }
            | Self::WorkerStopped => ErrorKind::Unavailable,
            Self::InvalidConfig(_) | Self::Tokenize(_) => ErrorKind::InvalidInput,
            Self::Overloaded { .. } => ErrorKind::Overloaded,
            Self::Inference(_) | Self::Output(_) | Self::Spawn(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        let converted = Self::new(err.kind(), err.to_string());
        match err {
            Error::Runtime { source, .. } => converted.with_source(source),
            Error::Model { source, .. } | Error::Inference(source) => converted.with_source(source),
            Error::Tokenizer { source, .. } | Error::Tokenize(source) => {
                converted.with_source(source)
            }
            Error::Spawn(source) => converted.with_source(source),
            Error::MissingFile { .. }
            | Error::ModelMismatch { .. }
            | Error::InvalidConfig(_)
            | Error::Output(_)
            | Error::Overloaded { .. }
            | Error::WorkerStopped => converted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_mapped() {
        let missing = Error::MissingFile { what: "model", path: PathBuf::from("/nope/model.onnx") };
        assert_eq!(missing.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::Overloaded { capacity: 1 }.kind(), ErrorKind::Overloaded);
        assert_eq!(Error::WorkerStopped.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::InvalidConfig("x".into()).kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::Output("x".into()).kind(), ErrorKind::Internal);
    }

    #[test]
    fn converts_into_core_error_with_path_in_message() {
        let err: ragd_core::Error =
            Error::MissingFile { what: "embedding model", path: PathBuf::from("/nope/m.onnx") }
                .into();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.message(), "embedding model not found at /nope/m.onnx");
    }
}
