//! What the OpenAI- and Ollama-compatible APIs share: the model ids they offer, how a
//! requested model id is resolved, one generation started from either protocol, and
//! embeddings.
//!
//! Model ids, as both protocols list them:
//! - the loaded chat model's id (as its backend reports it): the model alone, the
//!   conversation sent as given;
//! - [`RAG_MODEL`] (`ragd`): the same model answering over the documents, the last user
//!   message driving hybrid retrieval, with citations (optionally restricted to documents,
//!   or run inside a stored session, through the request's `ragd` extension);
//! - the embedding model's id, for the embeddings routes.
//!
//! Everything here calls the engine's services ([`ragd_chat::ChatService::complete`] and
//! [`ragd_chat::ChatService::send`], the embedder); the protocol modules only translate
//! shapes (architecture invariant 6).

use std::sync::Arc;
use std::time::Instant;

use ragd_chat::{
    ChatEvent, ChatTurn, Citation, CompleteRequest, CompletionEvent, CompletionStream, Retrieval,
    SendMessage,
};
use ragd_core::{
    ChatMessage, ChatRole, DocumentId, Embedder, Embedding, ErrorKind, FinishReason, MessageId,
    SessionId, SettingsPatch, TokenUsage,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::ApiError;
use crate::api::error::no_chat_model;
use crate::api::scope::KeyScope;
use crate::state::AppState;

/// The model id of retrieval-augmented answers over all documents.
pub const RAG_MODEL: &str = "ragd";

/// The most inputs one embeddings request may carry.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// What kind of model an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// The loaded chat model, alone.
    Chat,
    /// The loaded chat model with retrieval ([`RAG_MODEL`]).
    Rag,
    /// The embedding model.
    Embedding,
}

impl ModelKind {
    /// The name in the `ragd.kind` extension field.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Rag => "rag",
            Self::Embedding => "embedding",
        }
    }
}

/// One model id on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedModel {
    /// The id clients send.
    pub id: String,
    /// What it is.
    pub kind: ModelKind,
    /// The model file's size, when there is one.
    pub size_bytes: Option<u64>,
    /// The context window (chat) or the longest input (embedding), in tokens.
    pub context_length: Option<usize>,
    /// The embedding dimension.
    pub dimensions: Option<usize>,
}

/// The model ids on offer now: the loaded chat model and [`RAG_MODEL`] (when a chat model
/// is loaded), and the embedding model (when it loaded).
#[must_use]
pub fn offered_models(state: &AppState) -> Vec<OfferedModel> {
    let mut models = Vec::new();
    if let Some(backend) = state.engine.models().backend() {
        let size_bytes = state.engine.models().status().model.and_then(|m| m.size_bytes);
        let context_length = Some(backend.context_length());
        models.push(OfferedModel {
            id: backend.model_id().to_owned(),
            kind: ModelKind::Chat,
            size_bytes,
            context_length,
            dimensions: None,
        });
        models.push(OfferedModel {
            id: RAG_MODEL.to_owned(),
            kind: ModelKind::Rag,
            size_bytes,
            context_length,
            dimensions: None,
        });
    }
    if let Some(embedder) = state.engine.embedder() {
        models.push(OfferedModel {
            id: embedder.model_id().to_owned(),
            kind: ModelKind::Embedding,
            size_bytes: None,
            context_length: Some(embedder.max_tokens()),
            dimensions: Some(embedder.dimensions()),
        });
    }
    models
}

/// The model `id` names, or a 404 that says which ids exist.
///
/// # Errors
/// `NotFound` (code `model_not_found`) for an id not on offer; `Unavailable` for
/// [`RAG_MODEL`] while no chat model is loaded.
pub fn resolve_model(state: &AppState, id: &str) -> Result<OfferedModel, ApiError> {
    let offered = offered_models(state);
    if let Some(model) = offered.iter().find(|m| m.id == id) {
        return Ok(model.clone());
    }
    if id == RAG_MODEL {
        return Err(no_chat_model());
    }
    let ids: Vec<&str> = offered.iter().map(|m| m.id.as_str()).collect();
    let known = if ids.is_empty() { "none".to_owned() } else { ids.join(", ") };
    Err(ApiError::new(
        ErrorKind::NotFound,
        format!("the model `{id}` does not exist or is not loaded (models on offer: {known})"),
    )
    .with_code("model_not_found")
    .with_param("model"))
}

/// The `ragd` extension of a chat request: retrieval options of the [`RAG_MODEL`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RagOptions {
    /// Retrieve only from these documents (with `collection_ids`: their union; neither:
    /// all documents).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
    /// Retrieve only from the documents of these collections.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub collection_ids: Vec<ragd_core::CollectionId>,
    /// Retrieve only from documents whose metadata satisfies this filter (the form of the
    /// search routes' `filter`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// How many chunks to retrieve (default: the configured `chat.top_k`).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Answer inside this stored session: the last user message is sent to it (its own
    /// history, memory and documents are used) and the exchange is stored there and
    /// becomes memory.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub session_id: Option<SessionId>,
}

/// A chat request, as both protocols carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The requested model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Changes to the settings in force.
    pub settings: SettingsPatch,
    /// The `ragd` extension.
    pub rag: Option<RagOptions>,
}

/// A generation under way, from either service.
#[derive(Debug)]
pub enum Generation {
    /// A stateless completion.
    Completion(CompletionStream),
    /// A reply in a stored session.
    Session(ChatTurn),
}

/// What a generation produces, in order: tokens, then one `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Generated {
    /// More text.
    Token(String),
    /// The end.
    Done {
        /// Why it stopped (`None` when a session reply was cut short).
        finish_reason: Option<FinishReason>,
        /// Token counts.
        usage: TokenUsage,
        /// The stored assistant message (session replies).
        message_id: Option<MessageId>,
    },
    /// Generation failed after it had started.
    Failed(ApiError),
}

impl Generation {
    /// The chunks the prompt contains.
    #[must_use]
    pub fn citations(&self) -> &[Citation] {
        match self {
            Self::Completion(stream) => &stream.citations,
            Self::Session(turn) => &turn.citations,
        }
    }

    /// The next event; `None` after the last.
    pub async fn next(&mut self) -> Option<Generated> {
        match self {
            Self::Completion(stream) => Some(match stream.next_event().await? {
                CompletionEvent::Token(text) => Generated::Token(text),
                CompletionEvent::Done { finish_reason, usage } => {
                    Generated::Done { finish_reason: Some(finish_reason), usage, message_id: None }
                }
                CompletionEvent::Failed { kind, message } => {
                    Generated::Failed(ApiError::new(kind, message))
                }
            }),
            Self::Session(turn) => loop {
                break Some(match turn.next_event().await? {
                    // Context progress has no place in the OpenAI and Ollama formats.
                    ChatEvent::Progress { .. } => continue,
                    ChatEvent::Token(text) => Generated::Token(text),
                    ChatEvent::Done(reply) => Generated::Done {
                        finish_reason: reply.finish_reason,
                        usage: reply.usage,
                        message_id: Some(reply.assistant_message.id),
                    },
                    ChatEvent::Failed { kind, message } => {
                        Generated::Failed(ApiError::new(kind, message))
                    }
                });
            },
        }
    }

    /// Waits for the whole text.
    ///
    /// # Errors
    /// When generation failed after it had started.
    pub async fn collect(mut self) -> Result<Collected, ApiError> {
        let citations = self.citations().to_vec();
        let mut text = String::new();
        let mut first_token_at = None;
        while let Some(event) = self.next().await {
            match event {
                Generated::Token(piece) => {
                    first_token_at.get_or_insert_with(Instant::now);
                    text.push_str(&piece);
                }
                Generated::Done { finish_reason, usage, message_id } => {
                    return Ok(Collected {
                        text,
                        citations,
                        finish_reason,
                        usage,
                        message_id,
                        first_token_at,
                    });
                }
                Generated::Failed(err) => return Err(err),
            }
        }
        Err(ApiError::new(ErrorKind::Internal, "generation ended without finishing"))
    }
}

/// A whole generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    /// The text.
    pub text: String,
    /// The chunks the prompt contained.
    pub citations: Vec<Citation>,
    /// Why it stopped.
    pub finish_reason: Option<FinishReason>,
    /// Token counts.
    pub usage: TokenUsage,
    /// The stored assistant message (session replies).
    pub message_id: Option<MessageId>,
    /// When the first text arrived.
    pub first_token_at: Option<Instant>,
}

/// Starts the generation `request` asks for.
///
/// # Errors
/// 404 for an unknown model (or the embedding model), 400 for `ragd` options on a plain
/// model id or for a conversation the services refuse, 503 without a chat model, 429 when
/// the generation queue is full.
pub async fn start(
    state: &AppState,
    scope: &KeyScope,
    request: ChatRequest,
) -> Result<Generation, ApiError> {
    let model = resolve_model(state, &request.model)?;
    let chat = state.engine.chat();
    match model.kind {
        ModelKind::Embedding => Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!("`{}` is an embedding model; it cannot chat", model.id),
        )
        .with_param("model")),
        ModelKind::Chat => {
            if request.rag.is_some() {
                return Err(ApiError::new(
                    ErrorKind::InvalidInput,
                    format!("`ragd` options need the model `{RAG_MODEL}`"),
                )
                .with_param("ragd"));
            }
            let completion = CompleteRequest {
                messages: request.messages,
                retrieval: None,
                settings: Some(request.settings),
            };
            Ok(Generation::Completion(chat.complete(completion).await?))
        }
        ModelKind::Rag => {
            let rag = request.rag.unwrap_or_default();
            let filter = crate::api::search::metadata_filter(rag.filter.as_ref())
                .map_err(|err| err.with_param("ragd"))?;
            if let Some(session) = rag.session_id {
                if !rag.document_ids.is_empty() || !rag.collection_ids.is_empty() {
                    return Err(ApiError::new(
                        ErrorKind::InvalidInput,
                        "a session retrieves from its own documents: send `session_id` or \
                         `document_ids`/`collection_ids`, not both",
                    )
                    .with_param("ragd"));
                }
                scope.resolve(&state.engine).await?.session(&state.engine, session).await?;
                let content = last_user_message(&request.messages)?;
                let send = SendMessage {
                    content,
                    top_k: rag.top_k,
                    memory_all_sessions: false,
                    settings: Some(request.settings),
                    filter,
                    context_mode: ragd_chat::ContextMode::Chunks,
                };
                return Ok(Generation::Session(chat.send(session, send).await?));
            }
            // A scoped key retrieves from its collections only.
            let allowed = scope.resolve(&state.engine).await?;
            let collection_ids = allowed
                .restrict_search(&state.engine, &rag.document_ids, rag.collection_ids)
                .await
                .map_err(|err| err.with_param("ragd"))?;
            let completion = CompleteRequest {
                messages: request.messages,
                retrieval: Some(Retrieval {
                    document_ids: rag.document_ids,
                    collection_ids,
                    filter,
                    top_k: rag.top_k,
                }),
                settings: Some(request.settings),
            };
            Ok(Generation::Completion(chat.complete(completion).await?))
        }
    }
}

/// The text of the conversation's last message, which must be the user's.
fn last_user_message(messages: &[ChatMessage]) -> Result<String, ApiError> {
    match messages.last() {
        Some(ChatMessage { role: ChatRole::User, content }) => Ok(content.clone()),
        _ => Err(ApiError::new(ErrorKind::InvalidInput, "the last message must be the user's")
            .with_param("messages")),
    }
}

/// A JSON string or array of strings, as both protocols accept `input`; `None` for anything
/// else (numbers, token arrays, objects).
#[must_use]
pub fn strings(value: serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value;
    if let Value::String(one) = value {
        return Some(vec![one]);
    }
    let Value::Array(many) = value else { return None };
    many.into_iter()
        .map(|item| if let Value::String(text) = item { Some(text) } else { None })
        .collect()
}

/// Embeddings of `inputs` by the embedding model `model`, with the tokens they took.
///
/// # Errors
/// 404 when `model` is not the embedding model, 400 for `dimensions` other than the
/// model's, for no input, too many or empty ones, 503 without an embedder.
pub async fn embed(
    state: &AppState,
    model: Option<&str>,
    dimensions: Option<usize>,
    inputs: Vec<String>,
) -> Result<(Arc<dyn Embedder>, Vec<Embedding>, usize), ApiError> {
    let embedder = state.engine.embedder().cloned().ok_or_else(|| {
        ApiError::new(ErrorKind::Unavailable, "no embedding model is loaded (see /api/v1/info)")
    })?;
    if let Some(model) = model
        && model != embedder.model_id()
    {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "the embedding model `{model}` does not exist (this server embeds with `{}`)",
                embedder.model_id()
            ),
        )
        .with_code("model_not_found")
        .with_param("model"));
    }
    // Checked before any work: the model cannot shorten its vectors.
    if let Some(dimensions) = dimensions
        && dimensions != embedder.dimensions()
    {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "`{}` has {} dimensions and cannot shorten them; send {} or leave `dimensions` out",
                embedder.model_id(),
                embedder.dimensions(),
                embedder.dimensions()
            ),
        )
        .with_param("dimensions"));
    }
    if inputs.is_empty() {
        return Err(
            ApiError::new(ErrorKind::InvalidInput, "the input is empty").with_param("input")
        );
    }
    if inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!("at most {MAX_EMBEDDING_INPUTS} inputs per request, not {}", inputs.len()),
        )
        .with_param("input"));
    }
    if let Some(index) = inputs.iter().position(|text| text.trim().is_empty()) {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!("input {index} is empty; every input needs some text"),
        )
        .with_param("input"));
    }
    let mut tokens = 0_usize;
    for text in &inputs {
        // What the model reads: longer inputs are truncated to its window.
        tokens += embedder.count_tokens(text)?.min(embedder.max_tokens());
    }
    let vectors = embedder.embed_documents(inputs).await?;
    Ok((embedder, vectors, tokens))
}
