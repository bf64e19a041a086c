//! `/api/v1/search` end to end with the real components: documents uploaded through the API,
//! chunked with the real tokenizer, embedded by the bundled ONNX model, stored in LanceDB
//! and SQLite FTS5, then searched in every mode.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::documents::App;

fn hits_filenames(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["filename"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_mode_finds_what_it_should_and_filters_hold() {
    let app = App::new().await;
    let cats =
        app.add("cats.txt", "Cats are small domesticated carnivores that purr when content.").await;
    let _cars = app
        .add(
            "cars.txt",
            "The turbocharged engine delivers 300 horsepower through a six-speed gearbox.",
        )
        .await;
    let _code =
        app.add("codes.txt", "Fault code ZX-4417 is raised when the coolant valve sticks.").await;

    // Keyword: the exact rare term.
    let (status, body) =
        app.post("/api/v1/search/keyword", &json!({"query": "ZX-4417", "top_k": 3})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hits_filenames(&body)[0], "codes.txt");
    assert!(body["hits"][0]["snippet"].as_str().unwrap().contains("<mark>"));

    // Semantic: a paraphrase sharing no content word.
    let (status, body) =
        app.post("/api/v1/search/semantic", &json!({"query": "feline pets", "top_k": 3})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hits_filenames(&body)[0], "cats.txt", "{body}");
    let top = &body["hits"][0];
    assert!(top["score"].as_f64().unwrap() > 0.2);
    // Hits are addressable by id.
    let chunk_id = top["chunk_id"].as_str().unwrap();
    let (status, chunk) = app
        .send(
            Request::get(format!("/api/v1/documents/chunks/{chunk_id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chunk["text"], top["text"]);

    // Hybrid with a document filter: only that document comes back.
    let (status, body) = app
        .post(
            "/api/v1/search/hybrid",
            &json!({"query": "engine horsepower", "top_k": 5, "document_ids": [cats]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(hits_filenames(&body).iter().all(|f| f == "cats.txt"), "{body}");
}

#[tokio::test]
async fn bad_search_requests_are_4xx() {
    let app = App::new().await;
    for (uri, body) in [
        ("/api/v1/search/keyword", json!({"query": ""})),
        ("/api/v1/search/keyword", json!({"query": "a", "top_k": 0})),
        ("/api/v1/search/semantic", json!({"query": "a", "top_k": 1000})),
        ("/api/v1/search/hybrid", json!({"query": "a", "weights": {"keyword": -1}})),
        ("/api/v1/search/hybrid", json!({"query": "a", "colour": "red"})),
        ("/api/v1/search/keyword", json!({"text": "wrong field"})),
    ] {
        let (status, response) = app.post(uri, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body} -> {response}");
        assert!(response["error"]["code"].is_string());
    }
    // FTS5 syntax from users is text, never a 500.
    for query in ["\"unbalanced", "NEAR(a b", "a OR", "col:x", "*", "^start"] {
        let (status, body) = app.post("/api/v1/search/keyword", &json!({"query": query})).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{query}: {status} {body}"
        );
    }
}

fn hits_filenames_or_empty(status: StatusCode, body: &Value) -> Vec<String> {
    if status == StatusCode::OK {
        hits_filenames(body).into_iter().take(3).collect()
    } else {
        Vec::new()
    }
}

fn reciprocal_rank(filenames: &[String], relevant: &str) -> f64 {
    let wanted = format!("{relevant}.txt");
    filenames.iter().position(|f| *f == wanted).map_or(0.0, |p| 1.0 / (p as f64 + 1.0))
}

#[tokio::test]
async fn hybrid_beats_keyword_and_semantic_on_the_labelled_set() {
    let set: Value = serde_json::from_slice(
        &std::fs::read(Path::new("../../").join("fixtures/search/labelled.json")).unwrap(),
    )
    .unwrap();
    let app = App::new().await;
    for passage in set["passages"].as_array().unwrap() {
        let name = format!("{}.txt", passage["id"].as_str().unwrap());
        app.add(&name, passage["text"].as_str().unwrap()).await;
    }
    let queries = set["queries"].as_array().unwrap();
    let mut mrr: HashMap<&str, f64> = HashMap::new();
    for mode in ["keyword", "semantic", "hybrid"] {
        let mut total = 0.0;
        for q in queries {
            let (status, body) = app
                .post(&format!("/api/v1/search/{mode}"), &json!({"query": q["query"], "top_k": 10}))
                .await;
            let rr = if status == StatusCode::OK {
                reciprocal_rank(&hits_filenames(&body), q["relevant"].as_str().unwrap())
            } else {
                0.0
            };
            eprintln!(
                "{mode:>8} rr={rr:.2} {:?} -> {:?}",
                q["query"],
                hits_filenames_or_empty(status, &body)
            );
            total += rr;
        }
        mrr.insert(mode, total / queries.len() as f64);
    }
    eprintln!("MRR@10 on fixtures/search/labelled.json: {mrr:?}");
    assert!(mrr["hybrid"] > mrr["keyword"], "{mrr:?}");
    assert!(mrr["hybrid"] > mrr["semantic"], "{mrr:?}");
}

#[tokio::test]
async fn hybrid_reranks_with_the_bundled_model_and_explains_each_hit() {
    let app = App::with(|config| config.rerank.model = "bundled".to_owned()).await;
    app.add("paris.txt", "Paris is the capital and largest city of France.").await;
    app.add("bananas.txt", "Bananas are a yellow fruit that grows in tropical climates.").await;
    app.add("spiders.txt", "Spiders have eight legs, while insects have six.").await;
    let query = "What is the capital of France?";

    // Not asked for and not on by default: the fused order, no rerank score.
    let (status, plain) =
        app.post("/api/v1/search/hybrid", &json!({"query": query, "top_k": 3})).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    for hit in plain["hits"].as_array().unwrap() {
        assert!(hit["rerank_score"].is_null(), "{hit}");
        assert_eq!(hit["fused_score"], hit["score"], "{hit}");
    }

    let (status, body) = app
        .post("/api/v1/search/hybrid", &json!({"query": query, "top_k": 3, "rerank": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "{body}");
    let rerank: Vec<f64> = hits.iter().map(|h| h["rerank_score"].as_f64().unwrap()).collect();
    assert!(rerank.windows(2).all(|w| w[0] >= w[1]), "in rerank order: {rerank:?}");
    for hit in hits {
        assert_eq!(hit["score"], hit["rerank_score"], "{hit}");
        assert!(hit["fused_score"].as_f64().unwrap() > 0.0, "{hit}");
        assert!(hit["keyword_rank"].is_u64() || hit["semantic_rank"].is_u64(), "{hit}");
    }
    assert_eq!(hits[0]["filename"], "paris.txt", "{body}");

    // Naming a candidate count asks for reranking; out of range is a 400 naming it.
    let (status, body) = app
        .post("/api/v1/search/hybrid", &json!({"query": query, "top_k": 1, "rerank_candidates": 2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["hits"][0]["rerank_score"].is_f64(), "{body}");
    for bad in [0, 201] {
        for rerank in [true, false] {
            let body = json!({"query": query, "rerank_candidates": bad, "rerank": rerank});
            let (status, answer) = app.post("/api/v1/search/hybrid", &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains("rerank_candidates"));
        }
    }
}

#[tokio::test]
async fn a_rerank_candidate_count_out_of_range_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::test_config(&dir.path().join("data"));
    config.rerank.candidates = 0;
    let err = ragd_engine::Engine::open(config.engine_config()).await.unwrap_err();
    assert!(err.to_string().contains("rerank.candidates"), "{err}");
}

#[tokio::test]
async fn reranking_without_a_reranker_is_unavailable_and_the_default_follows_the_config() {
    let app = App::new().await;
    app.add("paris.txt", "Paris is the capital and largest city of France.").await;
    let (status, body) = app
        .post("/api/v1/search/hybrid", &json!({"query": "capital of France", "rerank": true}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no reranker"), "{body}");

    let app = App::with(|config| {
        config.rerank.model = "bundled".to_owned();
        config.rerank.by_default = true;
    })
    .await;
    app.add("paris.txt", "Paris is the capital and largest city of France.").await;
    let (status, body) =
        app.post("/api/v1/search/hybrid", &json!({"query": "capital of France"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["hits"][0]["rerank_score"].is_f64(), "reranked by default: {body}");
    let (_, body) = app
        .post("/api/v1/search/hybrid", &json!({"query": "capital of France", "rerank": false}))
        .await;
    assert!(body["hits"][0]["rerank_score"].is_null(), "turned off per request: {body}");
}
