//! [`ChatService::send`]: one turn, from the user's message to the started reply.
//!
//! Sending a message, in order, while holding the session's lock (messages of one session
//! are serialised; different sessions run concurrently):
//!
//! 1. store the user message: from here on it is durable, whatever happens next;
//! 2. take the loaded model (none: [`Error::NoModel`], HTTP 503);
//! 3. retrieve context: hybrid search over the session's documents (all documents when
//!    it names none), and long-term memory: earlier exchanges of this session (or of every
//!    session, on request) recalled by vector similarity;
//! 4. fit system prompt, summary, documents, memory and recent history into the model's
//!    window ([`crate::prompt`]); when history had to be left out and is not yet covered by
//!    the session summary, ask the model to extend the summary first;
//! 5. start generation. Failures up to here are returned as errors, so HTTP can answer
//!    with a status code; from step 2 on they are also recorded on the user message
//!    (`metadata.error: {code, message}`), as a failure during generation is. From here a background task ([`GenerationTask`]) streams tokens
//!    as [`ChatEvent`](crate::ChatEvent)s, then stores the assistant message with its metadata (model,
//!    settings, token counts, timings, cited chunks, recalled memories), embeds the exchange
//!    into the `memory` table and refreshes the automatic tags.
//!
//! A reader that goes away stops generation between two tokens; what was generated is kept
//! as the reply, marked `cancelled`.

use std::sync::Arc;
use std::time::Instant;

use ragd_catalog::{MAX_MESSAGE_BYTES, NewMessage};
use ragd_core::{ChatMessage, ChatRole, CompletionRequest, Message, MessageId, SessionId};
use serde_json::json;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::generation::{GenerationTask, elapsed_ms};
use crate::metadata::PromptInfo;
use crate::prompt::{self, BudgetConfig, PromptParts, Recollection};
use crate::retrieval::Scope;
use crate::service::ChatService;
use crate::template::PromptMeter;
use crate::types::{ChatTurn, Citation, ContextMode, SendMessage};

/// Events buffered between the generation task and a slow reader.
pub(crate) const EVENT_BUFFER: usize = 64;

/// Messages summarised per summarisation call at most.
const SUMMARY_BATCH: u32 = 200;

impl ChatService {
    /// Sends a message and starts the reply; see the module docs for the steps.
    ///
    /// # Errors
    /// `NotFound` for an unknown session; `InvalidInput` for an empty or huge message or
    /// generation settings out of range;
    /// [`Error::NoModel`] when no model is loaded; `ContextTooLong` when the message does not
    /// fit the window; backend errors before the first token. The user message is stored
    /// before any of the errors after validation.
    pub async fn send(&self, id: SessionId, request: SendMessage) -> Result<ChatTurn> {
        let content = request.content.trim().to_owned();
        if content.is_empty() {
            return Err(Error::InvalidInput("the message is empty".to_owned()));
        }
        if content.len() > MAX_MESSAGE_BYTES {
            return Err(Error::InvalidInput(format!(
                "a message may be at most {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        let top_k = request.top_k.unwrap_or(self.config().top_k);
        if top_k > ragd_search::MAX_TOP_K {
            return Err(Error::InvalidInput(format!(
                "top_k must be at most {}",
                ragd_search::MAX_TOP_K
            )));
        }
        // Out-of-range settings refuse the message before it is stored. `apply` checks the
        // result, so settings in force from a provider that does not check are checked too.
        let patch = request.settings.unwrap_or_default();
        let settings = self.parts().models.settings().apply(&patch)?;
        let guard = self.lock(id).await;
        // A full queue refuses before anything is stored: the client simply retries.
        let slot = self.generation_slot().await?;
        let started = Instant::now();

        // 1. The user message is durable before anything can fail.
        let user_message = self
            .db({
                let content = content.clone();
                move |c| {
                    c.append_message(NewMessage {
                        id: MessageId::new(),
                        session_id: id,
                        role: ChatRole::User,
                        content,
                        model: None,
                        metadata: json!({}),
                    })
                }
            })
            .await?;

        // 2. to 5. Whatever fails from here leaves its error on the user message, so the
        // history shows why the question has no answer.
        let user_id = user_message.id;
        let turn = async move {
            // 2. The model.
            let backend = self.parts().models.backend().ok_or(Error::NoModel)?;
            let session = self.session(id).await?;
            if request.context_mode == ContextMode::Document {
                // Reading and summarising whole documents reports progress on the events:
                // the turn is returned now, the rest runs in the background.
                return Ok(self.send_whole(crate::whole::WholeRequest {
                    session,
                    user_message,
                    backend,
                    settings,
                    content,
                    held: (guard, slot),
                    started,
                }));
            }

            // 3. Context.
            let scope = format!("session {id}");
            let documents = self
                .retrieve(
                    &content,
                    top_k,
                    Scope {
                        document_ids: session.document_ids.clone(),
                        collection_ids: session.collection_ids.clone(),
                        filter: request.filter.clone(),
                    },
                    &scope,
                )
                .await;
            // Summarised context: each chunk condensed for the question first.
            let (documents, condensed) = match request.context_mode {
                ContextMode::Chunks | ContextMode::Document => (documents, None),
                ContextMode::Summaries => {
                    let condensed = self.condense(&backend, &content, documents).await;
                    let info = (condensed.ms, condensed.cached);
                    (condensed.chunks, Some(info))
                }
            };
            let memory_scope = (!request.memory_all_sessions).then_some(id);
            // The user message just stored is the newest (the session lock is held): read one
            // more than the window and leave it out.
            let read = self.config().history_messages.saturating_add(1);
            let history: Vec<Message> = self
                .db(move |c| c.recent_messages(id, read))
                .await?
                .into_iter()
                .filter(|m| m.id != user_message.id)
                .collect();
            let in_history: Vec<MessageId> = history.iter().map(|m| m.id).collect();
            let recalled = match self
                .recall(&content, memory_scope, self.config().memory_top_k, &in_history)
                .await
            {
                Ok(recalled) => recalled.into_iter().map(|(_, r)| r).collect(),
                Err(err) => {
                    tracing::warn!(session = %id, error = %err, "memory recall failed; answering without it");
                    Vec::new()
                }
            };
            let retrieval_ms = elapsed_ms(started);

            // 4. The prompt.
            let meter = PromptMeter::new(Arc::clone(&backend));
            let measure = |messages: &[ChatMessage]| meter.measure(messages);
            let counter = {
                let backend = Arc::clone(&backend);
                move |text: &str| backend.count_tokens(text).map_err(Error::from)
            };
            let budget = BudgetConfig {
                context_length: backend.context_length(),
                max_new_tokens: settings.max_new_tokens,
                margin: self.config().margin_tokens,
                documents_share: self.config().documents_share,
                memory_share: self.config().memory_share,
            };
            let chat_history: Vec<ChatMessage> = history
                .iter()
                .map(|m| ChatMessage { role: m.role, content: m.content.clone() })
                .collect();
            let fit = |summary: Option<&str>| {
                let parts = PromptParts {
                    system_prompt: &self.config().system_prompt,
                    summary,
                    documents: &documents,
                    memories: &recalled,
                    history: &chat_history,
                    user: &content,
                };
                prompt::build(&parts, &budget, &measure, &counter)
            };
            let mut prompt = fit(session.summary.as_deref())?;
            let first_kept = history.len() - prompt.history_used;
            if self.config().summarize
                && let Some(oldest_kept) = history.get(first_kept).or(Some(&user_message))
            {
                let dropped_unsummarised = self
                    .db({
                        let (after, before) = (session.summary_through, oldest_kept.id);
                        move |c| c.messages_between(id, after, before, SUMMARY_BATCH)
                    })
                    .await?;
                if !dropped_unsummarised.is_empty() {
                    match self.summarise(&backend, &session, &dropped_unsummarised, &meter).await {
                        Ok(summary) => prompt = fit(Some(&summary))?,
                        Err(err) => {
                            tracing::warn!(session = %id, error = %err, "summarising old history failed; answering without it");
                        }
                    }
                }
            }

            let citations = Citation::numbered(&documents, prompt.documents_used);
            let recalled: Vec<Recollection> = recalled[..prompt.memories_used].to_vec();
            let prompt_info = PromptInfo {
                prompt_tokens_estimate: prompt.prompt_tokens,
                budget_tokens: prompt.available,
                documents: prompt.documents_used,
                memories: prompt.memories_used,
                history_messages: prompt.history_used,
                summary: prompt.summary_used,
                context_mode: request.context_mode,
                context_ms: condensed.map_or(0, |(ms, _)| ms),
                context_summaries_cached: condensed.map_or(0, |(_, cached)| cached),
            };

            // 5. Generation.
            let stream = backend
                .stream(CompletionRequest { messages: prompt.messages, settings: settings.clone() })
                .await?;
            let (events, receiver) = mpsc::channel(EVENT_BUFFER);
            let task = GenerationTask {
                service: self.clone(),
                session: id,
                user_message: user_message.clone(),
                backend,
                settings,
                citations: citations.clone(),
                recalled: recalled.clone(),
                prompt_info,
                retrieval_ms,
                started,
            };
            tokio::spawn(task.run(stream, events, (guard, slot)));
            Ok::<_, Error>(ChatTurn { user_message, citations, recalled, events: receiver })
        }
        .await;
        if let Err(err) = &turn {
            self.record_failure(user_id, err.kind(), &err.to_string()).await;
        }
        turn
    }

    /// Leaves `metadata.error` on the user message `id` whose reply failed; a failure to
    /// record it is logged (the caller reports the reply's own error).
    pub(crate) async fn record_failure(
        &self,
        id: MessageId,
        kind: ragd_core::ErrorKind,
        message: &str,
    ) {
        let message = message.to_owned();
        let recorded = self.db(move |c| c.set_message_error(id, kind.code(), &message)).await;
        if let Err(err) = recorded {
            tracing::warn!(message = %id, error = %err, "cannot record the failed reply on its message");
        }
    }
}
