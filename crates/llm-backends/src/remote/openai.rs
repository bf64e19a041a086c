//! [`OpenAiBackend`]: any server speaking the OpenAI chat-completions API (vLLM,
//! llama.cpp's `llama-server`, LM Studio, TGI): `POST /chat/completions`, streamed as
//! server-sent events, and `GET /models`.

use std::fmt;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use ragd_core::{
    ChatMessage, Completion, CompletionDelta, CompletionRequest, Error, ErrorKind, FinishReason,
    LlmBackend, TokenUsage,
};
use serde::{Deserialize, Serialize};

use super::{HttpSettings, client, estimate_tokens, lines, parse_json, send};

/// Where the server is and which model to ask for.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// The API base, including `/v1` (`http://127.0.0.1:8000/v1`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<String>,
    /// The `model` field of requests.
    pub model: String,
    /// The model's context window, for prompt budgeting (the API does not report it).
    pub context_length: usize,
    /// Timeouts and retries.
    pub http: HttpSettings,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("context_length", &self.context_length)
            .field("http", &self.http)
            .finish()
    }
}

/// A chat model behind an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    config: OpenAiConfig,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    temperature: f32,
    top_p: f32,
    max_tokens: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// vLLM and llama.cpp accept these extensions; other servers ignore them.
    top_k: u32,
    repetition_penalty: f32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<MessageContent>,
    #[serde(default)]
    delta: Option<MessageContent>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct MessageContent {
    content: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    /// Where the server reports its prompt cache (OpenAI, vLLM, llama-server).
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize, Clone, Copy)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: u32,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelInfo>,
}

#[derive(Deserialize)]
struct ModelInfo {
    id: String,
}

/// The API reports `stop` both for the end of the turn and for a stop sequence, so a stop
/// sequence is reported as [`FinishReason::Stop`] here.
fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

fn usage(usage: Option<Usage>) -> TokenUsage {
    usage.map_or_else(TokenUsage::default, |u| TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_prompt_tokens: u.prompt_tokens_details.map_or(0, |details| details.cached_tokens),
    })
}

impl OpenAiBackend {
    /// A backend for `config`; nothing is contacted yet.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, Error> {
        let client = client(&config.http)?;
        Ok(Self { config, client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match &self.config.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// The model ids the server offers (`GET /models`).
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached or answers nonsense.
    pub async fn list_models(&self) -> Result<Vec<String>, Error> {
        let response =
            send("openai", &self.config.http, || self.request(reqwest::Method::GET, "models"))
                .await?;
        let text = response.text().await.map_err(|e| super::transport_error("openai", e))?;
        Ok(parse_json::<ModelList>("the openai server", &text)?
            .data
            .into_iter()
            .map(|m| m.id)
            .collect())
    }

    fn body<'a>(&'a self, req: &'a CompletionRequest, stream: bool) -> ChatRequest<'a> {
        let settings = &req.settings;
        ChatRequest {
            model: &self.config.model,
            messages: req
                .messages
                .iter()
                .map(|m: &ChatMessage| WireMessage { role: m.role.as_str(), content: &m.content })
                .collect(),
            temperature: settings.temperature,
            top_p: settings.top_p,
            max_tokens: settings.max_new_tokens,
            stop: &settings.stop,
            seed: settings.seed,
            top_k: settings.top_k,
            repetition_penalty: settings.repetition_penalty,
            stream,
            stream_options: stream.then_some(StreamOptions { include_usage: true }),
        }
    }
}

#[async_trait]
impl LlmBackend for OpenAiBackend {
    fn name(&self) -> &str {
        "openai"
    }

    fn model_id(&self) -> &str {
        &self.config.model
    }

    fn context_length(&self) -> usize {
        self.config.context_length
    }

    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        Ok(estimate_tokens(text))
    }

    async fn complete(&self, req: CompletionRequest) -> ragd_core::Result<Completion> {
        let body = self.body(&req, false);
        let response = send("openai", &self.config.http, || {
            self.request(reqwest::Method::POST, "chat/completions").json(&body)
        })
        .await?;
        let text = response.text().await.map_err(|e| super::transport_error("openai", e))?;
        let parsed: ChatResponse = parse_json("the openai server", &text)?;
        let choice = parsed.choices.into_iter().next().ok_or_else(|| {
            Error::new(ErrorKind::Unavailable, "the openai server returned no choice")
        })?;
        Ok(Completion {
            text: choice.message.and_then(|m| m.content).unwrap_or_default(),
            finish_reason: finish_reason(choice.finish_reason.as_deref()),
            usage: usage(parsed.usage),
            model: self.config.model.clone(),
        })
    }

    async fn stream(
        &self,
        req: CompletionRequest,
    ) -> ragd_core::Result<BoxStream<'static, ragd_core::Result<CompletionDelta>>> {
        let body = self.body(&req, true);
        let response = send("openai", &self.config.http, || {
            self.request(reqwest::Method::POST, "chat/completions").json(&body)
        })
        .await?;
        let mut finish: Option<String> = None;
        let mut last_usage: Option<Usage> = None;
        let events = lines(response.bytes_stream().boxed()).filter_map(move |line| {
            let out = match line {
                Err(err) => Some(vec![Err(err)]),
                Ok(line) => match line.strip_prefix("data:").map(str::trim) {
                    None | Some("") => None,
                    Some("[DONE]") => Some(vec![Ok(CompletionDelta::Done {
                        finish_reason: finish_reason(finish.as_deref()),
                        usage: usage(last_usage),
                    })]),
                    Some(data) => match parse_json::<ChatResponse>("the openai server", data) {
                        Err(err) => Some(vec![Err(err)]),
                        Ok(chunk) => {
                            if chunk.usage.is_some() {
                                last_usage = chunk.usage;
                            }
                            let mut out = Vec::new();
                            for choice in chunk.choices {
                                if let Some(text) =
                                    choice.delta.and_then(|d| d.content).filter(|t| !t.is_empty())
                                {
                                    out.push(Ok(CompletionDelta::Text(text)));
                                }
                                if choice.finish_reason.is_some() {
                                    finish = choice.finish_reason;
                                }
                            }
                            (!out.is_empty()).then_some(out)
                        }
                    },
                },
            };
            futures::future::ready(out)
        });
        Ok(events.flat_map(futures::stream::iter).boxed())
    }
}
