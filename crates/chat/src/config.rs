//! What a [`ChatService`](crate::ChatService) is built from: its configuration
//! ([`ChatConfig`], with defaults and the range checks [`ChatService::new`](crate::ChatService::new)
//! applies), the parts it works with ([`ChatParts`]) and the model it answers with
//! ([`ModelProvider`], [`FixedModel`]).

use std::fmt;
use std::sync::Arc;

use ragd_catalog::Catalog;
use ragd_core::{GenerationSettings, LlmBackend, Vectors};
use ragd_search::Searcher;

use crate::error::{Error, Result};
use crate::tagging::TaggingMode;

/// Gives the chat service the model to answer with and the settings in force.
///
/// The `ragd` binary implements it over its model manager; embedders of the crate can use
/// [`FixedModel`].
pub trait ModelProvider: Send + Sync + fmt::Debug + 'static {
    /// The loaded model, if any.
    fn backend(&self) -> Option<Arc<dyn LlmBackend>>;
    /// The generation settings in force.
    fn settings(&self) -> GenerationSettings;
}

/// A [`ModelProvider`] with one fixed backend and settings.
#[derive(Debug, Clone)]
pub struct FixedModel {
    /// The backend, or `None` for "no model loaded".
    pub backend: Option<Arc<dyn LlmBackend>>,
    /// The settings.
    pub settings: GenerationSettings,
}

impl ModelProvider for FixedModel {
    fn backend(&self) -> Option<Arc<dyn LlmBackend>> {
        self.backend.clone()
    }

    fn settings(&self) -> GenerationSettings {
        self.settings.clone()
    }
}

/// How the chat service behaves. Deserialises from a table where every key is optional
/// (missing keys keep these defaults) and unknown keys are refused, so a program can nest it
/// in its own configuration, as the `ragd` binary does under `[chat]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Instructions at the top of every prompt.
    pub system_prompt: String,
    /// Document chunks retrieved per message (0: no retrieval).
    pub top_k: usize,
    /// Earlier exchanges recalled per message (0: no memory recall).
    pub memory_top_k: usize,
    /// The most recent messages considered for the prompt's history.
    pub history_messages: u32,
    /// Share of the flexible prompt budget documents may take.
    pub documents_share: f32,
    /// Share of the flexible prompt budget memory may take.
    pub memory_share: f32,
    /// Tokens kept free for template differences.
    pub margin_tokens: usize,
    /// Summarise history that no longer fits.
    pub summarize: bool,
    /// The longest summary, in tokens.
    pub summary_max_tokens: u32,
    /// The longest summary of one retrieved chunk (`context_mode: summaries`), in tokens.
    pub context_summary_max_tokens: u32,
    /// Chunk summaries asked of the model at once (`context_mode: summaries`).
    pub context_summary_concurrency: usize,
    /// How tags are derived.
    pub tagging: TaggingMode,
    /// Tags are refreshed after the first exchange and then every this many exchanges.
    pub tag_every: u32,
    /// The most automatic tags per session.
    pub max_auto_tags: usize,
    /// Replies generated at the same time, over all sessions (the default matches the
    /// local model's default `parallel`, the requests it decodes at once).
    pub max_concurrent_generations: usize,
    /// Replies that may wait for a generation slot; more are refused as `Overloaded`.
    pub max_queued_generations: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are a helpful assistant. Answer using the context documents when \
                            they are relevant and cite them as [1], [2]. If they do not contain \
                            the answer, say so."
                .to_owned(),
            top_k: 4,
            memory_top_k: 3,
            history_messages: 40,
            documents_share: 0.5,
            memory_share: 0.15,
            margin_tokens: 32,
            summarize: true,
            summary_max_tokens: 160,
            context_summary_max_tokens: 96,
            context_summary_concurrency: 4,
            tagging: TaggingMode::Keywords,
            tag_every: 5,
            max_auto_tags: 5,
            max_concurrent_generations: 4,
            max_queued_generations: 16,
        }
    }
}

impl ChatConfig {
    /// Checks the values a service cannot work with.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a value out of range.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.documents_share)
            || !(0.0..=1.0).contains(&self.memory_share)
            || self.documents_share + self.memory_share > 1.0
        {
            return Err(Error::InvalidInput(
                "documents_share and memory_share must be in [0, 1] and sum to at most 1"
                    .to_owned(),
            ));
        }
        if self.top_k > ragd_search::MAX_TOP_K {
            return Err(Error::InvalidInput(format!(
                "top_k must be at most {}",
                ragd_search::MAX_TOP_K
            )));
        }
        if self.max_concurrent_generations == 0 {
            return Err(Error::InvalidInput(
                "max_concurrent_generations must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// What the chat service works with. Retrieval and memory need `vectors`;
/// without them chat still works, with keyword retrieval only and no memory.
#[derive(Debug, Clone)]
pub struct ChatParts {
    /// Sessions and messages.
    pub catalog: Catalog,
    /// Document retrieval.
    pub searcher: Option<Searcher>,
    /// Embeds exchanges and recall queries and holds the `memory` table.
    pub vectors: Option<Arc<dyn Vectors>>,
    /// The model to answer with.
    pub models: Arc<dyn ModelProvider>,
}
