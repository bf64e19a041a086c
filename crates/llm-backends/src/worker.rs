//! The `ragd-llm` generation thread: it owns the llama.cpp context and runs one job at a
//! time.
//!
//! A job carries the prompt tokens (already rendered, tokenised and checked against the
//! context by the caller) and a channel for the deltas. The thread evaluates the prompt in
//! batches, samples token by token, turns the tokens into text (whole UTF-8 characters,
//! stop sequences cut off) and stops early when the receiver is gone.

use ragd_core::metric_names as names;
use std::num::NonZeroU32;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use ragd_core::{CompletionDelta, FinishReason, GenerationSettings, TokenUsage};
use tokio::sync::mpsc;
use tracing::Span;

use crate::error::{Error, Result};
use crate::text::{StopMatcher, Utf8Decoder};

/// How many recent tokens the repetition penalty looks at.
const PENALTY_WINDOW: i32 = 64;

/// The seed value that asks llama.cpp for a random seed (`LLAMA_DEFAULT_SEED`).
const RANDOM_SEED: u32 = u32::MAX;

/// The batch size used when llama.cpp reports an unusable one.
const FALLBACK_BATCH: usize = 512;

/// One generation for the worker thread.
pub(crate) struct Job {
    /// The tokenised prompt; it fits the context together with `max_new_tokens`.
    pub(crate) tokens: Vec<LlamaToken>,
    /// How to sample.
    pub(crate) settings: GenerationSettings,
    /// The caller's span, entered while the job runs so its logs nest under the request.
    pub(crate) span: Span,
    /// Where the deltas go; a closed channel cancels the generation.
    pub(crate) deltas: mpsc::Sender<Result<CompletionDelta>>,
}

/// How a finished (not cancelled) generation ended.
struct Outcome {
    finish_reason: FinishReason,
    usage: TokenUsage,
}

/// The thread's body: creates the context, reports readiness, then answers jobs until
/// every sender is dropped.
pub(crate) fn run(
    model: &LlamaModel,
    backend: &LlamaBackend,
    params: LlamaContextParams,
    ready: &SyncSender<Result<()>>,
    mut queue: mpsc::Receiver<Job>,
) {
    let context_length = params.n_ctx().map_or(0, NonZeroU32::get);
    let context = match model.new_context(backend, params) {
        Ok(context) => context,
        Err(source) => {
            // `load` waits for this answer; if it is gone there is nobody to tell.
            let _ = ready.send(Err(Error::CreateContext { context_length, source }));
            return;
        }
    };
    let mut generator = Generator::new(model, context);
    let _ = ready.send(Ok(()));

    while let Some(job) = queue.blocking_recv() {
        // A caller that gave up before its turn no longer needs the work.
        if job.deltas.is_closed() {
            continue;
        }
        job.span.in_scope(|| match generator.generate(&job) {
            Ok(Some(Outcome { finish_reason, usage })) => {
                let _ =
                    job.deltas.blocking_send(Ok(CompletionDelta::Done { finish_reason, usage }));
            }
            Ok(None) => tracing::debug!("generation cancelled: the receiver was dropped"),
            Err(err) => {
                tracing::warn!(error = %err, "generation failed");
                let _ = job.deltas.blocking_send(Err(err));
            }
        });
    }
    tracing::debug!("LLM queue closed; generation thread exits");
}

/// The context, a reusable batch and the model they belong to.
struct Generator<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// How many tokens one `decode` call takes.
    batch_capacity: usize,
}

impl<'m> Generator<'m> {
    fn new(model: &'m LlamaModel, context: LlamaContext<'m>) -> Self {
        let batch_capacity = usize::try_from(context.n_batch())
            .ok()
            .filter(|&capacity| capacity > 0)
            .unwrap_or(FALLBACK_BATCH);
        Self { model, context, batch: LlamaBatch::new(batch_capacity, 1), batch_capacity }
    }

    /// Runs one job; `Ok(None)` when the receiver went away and generation was cancelled.
    fn generate(&mut self, job: &Job) -> Result<Option<Outcome>> {
        let settings = &job.settings;
        let model = self.model;
        let vocab = model.vocab();
        self.context.clear_kv_cache();

        let prompt_started = Instant::now();
        let mut position = self.evaluate_prompt(&job.tokens)?;
        let prompt_elapsed = prompt_started.elapsed();

        let generation_started = Instant::now();
        let mut sampler = sampler(settings, model.n_vocab());
        let mut decoder = Utf8Decoder::default();
        let mut stops = StopMatcher::new(&settings.stop);
        let mut generated: u32 = 0;
        let mut finish_reason = loop {
            // `sample` also feeds the token to the penalty window.
            let token = sampler.sample(&self.context, self.batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            generated += 1;
            let text = decoder.push(&vocab.token_to_piece(token, false, None));
            let matched = stops.push(&text);
            if !send_text(&job.deltas, matched.emit) {
                return Ok(None);
            }
            if matched.stopped {
                break FinishReason::StopSequence;
            }
            if generated >= settings.max_new_tokens {
                break FinishReason::Length;
            }
            if job.deltas.is_closed() {
                return Ok(None);
            }
            self.batch.clear();
            self.batch.add(token, position, &[0], true).map_err(Error::Batch)?;
            position += 1;
            self.context.decode(&mut self.batch).map_err(Error::Decode)?;
        };

        if finish_reason != FinishReason::StopSequence {
            // Flush what was held back: a split character and a possible stop prefix.
            let matched = stops.push(&decoder.finish());
            let mut text = matched.emit;
            if matched.stopped {
                finish_reason = FinishReason::StopSequence;
            } else {
                text.push_str(&stops.finish());
            }
            if !send_text(&job.deltas, text) {
                return Ok(None);
            }
        }

        let usage = TokenUsage {
            prompt_tokens: u32::try_from(job.tokens.len()).unwrap_or(u32::MAX),
            completion_tokens: generated,
        };
        let tokens_per_s = rate(generated, generation_started.elapsed());
        metrics::counter!(names::GENERATION_TOKENS_TOTAL, "backend" => "llama-cpp")
            .increment(u64::from(generated));
        metrics::gauge!(names::GENERATION_TOKENS_PER_SECOND, "backend" => "llama-cpp")
            .set(tokens_per_s);
        tracing::info!(
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            prompt_tokens_per_s = rate(usage.prompt_tokens, prompt_elapsed),
            generation_tokens_per_s = tokens_per_s,
            ?finish_reason,
            "generation finished"
        );
        Ok(Some(Outcome { finish_reason, usage }))
    }

    /// Evaluates the prompt in batches, asking for logits of its last token only; returns
    /// the position of the next token.
    fn evaluate_prompt(&mut self, tokens: &[LlamaToken]) -> Result<i32> {
        let mut position: i32 = 0;
        let chunk_count = tokens.len().div_ceil(self.batch_capacity);
        for (index, chunk) in tokens.chunks(self.batch_capacity).enumerate() {
            self.batch.clear();
            let last_chunk = index + 1 == chunk_count;
            for (offset, &token) in chunk.iter().enumerate() {
                let wants_logits = last_chunk && offset + 1 == chunk.len();
                self.batch.add(token, position, &[0], wants_logits).map_err(Error::Batch)?;
                position += 1;
            }
            self.context.decode(&mut self.batch).map_err(Error::Decode)?;
        }
        Ok(position)
    }
}

/// Sends a text delta unless it is empty; `false` when the receiver is gone.
fn send_text(deltas: &mpsc::Sender<Result<CompletionDelta>>, text: String) -> bool {
    text.is_empty() || deltas.blocking_send(Ok(CompletionDelta::Text(text))).is_ok()
}

/// Tokens per second, for logs.
fn rate(tokens: u32, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 { f64::from(tokens) / seconds } else { 0.0 }
}

/// The sampler chain for `settings`, in llama.cpp's usual order: repetition penalty, then
/// greedy selection for temperature 0, else top-k, top-p, temperature and a seeded draw.
fn sampler(settings: &GenerationSettings, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if (settings.repetition_penalty - 1.0).abs() > f32::EPSILON {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            PENALTY_WINDOW,
            settings.repetition_penalty,
            0.0,
            0.0,
        ));
    }
    if settings.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if settings.top_k > 0 {
            chain.push(LlamaSampler::top_k(i32::try_from(settings.top_k).unwrap_or(i32::MAX)));
        }
        if settings.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(settings.top_p, 1));
        }
        chain.push(LlamaSampler::temp(settings.temperature));
        chain.push(LlamaSampler::dist(settings.seed.map_or(RANDOM_SEED, seed32)));
    }
    LlamaSampler::chain_simple(chain)
}

/// Folds a 64-bit seed into the 32 bits llama.cpp takes, avoiding the value that means
/// "random".
fn seed32(seed: u64) -> u32 {
    // Truncation is intended: both halves are folded into the low 32 bits first.
    let folded = (seed ^ (seed >> 32)) as u32;
    if folded == RANDOM_SEED { RANDOM_SEED - 1 } else { folded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_never_mean_random() {
        assert_ne!(seed32(u64::from(u32::MAX)), RANDOM_SEED);
        assert_eq!(seed32(42), 42);
        assert_ne!(seed32(1 << 32), seed32(0));
    }

    #[test]
    fn rates_handle_zero_time() {
        assert!((rate(10, Duration::ZERO)).abs() < f64::EPSILON);
        assert!((rate(10, Duration::from_secs(2)) - 5.0).abs() < 1e-9);
    }
}
