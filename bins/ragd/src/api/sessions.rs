//! `/api/v1/sessions`: chat sessions, their messages (JSON or streamed as server-sent
//! events) and recall over their long-term memory.
//!
//! A message answer lists the chunks its prompt contained (`citations`), so a client can
//! fetch each source by id from `/api/v1/documents/chunks/{chunk_id}`.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::{self, Stream};
use ragd_catalog::{SessionQuery, SessionUpdate};
use ragd_chat::{
    ChatEvent, ChatTurn, Citation, ContextMode, CreateSession, MemoryHit, Reply, SendMessage,
};
use ragd_core::{CollectionId, DocumentId, Message, Session, SessionId, SettingsPatch};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, ErrorDetail, page_size};
use crate::state::AppState;

/// A new session.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionBody {
    /// Its name (default "New session").
    #[serde(default)]
    pub name: Option<String>,
    /// Documents retrieval is restricted to (default, with no collections: all documents).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
    /// Collections retrieval is restricted to, with `document_ids` (their union); the
    /// collections' current documents are searched at each reply.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub collection_ids: Vec<CollectionId>,
    /// The model (default: the loaded one).
    #[serde(default)]
    pub model: Option<String>,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Changes to a session; absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSessionBody {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new set of retrieval documents.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub document_ids: Option<Vec<DocumentId>>,
    /// A new set of retrieval collections.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub collection_ids: Option<Vec<CollectionId>>,
    /// Tags to add.
    #[serde(default)]
    pub add_tags: Vec<String>,
    /// Tags to remove.
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

/// A chat session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: SessionId,
    /// Its name.
    pub name: String,
    /// The model of its last reply (or the one chosen at creation).
    pub model: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its last prompt or response was stored (RFC 3339).
    pub last_activity_at: String,
    /// Documents retrieval is restricted to (with no collections either: all).
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
    /// Collections retrieval is restricted to (with `document_ids`: their union).
    #[schema(value_type = Vec<String>)]
    pub collection_ids: Vec<CollectionId>,
    /// Automatic and user tags.
    pub tags: Vec<String>,
    /// Summary of history that no longer fits the model's window.
    pub summary: Option<String>,
}

impl From<Session> for SessionBody {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            name: s.name,
            model: s.model,
            created_at: crate::api::timestamp(s.created_at),
            last_activity_at: crate::api::timestamp(s.last_activity_at),
            document_ids: s.document_ids,
            collection_ids: s.collection_ids,
            tags: s.tags,
            summary: s.summary,
        }
    }
}

/// Listing filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Free text searched in names, tags and message content.
    pub q: Option<String>,
    /// Only sessions with this tag.
    pub tag: Option<String>,
    /// Only sessions whose name contains this.
    pub name: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// How many to skip.
    #[serde(default)]
    pub offset: u32,
}

/// A page of sessions, most recently active first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub items: Vec<SessionBody>,
    /// How many match in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// How many to skip.
    #[serde(default)]
    pub offset: u32,
}

/// A stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ragd_core::MessageId,
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// The model that wrote it (assistant messages).
    pub model: Option<String>,
    /// Settings, token counts, timings, cited chunks, recalled memories; on a user message
    /// whose reply failed, `error: {code, message}`.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

impl From<Message> for MessageBody {
    fn from(m: Message) -> Self {
        Self {
            id: m.id,
            role: m.role.as_str().to_owned(),
            content: m.content,
            created_at: crate::api::timestamp(m.created_at),
            model: m.model,
            metadata: m.metadata,
        }
    }
}

/// A page of messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// The messages.
    pub items: Vec<MessageBody>,
    /// How many the session holds.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// Settings for one reply, overriding those in force.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    /// Softmax temperature, 0 to 2.
    pub temperature: Option<f32>,
    /// Most tokens to generate.
    pub max_new_tokens: Option<u32>,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
}

impl From<ReplySettings> for SettingsPatch {
    fn from(s: ReplySettings) -> Self {
        Self {
            temperature: s.temperature,
            max_new_tokens: s.max_new_tokens,
            seed: s.seed.map(Some),
            ..Self::default()
        }
    }
}

/// A message to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The text.
    pub content: String,
    /// Answer as server-sent events (`token` events, then `done` with the stored reply).
    #[serde(default)]
    pub stream: bool,
    /// Document chunks to retrieve (default from `[chat] top_k`; 0: none).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Recall earlier exchanges of every session, not only this one.
    #[serde(default)]
    pub memory_all_sessions: bool,
    /// Settings for this reply only.
    #[serde(default)]
    pub settings: Option<ReplySettings>,
    /// Retrieve only from documents whose metadata satisfies this filter (within the
    /// session's documents and collections); the form of the search routes' `filter`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// `chunks` (default: the retrieved chunks' text), `summaries` (each chunk condensed by
    /// the model for the question first, so more sources fit) or `document` (the session's
    /// documents whole, map-reduced when they do not fit; `progress` events while they are
    /// read and summarised). The reply's `metadata.prompt` says `context_mode` and the
    /// extra `context_ms`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "summaries")]
    pub context_mode: Option<ContextMode>,
}

/// A source of a reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitationBody {
    /// The number the prompt gave it (`[1]`, ...).
    pub number: usize,
    /// The chunk (`GET /api/v1/documents/chunks/{chunk_id}`).
    #[schema(value_type = String, format = Uuid)]
    pub chunk_id: ragd_core::ChunkId,
    /// Its document.
    #[schema(value_type = String, format = Uuid)]
    pub document_id: DocumentId,
    /// The document's file name.
    pub filename: String,
    /// The page, for paged formats.
    pub page: Option<u32>,
}

impl From<Citation> for CitationBody {
    fn from(c: Citation) -> Self {
        Self {
            number: c.number,
            chunk_id: c.chunk_id,
            document_id: c.document_id,
            filename: c.filename,
            page: c.page,
        }
    }
}

/// An earlier exchange the prompt contained.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecalledBody {
    /// The user message.
    #[schema(value_type = String, format = Uuid)]
    pub user_message_id: ragd_core::MessageId,
    /// The assistant message.
    #[schema(value_type = String, format = Uuid)]
    pub assistant_message_id: ragd_core::MessageId,
    /// What the user said.
    pub user: String,
    /// What the assistant answered.
    pub assistant: String,
    /// Cosine similarity to the query.
    pub score: f32,
}

impl From<ragd_chat::Recollection> for RecalledBody {
    fn from(r: ragd_chat::Recollection) -> Self {
        Self {
            user_message_id: r.user_message_id,
            assistant_message_id: r.assistant_message_id,
            user: r.user,
            assistant: r.assistant,
            score: r.score,
        }
    }
}

/// A stored reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyBody {
    /// The user message.
    pub user_message: MessageBody,
    /// The assistant message.
    pub assistant_message: MessageBody,
    /// The chunks the prompt contained.
    pub citations: Vec<CitationBody>,
    /// Earlier exchanges the prompt contained.
    pub recalled: Vec<RecalledBody>,
}

impl From<Reply> for ReplyBody {
    fn from(r: Reply) -> Self {
        Self {
            user_message: r.user_message.into(),
            assistant_message: r.assistant_message.into(),
            citations: r.citations.into_iter().map(Into::into).collect(),
            recalled: r.recalled.into_iter().map(Into::into).collect(),
        }
    }
}

/// Memory search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemoryParams {
    /// What to recall.
    pub q: String,
    /// How many exchanges, 1 to 100 (default 5).
    #[serde(default = "default_memory_top_k")]
    pub top_k: usize,
}

fn default_memory_top_k() -> usize {
    5
}

/// Exchanges recalled, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryResults {
    /// The exchanges.
    pub hits: Vec<RecalledBody>,
}

/// Creates a session.
#[utoipa::path(
    post,
    path = "/",
    tag = "sessions",
    request_body = CreateSessionBody,
    responses(
        (status = 201, description = "Created", body = SessionBody),
        (status = 400, description = "Bad name or tags", body = ErrorBody),
        (status = 404, description = "A document or collection does not exist", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(body): ApiJson<CreateSessionBody>,
) -> Result<(StatusCode, ApiJson<SessionBody>), ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    // A scoped key's session is restricted to its collections (all of them when it names
    // none), so the key can always read it back and it never retrieves anything else.
    allowed.check_documents(&state.engine, &body.document_ids).await?;
    let collection_ids = allowed.restrict(body.collection_ids)?;
    let request = CreateSession {
        name: body.name,
        document_ids: body.document_ids,
        collection_ids,
        model: body.model,
        tags: body.tags,
    };
    let session = state.engine.chat().create_session(request).await?;
    Ok((StatusCode::CREATED, ApiJson(session.into())))
}

/// Lists sessions, most recently active first.
#[utoipa::path(
    get,
    path = "/",
    tag = "sessions",
    params(ListParams),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "Bad parameters", body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<SessionList>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let (limit, offset) = (page_size(params.limit)?, params.offset);
    let query = SessionQuery {
        text: params.q,
        tag: params.tag,
        name_contains: params.name,
        within_collections: allowed.collections(),
        limit,
        offset,
    };
    let page = state.engine.chat().sessions(query).await?;
    Ok(ApiJson(SessionList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// One session.
#[utoipa::path(
    get,
    path = "/{id}",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = SessionBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<ApiJson<SessionBody>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    Ok(ApiJson(allowed.session(&state.engine, id).await?.into()))
}

/// Renames a session, changes its documents, adds or removes tags.
#[utoipa::path(
    patch,
    path = "/{id}",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    request_body = UpdateSessionBody,
    responses(
        (status = 200, description = "The session now", body = SessionBody),
        (status = 400, description = "Bad values", body = ErrorBody),
        (status = 404, description = "No such session, document or collection", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<UpdateSessionBody>,
) -> Result<ApiJson<SessionBody>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.session(&state.engine, id).await?;
    if let Some(documents) = &body.document_ids {
        allowed.check_documents(&state.engine, documents).await?;
    }
    let collection_ids = match body.collection_ids {
        Some(asked) => Some(allowed.restrict(asked)?),
        None => None,
    };
    let update = SessionUpdate {
        name: body.name,
        document_ids: body.document_ids,
        collection_ids,
        add_tags: body.add_tags,
        remove_tags: body.remove_tags,
    };
    Ok(ApiJson(state.engine.chat().update_session(id, update).await?.into()))
}

/// Deletes a session with its messages, memory and tags.
#[utoipa::path(
    delete,
    path = "/{id}",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
) -> Result<StatusCode, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.session(&state.engine, id).await?;
    state.engine.chat().delete_session(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of a session's messages, oldest first.
#[utoipa::path(
    get,
    path = "/{id}/messages",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id"), PageParams),
    responses(
        (status = 200, description = "A page of messages", body = MessageList),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<ApiJson<MessageList>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.session(&state.engine, id).await?;
    let (limit, offset) = (page_size(params.limit)?, params.offset);
    let page = state.engine.chat().messages(id, limit, offset).await?;
    Ok(ApiJson(MessageList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// Sends a message and answers with the stored reply, or streams it.
///
/// With `stream: true` the answer is `text/event-stream`: a `start` event (the stored user
/// message and the citations), `token` events (`{"text": ...}`), then `done` (the stored
/// reply, as the JSON answer) or `error` (`{"error": {code, message}}`). Failures before
/// generation starts are ordinary JSON errors with a status; the user message is stored
/// whenever the session exists and the message is valid.
#[utoipa::path(
    post,
    path = "/{id}/messages",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id")),
    request_body = SendBody,
    responses(
        (status = 201, description = "The stored reply", body = ReplyBody),
        (status = 200, description = "Server-sent events (stream: true)", content_type = "text/event-stream"),
        (status = 400, description = "Empty message, too long for the model's window, bad settings", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "No model is loaded or the backend is unavailable", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn send(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.session(&state.engine, id).await?;
    if body.memory_all_sessions {
        allowed.require_unlimited("recall memory across all sessions")?;
    }
    let request = SendMessage {
        content: body.content,
        top_k: body.top_k,
        memory_all_sessions: body.memory_all_sessions,
        settings: body.settings.map(Into::into),
        filter: crate::api::search::metadata_filter(body.filter.as_ref())?,
        context_mode: body.context_mode.unwrap_or_default(),
    };
    let turn = state.engine.chat().send(id, request).await?;
    if body.stream {
        return Ok(Sse::new(events(turn)).keep_alive(KeepAlive::default()).into_response());
    }
    let reply = turn.finish().await?;
    Ok((StatusCode::CREATED, ApiJson(ReplyBody::from(reply))).into_response())
}

/// The SSE events of a reply.
fn events(turn: ChatTurn) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = json!({
        "user_message": MessageBody::from(turn.user_message.clone()),
        "citations": turn.citations.iter().cloned().map(CitationBody::from).collect::<Vec<_>>(),
    });
    let first = Event::default().event("start").json_data(start).unwrap_or_default();
    let rest = stream::unfold(Some(turn), |turn| async move {
        let mut turn = turn?;
        let event = turn.next_event().await?;
        let (sse, more) = match event {
            ChatEvent::Progress { stage, done, total } => (
                Event::default()
                    .event("progress")
                    .json_data(json!({ "stage": stage, "done": done, "total": total })),
                true,
            ),
            ChatEvent::Token(text) => {
                (Event::default().event("token").json_data(json!({ "text": text })), true)
            }
            ChatEvent::Done(reply) => {
                (Event::default().event("done").json_data(ReplyBody::from(*reply)), false)
            }
            ChatEvent::Failed { kind, message } => {
                let body = ErrorBody { error: ErrorDetail { code: kind.code(), message } };
                (Event::default().event("error").json_data(body), false)
            }
        };
        Some((Ok(sse.unwrap_or_default()), more.then_some(turn)))
    });
    stream::once(async move { Ok(first) }).chain(rest)
}

/// Earlier exchanges of the session most similar to `q`.
#[utoipa::path(
    get,
    path = "/{id}/memory/search",
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "Session id"), MemoryParams),
    responses(
        (status = 200, description = "Exchanges, best first", body = MemoryResults),
        (status = 400, description = "Empty query or top_k out of range", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "No embedding model or vector store", body = ErrorBody)
    )
)]
pub async fn memory_search(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<SessionId>,
    ApiQuery(params): ApiQuery<MemoryParams>,
) -> Result<ApiJson<MemoryResults>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.session(&state.engine, id).await?;
    let hits = state.engine.chat().search_memory(id, &params.q, params.top_k).await?;
    Ok(ApiJson(MemoryResults {
        hits: hits.into_iter().map(|MemoryHit { exchange, .. }| exchange.into()).collect(),
    }))
}
