//! [`OrtEmbedder`]: the async front of the embedder and its dedicated inference thread.
//!
//! Two layers, as in Hugging Face TEI: callers hand a job to a bounded channel and await a
//! oneshot answer; one OS thread named `ragd-embedder` owns the ONNX Runtime session and
//! runs the jobs. `Session::run` therefore never runs on a tokio worker, and a full queue is
//! answered at once with `Overloaded` instead of piling up.
//!
//! Jobs that queued up while the thread was busy run together (up to two batches' worth),
//! as TEI's queue does: their
//! texts go through one length-sorted batch plan ([`crate::batch::plan_batches`]), so the
//! chunks of documents ingested side by side, or a tail chunk and a heading of different
//! documents, share batches instead of each job padding its own.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use async_trait::async_trait;
use ragd_core::{Embedder, Embedding};
use tokenizers::Tokenizer;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;

use crate::backend::{Backend, load_tokenizer};
use crate::config::{EmbedderConfig, Priority};
use crate::error::{Error, Result};

/// One request for the inference thread.
struct Job {
    texts: Vec<String>,
    /// The caller's span, entered while the job runs so its logs nest under the request.
    span: Span,
    reply: oneshot::Sender<Result<Vec<Embedding>>>,
}

/// Sentence embeddings on ONNX Runtime, implementing [`Embedder`].
///
/// Cloning is not offered; share it as `Arc<dyn Embedder>`. Dropping the last handle
/// closes the queue, and the inference thread exits after the jobs already queued.
#[derive(Debug)]
pub struct OrtEmbedder {
    model_id: String,
    dimensions: usize,
    max_tokens: usize,
    max_batch_size: usize,
    queue_capacity: usize,
    provider: &'static str,
    /// Counts tokens without truncation, on the caller's thread.
    counter: Arc<Tokenizer>,
    jobs: mpsc::Sender<Job>,
    stats: Arc<Counters>,
}

/// Full batches' worth of texts gathered from queued jobs into one run; a job that brings
/// the run past it still joins whole. Every job of a run is answered when the run ends, so
/// this bounds how long a query taken with ingest work waits: two batches, where it used to
/// wait for its own job only. Two is what two ingest workers' calls fill.
const MERGE_BATCHES: usize = 2;

/// What the inference thread has done, counted as it goes.
#[derive(Debug, Default)]
struct Counters {
    jobs: AtomicU64,
    runs: AtomicU64,
}

/// What an [`OrtEmbedder`] has done since it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbedderStats {
    /// Embedding calls answered (successfully or not).
    pub jobs: u64,
    /// Passes of the batch planner over queued jobs: fewer than `jobs` when jobs that queued
    /// together ran together.
    pub runs: u64,
}

impl OrtEmbedder {
    /// Loads ONNX Runtime, the model and the tokenizer, and starts the inference thread.
    ///
    /// This blocks while the model loads (hundreds of milliseconds); async callers run it
    /// inside `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::MissingFile`] (kind `Unavailable`, with the path) when the model, the
    /// tokenizer or the runtime library is missing; other `Unavailable` errors when they
    /// cannot be loaded or the model does not match `config`; `InvalidInput` for unusable
    /// limits in `config`.
    pub fn load(config: &EmbedderConfig) -> Result<Self> {
        config.validate()?;
        let counter = load_tokenizer(&config.tokenizer_path)?;
        let loaded = Backend::load(config, &counter)?;
        let (jobs, queue) = mpsc::channel(config.queue_capacity);
        let mut backend = loaded.backend;
        let priority = config.priority;
        let stats = Arc::new(Counters::default());
        let counted = Arc::clone(&stats);
        let merge_texts = config.max_batch_size.saturating_mul(MERGE_BATCHES);
        thread::Builder::new()
            .name("ragd-embedder".to_owned())
            .spawn(move || {
                set_priority(priority);
                serve(&mut backend, queue, merge_texts, &counted);
            })
            .map_err(Error::Spawn)?;
        Ok(Self {
            model_id: config.model_id.clone(),
            dimensions: config.dimensions,
            max_tokens: config.max_tokens,
            max_batch_size: config.max_batch_size,
            queue_capacity: config.queue_capacity,
            provider: loaded.provider,
            counter: Arc::new(counter),
            jobs,
            stats,
        })
    }

    /// Jobs answered and runs made so far.
    #[must_use]
    pub fn stats(&self) -> EmbedderStats {
        EmbedderStats {
            jobs: self.stats.jobs.load(Ordering::Relaxed),
            runs: self.stats.runs.load(Ordering::Relaxed),
        }
    }

    /// The execution provider that runs inference: `"cpu"` or `"cuda"`.
    #[must_use]
    pub fn provider(&self) -> &str {
        self.provider
    }

    /// Embeds `texts` in order on the inference thread.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when the queue is full, [`Error::WorkerStopped`] when the
    /// inference thread is gone, and inference or tokenizer failures.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job { texts, span: Span::current(), reply };
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                Error::Overloaded { capacity: self.queue_capacity }
            }
            mpsc::error::TrySendError::Closed(_) => Error::WorkerStopped,
        })?;
        answer.await.map_err(|_| Error::WorkerStopped)?
    }
}

/// Gives the calling thread `priority`. A refusal by the operating system only costs
/// responsiveness elsewhere, so it is logged, not fatal.
fn set_priority(priority: Priority) {
    match priority {
        Priority::Normal => {}
        Priority::Background => {
            if let Err(err) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::warn!(error = ?err, "could not lower the embedder thread's priority");
            }
        }
    }
}

/// The inference thread: answers jobs until every sender is dropped. Each run takes the
/// next job and the jobs queued behind it, up to `merge_texts` texts.
fn serve(
    backend: &mut Backend,
    mut queue: mpsc::Receiver<Job>,
    merge_texts: usize,
    stats: &Counters,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut texts = first.texts.len();
        let mut jobs = vec![first];
        while texts < merge_texts {
            let Ok(job) = queue.try_recv() else { break };
            texts += job.texts.len();
            jobs.push(job);
        }
        // A caller that gave up (its future was dropped) no longer needs the work.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        stats.runs.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        match <[Job; 1]>::try_from(jobs) {
            Ok([job]) => run_alone(backend, job),
            Err(jobs) => run_together(backend, jobs),
        }
    }
    tracing::debug!("embedder queue closed; inference thread exits");
}

/// Runs one job in its caller's span and answers it.
fn run_alone(backend: &mut Backend, job: Job) {
    let result = job.span.in_scope(|| {
        let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
        let result = backend.embed(&texts);
        if let Err(err) = &result {
            tracing::warn!(error = %err, texts = texts.len(), "embedding failed");
        }
        result
    });
    // The caller may have gone away meanwhile; then nobody needs the answer.
    let _ = job.reply.send(result);
}

/// Runs several jobs as one batch plan and hands each its vectors in order. When that run
/// fails, each job runs alone, so a text that cannot be embedded fails its own job only.
fn run_together(backend: &mut Backend, jobs: Vec<Job>) {
    let texts: Vec<&str> =
        jobs.iter().flat_map(|job| job.texts.iter().map(String::as_str)).collect();
    let span = tracing::debug_span!("embedding run", jobs = jobs.len(), texts = texts.len());
    match span.in_scope(|| backend.embed(&texts)) {
        Ok(vectors) if vectors.len() != texts.len() => {
            let err = format!("{} vectors for {} texts", vectors.len(), texts.len());
            for job in jobs {
                let _ = job.reply.send(Err(Error::Output(err.clone())));
            }
        }
        Ok(mut vectors) => {
            for job in jobs {
                let rest = vectors.split_off(job.texts.len().min(vectors.len()));
                let _ = job.reply.send(Ok(std::mem::replace(&mut vectors, rest)));
            }
        }
        Err(err) => {
            tracing::debug!(error = %err, jobs = jobs.len(), "a joint run failed; running its jobs one by one");
            jobs.into_iter().for_each(|job| run_alone(backend, job));
        }
    }
}

#[async_trait]
impl Embedder for OrtEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        // Counting needs the ids only: `encode_fast` skips the offset bookkeeping.
        let encoding = self.counter.encode_fast(text, true).map_err(Error::Tokenize)?;
        Ok(encoding.len())
    }

    fn token_spans(&self, text: &str) -> ragd_core::Result<Option<Vec<Range<usize>>>> {
        let encoding = self.counter.encode(text, false).map_err(Error::Tokenize)?;
        Ok(Some(encoding.get_offsets().iter().map(|&(start, end)| start..end).collect()))
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.max_batch_size)
    }

    /// Embeds documents. MiniLM is a symmetric model, so this is the same computation as
    /// [`Embedder::embed_query`]: no prefix, same pooling.
    async fn embed_documents(&self, texts: Vec<String>) -> ragd_core::Result<Vec<Embedding>> {
        Ok(self.embed(texts).await?)
    }

    /// Embeds a query. MiniLM is a symmetric model, so this is the same computation as
    /// [`Embedder::embed_documents`].
    async fn embed_query(&self, text: String) -> ragd_core::Result<Embedding> {
        let mut vectors = self.embed(vec![text]).await?;
        vectors.pop().ok_or_else(|| Error::Output("no vector for the query".to_owned()).into())
    }
}
