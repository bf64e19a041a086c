//! Wire-format tests of the remote backends against recorded responses served on
//! loopback by a small axum server: request bodies are checked, canned answers (JSON,
//! server-sent events, NDJSON, error statuses) are parsed.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures::StreamExt;
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, ErrorKind, FinishReason,
    GenerationSettings, LlmBackend,
};
use ragd_llm_backends::remote::HttpSettings;
use ragd_llm_backends::remote::ollama::{OllamaBackend, OllamaConfig};
use ragd_llm_backends::remote::openai::{OpenAiBackend, OpenAiConfig};
use serde_json::{Value, json};

/// Requests the fake server saw.
type Seen = Arc<Mutex<Vec<Value>>>;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn request(stream_settings: GenerationSettings) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage { role: ChatRole::System, content: "Be brief.".into() },
            ChatMessage { role: ChatRole::User, content: "Capital of France?".into() },
        ],
        settings: stream_settings,
    }
}

fn settings() -> GenerationSettings {
    GenerationSettings {
        temperature: 0.0,
        max_new_tokens: 16,
        seed: Some(7),
        stop: vec!["\n\n".into()],
        ..GenerationSettings::default()
    }
}

fn http() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        connect_retries: 1,
    }
}

async fn openai_chat(
    State(seen): State<Seen>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    seen.lock().unwrap().push(body.0.clone());
    if body.0["messages"][1]["content"] == "too long" {
        let error = json!({"error": {"message": "This model's maximum context length is 2048 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    if body.0["stream"] == true {
        let events = [
            json!({"choices": [{"delta": {"role": "assistant"}, "finish_reason": null}]}),
            json!({"choices": [{"delta": {"content": "Par"}, "finish_reason": null}]}),
            json!({"choices": [{"delta": {"content": "is."}, "finish_reason": null}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}}),
        ];
        let mut body = String::new();
        for event in events {
            body.push_str(&format!("data: {event}\n\n"));
        }
        body.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    let answer = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2}
    });
    axum::Json(answer).into_response()
}

async fn openai_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let router = Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route(
            "/v1/models",
            get(|| async {
                axum::Json(
                    json!({"object": "list", "data": [{"id": "smollm2", "object": "model"}]}),
                )
            }),
        )
        .with_state(seen.clone());
    (format!("{}/v1", serve(router).await), seen)
}

fn openai(base_url: String) -> OpenAiBackend {
    OpenAiBackend::new(OpenAiConfig {
        base_url,
        api_key: Some("sk-test".into()),
        model: "smollm2".into(),
        context_length: 2048,
        http: http(),
    })
    .unwrap()
}

#[tokio::test]
async fn openai_complete_sends_settings_and_parses_the_answer() {
    let (url, seen) = openai_server().await;
    let backend = openai(url);
    let completion = backend.complete(request(settings())).await.unwrap();
    assert_eq!(completion.text, "Paris.");
    assert_eq!(completion.finish_reason, FinishReason::Length);
    assert_eq!(completion.usage.prompt_tokens, 12);
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "smollm2");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["max_tokens"], 16);
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["stop"][0], "\n\n");
    assert_eq!(sent["stream"], false);
    assert_eq!(backend.list_models().await.unwrap(), vec!["smollm2".to_owned()]);
}

#[tokio::test]
async fn openai_stream_parses_server_sent_events() {
    let (url, _) = openai_server().await;
    let deltas: Vec<CompletionDelta> =
        openai(url).stream(request(settings())).await.unwrap().map(Result::unwrap).collect().await;
    assert_eq!(deltas[0], CompletionDelta::Text("Par".into()));
    assert_eq!(deltas[1], CompletionDelta::Text("is.".into()));
    match &deltas[2] {
        CompletionDelta::Done { finish_reason, usage } => {
            assert_eq!(*finish_reason, FinishReason::Stop);
            assert_eq!(usage.completion_tokens, 2);
        }
        other @ CompletionDelta::Text(_) => panic!("expected Done, got {other:?}"),
    }
    assert_eq!(deltas.len(), 3);
}

#[tokio::test]
async fn openai_errors_are_classified() {
    let (url, _) = openai_server().await;
    let mut req = request(settings());
    req.messages[1].content = "too long".into();
    let err = openai(url).complete(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");

    // Nothing listens on this port: connection errors are retried, then Unavailable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let err = openai(dead).complete(request(settings())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

async fn ollama_chat(
    State(seen): State<Seen>,
    body: axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    seen.lock().unwrap().push(body.0.clone());
    if body.0["model"] == "missing" {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "model 'missing' not found"})))
            .into_response();
    }
    if body.0["stream"] == true {
        let lines = [
            json!({"model": "llama3.2", "message": {"role": "assistant", "content": "Par"}, "done": false}),
            json!({"model": "llama3.2", "message": {"role": "assistant", "content": "is."}, "done": false}),
            json!({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 20, "eval_count": 2}),
        ];
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        return ([("content-type", "application/x-ndjson")], body).into_response();
    }
    axum::Json(json!({"model": "llama3.2", "message": {"role": "assistant", "content": "Paris."}, "done": true, "done_reason": "length", "prompt_eval_count": 20, "eval_count": 16}))
        .into_response()
}

async fn ollama_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let router = Router::new()
        .route("/api/chat", post(ollama_chat))
        .route("/api/tags", get(|| async { axum::Json(json!({"models": [{"name": "llama3.2:1b"}, {"name": "qwen2:0.5b"}]})) }))
        .route("/api/show", post(|| async { axum::Json(json!({"model_info": {"general.architecture": "llama", "llama.context_length": 131072}})) }))
        .with_state(seen.clone());
    (serve(router).await, seen)
}

#[tokio::test]
async fn ollama_reads_context_length_completes_and_streams() {
    let (url, seen) = ollama_server().await;
    let config = OllamaConfig {
        base_url: url.clone(),
        model: "llama3.2:1b".into(),
        context_length: None,
        http: http(),
    };
    let backend = OllamaBackend::connect(config).await.unwrap();
    assert_eq!(backend.context_length(), 131_072);
    assert_eq!(
        backend.list_models().await.unwrap(),
        vec!["llama3.2:1b".to_owned(), "qwen2:0.5b".to_owned()]
    );

    let completion = backend.complete(request(settings())).await.unwrap();
    assert_eq!(completion.text, "Paris.");
    assert_eq!(completion.finish_reason, FinishReason::Length);
    assert_eq!(completion.usage.completion_tokens, 16);
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["options"]["num_predict"], 16);
    assert_eq!(sent["options"]["seed"], 7);
    assert_eq!(sent["options"]["num_ctx"], 131_072);

    let deltas: Vec<CompletionDelta> =
        backend.stream(request(settings())).await.unwrap().map(Result::unwrap).collect().await;
    let text: String = deltas
        .iter()
        .filter_map(|d| if let CompletionDelta::Text(t) = d { Some(t.as_str()) } else { None })
        .collect();
    assert_eq!(text, "Paris.");
    assert!(
        matches!(deltas.last(), Some(CompletionDelta::Done { usage, .. }) if usage.prompt_tokens == 20)
    );

    let missing = OllamaConfig {
        base_url: url,
        model: "missing".into(),
        context_length: Some(2048),
        http: http(),
    };
    let err = OllamaBackend::connect(missing)
        .await
        .unwrap()
        .complete(request(settings()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
