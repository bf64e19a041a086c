//! Document metadata over the API on the real models and stores: given at upload, patched,
//! listed with a filter, and filters on search, session replies and RAG completions that
//! narrow what is searched before ranking (not the top k after it), with clear 400s.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::chat::wait_for_model;
use crate::collections::hit_documents;
use crate::documents::App;

const BOUNDARY: &str = "ragd-metadata-boundary-51f0";

/// Uploads `files` with a `metadata` form field holding `metadata` (raw text).
async fn upload_with_metadata(
    app: &App,
    files: &[(&str, &str)],
    metadata: &str,
) -> (StatusCode, Value) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{metadata}\r\n"
    );
    for (name, text) in files {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
             Content-Type: text/markdown\r\n\r\n{text}\r\n"
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    let request = Request::post("/api/v1/documents")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

#[tokio::test]
async fn metadata_filters_narrow_search_and_chat_before_ranking() {
    let app = App::new().await;
    // Five documents that match the query well, without metadata...
    for n in 0..5 {
        let text =
            format!("# Apples {n}\n\nApple orchards grow apples; apple harvest number {n}.\n");
        app.add(&format!("apples-{n}.md"), &text).await;
    }
    // ...and one that matches it weakly, in German, given metadata at upload.
    let weak = "# Obst\n\nIm Garten steht ein Baum; manchmal auch ein apple.\n";
    let (status, upload) = upload_with_metadata(
        &app,
        &[("obst.md", weak)],
        r#"{"lang": "de", "year": 2021, "reviewed": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{upload}");
    let german = upload["documents"][0]["id"].as_str().unwrap().to_owned();
    let doc = app.wait(&german).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["metadata"], json!({"lang": "de", "year": 2021.0, "reviewed": true}));

    // Unfiltered, the top hit is one of the strong documents; filtered, the German one is
    // found even with top_k 1: the filter narrows before ranking.
    for mode in ["keyword", "semantic", "hybrid"] {
        let query = json!({"query": "apple orchards apples harvest", "top_k": 1});
        let (_, all) = app.post(&format!("/api/v1/search/{mode}"), &query).await;
        assert_ne!(hit_documents(&all), vec![german.clone()], "{mode}: {all}");
        let mut filtered = query.clone();
        filtered["filter"] = json!({"lang": "de", "year": {"gte": 2020}});
        let (status, hits) = app.post(&format!("/api/v1/search/{mode}"), &filtered).await;
        assert_eq!(status, StatusCode::OK, "{mode}: {hits}");
        assert_eq!(hit_documents(&hits), vec![german.clone()], "{mode}: {hits}");
        filtered["filter"] = json!({"lang": "fr"});
        let (_, none) = app.post(&format!("/api/v1/search/{mode}"), &filtered).await;
        assert!(hit_documents(&none).is_empty(), "{mode}: {none}");
    }
    let bad = json!({"query": "apple", "filter": {"year": {"between": [1, 2]}}});
    let (status, body) = app.post("/api/v1/search/hybrid", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("\"between\""), "{body}");

    // Patch: set, retype and remove keys; list by filter.
    let patch = Request::patch(format!("/api/v1/documents/{german}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"metadata": {"year": "2021", "reviewed": null, "team": "it"}}).to_string(),
        ))
        .unwrap();
    let (status, patched) = app.send(patch).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"], json!({"lang": "de", "year": "2021", "team": "it"}));
    let (status, listed) = app.get("/api/v1/documents?filter=%7B%22team%22%3A%22it%22%7D").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], german.as_str());
    let (status, body) = app.get("/api/v1/documents?filter=notjson").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let bad_patch = Request::patch(format!("/api/v1/documents/{german}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"metadata": {"nested": {"a": 1}}}).to_string()))
        .unwrap();
    let (status, body) = app.send(bad_patch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = upload_with_metadata(&app, &[("x.md", "# X\n\nx text\n")], "[1, 2]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Bodies are bounded: a huge PATCH is 413 (JSON limit), a huge metadata field too.
    let huge = format!(r#"{{"metadata": {{"k": "{}"}}}}"#, "x".repeat(2 * 1024 * 1024));
    let request = Request::patch(format!("/api/v1/documents/{german}"))
        .header("content-type", "application/json")
        .body(Body::from(huge))
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let big = format!(r#"{{"k": "{}"}}"#, "x".repeat(100 * 1024));
    let (status, body) = upload_with_metadata(&app, &[("y.md", "# Y\n\ny text\n")], &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A session reply and a RAG completion cite only documents the filter lets through.
    wait_for_model(&app).await;
    let (_, session) = app.post("/api/v1/sessions", &json!({"name": "fruit"})).await;
    let sid = session["id"].as_str().unwrap();
    let ask = json!({
        "content": "Tell me about apple orchards.",
        "settings": {"max_new_tokens": 4},
        "filter": {"team": "it"},
    });
    let (status, reply) = app.post(&format!("/api/v1/sessions/{sid}/messages"), &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let cited: Vec<&str> = reply["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(cited, vec![german.as_str()], "{reply}");
    let completion = json!({
        "model": "ragd",
        "messages": [{"role": "user", "content": "Tell me about apple orchards."}],
        "max_tokens": 4,
        "ragd": {"filter": {"lang": {"in": ["de"]}}},
    });
    let (status, answer) = app.post("/v1/chat/completions", &completion).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let cited: Vec<&str> = answer["ragd"]["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(cited, vec![german.as_str()], "{answer}");
}
