//! The [`LlmBackend`] trait: chat completion, streamed or whole.
//!
//! A backend may be in-process (a GGUF model) or remote (an OpenAI-compatible server,
//! Ollama); `ragd-chat` budgets prompts through [`LlmBackend::context_length`] and
//! [`LlmBackend::count_tokens`] and never assumes the model is local.

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

impl GenerationSettings {
    /// The most stop sequences a request may carry.
    pub const MAX_STOP_SEQUENCES: usize = 8;

    /// Checks that every setting is within a sane range. Every caller that puts settings
    /// in force or generates with them (the model manager, the chat service) calls this, so
    /// a library user gets the same rules as the HTTP API.
    ///
    /// # Errors
    /// `InvalidInput` naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, message: &str| {
            if ok { Ok(()) } else { Err(Error::invalid_input(message.to_owned())) }
        };
        check((0.0..=2.0).contains(&self.temperature), "temperature must be between 0 and 2")?;
        check(self.top_p > 0.0 && self.top_p <= 1.0, "top_p must be in (0, 1]")?;
        check(self.top_k <= 1000, "top_k must be at most 1000 (0 turns it off)")?;
        check(
            (0.5..=2.0).contains(&self.repetition_penalty),
            "repetition_penalty must be between 0.5 and 2",
        )?;
        check(
            (1..=32_768).contains(&self.max_new_tokens),
            "max_new_tokens must be between 1 and 32768",
        )?;
        check(self.stop.len() <= Self::MAX_STOP_SEQUENCES, "at most 8 stop sequences")?;
        check(
            self.stop.iter().all(|stop| !stop.is_empty() && stop.len() <= 64),
            "stop sequences must be 1 to 64 bytes",
        )
    }

    /// These settings with the fields `patch` sets replaced, checked with
    /// [`GenerationSettings::validate`]. `self` is not changed, so a refused patch changes
    /// nothing.
    ///
    /// # Errors
    /// As [`GenerationSettings::validate`], for the patched settings.
    pub fn apply(&self, patch: &SettingsPatch) -> Result<Self> {
        let mut settings = self.clone();
        if let Some(v) = patch.temperature {
            settings.temperature = v;
        }
        if let Some(v) = patch.top_p {
            settings.top_p = v;
        }
        if let Some(v) = patch.top_k {
            settings.top_k = v;
        }
        if let Some(v) = patch.repetition_penalty {
            settings.repetition_penalty = v;
        }
        if let Some(v) = patch.max_new_tokens {
            settings.max_new_tokens = v;
        }
        if let Some(v) = patch.seed {
            settings.seed = v;
        }
        if let Some(v) = &patch.stop {
            settings.stop.clone_from(v);
        }
        settings.validate()?;
        Ok(settings)
    }
}

/// A partial change of [`GenerationSettings`]: fields left `None` keep their value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsPatch {
    /// Softmax temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    pub top_p: Option<f32>,
    /// Keep only the `top_k` most likely tokens (0: off).
    pub top_k: Option<u32>,
    /// Penalty for repeating recent tokens.
    pub repetition_penalty: Option<f32>,
    /// The most tokens to generate.
    pub max_new_tokens: Option<u32>,
    /// The seed; `Some(None)` clears it.
    pub seed: Option<Option<u64>>,
    /// Stop sequences (replaces the list).
    pub stop: Option<Vec<String>>,
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
    /// Prompt tokens the backend did not read again because it still held them from an
    /// earlier request (a prompt cache); part of `prompt_tokens`.
    #[serde(default)]
    pub cached_prompt_tokens: u32,
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

    /// The tokens `messages` take as this backend will send them to the model: rendered
    /// with its own chat template and tokenised as the model reads them (special tokens
    /// included). `None` when the backend does not render prompts itself (a remote server
    /// renders on its side); callers then render the model's template and count with
    /// [`LlmBackend::count_tokens`]. A backend that renders must answer here, so a prompt
    /// budget counts the very string that is sent.
    fn prompt_tokens(&self, messages: &[ChatMessage]) -> Option<Result<usize>> {
        let _ = messages;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn settings_ranges_are_checked() {
        assert!(GenerationSettings::default().validate().is_ok());
        for bad in [
            GenerationSettings { temperature: 3.0, ..GenerationSettings::default() },
            GenerationSettings { top_p: 0.0, ..GenerationSettings::default() },
            GenerationSettings { top_k: 1001, ..GenerationSettings::default() },
            GenerationSettings { repetition_penalty: 0.1, ..GenerationSettings::default() },
            GenerationSettings { max_new_tokens: 0, ..GenerationSettings::default() },
            GenerationSettings { stop: vec![String::new()], ..GenerationSettings::default() },
            GenerationSettings { stop: vec!["x".to_owned(); 9], ..GenerationSettings::default() },
        ] {
            let err = bad.validate().expect_err("out of range");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn a_patch_changes_only_its_fields_and_a_bad_one_changes_nothing() {
        let base = GenerationSettings { seed: Some(7), ..GenerationSettings::default() };
        let patch =
            SettingsPatch { temperature: Some(0.2), seed: Some(None), ..SettingsPatch::default() };
        let patched = base.apply(&patch).expect("valid");
        assert!((patched.temperature - 0.2).abs() < f32::EPSILON);
        assert_eq!(patched.seed, None);
        assert_eq!(patched.max_new_tokens, base.max_new_tokens);
        assert_eq!(patched.top_p.to_bits(), base.top_p.to_bits());

        let bad =
            SettingsPatch { temperature: Some(1.9), top_p: Some(2.0), ..SettingsPatch::default() };
        let err = base.apply(&bad).expect_err("top_p out of range");
        assert!(err.message().contains("top_p"), "{err}");
        assert_eq!(base.seed, Some(7), "the base is untouched");
        assert_eq!(base.apply(&SettingsPatch::default()).expect("valid"), base);
    }
}
