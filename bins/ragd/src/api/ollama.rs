//! The Ollama-compatible API: `GET /api/tags`, `POST /api/show`, `POST /api/chat`,
//! `POST /api/generate` (newline-delimited JSON streaming by default, one JSON object with
//! `stream: false`), `POST /api/embed` and `GET /api/version`, so the `ollama` clients and
//! the tools built on them work against ragd.
//!
//! The model ids are those of the OpenAI-compatible API ([`compat`]): the loaded chat model,
//! `ragd` (answers over the documents, whose final object carries `ragd: {citations}`) and
//! the embedding model. Errors take Ollama's shape, `{"error": "..."}`, with the matching
//! status. Request fields that would change the answer and that ragd cannot honour
//! (`format`, `tools`, `images`, sampling options it does not have) are refused with a 400;
//! options about resources (`num_ctx`, `num_thread`, `keep_alive`, ...) are accepted and
//! ignored, since ragd sizes the loaded model itself.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream;
use ragd_core::{ChatMessage, ChatRole, ErrorKind, FinishReason, SettingsPatch, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::api::compat::{
    self, ChatRequest, Collected, Generated, Generation, ModelKind, RagOptions,
};
use crate::api::scope::KeyScope;
use crate::api::sessions::CitationBody;
use crate::api::{ApiError, OllamaErrorBody, Protocol};
use crate::state::AppState;

/// Options about resources, accepted and ignored.
const IGNORED_OPTIONS: &[&str] = &[
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "num_thread",
    "num_keep",
    "use_mmap",
    "use_mlock",
    "numa",
    "vocab_only",
];

/// Top-level fields accepted and ignored.
const IGNORED_FIELDS: &[&str] = &["keep_alive", "think", "truncate"];

/// An error in Ollama's shape.
#[derive(Debug)]
pub struct OllamaError(pub ApiError);

impl<E: Into<ApiError>> From<E> for OllamaError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        self.0.into_response_for(Protocol::Ollama)
    }
}

/// A JSON body whose rejections are answered in Ollama's error shape. Like Ollama, the body
/// is read as JSON whatever its `Content-Type` says (`curl -d` sends a form type).
#[derive(Debug, Clone, Copy, Default)]
pub struct OllamaJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for OllamaJson<T> {
    type Rejection = OllamaError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            let kind = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ErrorKind::PayloadTooLarge
            } else {
                ErrorKind::InvalidInput
            };
            OllamaError(ApiError::new(kind, rejection.body_text()))
        })?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|err| invalid(format!("the body is not the JSON this route takes: {err}")))
    }
}

impl<T: Serialize> IntoResponse for OllamaJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn invalid(message: impl Into<String>) -> OllamaError {
    OllamaError(ApiError::new(ErrorKind::InvalidInput, message))
}

fn now() -> String {
    crate::api::timestamp(chrono::Utc::now())
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------
// GET /api/version, GET /api/tags, POST /api/show

/// `GET /api/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// ragd's version.
    pub version: &'static str,
}

/// ragd's version.
#[utoipa::path(
    get,
    path = "/version",
    tag = "ollama",
    responses((status = 200, description = "The version", body = Version))
)]
pub async fn version() -> OllamaJson<Version> {
    OllamaJson(Version { version: env!("CARGO_PKG_VERSION") })
}

/// `GET /api/tags`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    /// The models on offer.
    pub models: Vec<Tag>,
}

/// One model.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tag {
    /// The id to send as `model`.
    pub name: String,
    /// The same.
    pub model: String,
    /// When the server started.
    pub modified_at: String,
    /// The model file's size in bytes (0 when there is no file).
    pub size: u64,
    /// A digest of the id (ragd does not store models by digest).
    pub digest: String,
    /// What the model is.
    pub details: Details,
    /// ragd's kind: `chat`, `rag` or `embedding`.
    pub ragd: TagExtension,
}

/// ragd's description of a model id.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagExtension {
    /// `chat`, `rag` or `embedding`.
    pub kind: &'static str,
}

/// Model details, as far as ragd knows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Details {
    /// Always empty.
    pub parent_model: String,
    /// `gguf` for local chat models, `onnx` for the embedder, else empty.
    pub format: String,
    /// Unknown: empty.
    pub family: String,
    /// Unknown: empty.
    pub families: Vec<String>,
    /// Unknown: empty.
    pub parameter_size: String,
    /// Unknown: empty.
    pub quantization_level: String,
}

fn details(state: &AppState, kind: ModelKind) -> Details {
    let format = match kind {
        ModelKind::Embedding => "onnx".to_owned(),
        ModelKind::Chat | ModelKind::Rag => state
            .engine
            .models()
            .status()
            .model
            .and_then(|m| m.path)
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")))
            .map(|_| "gguf".to_owned())
            .unwrap_or_default(),
    };
    Details {
        parent_model: String::new(),
        format,
        family: String::new(),
        families: Vec::new(),
        parameter_size: String::new(),
        quantization_level: String::new(),
    }
}

fn digest(id: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The model ids on offer: the loaded chat model, `ragd` and the embedding model.
#[utoipa::path(
    get,
    path = "/tags",
    tag = "ollama",
    responses((status = 200, description = "The models on offer", body = TagList))
)]
pub async fn tags(State(state): State<AppState>) -> OllamaJson<TagList> {
    let started = chrono::Utc::now()
        - chrono::Duration::from_std(state.engine.started_at().elapsed()).unwrap_or_default();
    let models = compat::offered_models(&state)
        .into_iter()
        .map(|model| Tag {
            digest: digest(&model.id),
            details: details(&state, model.kind),
            name: model.id.clone(),
            model: model.id,
            modified_at: crate::api::timestamp(started),
            size: model.size_bytes.unwrap_or(0),
            ragd: TagExtension { kind: model.kind.as_str() },
        })
        .collect();
    OllamaJson(TagList { models })
}

/// `POST /api/show`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ShowRequest {
    /// The model id.
    pub model: Option<String>,
    /// The older name of `model`.
    pub name: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    pub verbose: Option<bool>,
}

/// What ragd knows about a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowResponse {
    /// Empty: ragd has no Modelfiles.
    pub modelfile: String,
    /// The generation settings in force, one `name value` per line.
    pub parameters: String,
    /// The chat template (Jinja), when the model has one.
    pub template: String,
    /// Model details.
    pub details: Details,
    /// Context length and embedding dimension, as far as known.
    #[schema(value_type = Object)]
    pub model_info: Map<String, Value>,
    /// `completion` or `embedding`.
    pub capabilities: Vec<&'static str>,
}

/// Details of one model id.
#[utoipa::path(
    post,
    path = "/show",
    tag = "ollama",
    request_body = ShowRequest,
    responses(
        (status = 200, description = "The model", body = ShowResponse),
        (status = 400, description = "No model named, or a malformed body", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 413, description = "The body is too large", body = OllamaErrorBody),
        (status = 503, description = "No chat model is loaded", body = OllamaErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    OllamaJson(body): OllamaJson<ShowRequest>,
) -> Result<OllamaJson<ShowResponse>, OllamaError> {
    let id = body.model.or(body.name).ok_or_else(|| invalid("`model` is required"))?;
    let model = compat::resolve_model(&state, &id)?;
    let mut model_info = Map::new();
    if let Some(context) = model.context_length {
        model_info.insert("context_length".to_owned(), json!(context));
    }
    if let Some(dimensions) = model.dimensions {
        model_info.insert("embedding_length".to_owned(), json!(dimensions));
    }
    let (template, parameters, capabilities) = match model.kind {
        ModelKind::Embedding => (String::new(), String::new(), vec!["embedding"]),
        ModelKind::Chat | ModelKind::Rag => {
            let template = state
                .engine
                .models()
                .backend()
                .and_then(|b| b.chat_template().map(str::to_owned))
                .unwrap_or_default();
            let s = state.engine.models().settings();
            let mut parameters = format!(
                "temperature {}\ntop_p {}\ntop_k {}\nrepeat_penalty {}\nnum_predict {}",
                s.temperature, s.top_p, s.top_k, s.repetition_penalty, s.max_new_tokens
            );
            for stop in &s.stop {
                parameters.push_str(&format!("\nstop {stop:?}"));
            }
            (template, parameters, vec!["completion"])
        }
    };
    Ok(OllamaJson(ShowResponse {
        modelfile: String::new(),
        parameters,
        template,
        details: details(&state, model.kind),
        model_info,
        capabilities,
    }))
}

// ---------------------------------------------------------------------------------------
// Options

/// Ollama's `options`, the ones ragd honours.
fn settings(options: Option<Map<String, Value>>) -> Result<SettingsPatch, OllamaError> {
    let mut patch = SettingsPatch::default();
    for (name, value) in options.unwrap_or_default() {
        if value.is_null() || IGNORED_OPTIONS.contains(&name.as_str()) {
            continue;
        }
        let number =
            || value.as_f64().ok_or_else(|| invalid(format!("option `{name}` must be a number")));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        match name.as_str() {
            "temperature" => patch.temperature = Some(number()? as f32),
            "top_p" => patch.top_p = Some(number()? as f32),
            "repeat_penalty" => patch.repetition_penalty = Some(number()? as f32),
            "top_k" => patch.top_k = Some(non_negative(&name, number()?)? as u32),
            "seed" => patch.seed = Some(Some(non_negative(&name, number()?)? as u64)),
            // -1: no limit but the window; ragd keeps its configured limit then.
            "num_predict" => {
                let n = number()?;
                if n >= 0.0 {
                    patch.max_new_tokens = Some(n as u32);
                } else if n < -2.0 {
                    return Err(invalid("option `num_predict` must be -1, -2 or at least 0"));
                }
            }
            "stop" => {
                let stops = value
                    .as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
                    .ok_or_else(|| invalid("option `stop` must be an array of strings"))?;
                patch.stop = Some(stops);
            }
            other => {
                return Err(invalid(format!(
                    "option `{other}` is not supported by ragd (supported: temperature, top_p, \
                     top_k, repeat_penalty, seed, num_predict, stop)"
                )));
            }
        }
    }
    Ok(patch)
}

fn non_negative(name: &str, value: f64) -> Result<f64, OllamaError> {
    if value < 0.0 {
        return Err(invalid(format!("option `{name}` must not be negative")));
    }
    Ok(value)
}

/// Refuses top-level fields that would change the answer.
fn refuse_unsupported(other: &Map<String, Value>) -> Result<(), OllamaError> {
    for (field, value) in other {
        if value.is_null() || IGNORED_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let neutral = match field.as_str() {
            "format" => value == "",
            "tools" | "images" | "context" => value.as_array().is_some_and(Vec::is_empty),
            "raw" => value == &Value::Bool(false),
            "suffix" | "template" => value == "",
            _ => false,
        };
        if !neutral {
            return Err(invalid(format!("`{field}` is not supported by ragd")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// POST /api/chat and POST /api/generate

/// `POST /api/chat`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatBody {
    /// A model id from `/api/tags`: the chat model, or `ragd` for answers over the documents.
    pub model: String,
    /// The conversation; it ends with the user's message.
    pub messages: Vec<OllamaMessage>,
    /// Stream newline-delimited JSON (default `true`).
    #[serde(default)]
    pub stream: Option<bool>,
    /// Sampling options (`temperature`, `top_p`, `top_k`, `repeat_penalty`, `seed`,
    /// `num_predict`, `stop`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
    /// ragd's retrieval options (model `ragd` only).
    #[serde(default)]
    pub ragd: Option<RagOptions>,
    /// Every other field: refused unless neutral or about resources (`keep_alive`).
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// A message.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct OllamaMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Refused when not empty.
    #[serde(default, skip_serializing)]
    pub images: Option<Vec<String>>,
    /// Refused when not empty.
    #[serde(default, skip_serializing)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<Value>>,
}

fn chat_message(index: usize, message: OllamaMessage) -> Result<ChatMessage, OllamaError> {
    if message.images.as_ref().is_some_and(|i| !i.is_empty()) {
        return Err(invalid(format!("messages[{index}]: images are not supported by ragd")));
    }
    if message.tool_calls.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(invalid(format!("messages[{index}]: tool calls are not supported by ragd")));
    }
    let role = match message.role.as_str() {
        "system" => ChatRole::System,
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        other => {
            return Err(invalid(format!(
                "messages[{index}]: the role `{other}` is not supported (system, user, assistant)"
            )));
        }
    };
    Ok(ChatMessage { role, content: message.content })
}

/// `POST /api/generate`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GenerateBody {
    /// A model id from `/api/tags`.
    pub model: String,
    /// The prompt (empty: only checks that the model is loaded).
    #[serde(default)]
    pub prompt: String,
    /// A system message before the prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// Stream newline-delimited JSON (default `true`).
    #[serde(default)]
    pub stream: Option<bool>,
    /// Sampling options, as for `/api/chat`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
    /// ragd's retrieval options (model `ragd` only).
    #[serde(default)]
    pub ragd: Option<RagOptions>,
    /// Every other field: refused unless neutral (`raw: false`, ...) or about resources.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// The last object of a chat or generate answer (the only one with `stream: false`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    /// The model id as requested.
    pub model: String,
    /// When this object was made.
    pub created_at: String,
    /// The assistant's message (`/api/chat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<OllamaMessage>,
    /// The text (`/api/generate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// `true` on the last object.
    pub done: bool,
    /// `stop` or `length`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<&'static str>,
    /// Nanoseconds from the request to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Always 0: ragd loads models ahead of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u32>,
    /// Nanoseconds to the first token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Generated tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u32>,
    /// Nanoseconds spent generating.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
    /// Citations (model `ragd`), on the last object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ragd: Option<OllamaExtension>,
}

/// ragd's additions to the last object.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaExtension {
    /// The chunks the prompt contained, as `[n]` cites them.
    pub citations: Vec<CitationBody>,
    /// The stored assistant message (requests with `ragd.session_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub message_id: Option<ragd_core::MessageId>,
}

/// Which route answers: the text goes in `message` or in `response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Generate,
}

/// Timings of one answer.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    first_token_ns: Option<u64>,
}

impl Route {
    fn object(self, model: &str, text: String, done: bool) -> ChatResponse {
        let (message, response) = match self {
            Self::Chat => (
                Some(OllamaMessage {
                    role: "assistant".to_owned(),
                    content: text,
                    images: None,
                    tool_calls: None,
                }),
                None,
            ),
            Self::Generate => (None, Some(text)),
        };
        ChatResponse {
            model: model.to_owned(),
            created_at: now(),
            message,
            response,
            done,
            done_reason: None,
            total_duration: None,
            load_duration: None,
            prompt_eval_count: None,
            prompt_eval_duration: None,
            eval_count: None,
            eval_duration: None,
            ragd: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn last(
        self,
        model: &str,
        text: String,
        reason: Option<FinishReason>,
        usage: TokenUsage,
        clock: Clock,
        ragd: OllamaExtension,
    ) -> ChatResponse {
        let total = nanos(clock.started);
        let first = clock.first_token_ns.unwrap_or(total);
        ChatResponse {
            done_reason: Some(match reason {
                Some(FinishReason::Length) => "length",
                _ => "stop",
            }),
            total_duration: Some(total),
            load_duration: Some(0),
            prompt_eval_count: Some(usage.prompt_tokens),
            prompt_eval_duration: Some(first),
            eval_count: Some(usage.completion_tokens),
            eval_duration: Some(total.saturating_sub(first)),
            ragd: Some(ragd),
            ..self.object(model, text, true)
        }
    }
}

/// Answers a conversation, streamed as newline-delimited JSON unless `stream: false`.
///
/// With the model `ragd` the last user message drives hybrid retrieval and the last object
/// carries `ragd.citations`.
#[utoipa::path(
    post,
    path = "/chat",
    tag = "ollama",
    request_body = ChatBody,
    responses(
        (status = 200, description = "One JSON object (`stream: false`) or newline-delimited JSON objects, the last with `done: true`",
            content((ChatResponse = "application/json"), (String = "application/x-ndjson"))),
        (status = 400, description = "Unsupported field or option, bad settings, too long for the window", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 413, description = "The body is too large", body = OllamaErrorBody),
        (status = 429, description = "The generation queue is full; `Retry-After` says when to retry", body = OllamaErrorBody),
        (status = 503, description = "No chat model is loaded", body = OllamaErrorBody)
    )
)]
pub async fn chat(
    State(state): State<AppState>,
    scope: KeyScope,
    OllamaJson(body): OllamaJson<ChatBody>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    refuse_unsupported(&body.other)?;
    let messages = body
        .messages
        .into_iter()
        .enumerate()
        .map(|(index, m)| chat_message(index, m))
        .collect::<Result<Vec<_>, _>>()?;
    let request = ChatRequest {
        model: body.model,
        messages,
        settings: settings(body.options)?,
        rag: body.ragd,
    };
    answer(&state, &scope, request, Route::Chat, body.stream.unwrap_or(true), started).await
}

/// Completes a prompt, streamed as newline-delimited JSON unless `stream: false`.
#[utoipa::path(
    post,
    path = "/generate",
    tag = "ollama",
    request_body = GenerateBody,
    responses(
        (status = 200, description = "One JSON object (`stream: false`) or newline-delimited JSON objects, the last with `done: true`",
            content((ChatResponse = "application/json"), (String = "application/x-ndjson"))),
        (status = 400, description = "Unsupported field or option, bad settings, too long for the window", body = OllamaErrorBody),
        (status = 404, description = "No such model", body = OllamaErrorBody),
        (status = 413, description = "The body is too large", body = OllamaErrorBody),
        (status = 429, description = "The generation queue is full; `Retry-After` says when to retry", body = OllamaErrorBody),
        (status = 503, description = "No chat model is loaded", body = OllamaErrorBody)
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    scope: KeyScope,
    OllamaJson(body): OllamaJson<GenerateBody>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    refuse_unsupported(&body.other)?;
    let settings = settings(body.options)?;
    if body.prompt.trim().is_empty() {
        // Ollama answers an empty prompt by loading the model: say whether it is there.
        let model = compat::resolve_model(&state, &body.model)?;
        if model.kind == ModelKind::Embedding {
            return Err(invalid(format!(
                "`{}` is an embedding model; it cannot generate",
                model.id
            )));
        }
        let mut object = Route::Generate.object(&body.model, String::new(), true);
        object.done_reason = Some("load");
        return Ok(OllamaJson(object).into_response());
    }
    let mut messages = Vec::new();
    if let Some(system) = body.system.filter(|s| !s.trim().is_empty()) {
        messages.push(ChatMessage { role: ChatRole::System, content: system });
    }
    messages.push(ChatMessage { role: ChatRole::User, content: body.prompt });
    let request = ChatRequest { model: body.model, messages, settings, rag: body.ragd };
    answer(&state, &scope, request, Route::Generate, body.stream.unwrap_or(true), started).await
}

async fn answer(
    state: &AppState,
    scope: &KeyScope,
    request: ChatRequest,
    route: Route,
    stream: bool,
    started: Instant,
) -> Result<Response, OllamaError> {
    let model = request.model.clone();
    let generation = compat::start(state, scope, request).await?;
    if !stream {
        let Collected { text, citations, finish_reason, usage, message_id, first_token_at } =
            generation.collect().await?;
        let first_token_ns = first_token_at
            .map(|at| u64::try_from(at.duration_since(started).as_nanos()).unwrap_or(u64::MAX));
        let clock = Clock { started, first_token_ns };
        let ragd = OllamaExtension {
            citations: citations.into_iter().map(Into::into).collect(),
            message_id,
        };
        return Ok(
            OllamaJson(route.last(&model, text, finish_reason, usage, clock, ragd)).into_response()
        );
    }
    let lines = ndjson(generation, route, model, started);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response())
}

/// One object per line: one per token, then the last with `done: true` (or an `error`).
fn ndjson(
    generation: Generation,
    route: Route,
    model: String,
    started: Instant,
) -> impl futures::Stream<Item = Result<String, std::convert::Infallible>> {
    let citations: Vec<CitationBody> =
        generation.citations().iter().cloned().map(Into::into).collect();
    let clock = Clock { started, first_token_ns: None };
    stream::unfold(Some((generation, clock, citations)), move |state| {
        let model = model.clone();
        async move {
            let (mut generation, mut clock, citations) = state?;
            match generation.next().await {
                Some(Generated::Token(text)) => {
                    clock.first_token_ns.get_or_insert_with(|| nanos(clock.started));
                    let object = route.object(&model, text, false);
                    Some((Ok(line(&object)), Some((generation, clock, citations))))
                }
                Some(Generated::Done { finish_reason, usage, message_id }) => {
                    let ragd = OllamaExtension { citations, message_id };
                    let object =
                        route.last(&model, String::new(), finish_reason, usage, clock, ragd);
                    Some((Ok(line(&object)), None))
                }
                Some(Generated::Failed(error)) => {
                    Some((Ok(line(&json!({ "error": error.message() }))), None))
                }
                None => Some((
                    Ok(line(&json!({ "error": "generation ended without finishing" }))),
                    None,
                )),
            }
        }
    })
    .boxed()
}

/// One NDJSON line.
fn line<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|err| {
        json!({ "error": format!("cannot serialise the answer: {err}") }).to_string()
    });
    format!("{json}\n")
}

// ---------------------------------------------------------------------------------------
// POST /api/embed

/// `POST /api/embed`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedBody {
    /// The embedding model's id.
    pub model: String,
    /// A string or an array of strings.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Must equal the model's dimension when given.
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored (inputs longer than the model's window are always truncated).
    #[serde(default)]
    pub truncate: Option<bool>,
    /// Accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub keep_alive: Option<Value>,
}

/// The embeddings.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// The embedding model.
    pub model: String,
    /// One vector per input, in order.
    pub embeddings: Vec<Vec<f32>>,
    /// Nanoseconds from the request to the answer.
    pub total_duration: u64,
    /// Always 0.
    pub load_duration: u64,
    /// Tokens read.
    pub prompt_eval_count: usize,
}

/// Embeds text with ragd's embedding model.
#[utoipa::path(
    post,
    path = "/embed",
    tag = "ollama",
    request_body = EmbedBody,
    responses(
        (status = 200, description = "The embeddings", body = EmbedResponse),
        (status = 400, description = "Empty or malformed input, other `dimensions`", body = OllamaErrorBody),
        (status = 404, description = "Not the embedding model", body = OllamaErrorBody),
        (status = 413, description = "The body is too large", body = OllamaErrorBody),
        (status = 429, description = "The embedding queue is full", body = OllamaErrorBody),
        (status = 503, description = "No embedding model is loaded", body = OllamaErrorBody)
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    OllamaJson(body): OllamaJson<EmbedBody>,
) -> Result<OllamaJson<EmbedResponse>, OllamaError> {
    let started = Instant::now();
    let texts = compat::strings(body.input)
        .ok_or_else(|| invalid("`input` must be a string or an array of strings"))?;
    let (embedder, embeddings, tokens) =
        compat::embed(&state, Some(&body.model), body.dimensions, texts).await?;
    Ok(OllamaJson(EmbedResponse {
        model: embedder.model_id().to_owned(),
        embeddings,
        total_duration: nanos(started),
        load_duration: 0,
        prompt_eval_count: tokens,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: Value) -> Option<Map<String, Value>> {
        value.as_object().cloned()
    }

    #[test]
    fn options_map_to_settings() {
        let patch = settings(options(json!({
            "temperature": 0, "top_p": 0.9, "top_k": 20, "repeat_penalty": 1.2, "seed": 42,
            "num_predict": 16, "stop": ["\n"], "num_ctx": 4096, "num_thread": 2
        })))
        .unwrap();
        assert_eq!(patch.temperature, Some(0.0));
        assert_eq!(patch.top_k, Some(20));
        assert_eq!(patch.seed, Some(Some(42)));
        assert_eq!(patch.max_new_tokens, Some(16));
        assert_eq!(patch.stop, Some(vec!["\n".to_owned()]));
        // -1: the configured limit stays.
        assert_eq!(settings(options(json!({"num_predict": -1}))).unwrap().max_new_tokens, None);
    }

    #[test]
    fn unsupported_options_and_fields_are_refused_by_name() {
        let err = settings(options(json!({"mirostat": 2}))).unwrap_err().0;
        assert!(err.message().contains("`mirostat`"), "{}", err.message());
        assert!(settings(options(json!({"seed": -3}))).is_err());
        assert!(settings(options(json!({"temperature": "hot"}))).is_err());
        for (field, value) in [("format", json!("json")), ("tools", json!([{"type": "function"}]))]
        {
            let mut other = Map::new();
            other.insert(field.to_owned(), value);
            let err = refuse_unsupported(&other).unwrap_err().0;
            assert!(err.message().contains(field), "{}", err.message());
        }
        let mut neutral = Map::new();
        neutral.insert("keep_alive".to_owned(), json!("5m"));
        neutral.insert("format".to_owned(), json!(""));
        assert!(refuse_unsupported(&neutral).is_ok());
    }

    #[test]
    fn images_and_tool_roles_are_refused() {
        let with_image = OllamaMessage {
            role: "user".to_owned(),
            content: "x".to_owned(),
            images: Some(vec!["aGk=".to_owned()]),
            tool_calls: None,
        };
        assert!(chat_message(0, with_image).is_err());
        let tool = OllamaMessage {
            role: "tool".to_owned(),
            content: "x".to_owned(),
            images: None,
            tool_calls: None,
        };
        assert!(chat_message(0, tool).is_err());
    }
}
