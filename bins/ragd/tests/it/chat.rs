//! `/api/v1/sessions` on the real components: SmolLM2 through llama.cpp, MiniLM on ONNX
//! Runtime, LanceDB and SQLite in a temp dir.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::documents::App;

/// Waits for the autoloaded bundled model.
pub(crate) async fn wait_for_model(app: &App) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = app.get("/api/v1/models/status").await;
        if status["state"] == "loaded" {
            return;
        }
        assert_ne!(status["state"], "failed", "{status}");
        assert!(Instant::now() < deadline, "model did not load: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn say(content: &str, max_new_tokens: u32) -> Value {
    json!({"content": content, "settings": {"max_new_tokens": max_new_tokens, "seed": 7, "temperature": 0.0}})
}

#[tokio::test]
async fn a_session_over_a_document_answers_with_its_citation_streams_and_is_found_by_tag() {
    let app = App::new().await;
    let sky = app
        .add(
            "sky.md",
            "# Why the sky is blue\n\nRayleigh scattering of sunlight by nitrogen and oxygen \
             molecules makes the daytime sky look blue.",
        )
        .await;
    app.add(
        "bread.md",
        "# Sourdough\n\nA sourdough starter is flour and water fermented by wild yeast.",
    )
    .await;
    wait_for_model(&app).await;

    let (status, session) =
        app.post("/api/v1/sessions", &json!({"name": "Physics", "document_ids": [sky]})).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    assert!(session["model"].is_string(), "the loaded model is the default: {session}");

    let uri = format!("/api/v1/sessions/{id}/messages");
    let (status, reply) =
        app.post(&uri, &say("Why is the sky blue? Explain scattering.", 24)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(!reply["assistant_message"]["content"].as_str().unwrap().trim().is_empty());
    let citations = reply["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{reply}");
    assert!(citations.iter().all(|c| c["document_id"] == sky.as_str()), "{reply}");
    assert_eq!(citations[0]["filename"], "sky.md");
    let chunk = citations[0]["chunk_id"].as_str().unwrap();
    let (status, _) = app.get(&format!("/api/v1/documents/chunks/{chunk}")).await;
    assert_eq!(status, StatusCode::OK);
    let metadata = &reply["assistant_message"]["metadata"];
    assert!(metadata["usage"]["completion_tokens"].as_u64().unwrap() <= 24, "{metadata}");
    assert_eq!(metadata["backend"], "llama-cpp");
    assert!(metadata["prompt"]["prompt_tokens_estimate"].as_u64().unwrap() > 0);
    // One renderer: the budget counted the prompt llama.cpp rendered and was sent.
    assert_eq!(
        metadata["prompt"]["prompt_tokens_estimate"], metadata["usage"]["prompt_tokens"],
        "{metadata}"
    );

    // Tags appear after the first exchange and find the session.
    let (_, stored) = app.get(&format!("/api/v1/sessions/{id}")).await;
    let tags = stored["tags"].as_array().unwrap();
    assert!(!tags.is_empty(), "{stored}");
    let tag = tags[0].as_str().unwrap();
    let (_, found) = app.get(&format!("/api/v1/sessions?tag={}", tag.replace(' ', "%20"))).await;
    assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    let (_, found) = app.get("/api/v1/sessions?q=scattering").await;
    assert_eq!(found["total"], 1, "{found}");
    assert!(stored["last_activity_at"].as_str().unwrap() > stored["created_at"].as_str().unwrap());

    // Streaming: start, tokens, done, as server-sent events.
    let mut body = say("And at sunset?", 8);
    body["stream"] = json!(true);
    let request = Request::post(&uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec())
        .unwrap();
    let start = text.find("event: start").unwrap();
    let token = text.find("event: token").unwrap();
    let done = text.find("event: done").unwrap();
    assert!(start < token && token < done, "{text}");

    let (_, messages) = app.get(&format!("{uri}?limit=10")).await;
    assert_eq!(messages["total"], 4, "{messages}");
    let (status, hits) =
        app.get(&format!("/api/v1/sessions/{id}/memory/search?q=sky%20colour&top_k=2")).await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert!(!hits["hits"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn something_said_ten_exchanges_ago_is_recalled_and_delete_leaves_nothing() {
    let app = App::with(|config| {
        config.chat.history_messages = 4;
        config.chat.summarize = false;
        config.chat.top_k = 0;
    })
    .await;
    wait_for_model(&app).await;
    let (_, session) = app.post("/api/v1/sessions", &json!({})).await;
    let id = session["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/sessions/{id}/messages");
    let fact = "My cat is called Bartholomew and he loves tuna.";
    let (status, _) = app.post(&uri, &say(fact, 4)).await;
    assert_eq!(status, StatusCode::CREATED);
    for topic in
        ["rain", "snow", "wind", "fog", "hail", "sleet", "storms", "clouds", "heat", "frost"]
    {
        let (status, reply) = app.post(&uri, &say(&format!("Describe {topic} briefly."), 4)).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let (_, reply) = app.post(&uri, &say("What is my cat called?", 8)).await;
    let recalled: Vec<&str> =
        reply["recalled"].as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert!(recalled.contains(&fact), "recalled {recalled:?}");

    // Concurrent messages in one session are serialised and none is lost.
    let sends = (0..3).map(|n| {
        let app = &app;
        let uri = uri.clone();
        async move { app.post(&uri, &say(&format!("Quick question {n}"), 2)).await }
    });
    for (status, reply) in futures::future::join_all(sends).await {
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
    let (_, messages) = app.get(&format!("{uri}?limit=100")).await;
    let items = messages["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    for pair in items.chunks(2) {
        assert_eq!(pair[1]["metadata"]["reply_to"], pair[0]["id"]);
    }

    let request = Request::delete(format!("/api/v1/sessions/{id}")).body(Body::empty()).unwrap();
    let (status, _) = app.send(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/v1/sessions/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&uri).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, found) = app.get("/api/v1/sessions?q=Bartholomew").await;
    assert_eq!(found["total"], 0);
    // Its memory is gone too: another session recalling across sessions finds nothing.
    let (_, other) = app.post("/api/v1/sessions", &json!({})).await;
    let other_uri = format!("/api/v1/sessions/{}/messages", other["id"].as_str().unwrap());
    let mut ask = say("What is my cat called?", 2);
    ask["memory_all_sessions"] = json!(true);
    let (_, reply) = app.post(&other_uri, &ask).await;
    assert!(reply["recalled"].as_array().unwrap().is_empty(), "{reply}");
}

#[tokio::test]
async fn without_a_model_the_message_is_kept_and_the_answer_is_503() {
    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let (_, session) = app.post("/api/v1/sessions", &json!({"tags": ["Work"]})).await;
    assert_eq!(session["tags"], json!(["work"]));
    let id = session["id"].as_str().unwrap();
    let uri = format!("/api/v1/sessions/{id}/messages");
    let (status, body) = app.post(&uri, &json!({"content": "hello"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (_, messages) = app.get(&uri).await;
    assert_eq!(messages["total"], 1);
    // The kept message says why it has no answer.
    let error = &messages["items"][0]["metadata"]["error"];
    assert_eq!(error["code"], "unavailable", "{messages}");
    assert!(error["message"].as_str().unwrap().contains("no chat model"), "{messages}");

    // Bad input is a 4xx with a JSON body, never a 500.
    for (uri, body, expected) in [
        (uri.clone(), json!({"content": "  "}), StatusCode::BAD_REQUEST),
        (uri.clone(), json!({"content": "x", "bogus": 1}), StatusCode::BAD_REQUEST),
        (
            uri.clone(),
            json!({"content": "x", "settings": {"temperature": 9.0}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/sessions/{}/messages", ragd_core::SessionId::new()),
            json!({"content": "x"}),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/sessions".to_owned(), json!({"name": ""}), StatusCode::BAD_REQUEST),
        (
            "/api/v1/sessions".to_owned(),
            json!({"document_ids": [ragd_core::DocumentId::new()]}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, answer) = app.post(&uri, &body).await;
        assert_eq!(status, expected, "{uri} {body} -> {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let (status, _) = app.get("/api/v1/sessions?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/sessions/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn summarised_context_runs_on_the_real_model_and_is_cached() {
    let app = App::new().await;
    let sky = app
        .add(
            "sky.md",
            "# Why the sky is blue\n\nRayleigh scattering of sunlight by nitrogen and oxygen \
             molecules makes the daytime sky look blue. Sunsets look red because the light \
             crosses more air.",
        )
        .await;
    wait_for_model(&app).await;
    let (_, session) = app.post("/api/v1/sessions", &json!({"document_ids": [sky]})).await;
    let uri = format!("/api/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let mut body = say("Why is the sky blue?", 16);
    body["context_mode"] = json!("summaries");
    let (status, reply) = app.post(&uri, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let prompt = &reply["assistant_message"]["metadata"]["prompt"];
    assert_eq!(prompt["context_mode"], "summaries", "{prompt}");
    assert!(prompt["context_ms"].as_u64() > Some(0), "the summaries took time: {prompt}");
    assert_eq!(prompt["context_summaries_cached"], 0, "{prompt}");
    assert!(!reply["citations"].as_array().unwrap().is_empty(), "{reply}");

    let (status, again) = app.post(&uri, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let prompt = &again["assistant_message"]["metadata"]["prompt"];
    assert!(prompt["context_summaries_cached"].as_u64() >= Some(1), "{prompt}");

    let mut bad = say("Why?", 4);
    bad["context_mode"] = json!("paragraphs");
    let (status, answer) = app.post(&uri, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn a_whole_document_question_streams_progress_then_the_answer() {
    // A small window, so that the manual does not fit and is map-reduced.
    let app = App::with(|config| config.models.context_length = Some(1024)).await;
    let sections: Vec<String> = (1..=80)
        .map(|n| {
            format!("Section {n}. The pump must be checked every {n} days for leaks and noise.")
        })
        .collect();
    let manual = app.add("manual.md", &sections.join("\n\n")).await;
    wait_for_model(&app).await;
    let (_, session) = app.post("/api/v1/sessions", &json!({"document_ids": [manual]})).await;
    let uri = format!("/api/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let mut body = say("What is this manual about?", 12);
    body["context_mode"] = json!("document");
    body["stream"] = json!(true);
    let request = Request::post(&uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec())
        .unwrap();
    let position =
        |needle: &str| text.find(needle).unwrap_or_else(|| panic!("no {needle}: {text}"));
    let summarising = position("\"stage\":\"summarising\"");
    assert!(position("event: start") < summarising, "{text}");
    assert!(summarising < position("event: token"), "{text}");
    assert!(position("event: token") < position("event: done"), "{text}");
    // The last summarising event reports every part done.
    let last = text.rfind("\"stage\":\"summarising\"").unwrap();
    let event = &text[text[..last].rfind('{').unwrap()..];
    let event: Value = serde_json::from_str(&event[..=event.find('}').unwrap()]).unwrap();
    assert!(event["total"].as_u64() >= Some(2), "{event}");
    assert_eq!(event["done"], event["total"], "{event}");

    let (_, messages) = app.get(&uri).await;
    let reply = &messages["items"][1];
    assert_eq!(reply["metadata"]["prompt"]["context_mode"], "document", "{reply}");
    assert!(reply["metadata"]["prompt"]["context_ms"].as_u64() > Some(0), "{reply}");
}
