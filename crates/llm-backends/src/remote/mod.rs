//! Remote backends over HTTP: OpenAI-compatible servers (vLLM, llama.cpp's `llama-server`,
//! LM Studio, TGI) and Ollama.
//!
//! Shared here: the HTTP client with timeouts, retries on connection failures (a request
//! that reached the server is never retried, so generation is not run twice), the mapping
//! of HTTP failures onto [`ErrorKind`], and a line splitter for streamed bodies (SSE and
//! NDJSON are both line protocols).

pub mod ollama;
pub mod openai;

use std::time::Duration;

use futures::{Stream, StreamExt};
use ragd_core::{Error, ErrorKind};

/// Connection and retry settings shared by the remote backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole non-streaming request, or between two chunks of a streamed one.
    pub request_timeout: Duration,
    /// Extra attempts after a connection failure (not after the server answered).
    pub connect_retries: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            connect_retries: 2,
        }
    }
}

pub(crate) fn client(settings: &HttpSettings) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.request_timeout)
        .build()
        .map_err(|err| {
            Error::internal(format!("cannot build the HTTP client: {err}")).with_source(err)
        })
}

/// Sends the request built by `build`, retrying connection failures with a short backoff,
/// and turns HTTP error statuses into classified errors.
pub(crate) async fn send(
    backend: &str,
    settings: &HttpSettings,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<reqwest::Response, Error> {
    let mut attempt = 0;
    loop {
        match build().send().await {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => return Err(status_error(backend, response).await),
            Err(err) if err.is_connect() && attempt < settings.connect_retries => {
                attempt += 1;
                let backoff = Duration::from_millis(200 * 2u64.pow(attempt));
                tracing::warn!(backend, attempt, %err, "cannot connect; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
            }
            Err(err) => return Err(transport_error(backend, err)),
        }
    }
}

/// A failure before any answer: connection refused, DNS, timeout.
pub(crate) fn transport_error(backend: &str, err: reqwest::Error) -> Error {
    let kind = if err.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Unavailable };
    Error::new(kind, format!("{backend} server unreachable: {err}")).with_source(err)
}

/// Phrases servers use when the prompt does not fit the context window.
const CONTEXT_PHRASES: [&str; 5] = [
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "exceeds the available context",
    "too many tokens",
];

/// Classifies an error status, keeping the server's message.
async fn status_error(backend: &str, response: reqwest::Response) -> Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = server_message(&body);
    let lower = message.to_lowercase();
    let kind = if CONTEXT_PHRASES.iter().any(|p| lower.contains(p)) {
        ErrorKind::ContextTooLong
    } else if status == reqwest::StatusCode::NOT_FOUND {
        ErrorKind::NotFound
    } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::Overloaded
    } else if status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::GATEWAY_TIMEOUT
    {
        ErrorKind::Timeout
    } else if status.is_client_error() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, format!("{backend} server answered {status}: {message}"))
}

/// The `error.message` (OpenAI) or `error` (Ollama) of a JSON error body, else the body.
fn server_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or_else(|| v["error"].as_str())
                .or_else(|| v["message"].as_str())
        })
        .map_or_else(|| body.chars().take(500).collect(), str::to_owned)
}

/// Splits a byte stream into text lines (without the line ending), across chunk borders.
pub(crate) fn lines<S>(body: S) -> impl Stream<Item = Result<String, Error>>
where
    S: Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    futures::stream::unfold(
        (body, Vec::<u8>::new(), false),
        |(mut body, mut buffer, mut ended)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let mut line: Vec<u8> = buffer.drain(..=end).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    let line = String::from_utf8_lossy(&line).into_owned();
                    return Some((Ok(line), (body, buffer, ended)));
                }
                if ended {
                    if buffer.is_empty() {
                        return None;
                    }
                    let line = String::from_utf8_lossy(&buffer).into_owned();
                    buffer.clear();
                    return Some((Ok(line), (body, buffer, ended)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(err)) => {
                        ended = true;
                        buffer.clear();
                        let err = Error::new(
                            ErrorKind::Unavailable,
                            format!("the stream broke off: {err}"),
                        )
                        .with_source(err);
                        return Some((Err(err), (body, buffer, ended)));
                    }
                    None => ended = true,
                }
            }
        },
    )
}

/// Parses a JSON answer; an answer that does not parse means the server is not what it
/// claims to be (or is broken), so it is `Unavailable`.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    backend: &str,
    text: &str,
) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|err| {
        Error::new(ErrorKind::Unavailable, format!("unexpected answer from {backend}: {err}"))
            .with_source(err)
    })
}

/// A rough token count for servers that do not expose their tokenizer: about four chars
/// per token for English text, rounded up. Only used for prompt budgeting.
pub(crate) fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}
