//! [`LocalLlm`]: in-process GGUF models through llama.cpp.
//!
//! Two layers, as in `ragd-embedding`: the async front renders the chat template,
//! tokenises and checks the context budget on the caller's thread, then hands a job to a
//! bounded channel; one OS thread named `ragd-llm` owns the llama.cpp context, runs up to
//! [`LocalLlmConfig::parallel`] jobs at once by continuous batching (see `worker`) and
//! streams [`CompletionDelta`]s back. A full queue is answered at once with `Overloaded`,
//! and dropping the stream cancels the generation between two tokens.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};
use ragd_core::{
    ChatMessage, Completion, CompletionDelta, CompletionRequest, GenerationSettings, LlmBackend,
};
use tokio::sync::mpsc;
use tracing::Span;

use crate::error::{Error, Result};
use crate::worker::{self, Job};
use crate::{DEFAULT_PARALLEL, MAX_PARALLEL};

/// The context length used when the configuration names none and the model was trained
/// on a longer one: KV-cache memory grows with it, and ragd's prompts are budgeted anyway.
pub const DEFAULT_MAX_CONTEXT: u32 = 4096;

/// How many requests may wait for the generation thread by default.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16;

/// The first bytes of every GGUF file.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// The template llama.cpp renders when the model has none (or an unsupported one).
const FALLBACK_TEMPLATE: &str = "chatml";

/// The name reported by [`LlmBackend::name`].
const BACKEND_NAME: &str = "llama-cpp";

/// How to load a GGUF model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLlmConfig {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The context window in tokens; `None` takes the model's training context, capped at
    /// [`DEFAULT_MAX_CONTEXT`].
    pub context_length: Option<u32>,
    /// Threads for generation and prompt evaluation; `None` takes half the available
    /// parallelism (about the physical cores), at least 1. llama.cpp's OpenMP threads spin
    /// while they wait, so more threads than free cores slows generation down sharply.
    pub threads: Option<i32>,
    /// Layers offloaded to the GPU; 0 runs on the CPU (and a build without a GPU backend
    /// ignores it).
    pub gpu_layers: u32,
    /// The id reported by [`LlmBackend::model_id`]; `None` takes the file stem.
    pub model_id: Option<String>,
    /// How many requests may wait for the generation thread before `Overloaded`.
    pub queue_capacity: usize,
    /// How many generations run at once, each in its own sequence of the context with
    /// `context_length` tokens of KV cache (so the cache takes `parallel` times the memory
    /// of one sequence); more wait in the queue. 1 to [`MAX_PARALLEL`].
    pub parallel: usize,
}

impl LocalLlmConfig {
    /// The defaults for the model at `model_path`: its own context (capped), llama.cpp's
    /// thread count, the CPU, the file stem as id.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            context_length: None,
            threads: None,
            gpu_layers: 0,
            model_id: None,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            parallel: DEFAULT_PARALLEL,
        }
    }

    /// Checks the limits that do not need the model.
    fn validate(&self) -> Result<()> {
        if self.context_length == Some(0) {
            return Err(Error::InvalidConfig("context_length must be at least 1".to_owned()));
        }
        if let Some(threads) = self.threads
            && threads < 1
        {
            return Err(Error::InvalidConfig(format!("threads must be at least 1, not {threads}")));
        }
        if self.queue_capacity == 0 {
            return Err(Error::InvalidConfig("queue_capacity must be at least 1".to_owned()));
        }
        if !(1..=MAX_PARALLEL).contains(&self.parallel) {
            return Err(Error::InvalidConfig(format!(
                "parallel must be between 1 and {MAX_PARALLEL}, not {}",
                self.parallel
            )));
        }
        Ok(())
    }
}

/// llama.cpp allows one backend per process, so every model shares this one. It keeps the
/// error message when initialisation failed, as the error itself cannot be cloned.
static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

/// Returns the process-wide llama.cpp backend, initialising it (and routing llama.cpp's
/// logs to `tracing`) the first time.
pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    let backend = BACKEND.get_or_init(|| {
        let backend = LlamaBackend::init().map_err(|err| err.to_string())?;
        send_logs_to_tracing(LogOptions::default());
        Ok(backend)
    });
    backend.as_ref().map_err(|message| Error::Backend(message.clone()))
}

/// Half the available parallelism (hyper-threads share a core's arithmetic units), at
/// least 1.
pub(crate) fn default_threads() -> i32 {
    let logical = thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    i32::try_from(logical / 2).unwrap_or(i32::MAX).max(1)
}

/// The id a model reports: the configured one, else the file's stem.
pub(crate) fn model_id_of(configured: Option<&str>, path: &Path) -> String {
    configured.map_or_else(
        || {
            path.file_stem().map_or_else(
                || path.display().to_string(),
                |stem| stem.to_string_lossy().into_owned(),
            )
        },
        str::to_owned,
    )
}

/// Fails unless `path` is a readable file starting with the GGUF magic bytes.
pub(crate) fn check_gguf(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::MissingModel { path: path.to_path_buf() });
    }
    let read_error = |source| Error::ReadModel { path: path.to_path_buf(), source };
    let mut magic = [0_u8; 4];
    let mut file = File::open(path).map_err(read_error)?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == GGUF_MAGIC => Ok(()),
        Ok(()) => Err(Error::NotGguf { path: path.to_path_buf() }),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(Error::NotGguf { path: path.to_path_buf() })
        }
        Err(err) => Err(read_error(err)),
    }
}

/// A GGUF model served by llama.cpp, implementing [`LlmBackend`].
///
/// Prompts are rendered with the chat template from the model's metadata through
/// llama.cpp's built-in template engine (it recognises the common templates by their
/// markers rather than running Jinja). When the model has no template, or one llama.cpp
/// does not recognise, the ChatML template is used instead and a warning is logged.
///
/// Share it as `Arc<dyn LlmBackend>`. Dropping it stops the generation thread: queued and
/// running jobs end with `WorkerStopped` at the next step, and the drop waits for the
/// thread (at most one decode step), so no thread is left inside llama.cpp when the model,
/// or the process, goes away.
pub struct LocalLlm {
    model_id: String,
    context_length: u32,
    queue_capacity: usize,
    parallel: usize,
    /// The template from the model's metadata, as [`LlmBackend::chat_template`] reports it.
    chat_template: Option<String>,
    /// The template prompts are rendered with (the model's, or the ChatML fallback).
    template: LlamaChatTemplate,
    /// Shared with the generation thread; tokenising and rendering only read it.
    model: Arc<LlamaModel>,
    /// The queue; `None` once dropping started.
    jobs: Option<mpsc::Sender<Job>>,
    /// Tells the generation thread to stop at its next step.
    stop: Arc<AtomicBool>,
    /// The generation thread, joined on drop.
    worker: Option<thread::JoinHandle<()>>,
}

impl Drop for LocalLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Closing the queue wakes a thread that waits for work.
        self.jobs = None;
        if let Some(worker) = self.worker.take()
            && worker.join().is_err()
        {
            tracing::error!("the LLM generation thread panicked");
        }
    }
}

impl fmt::Debug for LocalLlm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLlm")
            .field("model_id", &self.model_id)
            .field("context_length", &self.context_length)
            .field("queue_capacity", &self.queue_capacity)
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

impl LocalLlm {
    /// Loads the model, creates its context (`parallel` sequences of `context_length`
    /// tokens) and starts the `ragd-llm` generation thread.
    ///
    /// This blocks while the model loads; async callers run it inside
    /// `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::MissingModel`] (kind `Unavailable`, with the path) when the file does not
    /// exist; [`Error::NotGguf`] or [`Error::LoadModel`] (kind `InvalidInput`) when it is
    /// not a model llama.cpp can load; [`Error::InvalidConfig`] for unusable settings;
    /// `Unavailable` errors when llama.cpp cannot start or allocate the context.
    pub fn load(config: &LocalLlmConfig) -> Result<Self> {
        config.validate()?;
        let path = &config.model_path;
        check_gguf(path)?;
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
        let model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|source| Error::LoadModel { path: path.clone(), source })?;

        let trained = model.n_ctx_train();
        let context_length = match config.context_length {
            Some(length) => length,
            None if trained == 0 => DEFAULT_MAX_CONTEXT,
            None => trained.min(DEFAULT_MAX_CONTEXT),
        };
        let chat_template = match model.chat_template(None) {
            Ok(template) => template.to_string().ok(),
            Err(err) => {
                tracing::debug!(error = %err, "the model has no chat template");
                None
            }
        };
        let template = pick_template(&model, chat_template.as_deref())?;

        let model = Arc::new(model);
        let parallel = config.parallel;
        // One KV cache shared by the sequences, `parallel` times one request's context (as
        // `llama-server --kv-unified`, its default): llama.cpp then evaluates any mix of
        // sequences in one micro-batch, where split caches batch only runs of consecutive
        // sequence ids. Each request is held to `context_length` by `start`, so together
        // they always fit.
        let too_large = || {
            Error::InvalidConfig(format!(
                "context_length {context_length} times parallel {parallel} is too large"
            ))
        };
        let sequences = u32::try_from(parallel).map_err(|_| too_large())?;
        let total_context = context_length.checked_mul(sequences).ok_or_else(too_large)?;
        let threads = config.threads.unwrap_or_else(default_threads);
        let context_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(total_context))
            .with_n_seq_max(sequences)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let (jobs, queue) = mpsc::channel(config.queue_capacity);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker_model = Arc::clone(&model);
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = Arc::clone(&stop);
        let worker = thread::Builder::new()
            .name("ragd-llm".to_owned())
            .spawn(move || {
                let shared = worker::Shared { parallel, stop: &worker_stop };
                worker::run(&worker_model, backend, context_params, shared, &ready_tx, queue);
            })
            .map_err(Error::Spawn)?;
        ready_rx.recv().map_err(|_| Error::WorkerStopped)??;

        let model_id = model_id_of(config.model_id.as_deref(), path);
        tracing::info!(
            model = %model_id,
            path = %path.display(),
            context_length,
            trained_context = trained,
            gpu_layers = config.gpu_layers,
            threads,
            parallel,
            has_chat_template = chat_template.is_some(),
            "loaded GGUF model"
        );
        Ok(Self {
            model_id,
            context_length,
            queue_capacity: config.queue_capacity,
            parallel,
            chat_template,
            template,
            model,
            jobs: Some(jobs),
            stop,
            worker: Some(worker),
        })
    }

    /// How many generations run at once.
    #[must_use]
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// Renders `messages` with the chat template, the assistant's turn opened.
    fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::InvalidRequest("the conversation has no messages".to_owned()));
        }
        let chat = messages
            .iter()
            .map(|message| {
                LlamaChatMessage::new(message.role.as_str().to_owned(), message.content.clone())
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| {
                Error::InvalidRequest(format!("a message contains a NUL byte: {err}"))
            })?;
        self.model.apply_chat_template(&self.template, &chat, true).map_err(Error::Template)
    }

    /// Tokenises a rendered prompt: special-token markers are parsed as tokens and BOS is
    /// added when the model asks for it.
    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(prompt.as_bytes(), true, true)
    }

    /// Validates the request, renders and tokenises the prompt, checks that it fits and
    /// queues the job; returns the receiving end of its deltas.
    fn start(
        &self,
        req: CompletionRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<CompletionDelta>>> {
        validate_settings(&req.settings)?;
        let prompt = self.render(&req.messages)?;
        let tokens = self.tokenize_prompt(&prompt);
        if tokens.is_empty() {
            return Err(Error::InvalidRequest("the prompt has no tokens".to_owned()));
        }
        let max_new_tokens = req.settings.max_new_tokens;
        let budget = usize::try_from(self.context_length).unwrap_or(usize::MAX);
        let needed = usize::try_from(max_new_tokens)
            .ok()
            .and_then(|max_new| tokens.len().checked_add(max_new));
        if needed.is_none_or(|needed| needed > budget) {
            return Err(Error::ContextTooLong {
                prompt_tokens: tokens.len(),
                max_new_tokens,
                context_length: self.context_length,
            });
        }
        // Unbounded: a job sends at most `max_new_tokens` deltas, and a slow reader must
        // not hold up the other sequences of the batch.
        let (deltas, receiver) = mpsc::unbounded_channel();
        let job = Job {
            tokens,
            settings: req.settings,
            span: Span::current(),
            deltas,
            queued_at: Instant::now(),
        };
        let jobs = self.jobs.as_ref().ok_or(Error::WorkerStopped)?;
        jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                Error::Overloaded { capacity: self.queue_capacity }
            }
            mpsc::error::TrySendError::Closed(_) => Error::WorkerStopped,
        })?;
        Ok(receiver)
    }
}

/// Picks the template to render prompts with: the model's when llama.cpp can render it,
/// otherwise ChatML.
pub(crate) fn pick_template(
    model: &LlamaModel,
    from_model: Option<&str>,
) -> Result<LlamaChatTemplate> {
    let fallback = || {
        LlamaChatTemplate::new(FALLBACK_TEMPLATE)
            .map_err(|err| Error::Setup { what: "fallback chat template", source: err.into() })
    };
    let Some(source) = from_model else {
        tracing::warn!("the model has no chat template; using ChatML");
        return fallback();
    };
    let Ok(template) = LlamaChatTemplate::new(source) else {
        tracing::warn!("the model's chat template contains a NUL byte; using ChatML");
        return fallback();
    };
    let probe = LlamaChatMessage::new("user".to_owned(), "ping".to_owned())
        .map_err(|err| Error::Setup { what: "template probe message", source: err.into() })?;
    match model.apply_chat_template(&template, &[probe], true) {
        Ok(_) => Ok(template),
        Err(err) => {
            tracing::warn!(error = %err, "llama.cpp does not support the model's chat template; using ChatML");
            fallback()
        }
    }
}

/// Rejects sampling settings llama.cpp cannot use.
fn validate_settings(settings: &GenerationSettings) -> Result<()> {
    let invalid = |message: String| Err(Error::InvalidRequest(message));
    if !settings.temperature.is_finite() || settings.temperature < 0.0 {
        return invalid(format!("temperature must be 0 or more, not {}", settings.temperature));
    }
    if !(settings.top_p > 0.0 && settings.top_p <= 1.0) {
        return invalid(format!("top_p must be in (0, 1], not {}", settings.top_p));
    }
    if !settings.repetition_penalty.is_finite() || settings.repetition_penalty <= 0.0 {
        return invalid(format!(
            "repetition_penalty must be above 0, not {}",
            settings.repetition_penalty
        ));
    }
    if i32::try_from(settings.top_k).is_err() {
        return invalid(format!("top_k {} is too large", settings.top_k));
    }
    if settings.max_new_tokens == 0 {
        return invalid("max_new_tokens must be at least 1".to_owned());
    }
    Ok(())
}

/// Turns a delta receiver into the stream [`LlmBackend::stream`] returns.
fn into_stream(
    receiver: mpsc::UnboundedReceiver<Result<CompletionDelta>>,
) -> BoxStream<'static, ragd_core::Result<CompletionDelta>> {
    stream::unfold(receiver, |mut receiver| async move {
        let item = receiver.recv().await?;
        Some((item.map_err(ragd_core::Error::from), receiver))
    })
    .boxed()
}

#[async_trait]
impl LlmBackend for LocalLlm {
    fn name(&self) -> &str {
        BACKEND_NAME
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn context_length(&self) -> usize {
        usize::try_from(self.context_length).unwrap_or(usize::MAX)
    }

    /// Counts the tokens of `text` as plain text: no BOS, special-token markers not parsed.
    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        Ok(self.model.vocab().tokenize(text.as_bytes(), false, false).len())
    }

    fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The prompt exactly as `complete` and `stream` send it: llama.cpp's rendering of the
    /// model's template, tokenised with BOS and special tokens.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Option<ragd_core::Result<usize>> {
        Some(
            self.render(messages)
                .map(|prompt| self.tokenize_prompt(&prompt).len())
                .map_err(ragd_core::Error::from),
        )
    }

    async fn complete(&self, req: CompletionRequest) -> ragd_core::Result<Completion> {
        let mut receiver = self.start(req)?;
        let mut text = String::new();
        while let Some(delta) = receiver.recv().await {
            match delta? {
                CompletionDelta::Text(piece) => text.push_str(&piece),
                CompletionDelta::Done { finish_reason, usage } => {
                    let model = self.model_id.clone();
                    return Ok(Completion { text, finish_reason, usage, model });
                }
            }
        }
        Err(Error::WorkerStopped.into())
    }

    async fn stream(
        &self,
        req: CompletionRequest,
    ) -> ragd_core::Result<BoxStream<'static, ragd_core::Result<CompletionDelta>>> {
        Ok(into_stream(self.start(req)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        assert!(validate_settings(&GenerationSettings::default()).is_ok());
        let bad = [
            GenerationSettings { temperature: -1.0, ..GenerationSettings::default() },
            GenerationSettings { top_p: 0.0, ..GenerationSettings::default() },
            GenerationSettings { repetition_penalty: 0.0, ..GenerationSettings::default() },
            GenerationSettings { max_new_tokens: 0, ..GenerationSettings::default() },
            GenerationSettings { top_k: u32::MAX, ..GenerationSettings::default() },
        ];
        for settings in bad {
            let err = validate_settings(&settings).unwrap_err();
            assert_eq!(err.kind(), ragd_core::ErrorKind::InvalidInput, "{settings:?}");
        }
    }

    #[test]
    fn config_is_validated() {
        let mut config = LocalLlmConfig::new("/nope/model.gguf");
        assert!(config.validate().is_ok());
        config.context_length = Some(0);
        assert!(config.validate().is_err());
    }

    #[test]
    fn missing_and_non_gguf_files_are_told_apart() {
        let err = check_gguf(Path::new("/nope/model.gguf")).unwrap_err();
        assert_eq!(err.kind(), ragd_core::ErrorKind::Unavailable);
        assert!(err.to_string().contains("/nope/model.gguf"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.gguf");
        std::fs::write(&path, b"not a model").unwrap();
        let err = check_gguf(&path).unwrap_err();
        assert!(matches!(err, Error::NotGguf { .. }));
        assert_eq!(err.kind(), ragd_core::ErrorKind::InvalidInput);
    }
}
