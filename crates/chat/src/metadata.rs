//! [`ReplyMetadata`]: what is stored with each assistant message, as one typed struct that
//! both writes the stored JSON and reads it back (memory recall finds a reply's question
//! through [`ReplyMetadata::reply_to`]). Every field has a default, so metadata written by
//! an older ragd, or none at all, still reads.

use ragd_core::{FinishReason, GenerationSettings, MessageId, TokenUsage};
use serde::{Deserialize, Serialize};

use crate::types::Citation;

/// The metadata of an assistant message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplyMetadata {
    /// The user message this answers.
    pub reply_to: Option<MessageId>,
    /// The backend that generated it (`llama-cpp`, `openai`, `ollama`, ...).
    pub backend: String,
    /// The generation settings used.
    pub settings: Option<GenerationSettings>,
    /// Token counts.
    pub usage: TokenUsage,
    /// Why generation stopped; `None` when it was cancelled or failed.
    pub finish_reason: Option<FinishReason>,
    /// Whether the reader went away before the end (the text is what was generated).
    pub cancelled: bool,
    /// How long the steps took.
    pub timings: Timings,
    /// The sources the prompt gave, numbered as the answer cites them.
    pub citations: Vec<Citation>,
    /// The assistant messages of the exchanges recalled from memory.
    pub recalled: Vec<MessageId>,
    /// What fitted in the prompt.
    pub prompt: PromptInfo,
}

/// Durations of one reply, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timings {
    /// Retrieval (documents and memory).
    pub retrieval_ms: u64,
    /// From the start of generation to the first token.
    pub first_token_ms: Option<u64>,
    /// Generation.
    pub generation_ms: u64,
    /// From the message's arrival to the stored reply.
    pub total_ms: u64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
}

/// What the prompt of a reply held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptInfo {
    /// The prompt's tokens, as counted with the model's template and tokenizer.
    pub prompt_tokens_estimate: usize,
    /// The tokens the window left for the prompt.
    pub budget_tokens: usize,
    /// Document chunks included.
    pub documents: usize,
    /// Recalled exchanges included.
    pub memories: usize,
    /// History messages included.
    pub history_messages: usize,
    /// Whether the session summary was included.
    pub summary: bool,
    /// How the documents entered the prompt.
    pub context_mode: crate::ContextMode,
    /// The time preparing the documents added (the chunk summaries), in milliseconds.
    pub context_ms: u64,
    /// Chunk summaries read from the cache rather than made.
    pub context_summaries_cached: usize,
}

impl ReplyMetadata {
    /// The user message a stored assistant message answers, read from its metadata;
    /// `None` for metadata without one.
    #[must_use]
    pub fn reply_to(metadata: &serde_json::Value) -> Option<MessageId> {
        Self::deserialize(metadata).ok()?.reply_to
    }

    /// The JSON stored with the message.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        // Serialising plain fields into a `Value` cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_to_reads_back_and_old_or_empty_metadata_reads_too() {
        let question = MessageId::new();
        let metadata = ReplyMetadata { reply_to: Some(question), ..ReplyMetadata::default() };
        let json = metadata.to_json();
        assert_eq!(json["reply_to"], question.to_string());
        assert_eq!(ReplyMetadata::reply_to(&json), Some(question));
        assert_eq!(ReplyMetadata::deserialize(&json).unwrap(), metadata);
        assert_eq!(ReplyMetadata::reply_to(&serde_json::json!({})), None);
        let older = serde_json::json!({"reply_to": question, "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        assert_eq!(ReplyMetadata::reply_to(&older), Some(question));
        assert_eq!(ReplyMetadata::reply_to(&serde_json::json!({"reply_to": "not-a-uuid"})), None);
    }
}
