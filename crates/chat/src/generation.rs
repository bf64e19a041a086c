//! The background half of a turn ([`ChatService::send`] starts it once the prompt is built
//! and the backend's stream has opened): [`GenerationTask`] streams tokens to the reader as
//! [`ChatEvent`]s, then stores the assistant message with its [`ReplyMetadata`] (model,
//! settings, token counts, timings, cited chunks, recalled memories), embeds the exchange
//! into the `memory` table and refreshes the automatic tags. It holds the session's lock
//! and the generation slot until it is done.
//!
//! A reader that goes away stops generation between two tokens; what was generated is kept
//! as the reply, marked `cancelled` (nothing is stored when no text came yet). A stream
//! error, or a reply that cannot be stored, becomes [`ChatEvent::Failed`]; the user message
//! stays stored.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use ragd_catalog::NewMessage;
use ragd_core::{
    ChatRole, CompletionDelta, ErrorKind, FinishReason, GenerationSettings, LlmBackend, Message,
    MessageId, SessionId, TokenUsage,
};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, mpsc};

use crate::metadata::{PromptInfo, ReplyMetadata, Timings};
use crate::prompt::Recollection;
use crate::service::ChatService;
use crate::types::{ChatEvent, Citation, Reply};

/// Milliseconds since `since`.
pub(crate) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Everything the background half of [`ChatService::send`] needs.
pub(crate) struct GenerationTask {
    pub(crate) service: ChatService,
    pub(crate) session: SessionId,
    pub(crate) user_message: Message,
    pub(crate) backend: Arc<dyn LlmBackend>,
    pub(crate) settings: GenerationSettings,
    pub(crate) citations: Vec<Citation>,
    pub(crate) recalled: Vec<Recollection>,
    pub(crate) prompt_info: PromptInfo,
    pub(crate) retrieval_ms: u64,
    pub(crate) started: Instant,
}

impl GenerationTask {
    /// Streams, stores and reports the reply; `guard` (the session's lock and the
    /// generation slot) is held until the reply is stored, remembered and tagged.
    pub(crate) async fn run(
        self,
        mut stream: futures::stream::BoxStream<'static, ragd_core::Result<CompletionDelta>>,
        events: mpsc::Sender<ChatEvent>,
        guard: (OwnedMutexGuard<()>, OwnedSemaphorePermit),
    ) {
        let generation_started = Instant::now();
        let mut first_token_ms = None;
        let mut text = String::new();
        let mut outcome: Option<(FinishReason, TokenUsage)> = None;
        let mut cancelled = false;
        while let Some(delta) = stream.next().await {
            match delta {
                Ok(CompletionDelta::Text(piece)) => {
                    first_token_ms.get_or_insert_with(|| elapsed_ms(generation_started));
                    text.push_str(&piece);
                    if events.send(ChatEvent::Token(piece)).await.is_err() {
                        cancelled = true;
                        break;
                    }
                }
                Ok(CompletionDelta::Done { finish_reason, usage }) => {
                    outcome = Some((finish_reason, usage));
                    break;
                }
                Err(err) => {
                    tracing::warn!(session = %self.session, error = %err, "generation failed");
                    let id = self.user_message.id;
                    self.service.record_failure(id, err.kind(), &err.to_string()).await;
                    let _ = events
                        .send(ChatEvent::Failed { kind: err.kind(), message: err.to_string() })
                        .await;
                    return;
                }
            }
        }
        drop(stream);
        if outcome.is_none() && !cancelled {
            let message = "the model stopped without finishing";
            self.service.record_failure(self.user_message.id, ErrorKind::Internal, message).await;
            let _ = events
                .send(ChatEvent::Failed { kind: ErrorKind::Internal, message: message.to_owned() })
                .await;
            return;
        }
        if cancelled && text.trim().is_empty() {
            tracing::info!(session = %self.session, "reader went away before any text; nothing stored");
            return;
        }
        let generation_ms = elapsed_ms(generation_started);
        let usage = outcome.map(|(_, usage)| usage).unwrap_or_default();
        let finish_reason = outcome.map(|(reason, _)| reason);
        let tokens_per_second = if generation_ms > 0 {
            f64::from(usage.completion_tokens) * 1000.0
                / f64::from(u32::try_from(generation_ms).unwrap_or(u32::MAX))
        } else {
            0.0
        };
        let model = self.backend.model_id().to_owned();
        let metadata = ReplyMetadata {
            reply_to: Some(self.user_message.id),
            backend: self.backend.name().to_owned(),
            settings: Some(self.settings.clone()),
            usage,
            finish_reason,
            cancelled,
            timings: Timings {
                retrieval_ms: self.retrieval_ms,
                first_token_ms,
                generation_ms,
                total_ms: elapsed_ms(self.started),
                tokens_per_second,
            },
            citations: self.citations.clone(),
            recalled: self.recalled.iter().map(|r| r.assistant_message_id).collect(),
            prompt: self.prompt_info,
        }
        .to_json();
        let assistant_id = MessageId::new();
        let stored = self
            .service
            .db({
                let (session, content, model) = (self.session, text.clone(), model.clone());
                move |c| {
                    c.append_message(NewMessage {
                        id: assistant_id,
                        session_id: session,
                        role: ChatRole::Assistant,
                        content,
                        model: Some(model),
                        metadata,
                    })
                }
            })
            .await;
        let assistant_message = match stored {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(session = %self.session, error = %err, "storing the reply failed");
                let id = self.user_message.id;
                self.service.record_failure(id, err.kind(), &err.to_string()).await;
                let _ = events
                    .send(ChatEvent::Failed { kind: err.kind(), message: err.to_string() })
                    .await;
                return;
            }
        };
        self.service.remember(self.session, &self.user_message, &assistant_message).await;
        let exchanges = self
            .service
            .db({
                let session = self.session;
                move |c| c.count_messages(session)
            })
            .await
            .map_or(0, |n| n / 2);
        self.service.refresh_tags(&self.backend, self.session, exchanges).await;
        drop(guard);
        tracing::info!(
            session = %self.session,
            model,
            completion_tokens = usage.completion_tokens,
            generation_ms,
            "stored reply"
        );
        let reply = Reply {
            user_message: self.user_message,
            assistant_message,
            citations: self.citations,
            recalled: self.recalled,
            usage,
            finish_reason,
        };
        let _ = events.send(ChatEvent::Done(Box::new(reply))).await;
    }
}
