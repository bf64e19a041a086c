//! [`OllamaBackend`]: Ollama's native API: `POST /api/chat` (newline-delimited JSON when
//! streaming), `GET /api/tags` for the installed models and `POST /api/show` for a model's
//! context length.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use ragd_core::{
    Completion, CompletionDelta, CompletionRequest, Error, ErrorKind, FinishReason, LlmBackend,
    TokenUsage,
};
use serde::{Deserialize, Serialize};

use super::{HttpSettings, client, estimate_tokens, lines, parse_json, send};

/// Where Ollama is and which model to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaConfig {
    /// The server (`http://127.0.0.1:11434`).
    pub base_url: String,
    /// The model tag (`llama3.2:1b`).
    pub model: String,
    /// The context window to request (`num_ctx`); `None` asks the server with `/api/show`
    /// at connect time and falls back to 2048 (Ollama's default).
    pub context_length: Option<usize>,
    /// Timeouts and retries.
    pub http: HttpSettings,
}

/// A model served by Ollama.
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    config: OllamaConfig,
    context_length: usize,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    options: Options<'a>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Options<'a> {
    temperature: f32,
    top_p: f32,
    top_k: u32,
    repeat_penalty: f32,
    num_predict: u32,
    num_ctx: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    message: Option<ChunkMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ChunkMessage {
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct Tags {
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Deserialize)]
struct Show {
    #[serde(default)]
    model_info: serde_json::Map<String, serde_json::Value>,
}

impl ChatChunk {
    fn finish(&self) -> CompletionDelta {
        CompletionDelta::Done {
            finish_reason: match self.done_reason.as_deref() {
                Some("length") => FinishReason::Length,
                _ => FinishReason::Stop,
            },
            usage: TokenUsage {
                prompt_tokens: self.prompt_eval_count.unwrap_or(0),
                completion_tokens: self.eval_count.unwrap_or(0),
                cached_prompt_tokens: 0,
            },
        }
    }
}

impl OllamaBackend {
    /// Connects: asks `/api/show` for the context length unless the config gives one.
    ///
    /// # Errors
    /// `Unavailable` when Ollama cannot be reached, `NotFound` when it lacks the model.
    pub async fn connect(config: OllamaConfig) -> Result<Self, Error> {
        let client = client(&config.http)?;
        let mut backend =
            Self { context_length: config.context_length.unwrap_or(2048), config, client };
        if backend.config.context_length.is_none() {
            backend.context_length = backend.show_context_length().await?.unwrap_or(2048);
        }
        Ok(backend)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The installed model tags (`GET /api/tags`).
    ///
    /// # Errors
    /// `Unavailable` when Ollama cannot be reached.
    pub async fn list_models(&self) -> Result<Vec<String>, Error> {
        let response =
            send("ollama", &self.config.http, || self.client.get(self.url("api/tags"))).await?;
        let text = response.text().await.map_err(|e| super::transport_error("ollama", e))?;
        Ok(parse_json::<Tags>("ollama", &text)?.models.into_iter().map(|t| t.name).collect())
    }

    /// The model's trained context length from `/api/show` (`<arch>.context_length`).
    async fn show_context_length(&self) -> Result<Option<usize>, Error> {
        let body = serde_json::json!({ "model": self.config.model });
        let response = send("ollama", &self.config.http, || {
            self.client.post(self.url("api/show")).json(&body)
        })
        .await?;
        let text = response.text().await.map_err(|e| super::transport_error("ollama", e))?;
        let show: Show = parse_json("ollama", &text)?;
        Ok(show
            .model_info
            .iter()
            .find(|(key, _)| key.ends_with(".context_length"))
            .and_then(|(_, value)| value.as_u64())
            .and_then(|n| usize::try_from(n).ok()))
    }

    fn body<'a>(&'a self, req: &'a CompletionRequest, stream: bool) -> ChatRequest<'a> {
        let settings = &req.settings;
        ChatRequest {
            model: &self.config.model,
            messages: req
                .messages
                .iter()
                .map(|m| WireMessage { role: m.role.as_str(), content: &m.content })
                .collect(),
            stream,
            options: Options {
                temperature: settings.temperature,
                top_p: settings.top_p,
                top_k: settings.top_k,
                repeat_penalty: settings.repetition_penalty,
                num_predict: settings.max_new_tokens,
                num_ctx: self.context_length,
                seed: settings.seed,
                stop: &settings.stop,
            },
        }
    }
}

#[async_trait]
impl LlmBackend for OllamaBackend {
    fn name(&self) -> &str {
        "ollama"
    }

    fn model_id(&self) -> &str {
        &self.config.model
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        Ok(estimate_tokens(text))
    }

    async fn complete(&self, req: CompletionRequest) -> ragd_core::Result<Completion> {
        let body = self.body(&req, false);
        let response = send("ollama", &self.config.http, || {
            self.client.post(self.url("api/chat")).json(&body)
        })
        .await?;
        let text = response.text().await.map_err(|e| super::transport_error("ollama", e))?;
        let chunk: ChatChunk = parse_json("ollama", &text)?;
        if let Some(error) = chunk.error {
            return Err(Error::new(ErrorKind::Unavailable, format!("ollama: {error}")));
        }
        let CompletionDelta::Done { finish_reason, usage } = chunk.finish() else {
            return Err(Error::internal("ollama: no final chunk"));
        };
        Ok(Completion {
            text: chunk.message.map(|m| m.content).unwrap_or_default(),
            finish_reason,
            usage,
            model: self.config.model.clone(),
        })
    }

    async fn stream(
        &self,
        req: CompletionRequest,
    ) -> ragd_core::Result<BoxStream<'static, ragd_core::Result<CompletionDelta>>> {
        let body = self.body(&req, true);
        let response = send("ollama", &self.config.http, || {
            self.client.post(self.url("api/chat")).json(&body)
        })
        .await?;
        let deltas = lines(response.bytes_stream().boxed()).filter_map(|line| {
            let out = match line {
                Err(err) => Some(vec![Err(err)]),
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => match parse_json::<ChatChunk>("ollama", &line) {
                    Err(err) => Some(vec![Err(err)]),
                    Ok(chunk) if chunk.error.is_some() => Some(vec![Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("ollama: {}", chunk.error.unwrap_or_default()),
                    ))]),
                    Ok(chunk) => {
                        let mut out = Vec::new();
                        if let Some(text) = chunk
                            .message
                            .as_ref()
                            .map(|m| m.content.clone())
                            .filter(|t| !t.is_empty())
                        {
                            out.push(Ok(CompletionDelta::Text(text)));
                        }
                        if chunk.done {
                            out.push(Ok(chunk.finish()));
                        }
                        (!out.is_empty()).then_some(out)
                    }
                },
            };
            futures::future::ready(out)
        });
        Ok(deltas.flat_map(futures::stream::iter).boxed())
    }
}
