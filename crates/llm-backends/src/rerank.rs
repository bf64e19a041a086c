//! [`LlamaReranker`]: passages reranked by a GGUF language model through llama.cpp.
//!
//! Two ways to score a passage ([`RerankMethod`]):
//!
//! - **Judge**: the model reads the query and the passage in its chat template and is asked
//!   whether the passage meets the query; the score is the log-odds of its next token being
//!   "yes" rather than "no". That is how LLM rerankers such as Qwen3-Reranker are built
//!   (the prompt below is theirs); it needs a model trained for it.
//! - **Query likelihood**: the mean log-probability of the query's tokens after the passage
//!   and a question cue, as in UPR (Sachan et al., 2022, "Improving Passage Retrieval with
//!   Zero-Shot Question Generation"). Any language model can do it, including the bundled
//!   SmolLM2, which is too small to judge.
//!
//! As in [`crate::LocalLlm`], one OS thread (`ragd-rerank`) owns the llama.cpp context and
//! answers jobs from a bounded queue.

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use async_trait::async_trait;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use ragd_core::Reranker;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;

use crate::error::{Error, Result};
use crate::local::{backend, check_gguf, default_threads, model_id_of, pick_template};

/// The instruction of the system turn (Qwen3-Reranker's).
const SYSTEM_PROMPT: &str = "Judge whether the Document meets the requirements based on the \
                             Query and the Instruct provided. Note that the answer can only be \
                             \"yes\" or \"no\".";

/// The task line of the user turn.
const INSTRUCTION: &str = "Given a search query, retrieve relevant passages that answer the query";

/// The shortest a passage is cut to when its prompt does not fit the window.
const MIN_PASSAGE_CHARS: usize = 64;

/// The spellings of the two answers whose next-token logits are compared.
const YES: [&str; 4] = ["yes", " yes", "Yes", " Yes"];
const NO: [&str; 4] = ["no", " no", "No", " No"];

/// How a [`LlamaReranker`] scores a passage (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RerankMethod {
    /// The log-odds of "yes" over "no" when asked whether the passage meets the query: for
    /// reranker models such as Qwen3-Reranker.
    Judge,
    /// The mean log-probability of the query given the passage: for any language model.
    #[default]
    QueryLikelihood,
}

/// How to load a [`LlamaReranker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaRerankerConfig {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The id reported by [`Reranker::model_id`]; `None` takes the file stem.
    pub model_id: Option<String>,
    /// How passages are scored.
    pub method: RerankMethod,
    /// The context window in tokens; one prompt (instruction, query and passage) must fit.
    pub context_length: u32,
    /// Passages are cut to this many characters before scoring.
    pub max_passage_chars: usize,
    /// Threads for prompt evaluation; `None` takes half the available parallelism.
    pub threads: Option<i32>,
    /// How many requests may wait for the scoring thread before `Overloaded`.
    pub queue_capacity: usize,
}

impl LlamaRerankerConfig {
    /// The defaults for the model at `model_path`: a 2048-token context, passages cut at
    /// 4000 characters (about 1000 tokens of English), half the cores.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            model_id: None,
            method: RerankMethod::default(),
            context_length: 2048,
            max_passage_chars: 4000,
            threads: None,
            queue_capacity: 16,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.context_length < 64 {
            return Err(Error::InvalidConfig("the context must hold at least 64 tokens".into()));
        }
        if self.max_passage_chars == 0 || self.queue_capacity == 0 {
            return Err(Error::InvalidConfig(
                "max_passage_chars and queue_capacity must be positive".into(),
            ));
        }
        if self.threads.is_some_and(|threads| threads < 1) {
            return Err(Error::InvalidConfig("threads must be positive".into()));
        }
        Ok(())
    }
}

/// One query and its passages for the scoring thread.
struct Job {
    query: String,
    passages: Vec<String>,
    span: Span,
    reply: oneshot::Sender<Result<Vec<f32>>>,
}

/// A GGUF model scoring passages against a query (query likelihood or a yes/no judgement,
/// see [`RerankMethod`]), implementing [`Reranker`].
pub struct LlamaReranker {
    model_id: String,
    queue_capacity: usize,
    jobs: mpsc::Sender<Job>,
}

impl fmt::Debug for LlamaReranker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlamaReranker")
            .field("model_id", &self.model_id)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

impl LlamaReranker {
    /// Loads the model and starts the `ragd-rerank` thread. It blocks while the model
    /// loads; async callers run it inside `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    /// As [`crate::LocalLlm::load`], and `InvalidInput` when the method is
    /// [`RerankMethod::Judge`] and the model's vocabulary has no single token for "yes" or
    /// "no".
    pub fn load(config: &LlamaRerankerConfig) -> Result<Self> {
        config.validate()?;
        let path = &config.model_path;
        check_gguf(path)?;
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|source| Error::LoadModel { path: path.clone(), source })?;
        let from_model = model.chat_template(None).ok().and_then(|t| t.to_string().ok());
        let template = pick_template(&model, from_model.as_deref())?;
        let yes = answer_tokens(&model, &YES);
        let no = answer_tokens(&model, &NO);
        if config.method == RerankMethod::Judge && (yes.is_empty() || no.is_empty()) {
            return Err(Error::InvalidConfig(format!(
                "{} has no single token for \"yes\" or \"no\"; it cannot rerank",
                path.display()
            )));
        }

        let threads = config.threads.unwrap_or_else(default_threads);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(config.context_length))
            // A whole prompt in one `decode` call, so the logits of all its scored tokens
            // are there together.
            .with_n_batch(config.context_length)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let model = Arc::new(model);
        let (jobs, queue) = mpsc::channel(config.queue_capacity);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker_model = Arc::clone(&model);
        let limits = Limits {
            context_length: config.context_length,
            max_passage_chars: config.max_passage_chars,
        };
        let method = config.method;
        let think = model.vocab().tokenize(b"<think>", false, true).len() == 1;
        thread::Builder::new()
            .name("ragd-rerank".to_owned())
            .spawn(move || {
                let context = match worker_model.new_context(backend, params) {
                    Ok(context) => context,
                    Err(source) => {
                        let context_length = limits.context_length;
                        let _ = ready_tx.send(Err(Error::CreateContext { context_length, source }));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut scorer = Scorer {
                    model: &worker_model,
                    context,
                    template,
                    yes,
                    no,
                    think,
                    method,
                    limits,
                    batch: LlamaBatch::new(
                        usize::try_from(limits.context_length).unwrap_or(usize::MAX),
                        1,
                    ),
                };
                serve(&mut scorer, queue);
            })
            .map_err(Error::Spawn)?;
        ready_rx.recv().map_err(|_| Error::WorkerStopped)??;

        let model_id = model_id_of(config.model_id.as_deref(), path);
        tracing::info!(
            model = %model_id,
            path = %path.display(),
            method = ?config.method,
            threads,
            "loaded GGUF reranker"
        );
        Ok(Self { model_id, queue_capacity: config.queue_capacity, jobs })
    }
}

#[async_trait]
impl Reranker for LlamaReranker {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn score(&self, query: String, passages: Vec<String>) -> ragd_core::Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job { query, passages, span: Span::current(), reply };
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                Error::Overloaded { capacity: self.queue_capacity }
            }
            mpsc::error::TrySendError::Closed(_) => Error::WorkerStopped,
        })?;
        Ok(answer.await.map_err(|_| Error::WorkerStopped)??)
    }
}

/// The tokens that spell an answer as one token, without duplicates.
fn answer_tokens(model: &LlamaModel, spellings: &[&str]) -> Vec<LlamaToken> {
    let mut tokens = Vec::new();
    for spelling in spellings {
        if let [token] = model.vocab().tokenize(spelling.as_bytes(), false, false)[..]
            && !tokens.contains(&token)
        {
            tokens.push(token);
        }
    }
    tokens
}

/// What one prompt may hold.
#[derive(Debug, Clone, Copy)]
struct Limits {
    context_length: u32,
    max_passage_chars: usize,
}

/// The scoring thread's state.
struct Scorer<'m> {
    model: &'m LlamaModel,
    context: LlamaContext<'m>,
    template: LlamaChatTemplate,
    yes: Vec<LlamaToken>,
    no: Vec<LlamaToken>,
    /// Whether the vocabulary has a `<think>` token (its judge prompt closes a thinking block).
    think: bool,
    method: RerankMethod,
    limits: Limits,
    batch: LlamaBatch<'static>,
}

/// Answers jobs until every sender is dropped.
fn serve(scorer: &mut Scorer<'_>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.blocking_recv() {
        if job.reply.is_closed() {
            continue;
        }
        let result = job.span.in_scope(|| {
            let result = scorer.score(&job.query, &job.passages);
            if let Err(err) = &result {
                tracing::warn!(error = %err, passages = job.passages.len(), "reranking failed");
            }
            result
        });
        let _ = job.reply.send(result);
    }
    tracing::debug!("reranker queue closed; scoring thread exits");
}

impl Scorer<'_> {
    fn score(&mut self, query: &str, passages: &[String]) -> Result<Vec<f32>> {
        passages.iter().map(|passage| self.score_one(query, passage)).collect()
    }

    /// One passage's score. Every prompt is evaluated whole from an empty cache: evaluating
    /// a shared prefix once and only the passages after it was tried, and the scores then
    /// depended on where the prompt was split (llama.cpp's batched and single-token kernels
    /// round differently), so a passage scored differently among others than alone.
    fn score_one(&mut self, query: &str, passage: &str) -> Result<f32> {
        // A passage whose prompt does not fit is cut shorter (scripts that take many tokens
        // per char) until it fits; only a query too long for the window is an error.
        let mut limit = self.limits.max_passage_chars;
        loop {
            match self.score_cut(query, cut(passage, limit)) {
                Err(Error::ContextTooLong { .. }) if limit > MIN_PASSAGE_CHARS => limit /= 2,
                scored => return scored,
            }
        }
    }

    fn score_cut(&mut self, query: &str, passage: &str) -> Result<f32> {
        match self.method {
            RerankMethod::Judge => {
                let tokens = self.judge_prompt(query, passage)?;
                self.context.clear_kv_cache();
                let outputs = self.decode(&tokens, 1)?;
                let last = *outputs.first().ok_or(Error::InvalidRequest("empty prompt".into()))?;
                Ok(log_odds(self.context.get_logits_ith(last), &self.yes, &self.no))
            }
            RerankMethod::QueryLikelihood => {
                let (context, question) = self.likelihood_prompt(query, passage)?;
                let mut tokens = context;
                let asked_from = tokens.len();
                tokens.extend_from_slice(&question);
                self.context.clear_kv_cache();
                // The logits at position i predict token i + 1: the question's tokens are
                // predicted by the positions from the last context token to the one before
                // the question's last token.
                let outputs = self.decode(&tokens[..tokens.len() - 1], question.len())?;
                let mut total = 0.0;
                for (&index, &token) in outputs.iter().zip(&tokens[asked_from..]) {
                    total += log_probability(self.context.get_logits_ith(index), token);
                }
                #[allow(clippy::cast_precision_loss)] // Questions are short.
                Ok(total / question.len() as f32)
            }
        }
    }

    /// The chat-templated yes/no question for one passage.
    fn judge_prompt(&self, query: &str, passage: &str) -> Result<Vec<LlamaToken>> {
        let user = format!("<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: {passage}");
        let messages = [("system", SYSTEM_PROMPT.to_owned()), ("user", user)]
            .into_iter()
            .map(|(role, content)| LlamaChatMessage::new(role.to_owned(), content))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| Error::InvalidRequest(format!("a text contains a NUL byte: {err}")))?;
        let mut prompt = self
            .model
            .apply_chat_template(&self.template, &messages, true)
            .map_err(Error::Template)?;
        if self.think {
            // Models that think (Qwen3-Reranker) answer after an empty thinking block.
            prompt.push_str("<think>\n\n</think>\n\n");
        }
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        self.check_fits(tokens.len())?;
        Ok(tokens)
    }

    /// The passage followed by a question cue, and the query's tokens after it.
    fn likelihood_prompt(
        &self,
        query: &str,
        passage: &str,
    ) -> Result<(Vec<LlamaToken>, Vec<LlamaToken>)> {
        let context = format!("Passage: {passage}\nA question this passage answers:");
        let context = self.model.vocab().tokenize(context.as_bytes(), true, false);
        let question =
            self.model.vocab().tokenize(format!(" {}", query.trim()).as_bytes(), false, false);
        if question.is_empty() {
            return Err(Error::InvalidRequest("the query has no tokens".to_owned()));
        }
        self.check_fits(context.len() + question.len())?;
        Ok((context, question))
    }

    fn check_fits(&self, tokens: usize) -> Result<()> {
        let context_length = self.limits.context_length;
        if tokens >= usize::try_from(context_length).unwrap_or(usize::MAX) {
            return Err(Error::ContextTooLong {
                prompt_tokens: tokens,
                max_new_tokens: 1,
                context_length,
            });
        }
        Ok(())
    }

    /// Decodes `tokens` (which fit the context: see `check_fits`) from position 0 in one
    /// call, asking for the logits of the last `outputs` tokens; returns their indexes for
    /// `get_logits_ith`, in order.
    fn decode(&mut self, tokens: &[LlamaToken], outputs: usize) -> Result<Vec<i32>> {
        let first_output = tokens.len().saturating_sub(outputs);
        let mut indexes = Vec::with_capacity(outputs);
        self.batch.clear();
        for (index, &token) in tokens.iter().enumerate() {
            let position = i32::try_from(index)
                .map_err(|_| Error::InvalidRequest("prompt too long".into()))?;
            let wants = index >= first_output;
            self.batch.add(token, position, &[0], wants).map_err(Error::Batch)?;
            if wants {
                indexes.push(position);
            }
        }
        self.context.decode(&mut self.batch).map_err(Error::Decode)?;
        Ok(indexes)
    }
}

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> &str {
    text.char_indices().nth(max).map_or(text, |(end, _)| &text[..end])
}

/// log P(yes) - log P(no) over the answers' spellings, from next-token logits.
fn log_odds(logits: &[f32], yes: &[LlamaToken], no: &[LlamaToken]) -> f32 {
    let pick = |tokens: &[LlamaToken]| -> Vec<f32> {
        tokens
            .iter()
            .filter_map(|token| usize::try_from(token.0).ok().and_then(|i| logits.get(i)).copied())
            .collect()
    };
    log_sum_exp(&pick(yes)) - log_sum_exp(&pick(no))
}

/// `ln P(token)` under the next-token `logits`.
fn log_probability(logits: &[f32], token: LlamaToken) -> f32 {
    let logit = usize::try_from(token.0).ok().and_then(|i| logits.get(i)).copied();
    logit.map_or(f32::NEG_INFINITY, |logit| logit - log_sum_exp(logits))
}

/// `ln(sum(exp(x)))`, computed without overflow; negative infinity for no values.
fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_is_stable() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2_f32.ln())).abs() < 1e-3);
        assert_eq!(log_sum_exp(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn config_is_validated() {
        let mut config = LlamaRerankerConfig::new("/m.gguf");
        assert!(config.validate().is_ok());
        config.context_length = 8;
        assert!(config.validate().is_err());
        config = LlamaRerankerConfig { threads: Some(0), ..LlamaRerankerConfig::new("/m.gguf") };
        assert!(config.validate().is_err());
    }
}
