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
    /// The file is not one of the supported formats (PDF, DOCX, HTML, Markdown, text).
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
    /// A failure reported through a boundary trait.
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
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
            Self::Chunking(_) => ErrorKind::Internal,
            Self::Core(err) => err.kind(),
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Core(err) => err,
            Error::Empty
            | Error::UnsupportedType { .. }
            | Error::Extraction { .. }
            | Error::InvalidConfig(_)
            | Error::TokenizerLoad { .. }
            | Error::Chunking(_) => Self::new(err.kind(), err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
