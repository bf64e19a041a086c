//! The OpenAI-compatible API under `/v1`: `GET /v1/models`, `POST /v1/chat/completions`
//! (JSON, or server-sent `chat.completion.chunk`s with `stream: true`) and
//! `POST /v1/embeddings`, so the `openai` SDKs and everything built on them work against
//! ragd unchanged.
//!
//! ragd's additions travel in extension fields that SDKs pass through: a request may carry
//! `ragd: {document_ids, collection_ids, top_k, session_id}` (with the model `ragd`), and answers of the
//! `ragd` model carry `ragd: {citations}` (the same citation shape as the sessions API).
//! Errors take OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) with the
//! matching status, so the SDKs raise the right exception.
//!
//! Fields that would change what is answered and that ragd cannot honour
//! (`response_format`, `tools`, `n` other than 1, `logprobs`, penalties, ...) are refused
//! with a 400 naming them, never silently ignored; bookkeeping fields (`user`, `store`,
//! `metadata`, `service_tier`, `parallel_tool_calls`) are accepted and ignored.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt;
use futures::stream::{self, Stream};
use ragd_core::{ChatMessage, ChatRole, ErrorKind, FinishReason, SettingsPatch, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::api::compat::{self, ChatRequest, Collected, Generated, Generation, RagOptions};
use crate::api::scope::KeyScope;
use crate::api::sessions::CitationBody;
use crate::api::{ApiError, OpenAiErrorBody, Protocol};
use crate::state::AppState;

/// Fields accepted and ignored: they do not change the answer.
const IGNORED_FIELDS: &[&str] =
    &["user", "store", "metadata", "service_tier", "parallel_tool_calls"];

/// An error in OpenAI's shape.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl<E: Into<ApiError>> From<E> for OpenAiError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        self.0.into_response_for(Protocol::OpenAi)
    }
}

/// A JSON body whose rejections are answered in OpenAI's error shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(OpenAiError))]
pub struct OpenAiJson<T>(pub T);

impl<T: Serialize> IntoResponse for OpenAiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn invalid(param: &'static str, message: impl Into<String>) -> OpenAiError {
    OpenAiError(ApiError::new(ErrorKind::InvalidInput, message).with_param(param))
}

/// Seconds since the Unix epoch, OpenAI's `created`.
fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------
// GET /v1/models

/// `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}

/// One model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelObject {
    /// The id to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When the server started (Unix seconds).
    pub created: i64,
    /// Always `ragd`.
    pub owned_by: &'static str,
    /// What the id is.
    pub ragd: ModelExtension,
}

/// ragd's description of a model id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelExtension {
    /// `chat` (the loaded model alone), `rag` (the same model answering over the documents,
    /// with citations) or `embedding`.
    pub kind: &'static str,
    /// The context window (chat) or the longest input (embedding), in tokens.
    pub context_length: Option<usize>,
    /// The embedding dimension.
    pub dimensions: Option<usize>,
}

/// The model ids on offer: the loaded chat model, `ragd` (retrieval over all documents)
/// and the embedding model.
#[utoipa::path(
    get,
    path = "/models",
    tag = "openai",
    responses((status = 200, description = "The models on offer", body = ModelList))
)]
pub async fn models(State(state): State<AppState>) -> OpenAiJson<ModelList> {
    let created = unix_now()
        - i64::try_from(state.engine.started_at().elapsed().as_secs()).unwrap_or_default();
    let data = compat::offered_models(&state)
        .into_iter()
        .map(|model| ModelObject {
            id: model.id,
            object: "model",
            created,
            owned_by: "ragd",
            ragd: ModelExtension {
                kind: model.kind.as_str(),
                context_length: model.context_length,
                dimensions: model.dimensions,
            },
        })
        .collect();
    OpenAiJson(ModelList { object: "list", data })
}

// ---------------------------------------------------------------------------------------
// POST /v1/chat/completions

/// A chat completion request (OpenAI's fields that ragd honours, plus `ragd`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// A model id from `GET /v1/models`: the chat model, or `ragd` for answers over the
    /// documents with citations.
    pub model: String,
    /// The conversation; it ends with the user's message.
    pub messages: Vec<RequestMessage>,
    /// Stream `chat.completion.chunk`s as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Sampling temperature (0: greedy).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// The most tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The most tokens to generate (the newer name; wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Stop sequences: a string or up to 4 strings.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub stop: Option<Value>,
    /// Seed for reproducible sampling.
    #[serde(default)]
    pub seed: Option<u64>,
    /// How many choices; only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// ragd's retrieval options (model `ragd` only).
    #[serde(default)]
    pub ragd: Option<RagOptions>,
    /// Every other field: refused unless it is bookkeeping (`user`, `store`, ...).
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// Streaming options.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the token usage before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// A message of the conversation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestMessage {
    /// `system`, `developer` (as `system`), `user` or `assistant`.
    pub role: String,
    /// Text, or an array of `{"type": "text", "text": ...}` parts.
    #[schema(value_type = Object)]
    pub content: Value,
    /// Accepted and ignored.
    #[serde(default)]
    pub name: Option<String>,
}

fn message(index: usize, message: RequestMessage) -> Result<ChatMessage, OpenAiError> {
    let role = match message.role.as_str() {
        "system" | "developer" => ChatRole::System,
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        other => {
            return Err(invalid(
                "messages",
                format!(
                    "messages[{index}]: the role `{other}` is not supported (system, developer, user, assistant)"
                ),
            ));
        }
    };
    let content = match message.content {
        Value::String(text) => text,
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(piece))) => text.push_str(piece),
                    (kind, _) => {
                        return Err(invalid(
                            "messages",
                            format!(
                                "messages[{index}]: only text content parts are supported, not {}",
                                kind.unwrap_or("an untyped part")
                            ),
                        ));
                    }
                }
            }
            text
        }
        Value::Null if role == ChatRole::Assistant => String::new(),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => {
            return Err(invalid(
                "messages",
                format!("messages[{index}]: `content` must be a string or an array of text parts"),
            ));
        }
    };
    Ok(ChatMessage { role, content })
}

/// Stop sequences from a string or an array of up to 4 strings.
fn stop_sequences(stop: Option<Value>) -> Result<Option<Vec<String>>, OpenAiError> {
    let Some(stop) = stop.filter(|stop| !stop.is_null()) else { return Ok(None) };
    let count = stop.as_array().map_or(1, Vec::len);
    match compat::strings(stop) {
        Some(stops) if count <= 4 => Ok(Some(stops)),
        Some(_) | None => {
            Err(invalid("stop", "`stop` is a string or an array of at most 4 strings"))
        }
    }
}

/// Refuses fields that would change the answer and that ragd does not honour.
fn refuse_unsupported(other: &Map<String, Value>) -> Result<(), OpenAiError> {
    for (field, value) in other {
        // `null` is what many clients send for an option they do not set.
        if value.is_null() || IGNORED_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let neutral = match field.as_str() {
            "frequency_penalty" | "presence_penalty" => {
                value.is_null() || value.as_f64() == Some(0.0)
            }
            "logprobs" => value.is_null() || value == &Value::Bool(false),
            "logit_bias" => value.is_null() || value.as_object().is_some_and(Map::is_empty),
            "tools" | "functions" => value.is_null() || value.as_array().is_some_and(Vec::is_empty),
            "tool_choice" | "function_call" => value.is_null() || value == "none",
            "response_format" => {
                value.is_null() || value.get("type").and_then(Value::as_str) == Some("text")
            }
            "modalities" => value.is_null() || value == &json!(["text"]),
            _ => false,
        };
        if !neutral {
            let message = match field.as_str() {
                "response_format" => "`response_format` is not supported: ragd cannot constrain \
                                      the output to JSON or a schema"
                    .to_owned(),
                "tools" | "functions" | "tool_choice" | "function_call" => {
                    format!("`{field}` is not supported: ragd's models do not call tools")
                }
                _ => format!("`{field}` is not supported by ragd"),
            };
            let param = match field.as_str() {
                "response_format" => "response_format",
                "tools" | "functions" | "tool_choice" | "function_call" => "tools",
                _ => "body",
            };
            return Err(invalid(param, message));
        }
    }
    Ok(())
}

impl ChatCompletionRequest {
    /// The protocol-neutral request, or a 400 for what ragd cannot honour.
    fn into_chat(self) -> Result<(ChatRequest, bool, bool), OpenAiError> {
        refuse_unsupported(&self.other)?;
        if let Some(n) = self.n
            && n != 1
        {
            return Err(invalid("n", format!("`n` must be 1 (ragd answers one choice), not {n}")));
        }
        let messages = self
            .messages
            .into_iter()
            .enumerate()
            .map(|(index, m)| message(index, m))
            .collect::<Result<Vec<_>, _>>()?;
        let settings = SettingsPatch {
            temperature: self.temperature,
            top_p: self.top_p,
            max_new_tokens: self.max_completion_tokens.or(self.max_tokens),
            seed: self.seed.map(Some),
            stop: stop_sequences(self.stop)?,
            ..SettingsPatch::default()
        };
        let stream = self.stream.unwrap_or(false);
        let include_usage = self.stream_options.is_some_and(|o| o.include_usage);
        let request = ChatRequest { model: self.model, messages, settings, rag: self.ragd };
        Ok((request, stream, include_usage))
    }
}

/// A chat completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    /// The model id as requested.
    pub model: String,
    /// The one choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
    /// `ragd-<version>`.
    pub system_fingerprint: String,
    /// Citations (model `ragd`) and the stored message (with `session_id`).
    pub ragd: CompletionExtension,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
}

/// The assistant's message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Usage {
    /// Tokens of the prompt (with the retrieved context).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
    /// How the prompt was read.
    pub prompt_tokens_details: PromptTokensDetails,
}

/// OpenAI's breakdown of the prompt's tokens.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct PromptTokensDetails {
    /// Prompt tokens the model still held from an earlier request (its prompt cache), so
    /// did not read again; part of `prompt_tokens`.
    pub cached_tokens: u32,
}

impl From<TokenUsage> for Usage {
    fn from(usage: TokenUsage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens.saturating_add(usage.completion_tokens),
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: usage.cached_prompt_tokens,
            },
        }
    }
}

/// ragd's additions to an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionExtension {
    /// The chunks the prompt contained, as `[n]` cites them (empty for the plain model).
    pub citations: Vec<CitationBody>,
    /// The stored assistant message (requests with `ragd.session_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub message_id: Option<ragd_core::MessageId>,
}

fn finish_reason(reason: Option<FinishReason>) -> Option<&'static str> {
    reason.map(|reason| match reason {
        FinishReason::Stop | FinishReason::StopSequence => "stop",
        FinishReason::Length => "length",
    })
}

fn fingerprint() -> String {
    format!("ragd-{}", env!("CARGO_PKG_VERSION"))
}

/// Answers a conversation; with `stream: true` as server-sent `chat.completion.chunk`s
/// ending with `data: [DONE]`.
///
/// With the model `ragd` the last user message drives hybrid retrieval and the answer
/// carries `ragd.citations`; `ragd.session_id` answers inside a stored session (the
/// exchange is stored and becomes memory). The first streamed chunk carries the citations.
#[utoipa::path(
    post,
    path = "/chat/completions",
    tag = "openai",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion, or `text/event-stream` chunks with `stream: true`",
            content((ChatCompletion = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "Unsupported field, `n` other than 1, bad settings, or `context_length_exceeded`", body = OpenAiErrorBody),
        (status = 404, description = "Unknown model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 413, description = "The body is larger than `server.max_json_body_bytes`", body = OpenAiErrorBody),
        (status = 415, description = "The body is not JSON", body = OpenAiErrorBody),
        (status = 429, description = "The generation queue is full; `Retry-After` says when to retry", body = OpenAiErrorBody),
        (status = 503, description = "No chat model is loaded", body = OpenAiErrorBody)
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    scope: KeyScope,
    OpenAiJson(body): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    let (request, stream, include_usage) = body.into_chat()?;
    let model = request.model.clone();
    let generation = compat::start(&state, &scope, request).await?;
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    if stream {
        let chunks = chunks(generation, ChunkContext { id, model, include_usage });
        return Ok(Sse::new(chunks).keep_alive(KeepAlive::default()).into_response());
    }
    let Collected { text, citations, finish_reason: reason, usage, message_id, .. } =
        generation.collect().await?;
    let completion = ChatCompletion {
        id,
        object: "chat.completion",
        created: unix_now(),
        model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage { role: "assistant", content: text },
            finish_reason: finish_reason(reason),
            logprobs: None,
        }],
        usage: usage.into(),
        system_fingerprint: fingerprint(),
        ragd: CompletionExtension {
            citations: citations.into_iter().map(Into::into).collect(),
            message_id,
        },
    };
    Ok(OpenAiJson(completion).into_response())
}

/// What every chunk of one stream repeats.
struct ChunkContext {
    id: String,
    model: String,
    include_usage: bool,
}

impl ChunkContext {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": unix_now(),
            "model": self.model,
            "system_fingerprint": fingerprint(),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": null}],
        })
    }
}

fn data(value: &Value) -> Event {
    Event::default().data(value.to_string())
}

/// The SSE stream: a first chunk with the role (and `ragd.citations`), one chunk per token,
/// a last chunk with the finish reason, the usage chunk when asked for, then `[DONE]`.
fn chunks(
    generation: Generation,
    context: ChunkContext,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let citations: Vec<CitationBody> =
        generation.citations().iter().cloned().map(Into::into).collect();
    let mut first = context.chunk(json!({"role": "assistant", "content": ""}), None);
    first["ragd"] = json!({ "citations": citations });
    let first = data(&first);
    let rest = stream::unfold(Some((generation, context)), |state| async move {
        let (mut generation, context) = state?;
        let Some(event) = generation.next().await else {
            let error = ApiError::new(ErrorKind::Internal, "generation ended without finishing");
            return Some((vec![error_event(&error), done()], None));
        };
        match event {
            Generated::Token(text) => {
                let chunk = context.chunk(json!({ "content": text }), None);
                Some((vec![data(&chunk)], Some((generation, context))))
            }
            Generated::Done { finish_reason: reason, usage, message_id } => {
                let mut last = context.chunk(json!({}), finish_reason(reason).or(Some("stop")));
                if let Some(message_id) = message_id {
                    last["ragd"] = json!({ "message_id": message_id });
                }
                let mut events = vec![data(&last)];
                if context.include_usage {
                    let mut usage_chunk = context.chunk(json!({}), None);
                    usage_chunk["choices"] = json!([]);
                    usage_chunk["usage"] = json!(Usage::from(usage));
                    events.push(data(&usage_chunk));
                }
                events.push(done());
                Some((events, None))
            }
            Generated::Failed(error) => Some((vec![error_event(&error), done()], None)),
        }
    });
    stream::once(async move { Ok(first) })
        .chain(rest.flat_map(|events| stream::iter(events.into_iter().map(Ok))))
}

fn done() -> Event {
    Event::default().data("[DONE]")
}

/// An error after streaming began, as OpenAI sends one: a data event with an `error` object.
fn error_event(error: &ApiError) -> Event {
    data(&json!({"error": {
        "message": error.message(),
        "type": if error.status().is_server_error() { "server_error" } else { "invalid_request_error" },
        "param": null,
        "code": error.kind().code(),
    }}))
}

// ---------------------------------------------------------------------------------------
// POST /v1/embeddings

/// An embeddings request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// The embedding model's id (`GET /v1/models`, kind `embedding`).
    pub model: String,
    /// A string or an array of strings (token arrays are not supported).
    #[schema(value_type = Object)]
    pub input: Value,
    /// `float` (default) or `base64` (little-endian f32).
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Must equal the model's dimension when given.
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored.
    #[serde(default)]
    pub user: Option<String>,
}

/// The embeddings.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingList {
    /// Always `list`.
    pub object: &'static str,
    /// One per input, in order.
    pub data: Vec<EmbeddingObject>,
    /// The embedding model.
    pub model: String,
    /// Tokens read.
    pub usage: EmbeddingUsage,
}

/// One embedding.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingObject {
    /// Always `embedding`.
    pub object: &'static str,
    /// The input's position.
    pub index: usize,
    /// The vector: floats, or base64 of little-endian f32s.
    #[schema(value_type = Object)]
    pub embedding: Value,
}

/// Tokens read.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens of the inputs (after truncation to the model's window).
    pub prompt_tokens: usize,
    /// The same.
    pub total_tokens: usize,
}

fn inputs(input: Value) -> Result<Vec<String>, OpenAiError> {
    compat::strings(input).ok_or_else(|| {
        invalid(
            "input",
            "`input` must be a string or an array of strings (token arrays are not supported)",
        )
    })
}

/// Embeds text with ragd's embedding model; the vectors equal those ragd stores for chunks.
#[utoipa::path(
    post,
    path = "/embeddings",
    tag = "openai",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "The embeddings", body = EmbeddingList),
        (status = 400, description = "Empty or malformed input, unknown encoding, other `dimensions`", body = OpenAiErrorBody),
        (status = 404, description = "Not the embedding model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 413, description = "The body is larger than `server.max_json_body_bytes`", body = OpenAiErrorBody),
        (status = 415, description = "The body is not JSON", body = OpenAiErrorBody),
        (status = 429, description = "The embedding queue is full", body = OpenAiErrorBody),
        (status = 503, description = "No embedding model is loaded", body = OpenAiErrorBody)
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    OpenAiJson(body): OpenAiJson<EmbeddingsRequest>,
) -> Result<OpenAiJson<EmbeddingList>, OpenAiError> {
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!("`encoding_format` is `float` or `base64`, not `{other}`"),
            ));
        }
    };
    let texts = inputs(body.input)?;
    let (embedder, vectors, tokens) =
        compat::embed(&state, Some(&body.model), body.dimensions, texts).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            EmbeddingObject { object: "embedding", index, embedding }
        })
        .collect();
    Ok(OpenAiJson(EmbeddingList {
        object: "list",
        data,
        model: embedder.model_id().to_owned(),
        usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn openai_fields_map_to_settings_and_messages() {
        let (chat, stream, usage) = request(json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}
            ],
            "temperature": 0, "top_p": 0.5, "max_tokens": 10, "max_completion_tokens": 12,
            "stop": "END", "seed": 7, "n": 1, "user": "u1", "stream": true,
            "stream_options": {"include_usage": true}
        }))
        .into_chat()
        .unwrap();
        assert!(stream && usage);
        assert_eq!(chat.messages[0].role, ChatRole::System);
        assert_eq!(chat.messages[1].content, "Hi there");
        assert_eq!(chat.settings.max_new_tokens, Some(12));
        assert_eq!(chat.settings.seed, Some(Some(7)));
        assert_eq!(chat.settings.stop, Some(vec!["END".to_owned()]));
        assert_eq!(chat.settings.temperature, Some(0.0));
    }

    #[test]
    fn what_ragd_cannot_honour_is_refused_by_name() {
        for (field, value) in [
            ("n", json!(2)),
            ("response_format", json!({"type": "json_object"})),
            ("tools", json!([{"type": "function", "function": {"name": "f"}}])),
            ("logprobs", json!(true)),
            ("frequency_penalty", json!(0.5)),
            ("some_new_field", json!(1)),
        ] {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            body[field] = value;
            let err = request(body).into_chat().expect_err(field).0;
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{field}");
            assert!(err.message().contains(&format!("`{field}`")), "{field}: {}", err.message());
        }
        // Neutral values of those fields are fine.
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "text"}, "tools": [], "frequency_penalty": 0,
            "logprobs": false, "store": false, "metadata": {"a": "b"},
            "top_logprobs": null, "reasoning_effort": null});
        assert!(request(body).into_chat().is_ok());
    }

    #[test]
    fn tool_messages_and_image_parts_are_refused() {
        let body = json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]});
        assert!(request(body).into_chat().is_err());
        let body = json!({"model": "m", "messages": [{"role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]});
        assert!(request(body).into_chat().is_err());
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "stop": ["a", "b", "c", "d", "e"]});
        assert!(request(body).into_chat().is_err());
    }
}
