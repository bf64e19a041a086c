//! The shared error classification.
//!
//! Every crate has its own `thiserror` enum with precise variants, and each of them can say
//! which [`ErrorKind`] it is. The HTTP layer maps an `ErrorKind` to a status code in exactly
//! one exhaustive match, so adding a kind is a compile error there until it is mapped.
//!
//! [`Error`] is the error type of the boundary traits. Implementations convert their own
//! errors into it, keeping the original as `source`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A boxed error usable as a `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The addressed thing does not exist.
    NotFound,
    /// The request is malformed or violates a constraint.
    InvalidInput,
    /// The request conflicts with the current state (e.g. a load while loading).
    Conflict,
    /// The input is larger than allowed.
    PayloadTooLarge,
    /// The input's media type is not supported.
    UnsupportedMediaType,
    /// The input does not fit the model's context window.
    ContextTooLong,
    /// Too much work is queued, or the caller sent too many requests; retry later.
    Overloaded,
    /// The request carries no valid credentials.
    Unauthorized,
    /// The credentials are valid but do not allow this operation (a key limited to some
    /// collections asking to change what every key shares).
    Forbidden,
    /// A dependency (model, backend, store) is not available right now.
    Unavailable,
    /// The operation exceeded its time limit.
    Timeout,
    /// This implementation does not offer the operation.
    Unsupported,
    /// A bug or an unexpected failure inside ragd.
    Internal,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and documentation.
    pub const ALL: [Self; 13] = [
        Self::NotFound,
        Self::InvalidInput,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ContextTooLong,
        Self::Overloaded,
        Self::Unauthorized,
        Self::Forbidden,
        Self::Unavailable,
        Self::Timeout,
        Self::Unsupported,
        Self::Internal,
    ];

    /// The stable, machine-readable code used in API error bodies.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::InvalidInput => "invalid_input",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ContextTooLong => "context_too_long",
            Self::Overloaded => "overloaded",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The error of the boundary traits: a kind, a message for humans, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The classification of this error.
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (without the source chain).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let codes: HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.code()));
        }
    }

    #[test]
    fn error_keeps_kind_message_and_source() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::unavailable("store offline").with_source(io);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.to_string(), "store offline");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "disk on fire");
    }
}
