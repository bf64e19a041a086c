//! [`ScriptedLlm`]: an [`LlmBackend`] that answers from a script and records its prompts.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use ragd_core::{
    ChatMessage, Completion, CompletionDelta, CompletionRequest, Error, FinishReason, LlmBackend,
    Result, TokenUsage,
};

/// How a [`ScriptedLlm`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Always this text.
    Fixed(String),
    /// `Echo: ` and the last user message.
    Echo,
    /// Fail every request with `Unavailable` before the first token.
    Unavailable,
    /// Produce the first word of the text, then fail.
    FailMidway(String),
}

/// A deterministic chat model: tokens are words (whitespace-separated pieces), the window
/// is configurable, and every request is recorded for inspection.
#[derive(Debug, Clone)]
pub struct ScriptedLlm {
    script: Script,
    context_length: usize,
    token_delay: Duration,
    requests: Arc<Mutex<Vec<CompletionRequest>>>,
}

impl ScriptedLlm {
    /// A model answering by `script` with a window of `context_length` tokens.
    #[must_use]
    pub fn new(script: Script, context_length: usize) -> Self {
        Self {
            script,
            context_length,
            token_delay: Duration::ZERO,
            requests: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Waits this long before each streamed token (to test cancellation and ordering).
    #[must_use]
    pub const fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Every request received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<CompletionRequest> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn answer(&self, req: &CompletionRequest) -> Result<String> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(req.clone());
        match &self.script {
            Script::Fixed(text) | Script::FailMidway(text) => Ok(text.clone()),
            Script::Echo => {
                let last = req
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.role == ragd_core::ChatRole::User)
                    .map_or("", |m: &ChatMessage| m.content.as_str());
                Ok(format!("Echo: {last}"))
            }
            Script::Unavailable => Err(Error::unavailable("the scripted model is down")),
        }
    }

    fn prompt_tokens(req: &CompletionRequest) -> u32 {
        let words: usize = req.messages.iter().map(|m| m.content.split_whitespace().count()).sum();
        u32::try_from(words).unwrap_or(u32::MAX)
    }
}

#[async_trait]
impl LlmBackend for ScriptedLlm {
    fn name(&self) -> &str {
        "scripted"
    }

    fn model_id(&self) -> &str {
        "scripted-model"
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(text.split_whitespace().count())
    }

    async fn complete(&self, req: CompletionRequest) -> Result<Completion> {
        let text = self.answer(&req)?;
        let words: Vec<&str> =
            text.split_whitespace().take(req.settings.max_new_tokens as usize).collect();
        let finish_reason = if words.len() < text.split_whitespace().count() {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        Ok(Completion {
            text: words.join(" "),
            finish_reason,
            usage: TokenUsage {
                prompt_tokens: Self::prompt_tokens(&req),
                completion_tokens: u32::try_from(words.len()).unwrap_or(u32::MAX),
                cached_prompt_tokens: 0,
            },
            model: self.model_id().to_owned(),
        })
    }

    async fn stream(
        &self,
        req: CompletionRequest,
    ) -> Result<BoxStream<'static, Result<CompletionDelta>>> {
        let text = self.answer(&req)?;
        let fail = matches!(self.script, Script::FailMidway(_));
        let max = req.settings.max_new_tokens as usize;
        let pieces: Vec<String> =
            text.split_inclusive(' ').take(if fail { 1 } else { max }).map(str::to_owned).collect();
        let count = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
        let finish_reason = if pieces.len() < text.split_inclusive(' ').count() {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let usage = TokenUsage {
            prompt_tokens: Self::prompt_tokens(&req),
            completion_tokens: count,
            cached_prompt_tokens: 0,
        };
        let delay = self.token_delay;
        let mut deltas: Vec<Result<CompletionDelta>> =
            pieces.into_iter().map(|p| Ok(CompletionDelta::Text(p))).collect();
        deltas.push(if fail {
            Err(Error::internal("the scripted model failed midway"))
        } else {
            Ok(CompletionDelta::Done { finish_reason, usage })
        });
        Ok(stream::iter(deltas)
            .then(move |delta| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                delta
            })
            .boxed())
    }
}
