//! Re-embedding with another embedding model, on the built `ragd` and the two bundled
//! models (all-MiniLM-L6-v2 and paraphrase-MiniLM-L3-v2, both 384-dimensional, so only the
//! model id tells their vectors apart): the index is rebuilt in the background while search
//! keeps answering from the old one, the swap leaves one vector per chunk in the new tables
//! and none of the old ones, and a SIGKILL in the middle resumes at the next start.

use std::path::Path;
use std::time::{Duration, Instant};

use ragd_catalog::Catalog;
use ragd_core::DocumentStatus;
use serde_json::{Value, json};

use crate::crash::{
    BOUNDARY, Server, assert_one_vector_per_chunk_in, document, multipart, wait_ready,
};

const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";
const PARAPHRASE: &str = "sentence-transformers/paraphrase-MiniLM-L3-v2";
const PARAPHRASE_ENV: [(&str, &str); 1] = [("RAGD_EMBEDDING__MODEL_ID", PARAPHRASE)];

struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { runtime, http: reqwest::Client::new() }
    }

    fn get(&self, server: &Server, path: &str) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = self.http.get(server.url(path)).send().await.unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    }

    fn post(&self, server: &Server, path: &str, body: &Value) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = self.http.post(server.url(path)).json(body).send().await.unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    }

    /// Uploads `files` and waits until all are ready; returns their ids.
    fn upload(&self, server: &Server, files: &[(String, String)]) -> Vec<String> {
        let upload: Value = self.runtime.block_on(async {
            let response = self
                .http
                .post(server.url("/api/v1/documents"))
                .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                .body(multipart(files))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 202);
            response.json().await.unwrap()
        });
        let ids: Vec<String> = upload["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|doc| doc["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), files.len(), "{upload}");
        for id in &ids {
            wait_ready(server, &self.http, &self.runtime, id);
        }
        ids
    }

    /// Waits until the index is `ready` with `model` active; returns the status.
    fn wait_active(&self, server: &Server, model: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (code, status) = self.get(server, "/api/v1/index/status");
            assert_eq!(code, 200, "{status}");
            assert!(status["error"].is_null(), "{status}");
            if status["state"] == "ready"
                && status["active"]["model_id"] == model
                && status["running"] == false
            {
                return status;
            }
            assert!(Instant::now() < deadline, "the re-embed did not finish: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Semantic hits for `text`: (chunk id, score).
    fn semantic(&self, server: &Server, text: &str) -> Vec<(String, f64)> {
        let (code, body) =
            self.post(server, "/api/v1/search/semantic", &json!({"query": text, "top_k": 5}));
        assert_eq!(code, 200, "{body}");
        let hits = body["hits"].as_array().unwrap();
        assert!(!hits.is_empty(), "{body}");
        hits.iter()
            .map(|hit| {
                (hit["chunk_id"].as_str().unwrap().to_owned(), hit["score"].as_f64().unwrap())
            })
            .collect()
    }
}

fn files(count: usize) -> Vec<(String, String)> {
    (0..count).map(|seed| (format!("doc{seed}.txt"), document(seed))).collect()
}

/// The catalog's ready documents, after the server stopped.
fn ready_documents(data: &Path) -> (Catalog, Vec<ragd_core::Document>) {
    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let ready = catalog.documents_with_status(&[DocumentStatus::Ready]).unwrap();
    (catalog, ready)
}

#[test]
fn a_changed_embedding_model_is_rebuilt_in_the_background_and_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = Client::new();

    let server = Server::start(&data, dir.path());
    client.upload(&server, &files(3));
    let status = client.wait_active(&server, MINILM);
    assert_eq!(status["active"]["generation"], 0, "{status}");
    let before = client.semantic(&server, "the copper lantern by the harbour");

    // A re-embed by hand (same model) runs in the background; a second one is refused.
    let (code, started) = client.post(&server, "/api/v1/index/reembed", &json!({}));
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["state"], "building", "{started}");
    assert_eq!(started["building"]["target"]["generation"], 1, "{started}");
    // (The first one runs until its old tables are dropped, so this comes well before.)
    let (code, refused) = client.post(&server, "/api/v1/index/reembed", &json!({}));
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict", "{refused}");
    let status = client.wait_active(&server, MINILM);
    let chunks = status["last_build"]["chunks"].as_u64().unwrap();
    assert!(chunks > 20, "{status}");
    // The same model gives the same ranking.
    let again = client.semantic(&server, "the copper lantern by the harbour");
    let ids = |hits: &[(String, f64)]| hits.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&before));
    let generation = status["active"]["generation"].as_u64().unwrap();
    server.stop();

    // Restart with the other bundled model: same dimension, so only the model id tells the
    // indexes apart. The old index answers until the new one is swapped in.
    let server = Server::start_with(&data, dir.path(), &PARAPHRASE_ENV);
    let (code, status) = client.get(&server, "/api/v1/index/status");
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["configured_model"], PARAPHRASE, "{status}");
    if status["state"] == "building" {
        assert_eq!(status["active"]["model_id"], MINILM, "{status}");
        assert_eq!(status["building"]["target"]["model_id"], PARAPHRASE, "{status}");
        client.semantic(&server, "the copper lantern by the harbour");
    }
    let status = client.wait_active(&server, PARAPHRASE);
    let new_generation = status["active"]["generation"].as_u64().unwrap();
    assert!(new_generation > generation, "{status}");
    let after = client.semantic(&server, "the copper lantern by the harbour");
    let scores = |hits: &[(String, f64)]| hits.iter().map(|h| h.1).collect::<Vec<_>>();
    assert_ne!(scores(&after), scores(&before), "the new model scores differently");

    // Uploads after the swap are embedded with the new model only.
    client.upload(&server, &[("late.txt".to_owned(), document(7))]);
    server.stop();

    let (catalog, ready) = ready_documents(&data);
    assert_eq!(ready.len(), 4);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let new_generation = u32::try_from(new_generation).unwrap();
    runtime.block_on(assert_one_vector_per_chunk_in(
        &data,
        &catalog,
        &ready,
        PARAPHRASE,
        new_generation,
    ));
    let tables: Vec<String> = std::fs::read_dir(data.join("lance"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        tables.len(),
        2,
        "only the active generation's chunks and memory tables remain: {tables:?}"
    );
}

#[test]
fn sigkill_mid_reembed_resumes_at_the_next_start_and_never_serves_a_half_built_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = Client::new();

    let server = Server::start(&data, dir.path());
    client.upload(&server, &files(4));
    let query = "the meadow and its neighbours";
    let before = client.semantic(&server, query);
    server.stop();

    // Start the rebuild with the other model and kill the server half way.
    let server = Server::start_with(&data, dir.path(), &PARAPHRASE_ENV);
    let deadline = Instant::now() + Duration::from_secs(300);
    let at_kill = loop {
        let (_, status) = client.get(&server, "/api/v1/index/status");
        let percent = status["building"]["percent"].as_u64().unwrap_or(0);
        if status["state"] == "building" && percent > 0 && percent < 90 {
            // Meanwhile queries are answered by the old model's index, unchanged.
            assert_eq!(client.semantic(&server, query), before, "{status}");
            break status;
        }
        assert_ne!(status["active"]["model_id"], PARAPHRASE, "finished before the kill: {status}");
        assert!(Instant::now() < deadline, "the re-embed made no progress: {status}");
        std::thread::sleep(Duration::from_millis(5));
    };
    server.kill();
    eprintln!("killed with SIGKILL at {}", at_kill["building"]);
    // The half-built generation is not active: the catalog still names the old one.
    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let generations = catalog.vector_generations().unwrap();
    let active: Vec<_> = generations
        .iter()
        .filter(|g| g.state == ragd_catalog::GenerationState::Active)
        .map(|g| g.model_id.as_str())
        .collect();
    assert_eq!(active, [MINILM]);
    drop(catalog);

    // The next start resumes the same generation and finishes it.
    let server = Server::start_with(&data, dir.path(), &PARAPHRASE_ENV);
    let status = client.wait_active(&server, PARAPHRASE);
    assert_eq!(
        status["active"]["generation"], at_kill["building"]["target"]["generation"],
        "the interrupted generation was resumed, not restarted: {status}"
    );
    let resumed = status["last_build"]["chunks"].as_u64().unwrap();
    let total = at_kill["building"]["total"].as_u64().unwrap();
    assert!(resumed < total, "the resumed run embedded only what was missing: {status}");
    client.semantic(&server, "the meadow and its neighbours");
    server.stop();

    let (catalog, ready) = ready_documents(&data);
    assert_eq!(ready.len(), 4);
    let generation = u32::try_from(status["active"]["generation"].as_u64().unwrap()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(assert_one_vector_per_chunk_in(&data, &catalog, &ready, PARAPHRASE, generation));
    assert!(!data.join("lance/chunks.lance").exists(), "the old generation was dropped");
}
