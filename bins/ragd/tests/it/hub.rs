//! Hugging Face hub downloads through ragd, from a loopback hub: a chat model loaded over
//! the HTTP API with `downloading` progress in its status, and the embedding model named by
//! repo id.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use ragd_test_utils::FakeHub;
use serde_json::{Value, json};

use crate::documents::{App, assets_dir};
use crate::test_config;

const REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn asset(path: &str) -> Vec<u8> {
    std::fs::read(assets_dir().join(path)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_model_loads_over_the_api_with_download_progress_in_the_status() {
    let gguf = asset(ragd_core::assets::CHAT_MODEL.path);
    let size = gguf.len() as u64;
    let hub = FakeHub::start().await;
    hub.add_file(REPO, FILE, gguf, true);
    hub.set_chunk_delay(Some(Duration::from_millis(1)));
    let cache = tempfile::tempdir().unwrap();
    let (endpoint, cache_dir) = (hub.endpoint().to_owned(), cache.path().to_path_buf());
    let app = App::with(move |config| {
        config.models.autoload = "none".to_owned();
        config.models.hf_cache_dir = Some(cache_dir);
        config.hub.endpoint = endpoint;
    })
    .await;
    let load = "/api/v1/models/load";

    for (body, expected) in [
        (json!({"backend": "local"}), "is required"),
        (
            json!({"backend": "local", "model": "x", "hub": {"repo": REPO, "file": FILE}}),
            "not both",
        ),
        (
            json!({"backend": "local", "hub": {"repo": "../up", "file": FILE}}),
            "invalid hub reference",
        ),
        (json!({"backend": "local", "hub": {"repo": REPO, "file": "README.md"}}), "not a GGUF"),
    ] {
        let (status, answer) = app.post(load, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }

    let (status, answer) =
        app.post(load, &json!({"backend": "local", "hub": {"repo": REPO, "file": FILE}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["state"], "loading");
    assert_eq!(answer["model"]["model"], format!("{REPO}/{FILE}"));

    let deadline = Instant::now() + Duration::from_secs(300);
    let mut states: Vec<String> = Vec::new();
    let mut downloading: Vec<Value> = Vec::new();
    let last = loop {
        let (status, body) = app.get("/api/v1/models/status").await;
        assert_eq!(status, StatusCode::OK);
        let state = body["state"].as_str().unwrap().to_owned();
        if state == "downloading" {
            downloading.push(body.clone());
        }
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "loaded" || state == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(last["state"], "loaded", "{last}");
    assert_eq!(states.first().map(String::as_str), Some("loading"));
    assert!(states.contains(&"downloading".to_owned()), "{states:?}");
    assert!(
        downloading.iter().any(|b| b["percent"].as_u64().is_some_and(|p| p > 0 && p < 100)),
        "{downloading:?}"
    );
    assert!(downloading.iter().all(|b| b["total_bytes"] == size), "{:?}", downloading.last());
    assert!(downloading.iter().all(|b| b["model"]["model"] == format!("{REPO}/{FILE}")));
    assert_eq!(last["model"]["model_id"], "SmolLM2-135M-Instruct.Q4_1");

    let (_, available) = app.get("/api/v1/models/available").await;
    let listed = available["models"].as_array().unwrap();
    let entry = listed.iter().find(|m| m["id"] == format!("{REPO}/{FILE}")).unwrap();
    assert_eq!(entry["source"], "hf_cache");
    assert_eq!(entry["revision"], hub.commit(REPO));
}

fn hub_config(data: &Path, hub: &FakeHub, cache: &Path) -> ragd::Config {
    let mut config = test_config(data);
    config.assets_dir = assets_dir();
    config.embedding.model_id = "test-org/minilm-copy".to_owned();
    config.models.hf_cache_dir = Some(cache.to_path_buf());
    config.hub.endpoint = hub.endpoint().to_owned();
    config
}

#[tokio::test]
async fn the_embedding_model_comes_from_the_hub_by_repo_id() {
    let hub = FakeHub::start().await;
    let repo = "test-org/minilm-copy";
    hub.add_file(repo, "onnx/model.onnx", asset(ragd_core::assets::EMBEDDING_MODEL.path), true);
    hub.add_file(repo, "tokenizer.json", asset(ragd_core::assets::EMBEDDING_TOKENIZER.path), false);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");

    // Offline with an empty cache: the server still starts, without the embedder, and the
    // hub is never asked.
    let mut offline = hub_config(&dir.path().join("offline"), &hub, &cache);
    offline.hub.offline = true;
    let engine = ragd_engine::Engine::open(offline.engine_config()).await.unwrap();
    assert!(engine.embedder().is_none());
    let health = engine.health().borrow().clone();
    assert_eq!(health.status, ragd_engine::HealthStatus::Degraded);
    let embedder = health.component("embedder").unwrap();
    assert!(!embedder.available && embedder.detail.contains("offline"), "{embedder:?}");
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());

    let config = hub_config(&dir.path().join("data"), &hub, &cache);
    let engine = ragd_engine::Engine::open(config.engine_config()).await.unwrap();
    let embedder = engine.embedder().expect("the hub model loads");
    assert_eq!(embedder.model_id(), repo);
    assert_eq!(embedder.embed_query("hello world".to_owned()).await.unwrap().len(), 384);
    let snapshot = cache.join("models--test-org--minilm-copy/snapshots").join(hub.commit(repo));
    assert!(snapshot.join("onnx/model.onnx").is_symlink());
    assert!(snapshot.join("tokenizer.json").is_file());

    // Started again, it reads the cache and asks the hub nothing.
    hub.clear_requests();
    let config = hub_config(&dir.path().join("again"), &hub, &cache);
    let engine = ragd_engine::Engine::open(config.engine_config()).await.unwrap();
    assert!(engine.embedder().is_some());
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[tokio::test]
async fn the_reranker_comes_from_the_hub_by_file_reference() {
    let hub = FakeHub::start().await;
    let repo = "test-org/reranker-gguf";
    hub.add_file(repo, "judge.gguf", asset(ragd_core::assets::CHAT_MODEL.path), true);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let mut config = hub_config(&dir.path().join("data"), &hub, &cache);
    config.embedding.model_id = "sentence-transformers/all-MiniLM-L6-v2".to_owned();
    config.rerank.model = format!("{repo}/judge.gguf");

    let engine = ragd_engine::Engine::open(config.engine_config()).await.unwrap();
    assert_eq!(engine.search().reranker_model(), Some("judge"));
    let snapshot = cache.join("models--test-org--reranker-gguf/snapshots").join(hub.commit(repo));
    assert!(snapshot.join("judge.gguf").is_symlink());

    // A reference to a file the hub does not have leaves search without a reranker.
    config.rerank.model = format!("{repo}/missing.gguf");
    let config = ragd::Config { data_dir: dir.path().join("other"), ..config };
    let engine = ragd_engine::Engine::open(config.engine_config()).await.unwrap();
    assert_eq!(engine.search().reranker_model(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hugging_face_folder_loads_over_the_api_with_import_progress_and_chats() {
    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let folder = assets_dir().join(ragd_core::assets::CHAT_MODEL_HF.path);
    let folder = folder.to_str().unwrap();
    let load = "/api/v1/models/load";
    let (status, answer) =
        app.post(load, &json!({"backend": "local", "model": folder, "quantization": "q3_x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("q3_x"), "{answer}");

    let body = json!({"backend": "local", "model": folder, "quantization": "q4_k_m"});
    let (status, answer) = app.post(load, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut states: Vec<String> = Vec::new();
    let mut percents: Vec<(String, u64)> = Vec::new();
    let last = loop {
        let (status, body) = app.get("/api/v1/models/status").await;
        assert_eq!(status, StatusCode::OK);
        let state = body["state"].as_str().unwrap().to_owned();
        if let Some(percent) = body["percent"].as_u64() {
            percents.push((state.clone(), percent));
        }
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "loaded" || state == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "{states:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(last["state"], "loaded", "{last}");
    let position = |name: &str| states.iter().position(|s| s == name).unwrap_or(usize::MAX);
    assert!(position("converting") < position("quantizing"), "{states:?}");
    assert!(position("quantizing") < states.len() - 1, "{states:?}");
    assert!(percents.iter().any(|(s, p)| s == "converting" && *p > 0 && *p < 100), "{percents:?}");
    assert_eq!(last["model"]["quantization"], "q4_k_m", "{last}");
    assert_eq!(last["model"]["imported_from"], folder, "{last}");

    let (status, reply) = app
        .post(
            "/v1/chat/completions",
            &json!({
                "model": last["model"]["model_id"],
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 16,
                "temperature": 0
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Paris"), "{text}");

    let (_, available) = app.get("/api/v1/models/available").await;
    let listed = available["models"].as_array().unwrap();
    let imported = listed
        .iter()
        .find(|m| m["id"].as_str().is_some_and(|id| id.starts_with("imported/")))
        .unwrap_or_else(|| panic!("{available}"));
    assert!(imported["id"].as_str().unwrap().ends_with("-q4_k_m.gguf"), "{imported}");
}
