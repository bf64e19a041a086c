//! The OpenAI- and Ollama-compatible routes in process, on the real components (SmolLM2
//! through llama.cpp, MiniLM, LanceDB, SQLite): what the Python clients in `protocols` do
//! not reach: the window and queue limits, sessions through the `ragd` extension, the error
//! shapes of each protocol, NDJSON framing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::chat::wait_for_model;
use crate::documents::App;

async fn raw(app: &App, uri: &str, body: &Value) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn user(content: &str) -> Value {
    json!([{"role": "user", "content": content}])
}

/// The loaded chat model's id, from `/v1/models`.
async fn chat_model(app: &App) -> String {
    let (status, models) = app.get("/v1/models").await;
    assert_eq!(status, StatusCode::OK, "{models}");
    let data = models["data"].as_array().unwrap();
    let kinds: Vec<&str> = data.iter().map(|m| m["ragd"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["chat", "rag", "embedding"], "{models}");
    assert_eq!(data[1]["id"], "ragd");
    assert!(data[0]["ragd"]["context_length"].as_u64().unwrap() > 0);
    assert_eq!(data[2]["ragd"]["dimensions"], 384);
    data[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn openai_completions_answer_cite_refuse_and_store_in_sessions() {
    let app = App::new().await;
    let sky = app
        .add(
            "sky.md",
            "# Why the sky is blue\n\nRayleigh scattering of sunlight by nitrogen and oxygen \
             molecules makes the daytime sky look blue.",
        )
        .await;
    wait_for_model(&app).await;
    let model = chat_model(&app).await;

    // The model alone: no citations, OpenAI's shape.
    let body = json!({"model": model, "messages": user("Say hello."), "max_tokens": 6,
        "temperature": 0, "seed": 1});
    let (status, answer) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], model.as_str());
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert!(!answer["choices"][0]["message"]["content"].as_str().unwrap().is_empty());
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
    assert_eq!(answer["usage"]["completion_tokens"], 6, "{answer}");
    assert_eq!(answer["ragd"]["citations"], json!([]));
    // Asked again, the model still holds the prompt: only its last token is read.
    let (status, again) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["choices"][0]["message"], answer["choices"][0]["message"]);
    let prompt_tokens = again["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(again["usage"]["prompt_tokens_details"]["cached_tokens"], prompt_tokens - 1);

    // `ragd`: retrieval over the documents, citations of the right one.
    let body = json!({"model": "ragd", "messages": user("Why is the sky blue?"),
        "max_tokens": 8, "temperature": 0});
    let (status, answer) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let citations = answer["ragd"]["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{answer}");
    assert_eq!(citations[0]["document_id"], sky.as_str());
    assert_eq!(citations[0]["number"], 1);
    // The prompt held the chunk: many more prompt tokens than the bare question.
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 40, "{answer}");

    // `ragd` options on the plain model id, an embedding model chatting, unknown ids.
    let body = json!({"model": model, "messages": user("x"), "ragd": {"top_k": 2}});
    let (status, err) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["param"], "ragd");
    let body = json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "messages": user("x")});
    let (status, err) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let body = json!({"model": "gpt-4o", "messages": user("x")});
    let (status, err) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error"]["code"], "model_not_found");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("ragd"), "{err}");

    // A conversation that does not fit is refused, never shortened.
    let long = "word ".repeat(6000);
    let body = json!({"model": model, "messages": user(&long), "max_tokens": 4});
    let (status, err) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "context_length_exceeded", "{err}");
    let history: Vec<Value> = (0..40)
        .flat_map(|i| {
            [
                json!({"role": "user", "content": format!("question {i} {}", "lorem ".repeat(60))}),
                json!({"role": "assistant", "content": "answer ".repeat(60)}),
            ]
        })
        .chain([json!({"role": "user", "content": "and now?"})])
        .collect();
    let body = json!({"model": "ragd", "messages": history, "max_tokens": 4});
    let (status, err) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["code"], "context_length_exceeded", "{err}");

    // A malformed body is a 4xx in OpenAI's shape.
    let (status, _, text) = raw(&app, "/v1/chat/completions", &json!({"model": 5})).await;
    assert!(status.is_client_error(), "{status} {text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert!(err["error"]["message"].is_string() && err["error"]["type"].is_string(), "{err}");

    // With a session: the exchange is stored there and the reply's id comes back.
    let (_, session) = app.post("/api/v1/sessions", &json!({"document_ids": [sky]})).await;
    let session_id = session["id"].as_str().unwrap();
    let body = json!({"model": "ragd", "messages": user("What scatters sunlight?"),
        "max_tokens": 6, "temperature": 0, "ragd": {"session_id": session_id}});
    let (status, answer) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let message_id = answer["ragd"]["message_id"].as_str().unwrap();
    let (_, messages) = app.get(&format!("/api/v1/sessions/{session_id}/messages")).await;
    assert_eq!(messages["total"], 2, "{messages}");
    assert_eq!(messages["items"][1]["id"], message_id);
    assert_eq!(
        messages["items"][1]["content"], answer["choices"][0]["message"]["content"],
        "{messages}"
    );
    let body = json!({"model": "ragd", "messages": user("x"),
        "ragd": {"session_id": session_id, "document_ids": [sky]}});
    let (status, _) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Streaming: role first (with citations), tokens, finish, usage, [DONE].
    let body = json!({"model": "ragd", "messages": user("Why is the sky blue?"),
        "max_tokens": 5, "temperature": 0, "stream": true,
        "stream_options": {"include_usage": true}});
    let (status, headers, text) = raw(&app, "/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["ragd"]["citations"][0]["document_id"], sky.as_str());
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5, "{usage}");
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn a_full_generation_queue_is_a_429_with_retry_after_in_each_protocol() {
    let app = App::with(|config| {
        config.chat.max_concurrent_generations = 1;
        config.chat.max_queued_generations = 0;
    })
    .await;
    wait_for_model(&app).await;
    let model = chat_model(&app).await;
    // A long streamed answer holds the only slot while its body is not read.
    let body = json!({"model": model, "messages": user("Tell a long story."),
        "max_tokens": 400, "stream": true});
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let holding = app.router().oneshot(request).await.unwrap();
    assert_eq!(holding.status(), StatusCode::OK);

    let body = json!({"model": model, "messages": user("Hi"), "max_tokens": 2});
    let (status, headers, text) = raw(&app, "/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(headers.contains_key("retry-after"));
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["type"], "rate_limit_error", "{err}");

    let body = json!({"model": model, "messages": user("Hi"), "stream": false});
    let (status, headers, text) = raw(&app, "/api/chat", &body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(headers.contains_key("retry-after"));
    assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string(), "{text}");
    drop(holding);
}

#[tokio::test]
async fn ollama_routes_stream_ndjson_with_citations_and_answer_in_ollama_shapes() {
    let app = App::new().await;
    let bread = app
        .add(
            "bread.md",
            "# Sourdough\n\nA sourdough starter is flour and water fermented by wild yeast.",
        )
        .await;
    wait_for_model(&app).await;
    let model = chat_model(&app).await;

    let (status, tags) = app.get("/api/tags").await;
    assert_eq!(status, StatusCode::OK, "{tags}");
    let names: Vec<&str> =
        tags["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, [model.as_str(), "ragd", "sentence-transformers/all-MiniLM-L6-v2"]);
    assert_eq!(tags["models"][0]["details"]["format"], "gguf");
    assert!(tags["models"][0]["size"].as_u64().unwrap() > 1_000_000);

    // Streamed by default: one JSON object per line, the last `done` with citations.
    let body = json!({"model": "ragd", "messages": user("What is a sourdough starter?"),
        "options": {"num_predict": 5, "temperature": 0, "seed": 3}});
    let (status, headers, text) = raw(&app, "/api/chat", &body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{text}");
    let (last, tokens) = lines.split_last().unwrap();
    assert!(tokens.iter().all(|l| l["done"] == false && l["message"]["role"] == "assistant"));
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["eval_count"], 5, "{last}");
    assert_eq!(last["ragd"]["citations"][0]["document_id"], bread.as_str(), "{last}");
    let streamed: String =
        tokens.iter().map(|l| l["message"]["content"].as_str().unwrap()).collect();

    // `stream: false`: one object, the same text at temperature 0.
    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let (status, answer) = app.post("/api/chat", &whole).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"]["content"].as_str().unwrap(), streamed);

    // generate: `response` instead of `message`; an empty prompt reports the model loaded.
    let body = json!({"model": model, "prompt": "Count: one, two,", "stream": false,
        "options": {"num_predict": 3, "temperature": 0}});
    let (status, answer) = app.post("/api/generate", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["response"].is_string() && answer.get("message").is_none(), "{answer}");
    let (status, answer) = app.post("/api/generate", &json!({"model": model})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["done_reason"], "load");

    // Like Ollama, the body is JSON whatever the content type says (`curl -d`).
    let request = Request::post("/api/generate")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(json!({"model": model}).to_string()))
        .unwrap();
    let (status, answer) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["done_reason"], "load");

    // The non-streamed answer times the first token too.
    let body = json!({"model": model, "prompt": "One, two,", "stream": false,
        "options": {"num_predict": 4, "temperature": 0}});
    let (_, answer) = app.post("/api/generate", &body).await;
    assert!(answer["eval_duration"].as_u64().unwrap() > 0, "{answer}");
    assert!(answer["prompt_eval_duration"].as_u64() < answer["total_duration"].as_u64());

    // show, version, embed.
    let (status, shown) = app.post("/api/show", &json!({"model": "ragd"})).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["capabilities"], json!(["completion"]));
    assert!(shown["template"].as_str().unwrap().contains("im_start"), "{shown}");
    let (_, version) = app.get("/api/version").await;
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let body = json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": ["a", "b"]});
    let (status, embedded) = app.post("/api/embed", &body).await;
    assert_eq!(status, StatusCode::OK, "{embedded}");
    assert_eq!(embedded["embeddings"].as_array().unwrap().len(), 2);
    let (status, rest) = app.post("/api/v1/embeddings", &json!({"input": ["a", "b"]})).await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["embeddings"], embedded["embeddings"]);
    assert_eq!(rest["dimension"], 384);

    // Errors: Ollama's shape, the same statuses.
    let (status, err) =
        app.post("/api/chat", &json!({"model": "llama3", "messages": user("x")})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["error"].as_str().unwrap().contains("llama3"), "{err}");
    let body = json!({"model": model, "messages": user("x"), "format": "json"});
    let (status, err) = app.post("/api/chat", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"].as_str().unwrap().contains("`format`"), "{err}");
    let body = json!({"model": model, "messages": user("x"), "options": {"mirostat": 1}});
    let (status, _) = app.post("/api/chat", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, err) = app.get("/api/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["error"].is_string(), "{err}");
    let (status, err) = app.get("/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(err["error"]["type"].is_string(), "{err}");
}

#[tokio::test]
async fn without_a_chat_model_chat_routes_are_503_and_embeddings_still_work() {
    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let (_, models) = app.get("/v1/models").await;
    let kinds: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ragd"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["embedding"], "{models}");
    let (status, err) =
        app.post("/v1/chat/completions", &json!({"model": "ragd", "messages": user("x")})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["error"]["type"], "server_error");
    let body = json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": "hello",
        "encoding_format": "base64"});
    let (status, embedded) = app.post("/v1/embeddings", &body).await;
    assert_eq!(status, StatusCode::OK, "{embedded}");
    assert!(embedded["data"][0]["embedding"].is_string());
    assert!(embedded["usage"]["prompt_tokens"].as_u64().unwrap() >= 1);
    let body = json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": "hello",
        "dimensions": 128});
    let (status, err) = app.post("/v1/embeddings", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["param"], "dimensions");
    let body = json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": ["ok", ""]});
    let (status, _) = app.post("/v1/embeddings", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
