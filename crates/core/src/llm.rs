//! The [`LlmBackend`] trait: chat completion, streamed or whole.
//!
//! A backend may be in-process (a GGUF model) or remote (an OpenAI-compatible server,
//! Ollama); `ragd-chat` budgets prompts through [`LlmBackend::context_length`] and
//! [`LlmBackend::count_tokens`] and never assumes the model is local.

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// Instructions to the model.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl ChatRole {
    /// The role's name as chat templates expect it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation sent to a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: ChatRole,
    /// What it says.
    pub content: String,
}

/// Sampling and length settings for one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationSettings {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens (0: off).
    pub top_k: u32,
    /// Penalty for repeating recent tokens (1.0: off).
    pub repetition_penalty: f32,
    /// The most tokens to generate.
    pub max_new_tokens: u32,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Generation stops before any of these strings.
    pub stop: Vec<String>,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            repetition_penalty: 1.1,
            max_new_tokens: 512,
            seed: None,
            stop: Vec::new(),
        }
    }
}

/// A request for a chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// How to sample.
    pub settings: GenerationSettings,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced its end-of-turn token.
    Stop,
    /// `max_new_tokens` was reached.
    Length,
    /// A stop sequence matched.
    StopSequence,
}

/// Tokens used by a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

/// A whole completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: TokenUsage,
    /// The model that answered.
    pub model: String,
}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompletionDelta {
    /// More generated text.
    Text(String),
    /// Generation ended; no more deltas follow.
    Done {
        /// Why it stopped.
        finish_reason: FinishReason,
        /// Token counts.
        usage: TokenUsage,
    },
}

/// Generates chat completions.
#[async_trait]
pub trait LlmBackend: Send + Sync + fmt::Debug + 'static {
    /// A short name for spans and metrics (`llama-cpp`, `openai`, `ollama`).
    fn name(&self) -> &str;

    /// The model this backend answers with.
    fn model_id(&self) -> &str;

    /// The model's context window in tokens.
    fn context_length(&self) -> usize;

    /// How many tokens `text` is for this model (an estimate for remote backends that do
    /// not expose their tokenizer).
    ///
    /// # Errors
    /// When the tokenizer fails.
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// The model's chat template (Jinja) if it has one; `None` means the caller picks a
    /// sane default.
    fn chat_template(&self) -> Option<&str> {
        None
    }

    /// Generates a whole completion.
    ///
    /// # Errors
    /// `Unavailable` when the backend cannot be reached, `ContextTooLong` when the prompt
    /// does not fit, `InvalidInput` for bad settings.
    async fn complete(&self, req: CompletionRequest) -> Result<Completion>;

    /// Generates a completion as a stream of deltas ending with [`CompletionDelta::Done`].
    ///
    /// # Errors
    /// As [`LlmBackend::complete`], for failures before the first token.
    async fn stream(
        &self,
        req: CompletionRequest,
    ) -> Result<BoxStream<'static, Result<CompletionDelta>>>;
}
