//! The error type of `ragd-llm-backends`.

use std::path::PathBuf;

#[cfg(feature = "llama")]
use llama_cpp_2::llama_batch::BatchAddError;
#[cfg(feature = "llama")]
use llama_cpp_2::{
    ApplyChatTemplateError, DecodeError, LlamaContextLoadError, LlamaModelLoadError,
};
use ragd_core::ErrorKind;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ragd-llm-backends`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failure reported through a boundary trait.
    #[error(transparent)]
    Core(#[from] ragd_core::Error),
    /// The model file does not exist.
    #[error("model file not found at {}", path.display())]
    MissingModel {
        /// Where the model was looked for.
        path: PathBuf,
    },
    /// The model file exists but could not be read.
    #[error("could not read the model file {}: {source}", path.display())]
    ReadModel {
        /// The model file.
        path: PathBuf,
        /// What the file system reported.
        source: std::io::Error,
    },
    /// The file is not a GGUF model (its magic bytes are wrong).
    #[error("{} is not a GGUF model file", path.display())]
    NotGguf {
        /// The file that was checked.
        path: PathBuf,
    },
    /// llama.cpp refused to load the model.
    #[cfg(feature = "llama")]
    #[error("llama.cpp could not load the model {}: {source}", path.display())]
    LoadModel {
        /// The model file.
        path: PathBuf,
        /// What llama.cpp reported.
        source: LlamaModelLoadError,
    },
    /// The llama.cpp backend could not be initialised (the message of llama.cpp's error,
    /// which is kept once per process and so cannot be handed out as a source).
    #[error("could not initialise the llama.cpp backend: {0}")]
    Backend(String),
    /// llama.cpp could not create an inference context (usually out of memory).
    #[cfg(feature = "llama")]
    #[error("could not create a llama.cpp context of {context_length} tokens: {source}")]
    CreateContext {
        /// The requested context length.
        context_length: u32,
        /// What llama.cpp reported.
        source: LlamaContextLoadError,
    },
    /// The configuration is unusable (for example a context length of zero).
    #[error("invalid LLM configuration: {0}")]
    InvalidConfig(String),
    /// The request is unusable (no messages, bad sampling settings, NUL bytes).
    #[error("invalid completion request: {0}")]
    InvalidRequest(String),
    /// The chat template could not render the conversation.
    #[cfg(feature = "llama")]
    #[error("could not render the chat template: {0}")]
    Template(#[source] ApplyChatTemplateError),
    /// The prompt and the requested completion do not fit the context window.
    #[error(
        "the prompt has {prompt_tokens} tokens and up to {max_new_tokens} may be generated, \
         but the context holds {context_length}"
    )]
    ContextTooLong {
        /// Tokens in the rendered prompt.
        prompt_tokens: usize,
        /// The requested `max_new_tokens`.
        max_new_tokens: u32,
        /// The context window.
        context_length: u32,
    },
    /// The generation queue is full; the caller should retry later.
    #[error("the generation queue is full ({capacity} requests waiting); retry later")]
    Overloaded {
        /// The configured queue capacity.
        capacity: usize,
    },
    /// A fixed piece of the prompt machinery (the fallback template, the probe message) could
    /// not be built: a bug, with llama-cpp-2's error as the source.
    #[error("could not build the {what}: {source}")]
    Setup {
        /// What was being built.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Hugging Face model folder cannot be imported: what is wrong with it (no
    /// `config.json`, a missing shard, a damaged tensor).
    #[error("cannot import the model folder {}: {reason}", dir.display())]
    InvalidModel {
        /// The model folder.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A Hugging Face model uses something the importer does not convert (an architecture,
    /// a tokenizer, a weight format).
    #[error("cannot import the model folder {}: {reason}", dir.display())]
    UnsupportedModel {
        /// The model folder.
        dir: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// The imported model could not be written.
    #[error("could not write the imported model {}: {source}", path.display())]
    WriteModel {
        /// The file being written.
        path: PathBuf,
        /// What the file system reported.
        source: std::io::Error,
    },
    /// llama.cpp's quantizer failed.
    #[error("llama.cpp could not quantize {} to {quantization}", path.display())]
    Quantize {
        /// The model being quantized.
        path: PathBuf,
        /// The quantization asked for.
        quantization: &'static str,
    },
    /// The generation thread has stopped, so no request can be answered.
    #[error("the LLM worker thread has stopped")]
    WorkerStopped,
    /// The generation thread could not be started.
    #[error("could not start the LLM worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A batch could not be filled (a bug: batches are sized to the context).
    #[cfg(feature = "llama")]
    #[error("could not fill a llama.cpp batch: {0}")]
    Batch(#[source] BatchAddError),
    /// llama.cpp failed while evaluating tokens.
    #[cfg(feature = "llama")]
    #[error("llama.cpp failed to decode: {0}")]
    Decode(#[source] DecodeError),
}

impl Error {
    /// The shared classification of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Core(err) => err.kind(),
            Self::MissingModel { .. }
            | Self::ReadModel { .. }
            | Self::Backend(_)
            | Self::WorkerStopped => ErrorKind::Unavailable,
            #[cfg(feature = "llama")]
            Self::CreateContext { .. } => ErrorKind::Unavailable,
            Self::NotGguf { .. }
            | Self::InvalidConfig(_)
            | Self::InvalidRequest(_)
            | Self::InvalidModel { .. } => ErrorKind::InvalidInput,
            Self::UnsupportedModel { .. } => ErrorKind::Unsupported,
            Self::WriteModel { .. } => ErrorKind::Unavailable,
            Self::Quantize { .. } => ErrorKind::Internal,
            #[cfg(feature = "llama")]
            Self::LoadModel { .. } | Self::Template(_) => ErrorKind::InvalidInput,
            Self::ContextTooLong { .. } => ErrorKind::ContextTooLong,
            Self::Overloaded { .. } => ErrorKind::Overloaded,
            Self::Spawn(_) | Self::Setup { .. } => ErrorKind::Internal,
            #[cfg(feature = "llama")]
            Self::Batch(_) | Self::Decode(_) => ErrorKind::Internal,
        }
    }
}

impl From<Error> for ragd_core::Error {
    fn from(err: Error) -> Self {
        let converted = Self::new(err.kind(), err.to_string());
        match err {
            Error::Core(err) => err,
            Error::ReadModel { source, .. }
            | Error::Spawn(source)
            | Error::WriteModel { source, .. } => converted.with_source(source),
            Error::Setup { source, .. } => converted.with_source(source),
            #[cfg(feature = "llama")]
            Error::LoadModel { source, .. } => converted.with_source(source),
            #[cfg(feature = "llama")]
            Error::CreateContext { source, .. } => converted.with_source(source),
            #[cfg(feature = "llama")]
            Error::Template(source) => converted.with_source(source),
            #[cfg(feature = "llama")]
            Error::Batch(source) => converted.with_source(source),
            #[cfg(feature = "llama")]
            Error::Decode(source) => converted.with_source(source),
            Error::MissingModel { .. }
            | Error::Backend(_)
            | Error::NotGguf { .. }
            | Error::InvalidConfig(_)
            | Error::InvalidRequest(_)
            | Error::InvalidModel { .. }
            | Error::UnsupportedModel { .. }
            | Error::Quantize { .. }
            | Error::ContextTooLong { .. }
            | Error::Overloaded { .. }
            | Error::WorkerStopped => converted,
        }
    }
}

#[cfg(all(test, feature = "llama"))]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_mapped() {
        let missing = Error::MissingModel { path: PathBuf::from("/nope/m.gguf") };
        assert_eq!(missing.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::NotGguf { path: PathBuf::from("x") }.kind(), ErrorKind::InvalidInput);
        let too_long =
            Error::ContextTooLong { prompt_tokens: 10, max_new_tokens: 5, context_length: 8 };
        assert_eq!(too_long.kind(), ErrorKind::ContextTooLong);
        assert_eq!(Error::Overloaded { capacity: 1 }.kind(), ErrorKind::Overloaded);
        assert_eq!(Error::WorkerStopped.kind(), ErrorKind::Unavailable);
        assert_eq!(Error::Decode(DecodeError::NoKvCacheSlot).kind(), ErrorKind::Internal);
    }

    #[test]
    fn converts_into_core_error_with_path_and_source() {
        let err: ragd_core::Error =
            Error::MissingModel { path: PathBuf::from("/nope/m.gguf") }.into();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(err.message(), "model file not found at /nope/m.gguf");

        let err: ragd_core::Error = Error::Decode(DecodeError::NoKvCacheSlot).into();
        assert!(std::error::Error::source(&err).is_some());
    }
}
