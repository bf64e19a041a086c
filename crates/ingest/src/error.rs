//! The error type of `ragd-ingest`.

use std::path::PathBuf;

use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-ingest`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The uploaded file has no bytes.
    #[error("the document is empty")]
    Empty,
    /// The file is not one of the supported formats (see [`crate::DocumentKind`]).
    #[error("unsupported document type ({filename}): {reason}")]
    UnsupportedType {
        /// The file name given by the caller.
        filename: String,
        /// What was found instead of a supported format.
        reason: String,
    },
    /// The file claims a supported format but its text could not be extracted.
    ///
    /// This is [`ErrorKind::InvalidInput`]: the file is malformed (truncated, not the
    /// container it claims to be, or rejected by the parser), and retrying will not help.
    #[error("could not extract text from {format}: {reason}")]
    Extraction {
        /// The format being read (`pdf`, `docx`, `html`).
        format: &'static str,
        /// Why the extraction failed.
        reason: String,
    },
    /// The chunker configuration is unusable (zero size, or overlap not below the size).
    #[error("invalid chunker configuration: {0}")]
    InvalidConfig(String),
    /// The tokenizer file could not be read or parsed.
    #[error("could not load tokenizer {}: {reason}", path.display())]
    TokenizerLoad {
        /// The `tokenizer.json` that was read.
        path: PathBuf,
        /// Why it could not be loaded.
        reason: String,
    },
    /// The tokenizer failed on a piece of text, or the document has more chunks than fit
    /// an ordinal.
    #[error("chunking failed: {0}")]
    Chunking(String),
    /// The work was told to stop (the document was deleted, or the service is stopping).
    #[error("the work was cancelled")]
    Cancelled,
    /// The tokenizer failed on a piece of text.
    #[error("chunking failed: {what}: {source}")]
    Tokenizer {
        /// What the tokenizer was doing.
        what: &'static str,
        /// Its error.
        #[source]
        source: tokenizers::Error,
    },
    /// The embedder could not count a text's tokens.
    #[error("chunking failed: the embedder cannot count tokens: {0}")]
    Count(#[source] ragd_core::Error),
    /// A failure reported through a boundary trait.
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
    /// The catalog refused or failed an operation.
    #[error(transparent)]
    Catalog(#[from] ragd_catalog::Error),
    /// Reading or writing a file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The upload is larger than `max_upload_bytes`.
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// One upload carried more files than a batch may hold.
    #[error("too many files in one upload: at most {max}; send the rest in another request")]
    TooManyFiles {
        /// The most files a batch may hold.
        max: usize,
    },
    /// An upload carried no file.
    #[error("the upload carries no file")]
    NoFiles,
    /// The upload stream broke off.
    #[error("upload failed: {0}")]
    Upload(String),
    /// Ingestion cannot run (no tokenizer loaded).
    #[error("document ingestion is unavailable: {0}")]
    Unavailable(String),
    /// The document is being processed; try again when it is done.
    #[error("{0}")]
    Busy(String),
    /// A waited-for state was not reached in time.
    #[error("{0}")]
    Timeout(String),
    /// A background task died (a panic in an extractor or a cancelled runtime).
    #[error("background task failed: {0}")]
    Task(String),
    /// A background task or process could not be started or waited for.
    #[error("background task failed: {what}: {source}")]
    Spawn {
        /// What was being started or waited for.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The request to an extraction worker could not be encoded.
    #[error("cannot encode the extraction worker's request: {0}")]
    Encode(#[source] serde_json::Error),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Empty | Self::Extraction { .. } | Self::InvalidConfig(_) => {
                ErrorKind::InvalidInput
            }
            Self::UnsupportedType { .. } => ErrorKind::UnsupportedMediaType,
            Self::TokenizerLoad { .. } => ErrorKind::Unavailable,
            Self::Chunking(_)
            | Self::Tokenizer { .. }
            | Self::Count(_)
            | Self::Io { .. }
            | Self::Task(_)
            | Self::Spawn { .. }
            | Self::Encode(_)
            | Self::Join(_) => ErrorKind::Internal,
            Self::Core(err) => err.kind(),
            Self::Catalog(err) => err.kind(),
            Self::TooLarge { .. } | Self::TooManyFiles { .. } => ErrorKind::PayloadTooLarge,
            Self::NoFiles => ErrorKind::InvalidInput,
            Self::Upload(_) => ErrorKind::InvalidInput,
            Self::Unavailable(_) | Self::Cancelled => ErrorKind::Unavailable,
            Self::Busy(_) => ErrorKind::Conflict,
            Self::Timeout(_) => ErrorKind::Timeout,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(err) => err,
            Error::Catalog(err) => err.into(),
            Error::Io { .. }
            | Error::Empty
            | Error::UnsupportedType { .. }
            | Error::Extraction { .. }
            | Error::InvalidConfig(_)
            | Error::TokenizerLoad { .. }
            | Error::Chunking(_)
            | Error::Cancelled
            | Error::Tokenizer { .. }
            | Error::Count(_)
            | Error::TooLarge { .. }
            | Error::TooManyFiles { .. }
            | Error::NoFiles
            | Error::Upload(_)
            | Error::Unavailable(_)
            | Error::Busy(_)
            | Error::Timeout(_)
            | Error::Task(_)
            | Error::Spawn { .. }
            | Error::Encode(_)
            | Error::Join(_) => Self::new(err.kind(), err.to_string()).with_source(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_into_the_core_error_keeps_the_source() {
        let converted: ragd_core::Error = Error::TooManyFiles { max: 3 }.into();
        assert_eq!(converted.kind(), ErrorKind::PayloadTooLarge);
        let source = std::error::Error::source(&converted).map(ToString::to_string);
        assert_eq!(source, Some(Error::TooManyFiles { max: 3 }.to_string()));
    }

    #[test]
    fn kinds_are_mapped() {
        assert_eq!(Error::Empty.kind(), ErrorKind::InvalidInput);
        let unsupported = Error::UnsupportedType { filename: "a.png".into(), reason: "x".into() };
        assert_eq!(unsupported.kind(), ErrorKind::UnsupportedMediaType);
        let extraction = Error::Extraction { format: "pdf", reason: "x".into() };
        assert_eq!(extraction.kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::InvalidConfig("x".into()).kind(), ErrorKind::InvalidInput);
        let load = Error::TokenizerLoad { path: "t.json".into(), reason: "x".into() };
        assert_eq!(load.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::Chunking("x".into()).kind(), ErrorKind::Internal);
    }

    #[test]
    fn converts_into_core_error_with_message() {
        let err: ragd_core::Error =
            Error::Extraction { format: "docx", reason: "bad".into() }.into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.message(), "could not extract text from docx: bad");
    }
}
