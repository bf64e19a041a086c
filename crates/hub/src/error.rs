//! The error type of `ragd-hub`, classified into [`ErrorKind`].
//!
//! | failure | kind |
//! |---|---|
//! | malformed repo id, path or revision | `InvalidInput` |
//! | 404 from the hub (repo, revision or file missing) | `NotFound` |
//! | 401 / 403 (gated or private repo, no or wrong token) | `Unavailable`, naming `HF_TOKEN` |
//! | not in the cache while offline | `Unavailable` |
//! | connection refused, DNS, TLS, 5xx, interrupted or corrupt transfer | `Unavailable` |
//! | 429 | `Overloaded` |
//! | timeouts | `Timeout` |
//! | the cache folder cannot be written | `Internal` |

use std::path::PathBuf;

use ragd_core::ErrorKind;

use crate::file::HubFile;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while fetching hub files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repo id, file path or revision is malformed.
    #[error("invalid hub reference {file}: {reason}")]
    InvalidReference {
        /// The reference as given.
        file: HubFile,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The endpoint is not an absolute http(s) URL.
    #[error("invalid hub endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The configured endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not cached and downloads are off.
    #[error(
        "{file} is not in the Hugging Face cache at {} and hub downloads are off (offline mode); \
         download it with `huggingface-cli download {} {}` or allow downloads",
        cache_dir.display(), file.repo, file.path
    )]
    Offline {
        /// The file asked for.
        file: HubFile,
        /// The cache that was searched.
        cache_dir: PathBuf,
    },
    /// The hub refused access (401 or 403).
    #[error(
        "the hub refused access to {file} ({status}{}): the repo is gated or private (or does \
         not exist); {}",
        code.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
        if *token_sent {
            "the token in use (HF_TOKEN, HUGGING_FACE_HUB_TOKEN or the `huggingface-cli login` \
             file) lacks access: accept the model's terms on its page or use another token"
        } else {
            "set HF_TOKEN (or run `huggingface-cli login`) with a token that has access"
        }
    )]
    Unauthorized {
        /// The file asked for.
        file: HubFile,
        /// 401 or 403.
        status: u16,
        /// The hub's `X-Error-Code` (`GatedRepo`, `RepoNotFound`, ...).
        code: Option<String>,
        /// Whether a token was sent.
        token_sent: bool,
    },
    /// The repo, the revision or the file does not exist (404).
    #[error("{file} not found on the hub{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    NotFound {
        /// The file asked for.
        file: HubFile,
        /// The hub's `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).
        code: Option<String>,
    },
    /// Any other error status.
    #[error("the hub answered {status} for {url}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The hub could not be reached or the transfer broke off.
    #[error("cannot reach the hub at {url}: {source}")]
    Connect {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        source: reqwest::Error,
    },
    /// A request or a read took longer than its timeout.
    #[error("the hub did not answer in time at {url}: {source}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        source: reqwest::Error,
    },
    /// The answer lacks a header the cache layout needs (the endpoint is probably not a
    /// Hugging Face hub).
    #[error("the answer for {url} has no {header} header; is the endpoint a Hugging Face hub?")]
    MissingHeader {
        /// The URL requested.
        url: String,
        /// The missing header.
        header: &'static str,
    },
    /// A header the cache layout relies on has a value that is unsafe as a file name or
    /// not of the expected shape.
    #[error("the answer for {url} has an invalid {header} header {value:?}")]
    InvalidHeader {
        /// The URL requested.
        url: String,
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
    /// The downloaded file has another size than the hub announced.
    #[error("download of {file} is incomplete: {actual} bytes received, {expected} announced")]
    SizeMismatch {
        /// The file.
        file: HubFile,
        /// The announced size.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// The downloaded file's sha256 differs from the hub's (LFS files only).
    #[error("download of {file} is corrupt: sha256 {actual}, expected {expected}")]
    HashMismatch {
        /// The file.
        file: HubFile,
        /// The sha256 the hub announced.
        expected: String,
        /// The sha256 of the bytes received.
        actual: String,
    },
    /// The cache could not be read or written.
    #[error("cannot write the Hugging Face cache at {}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// What the file system reported.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference { .. } | Self::InvalidEndpoint { .. } => ErrorKind::InvalidInput,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Status { status: 429, .. } => ErrorKind::Overloaded,
            Self::Status { status: 408 | 504, .. } | Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Offline { .. }
            | Self::Unauthorized { .. }
            | Self::Status { .. }
            | Self::Connect { .. }
            | Self::MissingHeader { .. }
            | Self::InvalidHeader { .. }
            | Self::SizeMismatch { .. }
            | Self::HashMismatch { .. } => ErrorKind::Unavailable,
            Self::Io { .. } | Self::Client(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// A transport error, told apart into timeouts and the rest.
    pub(crate) fn transport(url: &reqwest::Url, source: reqwest::Error) -> Self {
        let url = url.to_string();
        if source.is_timeout() {
            Self::Timeout { url, source }
        } else {
            Self::Connect { url, source }
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        let converted = Self::new(err.kind(), err.to_string());
        match err {
            Error::Connect { source, .. }
            | Error::Timeout { source, .. }
            | Error::Client(source) => converted.with_source(source),
            Error::Io { source, .. } => converted.with_source(source),
            Error::InvalidReference { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Offline { .. }
            | Error::Unauthorized { .. }
            | Error::NotFound { .. }
            | Error::Status { .. }
            | Error::MissingHeader { .. }
            | Error::InvalidHeader { .. }
            | Error::SizeMismatch { .. }
            | Error::HashMismatch { .. } => converted,
        }
    }
}
