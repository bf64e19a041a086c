//! The `ragd-llm` generation thread: it owns the llama.cpp context and decodes up to
//! `parallel` generations at once, by continuous batching.
//!
//! A job carries the prompt tokens (already rendered, tokenised and checked against the
//! context by the caller) and a channel for the deltas. Each running job holds one
//! llama.cpp sequence of the context (its cells of the shared KV cache). Every step builds one
//! batch: the last sampled token of each generating sequence, then as many prompt tokens of
//! the jobs still reading their prompt as the step has room for. So a new job joins at the
//! next step, a finished or cancelled one leaves and frees its sequence, and a long prompt
//! is read in slices of one micro-batch while others generate: it delays their next token
//! by at most one such slice, never by the whole prompt. After the decode each sequence
//! with logits samples its own token with its own sampler chain, turns it into text (whole
//! UTF-8 characters, stop sequences cut off) and sends it.
//!
//! A sequence keeps its cells of the KV cache when its job ends, and the worker remembers
//! which tokens they hold (a prompt cache, as `llama-server`'s `cache_prompt`). A new job
//! takes the free sequence whose tokens share the longest beginning with its prompt, drops
//! the cells past that shared part and reads only the rest: the next turn of a chat, whose
//! prompt is the previous prompt and answer plus a new message, reads only the new message,
//! and prompts with the same system message skip it. Each sequence holds at most one
//! request's context, so kept cells never take room another sequence needs. The cells are
//! dropped when a step fails.
//!
//! Deltas go through unbounded channels (a generation sends at most `max_new_tokens` of
//! them), so a caller that reads slowly never holds up the other sequences; one that is
//! gone cancels its job at the next step.

use ragd_core::metric_names as names;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use llama_cpp_2::DecodeError;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::{BatchAddError, LlamaBatch};
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

/// Where a job's deltas go; a closed channel cancels the generation.
pub(crate) type DeltaSender = mpsc::UnboundedSender<Result<CompletionDelta>>;

/// One generation for the worker thread.
pub(crate) struct Job {
    /// The tokenised prompt; it fits one sequence's context together with `max_new_tokens`.
    pub(crate) tokens: Vec<LlamaToken>,
    /// How to sample.
    pub(crate) settings: GenerationSettings,
    /// The caller's span, entered while the job's logs are written.
    pub(crate) span: Span,
    /// Where the deltas go.
    pub(crate) deltas: DeltaSender,
    /// When the caller queued it: time to first token counts the wait for a sequence.
    pub(crate) queued_at: Instant,
}

/// What the owner shares with the thread besides the queue.
pub(crate) struct Shared<'a> {
    /// How many jobs run at once.
    pub(crate) parallel: usize,
    /// Set when the owner is dropped: running jobs end with `WorkerStopped` and the thread
    /// exits at its next step.
    pub(crate) stop: &'a AtomicBool,
}

/// The thread's body: creates the context, reports readiness, then runs jobs, up to
/// `parallel` at once, until the queue is closed and the running jobs are done, or until
/// `stop` is set.
pub(crate) fn run(
    model: &LlamaModel,
    backend: &LlamaBackend,
    params: LlamaContextParams,
    shared: Shared<'_>,
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
    let mut scheduler = Scheduler::new(model, context, shared.parallel);
    let _ = ready.send(Ok(()));

    let mut open = true;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            scheduler.stop_all();
            while let Ok(job) = queue.try_recv() {
                let _ = job.deltas.send(Err(Error::WorkerStopped));
            }
            break;
        }
        open = open && scheduler.admit(&mut queue);
        if scheduler.slots.is_empty() {
            if !open {
                break;
            }
            // Nothing runs: sleep until a job arrives or the queue closes.
            match queue.blocking_recv() {
                Some(job) => scheduler.start(job),
                None => break,
            }
            continue;
        }
        scheduler.step();
    }
    tracing::debug!("LLM queue closed; generation thread exits");
}

/// Where a running job is.
enum Phase {
    /// Reading its prompt; `done` tokens have been put in batches so far.
    Prompt { done: usize },
    /// Generating; `token` is the last one sampled, to be decoded at the next step.
    Generating { token: LlamaToken },
}

/// A running job and its sequence.
struct Slot {
    job: Job,
    /// The llama.cpp sequence id this job's tokens belong to.
    seq: i32,
    phase: Phase,
    /// The position of the next token in the sequence.
    position: i32,
    /// Where in the current batch this slot's logits are, when it asked for some.
    logits_at: Option<i32>,
    /// The tokens of the sequence's cells of the KV cache, in position order: the cached
    /// beginning of the prompt, then each token as it is put in a batch.
    kept: Vec<LlamaToken>,
    /// Prompt tokens found in the KV cache, not read again.
    cached: usize,
    sampler: LlamaSampler,
    decoder: Utf8Decoder,
    stops: StopMatcher,
    generated: u32,
    /// When the prompt was read and the first token sampled.
    first_token: Option<Instant>,
}

/// What sampling did to a slot.
enum Step {
    /// It goes on.
    Continue,
    /// It finished for this reason (its last text was sent).
    Finished(FinishReason),
    /// Its receiver is gone.
    Cancelled,
}

impl Slot {
    /// A slot for `job` on sequence `seq`, whose cells already hold the first `cached`
    /// tokens of the prompt.
    fn new(job: Job, seq: i32, n_vocab: i32, cached: usize) -> Self {
        let sampler = sampler(&job.settings, n_vocab);
        let stops = StopMatcher::new(&job.settings.stop);
        let kept = job.tokens[..cached].to_vec();
        Self {
            job,
            seq,
            phase: Phase::Prompt { done: cached },
            position: i32::try_from(cached).unwrap_or(i32::MAX),
            logits_at: None,
            kept,
            cached,
            sampler,
            decoder: Utf8Decoder::default(),
            stops,
            generated: 0,
            first_token: None,
        }
    }

    /// Samples the next token from the logits at `index` of the batch just decoded.
    fn sample(&mut self, context: &LlamaContext<'_>, model: &LlamaModel, index: i32) -> Step {
        let vocab = model.vocab();
        // `sample` also feeds the token to the penalty window.
        let token = self.sampler.sample(context, index);
        self.first_token.get_or_insert_with(Instant::now);
        if vocab.is_eog(token) {
            return self.finish(FinishReason::Stop);
        }
        self.generated += 1;
        let text = self.decoder.push(&vocab.token_to_piece(token, false, None));
        let matched = self.stops.push(&text);
        if !send_text(&self.job.deltas, matched.emit) {
            return Step::Cancelled;
        }
        if matched.stopped {
            return Step::Finished(FinishReason::StopSequence);
        }
        if self.generated >= self.job.settings.max_new_tokens {
            return self.finish(FinishReason::Length);
        }
        self.phase = Phase::Generating { token };
        Step::Continue
    }

    /// Flushes what was held back (a split character, a possible stop prefix) at the end.
    fn finish(&mut self, reason: FinishReason) -> Step {
        let matched = self.stops.push(&self.decoder.finish());
        let mut text = matched.emit;
        let reason = if matched.stopped {
            FinishReason::StopSequence
        } else {
            text.push_str(&self.stops.finish());
            reason
        };
        if send_text(&self.job.deltas, text) { Step::Finished(reason) } else { Step::Cancelled }
    }

    /// Sends `Done` and logs the generation's figures.
    fn report(&self, finish_reason: FinishReason) {
        let now = Instant::now();
        let first = self.first_token.unwrap_or(now);
        let usage = TokenUsage {
            prompt_tokens: u32::try_from(self.job.tokens.len()).unwrap_or(u32::MAX),
            completion_tokens: self.generated,
            cached_prompt_tokens: u32::try_from(self.cached).unwrap_or(u32::MAX),
        };
        let tokens_per_s = rate(self.generated, now.duration_since(first));
        metrics::counter!(names::GENERATION_TOKENS_TOTAL, "backend" => "llama-cpp")
            .increment(u64::from(self.generated));
        metrics::gauge!(names::GENERATION_TOKENS_PER_SECOND, "backend" => "llama-cpp")
            .set(tokens_per_s);
        self.job.span.in_scope(|| {
            tracing::info!(
                prompt_tokens = usage.prompt_tokens,
                cached_prompt_tokens = usage.cached_prompt_tokens,
                completion_tokens = usage.completion_tokens,
                time_to_first_token_ms = first.duration_since(self.job.queued_at).as_millis(),
                generation_tokens_per_s = tokens_per_s,
                sequence = self.seq,
                ?finish_reason,
                "generation finished"
            );
        });
        let _ = self.job.deltas.send(Ok(CompletionDelta::Done { finish_reason, usage }));
    }
}

/// The context, a reusable batch, the running jobs and the free sequence ids.
struct Scheduler<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// How many tokens one `decode` call takes.
    batch_capacity: usize,
    /// How many prompt tokens a step takes while other sequences generate: one
    /// micro-batch, so their next token waits for one slice of the prompt at most.
    prompt_slice: usize,
    slots: Vec<Slot>,
    free_seqs: Vec<i32>,
    /// What each sequence's cells hold, by sequence id, while no job runs on it.
    cached: Vec<Vec<LlamaToken>>,
    n_vocab: i32,
}

impl<'m> Scheduler<'m> {
    fn new(model: &'m LlamaModel, context: LlamaContext<'m>, parallel: usize) -> Self {
        let batch_capacity = usize::try_from(context.n_batch())
            .ok()
            .filter(|&capacity| capacity > 0)
            .unwrap_or(FALLBACK_BATCH);
        let prompt_slice = usize::try_from(context.n_ubatch())
            .ok()
            .filter(|&slice| slice > 0)
            .unwrap_or(FALLBACK_BATCH)
            .min(batch_capacity);
        let seqs = i32::try_from(parallel).unwrap_or(i32::MAX);
        Self {
            model,
            context,
            batch: LlamaBatch::new(batch_capacity, 1),
            batch_capacity,
            prompt_slice,
            slots: Vec::new(),
            // Popped from the end: sequence 0 first.
            free_seqs: (0..seqs).rev().collect(),
            cached: vec![Vec::new(); parallel],
            n_vocab: model.n_vocab(),
        }
    }

    /// Takes queued jobs while sequences are free; `false` once the queue is closed.
    fn admit(&mut self, queue: &mut mpsc::Receiver<Job>) -> bool {
        while !self.free_seqs.is_empty() {
            match queue.try_recv() {
                Ok(job) => self.start(job),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Gives `job` a free sequence (the caller checked there is one).
    fn start(&mut self, job: Job) {
        // A caller that gave up before its turn no longer needs the work.
        if job.deltas.is_closed() {
            return;
        }
        // The free sequence whose cells share the longest beginning with the prompt.
        let best = self
            .free_seqs
            .iter()
            .enumerate()
            .max_by_key(|&(_, &seq)| common_prefix(self.cached_tokens(seq), &job.tokens))
            .map(|(index, _)| index);
        let Some(seq) = best.map(|index| self.free_seqs.swap_remove(index)) else {
            let _ = job.deltas.send(Err(Error::WorkerStopped));
            return;
        };
        let cached = self.reuse(seq, &job.tokens);
        self.slots.push(Slot::new(job, seq, self.n_vocab, cached));
    }

    /// The tokens sequence `seq`'s cells hold.
    fn cached_tokens(&self, seq: i32) -> &[LlamaToken] {
        usize::try_from(seq).ok().and_then(|seq| self.cached.get(seq)).map_or(&[], Vec::as_slice)
    }

    /// Keeps the cells of `seq` that hold the beginning of `prompt` and drops the rest;
    /// returns how many prompt tokens they hold. The last prompt token is always read again,
    /// since its logits give the first new token.
    fn reuse(&mut self, seq: i32, prompt: &[LlamaToken]) -> usize {
        let held = self.cached_tokens(seq).len();
        let common =
            common_prefix(self.cached_tokens(seq), prompt).min(prompt.len().saturating_sub(1));
        if let Some(cached) = usize::try_from(seq).ok().and_then(|seq| self.cached.get_mut(seq)) {
            cached.clear();
        }
        if common == held {
            return common;
        }
        // Models whose cache cannot drop a tail (recurrent ones) start over.
        let dropped = u32::try_from(seq).is_ok_and(|seq| {
            u32::try_from(common).is_ok_and(|from| {
                self.context.clear_kv_cache_seq(Some(seq), Some(from), None).is_ok_and(|ok| ok)
            })
        });
        if dropped {
            return common;
        }
        self.clear_seq(seq);
        0
    }

    /// Drops every cell of sequence `seq`.
    fn clear_seq(&mut self, seq: i32) {
        // Sequence ids are 0..parallel; `None` would clear every sequence.
        let cleared = u32::try_from(seq).is_ok_and(|seq| {
            self.context.clear_kv_cache_seq(Some(seq), None, None).is_ok_and(|ok| ok)
        });
        if !cleared {
            tracing::warn!(sequence = seq, "llama.cpp did not clear a sequence");
        }
    }

    /// Ends the slot at `index` (the others keep their order, oldest first) and frees its
    /// sequence; its cells of the KV cache are kept for the next job when `keep` is set, and
    /// dropped otherwise.
    fn release(&mut self, index: usize, keep: bool) {
        let slot = self.slots.remove(index);
        let cached = usize::try_from(slot.seq).ok().and_then(|seq| self.cached.get_mut(seq));
        match cached {
            Some(cached) if keep => *cached = slot.kept,
            Some(_) | None => self.clear_seq(slot.seq),
        }
        self.free_seqs.push(slot.seq);
    }

    /// One decode step over every running job.
    fn step(&mut self) {
        // Jobs whose callers went away leave before any work is spent on them.
        let mut index = 0;
        while index < self.slots.len() {
            if self.slots[index].job.deltas.is_closed() {
                self.cancel(index);
            } else {
                index += 1;
            }
        }
        if self.slots.is_empty() {
            return;
        }
        if let Err(err) = self.fill_batch() {
            self.fail_all(&StepError::Batch(err));
            return;
        }
        if let Err(err) = self.context.decode(&mut self.batch) {
            self.fail_all(&StepError::Decode(err));
            return;
        }
        let mut index = 0;
        while index < self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(at) = slot.logits_at.take() else {
                index += 1;
                continue;
            };
            match slot.sample(&self.context, self.model, at) {
                Step::Continue => index += 1,
                Step::Finished(reason) => {
                    slot.report(reason);
                    self.release(index, true);
                }
                Step::Cancelled => self.cancel(index),
            }
        }
    }

    /// Puts each generating sequence's last token in the batch, then prompt tokens of the
    /// jobs still reading theirs, oldest first, up to the step's room.
    fn fill_batch(&mut self) -> std::result::Result<(), BatchAddError> {
        self.batch.clear();
        let mut generating = 0;
        for slot in &mut self.slots {
            if let Phase::Generating { token } = slot.phase {
                self.batch.add(token, slot.position, &[slot.seq], true)?;
                slot.kept.push(token);
                slot.logits_at = Some(self.batch.n_tokens() - 1);
                slot.position += 1;
                generating += 1;
            }
        }
        let mut room = if generating == 0 {
            self.batch_capacity
        } else {
            self.prompt_slice.saturating_sub(generating).max(1)
        }
        .min(self.batch_capacity - generating);
        for slot in &mut self.slots {
            if room == 0 {
                break;
            }
            let Phase::Prompt { done } = slot.phase else { continue };
            let tokens = &slot.job.tokens;
            let take = room.min(tokens.len() - done);
            for (offset, &token) in tokens[done..done + take].iter().enumerate() {
                let last = done + offset + 1 == tokens.len();
                self.batch.add(token, slot.position, &[slot.seq], last)?;
                slot.kept.push(token);
                slot.position += 1;
                if last {
                    slot.logits_at = Some(self.batch.n_tokens() - 1);
                }
            }
            slot.phase = Phase::Prompt { done: done + take };
            room -= take;
        }
        Ok(())
    }

    /// Ends every running job with `WorkerStopped`.
    fn stop_all(&mut self) {
        self.end_all(|| Error::WorkerStopped);
    }

    /// Answers every running job with the error of a step that failed for all of them.
    fn fail_all(&mut self, err: &StepError) {
        let error = err.to_error();
        tracing::warn!(error = %error, jobs = self.slots.len(), "generation step failed");
        self.end_all(|| err.to_error());
    }

    /// Sends each running job an error made by `error` and frees its sequence; the cells
    /// of the step that failed are in an unknown state, so they are dropped.
    fn end_all(&mut self, error: impl Fn() -> Error) {
        while !self.slots.is_empty() {
            let _ = self.slots[0].job.deltas.send(Err(error()));
            self.release(0, false);
        }
    }

    /// Ends the slot at `index` whose receiver is gone.
    fn cancel(&mut self, index: usize) {
        self.slots[index].job.span.in_scope(|| {
            tracing::debug!("generation cancelled: the receiver was dropped");
        });
        // Every token in its cells was decoded: the next job may reuse them.
        self.release(index, true);
    }
}

/// Why a step failed, for every job in it.
#[derive(Debug)]
enum StepError {
    Batch(BatchAddError),
    Decode(DecodeError),
}

impl StepError {
    /// The error each job is answered with (llama-cpp-2's errors are not `Clone`).
    fn to_error(&self) -> Error {
        match self {
            Self::Batch(BatchAddError::InsufficientSpace(room)) => {
                Error::Batch(BatchAddError::InsufficientSpace(*room))
            }
            Self::Batch(BatchAddError::EmptyBuffer) => Error::Batch(BatchAddError::EmptyBuffer),
            Self::Decode(DecodeError::NoKvCacheSlot) => Error::Decode(DecodeError::NoKvCacheSlot),
            Self::Decode(DecodeError::NTokensZero) => Error::Decode(DecodeError::NTokensZero),
            Self::Decode(DecodeError::Unknown(code)) => Error::Decode(DecodeError::Unknown(*code)),
        }
    }
}

/// How many tokens `a` and `b` share at their beginning.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Sends a text delta unless it is empty; `false` when the receiver is gone.
fn send_text(deltas: &DeltaSender, text: String) -> bool {
    text.is_empty() || deltas.send(Ok(CompletionDelta::Text(text))).is_ok()
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

    #[test]
    fn step_errors_are_copied_for_each_job() {
        let copied = StepError::Decode(DecodeError::Unknown(-3)).to_error();
        assert!(matches!(copied, Error::Decode(DecodeError::Unknown(-3))));
        assert_eq!(copied.kind(), ragd_core::ErrorKind::Internal);
        let copied = StepError::Batch(BatchAddError::InsufficientSpace(4)).to_error();
        assert!(matches!(copied, Error::Batch(BatchAddError::InsufficientSpace(4))));
    }
}
