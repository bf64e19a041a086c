//! Summarised context ([`ContextMode::Summaries`]): before the prompt is budgeted, each
//! retrieved chunk is condensed by the model with a query-focused instruction, so more
//! sources fit the window and each carries only what bears on the question.
//!
//! The summaries run concurrently, up to [`ChatConfig::context_summary_concurrency`] at a
//! time (the local backend decodes that many sequences in one batch; a remote server
//! schedules its own), keep the retrieval order, and are cached in memory per chunk, model
//! and question, so asking again costs nothing. A chunk whose summary fails keeps its text.
//!
//! [`ChatConfig::context_summary_concurrency`]: crate::ChatConfig::context_summary_concurrency

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use ragd_core::{
    ChatMessage, ChatRole, ChunkId, CompletionRequest, GenerationSettings, LlmBackend,
};

use crate::generation::elapsed_ms;
use crate::prompt::ContextChunk;
use crate::service::ChatService;

/// Summaries kept at most; the cache starts over when full.
const CACHE_ENTRIES: usize = 4096;

/// The instruction of each summary request.
const INSTRUCTIONS: &str = "You condense a passage for a question. Keep only what in the \
                            passage helps answer the question: its facts, names and numbers, \
                            in a few sentences. Answer with the condensed passage only.";

/// Summaries by (chunk, hash of model and question).
#[derive(Debug, Default)]
pub(crate) struct SummaryCache {
    entries: Mutex<HashMap<(ChunkId, u64), String>>,
}

impl SummaryCache {
    fn get(&self, key: &(ChunkId, u64)) -> Option<String> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    fn put(&self, key: (ChunkId, u64), summary: String) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, summary);
    }
}

/// The chunks with their summaries in place of their text, and what it took.
#[derive(Debug)]
pub(crate) struct Condensed {
    pub chunks: Vec<ContextChunk>,
    /// Summaries read from the cache.
    pub cached: usize,
    /// The time the summaries added to the reply.
    pub ms: u64,
}

/// How a chunk's summary was obtained.
enum Outcome {
    Cached,
    Made,
    Failed,
}

/// The cache key's question part: the model and the question.
fn question_key(model_id: &str, question: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    model_id.hash(&mut hasher);
    question.trim().hash(&mut hasher);
    hasher.finish()
}

impl ChatService {
    /// Condenses `chunks` for `question` with `backend`; see the module docs.
    pub(crate) async fn condense(
        &self,
        backend: &Arc<dyn LlmBackend>,
        question: &str,
        chunks: Vec<ContextChunk>,
    ) -> Condensed {
        let started = Instant::now();
        let key = question_key(backend.model_id(), question);
        let settings = GenerationSettings {
            temperature: 0.0,
            max_new_tokens: self.config().context_summary_max_tokens,
            ..GenerationSettings::default()
        };
        let concurrency = self.config().context_summary_concurrency.max(1);
        let results: Vec<(ContextChunk, Outcome)> = futures::stream::iter(chunks)
            .map(|mut chunk| {
                let backend = Arc::clone(backend);
                let settings = settings.clone();
                async move {
                    let cache_key = (chunk.chunk_id, key);
                    if let Some(summary) = self.summaries().get(&cache_key) {
                        chunk.text = summary;
                        return (chunk, Outcome::Cached);
                    }
                    let request = CompletionRequest {
                        messages: vec![
                            ChatMessage { role: ChatRole::System, content: INSTRUCTIONS.to_owned() },
                            ChatMessage {
                                role: ChatRole::User,
                                content: format!(
                                    "Question: {}\n\nPassage:\n{}",
                                    question.trim(),
                                    chunk.text.trim()
                                ),
                            },
                        ],
                        settings,
                    };
                    match backend.complete(request).await {
                        Ok(completion) if !completion.text.trim().is_empty() => {
                            let summary = completion.text.trim().to_owned();
                            self.summaries().put(cache_key, summary.clone());
                            chunk.text = summary;
                            (chunk, Outcome::Made)
                        }
                        Ok(_) => (chunk, Outcome::Failed),
                        Err(err) => {
                            tracing::warn!(chunk = %chunk.chunk_id, error = %err, "condensing a chunk failed; its text is used");
                            (chunk, Outcome::Failed)
                        }
                    }
                }
            })
            .buffered(concurrency)
            .collect()
            .await;
        let cached = results.iter().filter(|(_, o)| matches!(o, Outcome::Cached)).count();
        let failed = results.iter().filter(|(_, o)| matches!(o, Outcome::Failed)).count();
        let made = results.iter().filter(|(_, o)| matches!(o, Outcome::Made)).count();
        let ms = elapsed_ms(started);
        tracing::debug!(made, cached, failed, ms, "condensed the retrieved chunks");
        Condensed { chunks: results.into_iter().map(|(chunk, _)| chunk).collect(), cached, ms }
    }
}
