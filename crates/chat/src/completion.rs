//! [`ChatService::complete`]: a completion over a conversation the caller holds, with or
//! without retrieval, stored nowhere.
//!
//! This is what the OpenAI- and Ollama-compatible APIs and the MCP `ask` tool call: the
//! caller sends the whole conversation each time (those protocols are stateless), so no
//! session, memory, summary or tag is involved. The steps:
//!
//! 1. check the conversation (it ends with a non-empty user message) and the settings;
//! 2. take a generation slot (the same bounded queue as session replies, so `Overloaded`
//!    when it is full) and the loaded model ([`Error::NoModel`] without one);
//! 3. with [`Retrieval`], search the documents with the last user message and put the best
//!    chunks into the system message, after the configured system prompt and the caller's
//!    own system messages, numbered for citation exactly as in sessions
//!    ([`crate::prompt`]); without it the conversation is sent as given;
//! 4. check that the prompt and `max_new_tokens` fit the window: a conversation that does
//!    not fit is refused with `ContextTooLong`, never shortened behind the caller's back
//!    (retrieved chunks are what gives way to the conversation, as in sessions);
//! 5. start generation; a background task forwards the tokens as [`CompletionEvent`]s and
//!    holds the slot until the model is done or the reader goes away.

use std::sync::Arc;

use futures::StreamExt;
use ragd_catalog::MAX_MESSAGE_BYTES;
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, DocumentId, ErrorKind, FinishReason,
    SettingsPatch, TokenUsage,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::error::{Error, Result};
use crate::prompt::{self, BudgetConfig, PromptParts};
use crate::retrieval::Scope;
use crate::service::ChatService;
use crate::template::PromptMeter;
use crate::types::Citation;

/// Events buffered between the generation task and a slow reader.
const EVENT_BUFFER: usize = 64;

/// Where a completion retrieves its context from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retrieval {
    /// The documents to search (with `collection_ids`: their union; neither: all
    /// documents).
    pub document_ids: Vec<DocumentId>,
    /// The collections to search; ones that hold no document find nothing.
    pub collection_ids: Vec<ragd_core::CollectionId>,
    /// Metadata the searched documents must have (empty: no condition).
    pub filter: ragd_core::MetadataFilter,
    /// How many chunks to retrieve (default: the configured `top_k`).
    pub top_k: Option<usize>,
}

/// A completion over the caller's conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteRequest {
    /// The conversation, oldest first; it ends with the user's message.
    pub messages: Vec<ChatMessage>,
    /// Retrieve document context for the last user message (`None`: the model alone).
    pub retrieval: Option<Retrieval>,
    /// Changes to the settings in force, for this completion only.
    pub settings: Option<SettingsPatch>,
}

impl CompleteRequest {
    /// One user message, answered by the model alone with the settings in force.
    #[must_use]
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            messages: vec![ChatMessage { role: ChatRole::User, content: user.into() }],
            retrieval: None,
            settings: None,
        }
    }

    /// The same request, with retrieval.
    #[must_use]
    pub fn with_retrieval(mut self, retrieval: Retrieval) -> Self {
        self.retrieval = Some(retrieval);
        self
    }
}

/// What a streamed completion produces, in order: [`CompletionEvent::Token`]s, then one
/// [`CompletionEvent::Done`] or [`CompletionEvent::Failed`].
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionEvent {
    /// Generated text.
    Token(String),
    /// Generation ended.
    Done {
        /// Why it stopped.
        finish_reason: FinishReason,
        /// Token counts, as the backend reports them.
        usage: TokenUsage,
    },
    /// Generation failed after it had started.
    Failed {
        /// The error's classification.
        kind: ErrorKind,
        /// What went wrong.
        message: String,
    },
}

/// A completion being generated.
#[derive(Debug)]
pub struct CompletionStream {
    /// The model answering (its id as the backend reports it).
    pub model: String,
    /// The chunks the prompt contains, numbered as the model was told to cite them.
    pub citations: Vec<Citation>,
    /// Tokens of the prompt, counted as the backend renders it.
    pub prompt_tokens: usize,
    events: mpsc::Receiver<CompletionEvent>,
}

/// A whole completion.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionReply {
    /// The model that answered.
    pub model: String,
    /// The generated text.
    pub text: String,
    /// The chunks the prompt contained.
    pub citations: Vec<Citation>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: TokenUsage,
}

impl CompletionStream {
    /// The next event; `None` after the last.
    pub async fn next_event(&mut self) -> Option<CompletionEvent> {
        self.events.recv().await
    }

    /// Waits for the whole completion.
    ///
    /// # Errors
    /// [`Error::Generation`] when generation failed after it had started.
    pub async fn finish(mut self) -> Result<CompletionReply> {
        let mut text = String::new();
        while let Some(event) = self.events.recv().await {
            match event {
                CompletionEvent::Token(piece) => text.push_str(&piece),
                CompletionEvent::Done { finish_reason, usage } => {
                    return Ok(CompletionReply {
                        model: self.model,
                        text,
                        citations: self.citations,
                        finish_reason,
                        usage,
                    });
                }
                CompletionEvent::Failed { kind, message } => {
                    return Err(Error::Generation(ragd_core::Error::new(kind, message)));
                }
            }
        }
        Err(Error::Task("the generation task ended without finishing".to_owned()))
    }
}

/// The conversation split the way prompts are built: the caller's system messages, the
/// history before the last message, and the last (user) message.
struct Conversation {
    system: String,
    history: Vec<ChatMessage>,
    user: String,
}

fn split(messages: &[ChatMessage]) -> Result<Conversation> {
    let Some((last, before)) = messages.split_last() else {
        return Err(Error::InvalidInput("the conversation has no messages".to_owned()));
    };
    if last.role != ChatRole::User {
        return Err(Error::InvalidInput(format!(
            "the last message must be the user's, not the {}'s",
            last.role.as_str()
        )));
    }
    if last.content.trim().is_empty() {
        return Err(Error::InvalidInput("the last user message is empty".to_owned()));
    }
    if let Some(big) = messages.iter().find(|m| m.content.len() > MAX_MESSAGE_BYTES) {
        return Err(Error::InvalidInput(format!(
            "a message may be at most {MAX_MESSAGE_BYTES} bytes (a {} message has {})",
            big.role.as_str(),
            big.content.len()
        )));
    }
    let system: Vec<&str> = before
        .iter()
        .filter(|m| m.role == ChatRole::System)
        .map(|m| m.content.trim())
        .filter(|c| !c.is_empty())
        .collect();
    Ok(Conversation {
        system: system.join("\n\n"),
        history: before.iter().filter(|m| m.role != ChatRole::System).cloned().collect(),
        user: last.content.clone(),
    })
}

impl ChatService {
    /// Starts a completion of the caller's conversation; see the module docs for the steps.
    ///
    /// # Errors
    /// `InvalidInput` for a conversation that does not end with a user message, a huge
    /// message, `top_k` or settings out of range; `Overloaded` when the generation queue is
    /// full; [`Error::NoModel`] when no model is loaded; [`Error::ContextTooLong`] when the
    /// conversation and `max_new_tokens` do not fit the window; backend errors before the
    /// first token.
    pub async fn complete(&self, request: CompleteRequest) -> Result<CompletionStream> {
        let conversation = split(&request.messages)?;
        let top_k = match &request.retrieval {
            Some(retrieval) => {
                let top_k = retrieval.top_k.unwrap_or(self.config().top_k);
                if top_k > ragd_search::MAX_TOP_K {
                    return Err(Error::InvalidInput(format!(
                        "top_k must be at most {}",
                        ragd_search::MAX_TOP_K
                    )));
                }
                top_k
            }
            None => 0,
        };
        let settings =
            self.parts().models.settings().apply(&request.settings.unwrap_or_default())?;
        // An unknown collection is the caller's mistake (404), not a quiet answer without
        // documents, which is what retrieval does with errors.
        if let Some(retrieval) = &request.retrieval
            && !retrieval.collection_ids.is_empty()
        {
            let ids = retrieval.collection_ids.clone();
            self.db(move |c| c.collection_documents(&ids).map(|_| ())).await?;
        }
        let slot = self.generation_slot().await?;
        let backend = self.parts().models.backend().ok_or(Error::NoModel)?;

        let documents = match &request.retrieval {
            Some(retrieval) => {
                self.retrieve(
                    &conversation.user,
                    top_k,
                    Scope {
                        document_ids: retrieval.document_ids.clone(),
                        collection_ids: retrieval.collection_ids.clone(),
                        filter: retrieval.filter.clone(),
                    },
                    "completion",
                )
                .await
            }
            None => Vec::new(),
        };
        let meter = PromptMeter::new(Arc::clone(&backend));
        let measure = |messages: &[ChatMessage]| meter.measure(messages);
        let budget = BudgetConfig {
            context_length: backend.context_length(),
            max_new_tokens: settings.max_new_tokens,
            margin: self.config().margin_tokens,
            documents_share: self.config().documents_share,
            memory_share: 0.0,
        };
        let (messages, prompt_tokens, citations) = if request.retrieval.is_some() {
            let counter = {
                let backend = Arc::clone(&backend);
                move |text: &str| backend.count_tokens(text).map_err(Error::from)
            };
            let system_prompt = [self.config().system_prompt.trim(), conversation.system.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n");
            let parts = PromptParts {
                system_prompt: &system_prompt,
                summary: None,
                documents: &documents,
                memories: &[],
                history: &conversation.history,
                user: &conversation.user,
            };
            let mut built = prompt::build(&parts, &budget, &measure, &counter)?;
            let fits = |built: &prompt::Prompt| built.history_used == conversation.history.len();
            if !fits(&built) {
                // The conversation comes first: retrieved chunks give way. Without any it
                // must fit, or the request is refused.
                let bare = PromptParts { documents: &[], ..parts };
                let without = prompt::build(&bare, &budget, &measure, &counter)?;
                if !fits(&without) {
                    let needed = measure(&prompt::assemble_all(&bare))?;
                    return Err(too_long(needed, without.available, &budget));
                }
                // The most chunks that still leave room for the whole conversation (fewer
                // chunks never leave less room), by bisection: `low` fits, `high` does not.
                let (mut low, mut high) = (0, built.documents_used);
                built = without;
                while high - low > 1 {
                    let middle = low + (high - low) / 2;
                    let fewer = PromptParts { documents: &documents[..middle], ..parts };
                    let candidate = prompt::build(&fewer, &budget, &measure, &counter)?;
                    if fits(&candidate) {
                        low = middle;
                        built = candidate;
                    } else {
                        high = middle;
                    }
                }
            }
            let citations = Citation::numbered(&documents, built.documents_used);
            (built.messages, built.prompt_tokens, citations)
        } else {
            let needed = measure(&request.messages)?;
            let available = budget
                .context_length
                .saturating_sub(usize::try_from(budget.max_new_tokens).unwrap_or(usize::MAX))
                .saturating_sub(budget.margin);
            if needed > available {
                return Err(too_long(needed, available, &budget));
            }
            (request.messages, needed, Vec::new())
        };

        let stream = backend.stream(CompletionRequest { messages, settings }).await?;
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(forward(stream, events, slot));
        Ok(CompletionStream {
            model: backend.model_id().to_owned(),
            citations,
            prompt_tokens,
            events: receiver,
        })
    }
}

fn too_long(needed: usize, available: usize, budget: &BudgetConfig) -> Error {
    Error::ContextTooLong {
        needed,
        available,
        context_length: budget.context_length,
        max_new_tokens: budget.max_new_tokens,
    }
}

/// Forwards the backend's deltas to the reader; holds `slot` until the model is done or the
/// reader goes away (dropping the backend's stream stops generation between two tokens).
async fn forward(
    mut stream: futures::stream::BoxStream<'static, ragd_core::Result<CompletionDelta>>,
    events: mpsc::Sender<CompletionEvent>,
    slot: OwnedSemaphorePermit,
) {
    let event = loop {
        match stream.next().await {
            Some(Ok(CompletionDelta::Text(piece))) => {
                if events.send(CompletionEvent::Token(piece)).await.is_err() {
                    tracing::debug!("completion reader went away; generation stopped");
                    return;
                }
            }
            Some(Ok(CompletionDelta::Done { finish_reason, usage })) => {
                break CompletionEvent::Done { finish_reason, usage };
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "completion failed");
                break CompletionEvent::Failed { kind: err.kind(), message: err.to_string() };
            }
            None => {
                break CompletionEvent::Failed {
                    kind: ErrorKind::Internal,
                    message: "the model stopped without finishing".to_owned(),
                };
            }
        }
    };
    drop(stream);
    drop(slot);
    let _ = events.send(event).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: ChatRole, content: &str) -> ChatMessage {
        ChatMessage { role, content: content.to_owned() }
    }

    #[test]
    fn the_conversation_splits_into_system_history_and_the_last_user_message() {
        let split = split(&[
            message(ChatRole::System, "Be brief."),
            message(ChatRole::User, "Hi"),
            message(ChatRole::Assistant, "Hello"),
            message(ChatRole::System, " Answer in French. "),
            message(ChatRole::User, "What is ragd?"),
        ])
        .unwrap();
        assert_eq!(split.system, "Be brief.\n\nAnswer in French.");
        assert_eq!(split.history.len(), 2);
        assert_eq!(split.history[1].content, "Hello");
        assert_eq!(split.user, "What is ragd?");
    }

    #[test]
    fn a_conversation_must_end_with_a_user_message() {
        for messages in [
            vec![],
            vec![message(ChatRole::User, "Hi"), message(ChatRole::Assistant, "Hello")],
            vec![message(ChatRole::User, "  ")],
        ] {
            let err = split(&messages).err().expect("refused");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }
}
