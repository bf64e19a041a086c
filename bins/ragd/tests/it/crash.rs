//! Crash safety: the built `ragd` is killed with SIGKILL while documents are embedding,
//! restarted on the same data dir, and every acknowledged (202) document must reach
//! `ready` with the chunk count of a clean ingest, with exactly one vector per chunk in
//! LanceDB (no orphans either way). The same holds for a document whose content is being
//! replaced (`PUT .../content`) when the kill comes, and for a `ragd sync` killed midway and
//! run again on a folder that changed meanwhile.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ragd_catalog::{Catalog, DocumentQuery};
use ragd_core::{Document, DocumentStatus, TableName};
use ragd_vector_store::{LanceStore, LanceStoreConfig};
use serde_json::Value;

use crate::documents::assets_dir;
use crate::listening_address;

pub(crate) const BOUNDARY: &str = "ragd-crash-boundary-41d7";

/// Settings that make embedding take a while (many small chunks, small batches), shared by
/// the killed server, its restart and the clean reference ingest.
const ENV: [(&str, &str); 5] = [
    ("RAGD_INGEST__CHUNK_MAX_TOKENS", "48"),
    ("RAGD_INGEST__CHUNK_OVERLAP_TOKENS", "8"),
    ("RAGD_INGEST__EMBED_BATCH_SIZE", "4"),
    ("RAGD_MODELS__AUTOLOAD", "none"),
    ("RAGD_LOG__FILTER", "info"),
];

fn ragd(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ragd"));
    command
        .args(args)
        .current_dir(cwd)
        .env("RAGD_ASSETS_DIR", assets_dir())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .envs(ENV);
    command
}

/// A running `ragd serve` and its address.
pub(crate) struct Server {
    child: Child,
    addr: String,
}

impl Server {
    pub(crate) fn start(data: &Path, cwd: &Path) -> Self {
        Self::start_with(data, cwd, &[])
    }

    /// [`Server::start`] with more environment variables (configuration overrides).
    pub(crate) fn start_with(data: &Path, cwd: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = ragd(
            &["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", data.to_str().unwrap()],
            cwd,
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let stderr = child.stderr.take().unwrap();
        let addr = listening_address(stderr, Duration::from_secs(60));
        Self { child, addr }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(self) {
        self.stop_within(Duration::from_secs(30));
    }

    /// SIGTERM and wait for the exit, at most `limit`; returns how long it took.
    pub(crate) fn stop_within(mut self, limit: Duration) -> Duration {
        let pid = self.child.id().to_string();
        let started = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        while self.child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < limit, "ragd did not stop within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A long text, different for each `seed`: many chunks to embed.
pub(crate) fn document(seed: usize) -> String {
    let words = ["river", "orchard", "lantern", "harbour", "meadow", "signal", "copper", "glacier"];
    (0..400)
        .map(|i| {
            let word = words[(i * 7 + seed) % words.len()];
            format!("Document {seed} sentence {i} speaks of the {word} and its {i} neighbours. ")
        })
        .collect()
}

pub(crate) fn multipart(files: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, text) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: text/plain\r\n\r\n{text}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Chunk counts by file name after a clean `ragd ingest` of the same files.
fn clean_chunk_counts(files: &[(String, String)], dir: &Path) -> BTreeMap<String, u64> {
    let docs = dir.join("clean-docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in files {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let data = dir.join("clean-data");
    let out = ragd(&["ingest", docs.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    chunk_counts(&Catalog::open(&data.join("ragd.sqlite3")).unwrap())
}

fn chunk_counts(catalog: &Catalog) -> BTreeMap<String, u64> {
    let query = DocumentQuery { limit: 100, ..DocumentQuery::default() };
    catalog
        .list_documents(&query)
        .unwrap()
        .items
        .into_iter()
        .map(|doc| (doc.filename, catalog.count_chunks(Some(doc.id)).unwrap()))
        .collect()
}

/// Each of `documents` has exactly one vector per chunk in the LanceDB of `data`, and the
/// store and the catalog hold no chunk or vector of any other document.
async fn assert_one_vector_per_chunk(data: &Path, catalog: &Catalog, documents: &[Document]) {
    let model = "sentence-transformers/all-MiniLM-L6-v2";
    assert_one_vector_per_chunk_in(data, catalog, documents, model, 0).await;
}

/// [`assert_one_vector_per_chunk`] in the tables of `generation`, built with `model`
/// (opening them with another model fails).
pub(crate) async fn assert_one_vector_per_chunk_in(
    data: &Path,
    catalog: &Catalog,
    documents: &[Document],
    model: &str,
    generation: u32,
) {
    let uri = data.join("lance").to_string_lossy().into_owned();
    let config = LanceStoreConfig::new(uri, model, 384).with_generation(generation);
    let store = LanceStore::open(config).await.unwrap();
    let mut all_chunks = 0;
    for doc in documents {
        let chunks: HashSet<_> = catalog
            .list_chunks(doc.id, 10_000, 0)
            .unwrap()
            .items
            .iter()
            .map(|chunk| *chunk.id.as_uuid())
            .collect();
        let vectors: HashSet<_> =
            store.ids_for_document(doc.id).await.unwrap().into_iter().collect();
        assert_eq!(vectors, chunks, "{}: vectors and chunks differ", doc.filename);
        all_chunks += chunks.len() as u64;
    }
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), all_chunks, "orphan vectors");
    assert_eq!(catalog.count_chunks(None).unwrap(), all_chunks, "orphan chunk rows");
}

#[test]
fn sigkill_mid_embedding_loses_no_acknowledged_document_and_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let files: Vec<(String, String)> =
        (0..4).map(|seed| (format!("doc{seed}.txt"), document(seed))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();

    let server = Server::start(&data, dir.path());
    let (status, upload): (u16, Value) = runtime.block_on(async {
        let response = client
            .post(server.url("/api/v1/documents"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(multipart(&files))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    });
    assert_eq!(status, 202, "{upload}");
    let acknowledged: Vec<String> = upload["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acknowledged.len(), files.len());

    // Kill as soon as a document is embedding with some progress made.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let list: Value = runtime.block_on(async {
            let url = server.url("/api/v1/documents?limit=100");
            client.get(url).send().await.unwrap().json().await.unwrap()
        });
        let docs = list["items"].as_array().unwrap().clone();
        let embedding = docs
            .iter()
            .any(|doc| doc["status"] == "embedding" && doc["progress"].as_u64().unwrap_or(0) > 0);
        if embedding {
            break docs;
        }
        assert!(
            docs.iter().any(|doc| doc["status"] != "ready"),
            "every document was ready before the kill; make the documents longer"
        );
        assert!(Instant::now() < deadline, "no document reached embedding: {list}");
        std::thread::sleep(Duration::from_millis(10));
    };
    server.kill();
    let states: Vec<String> = at_kill
        .iter()
        .map(|doc| format!("{}:{}@{}", doc["filename"], doc["status"], doc["progress"]))
        .collect();
    eprintln!("killed with SIGKILL while documents were {states:?}");

    // Restart on the same data dir: every acknowledged document finishes.
    let server = Server::start(&data, dir.path());
    let deadline = Instant::now() + Duration::from_secs(300);
    for id in &acknowledged {
        loop {
            let doc = get_document(&server, &client, &runtime, id);
            if doc["status"] == "ready" {
                break;
            }
            assert_ne!(doc["status"], "failed", "{doc}");
            assert!(Instant::now() < deadline, "document {id} did not finish: {doc}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    server.stop();

    // Same chunks as a clean ingest of the same files.
    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let counts = chunk_counts(&catalog);
    assert_eq!(counts, clean_chunk_counts(&files, dir.path()));
    assert!(counts.values().all(|&count| count > 20), "{counts:?}");
    let ready = catalog.documents_with_status(&[DocumentStatus::Ready]).unwrap();
    assert_eq!(ready.len(), files.len());

    // Exactly one vector per chunk: none missing, none orphaned by the killed run.
    runtime.block_on(assert_one_vector_per_chunk(&data, &catalog, &ready));
    // No partial uploads or extraction markers left in the uploads directory.
    for entry in std::fs::read_dir(data.join("uploads")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name} left behind");
    }
}

/// `GET /api/v1/documents/{id}`.
fn get_document(
    server: &Server,
    client: &reqwest::Client,
    runtime: &tokio::runtime::Runtime,
    id: &str,
) -> Value {
    runtime.block_on(async {
        let url = server.url(&format!("/api/v1/documents/{id}"));
        client.get(url).send().await.unwrap().json().await.unwrap()
    })
}

/// `POST /api/v1/documents` with `files`; the answer's JSON.
fn upload(
    server: &Server,
    client: &reqwest::Client,
    runtime: &tokio::runtime::Runtime,
    files: &[(String, String)],
) -> Value {
    runtime.block_on(async {
        let response = client
            .post(server.url("/api/v1/documents"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(multipart(files))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    })
}

/// Waits until document `id` is `ready` (a `failed` ends the wait with a panic).
pub(crate) fn wait_ready(
    server: &Server,
    client: &reqwest::Client,
    runtime: &tokio::runtime::Runtime,
    id: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let doc = get_document(server, client, runtime, id);
        if doc["status"] == "ready" {
            return doc;
        }
        assert_ne!(doc["status"], "failed", "{doc}");
        assert!(Instant::now() < deadline, "document {id} did not finish: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_mid_replacement_keeps_the_document_and_one_vector_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let old = document(0);
    // Half the old text, half new: some chunks could keep their vectors, most are embedded.
    let half: String = old.split_inclusive(". ").take(150).collect();
    let new = format!("{half}{}", document(5));

    let server = Server::start(&data, dir.path());
    let upload: Value =
        upload(&server, &client, &runtime, &[("notes.txt".to_owned(), old.clone())]);
    let id = upload["documents"][0]["id"].as_str().unwrap().to_owned();
    let before = wait_ready(&server, &client, &runtime, &id);

    // Replace in the background (the answer waits for processing); kill mid-embedding.
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n{new}\r\n--{BOUNDARY}--\r\n"
    );
    let url = server.url(&format!("/api/v1/documents/{id}/content"));
    let put = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // The connection dies with the server; its answer does not matter.
            let _ = reqwest::Client::new()
                .put(url)
                .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                .body(body)
                .send()
                .await;
        });
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = get_document(&server, &client, &runtime, &id);
        if doc["status"] == "embedding" && doc["progress"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            doc["status"] != "ready" || doc["sha256"] == before["sha256"],
            "done before the kill: {doc}"
        );
        assert!(Instant::now() < deadline, "the replacement never reached embedding: {doc}");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    put.join().unwrap();

    // Restarted, the same document finishes with the new content.
    let server = Server::start(&data, dir.path());
    let after = wait_ready(&server, &client, &runtime, &id);
    server.stop();
    assert_ne!(after["sha256"], before["sha256"], "{after}");

    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    assert_eq!(catalog.count_documents().unwrap(), 1);
    let doc_id = id.parse().unwrap();
    assert!(catalog.document_text(doc_id, None).unwrap().contains("Document 5 sentence"));
    let clean = clean_chunk_counts(&[("notes.txt".to_owned(), new)], dir.path());
    assert_eq!(chunk_counts(&catalog), clean);
    let document = catalog.get_document(doc_id).unwrap();
    runtime.block_on(assert_one_vector_per_chunk(&data, &catalog, &[document]));
    // Only the new file is stored.
    let stored: Vec<String> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored, vec![after["sha256"].as_str().unwrap().to_owned()], "{stored:?}");
}

#[test]
fn sigkill_mid_sync_then_a_second_sync_matches_the_folder_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let folder = dir.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    for seed in 0..5 {
        std::fs::write(folder.join(format!("doc{seed}.txt")), document(seed)).unwrap();
    }
    let sync_args = ["sync", folder.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];

    // Kill the first sync while a document is embedding.
    let mut child =
        ragd(&sync_args, dir.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let embedding = Catalog::open(&data.join("ragd.sqlite3"))
            .and_then(|catalog| catalog.documents_with_status(&[DocumentStatus::Embedding]))
            .is_ok_and(|docs| !docs.is_empty());
        if embedding {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sync finished before the kill");
        assert!(Instant::now() < deadline, "no document reached embedding");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The folder changes before the next run: one file edited, one deleted, one added.
    std::fs::write(folder.join("doc1.txt"), document(11)).unwrap();
    std::fs::remove_file(folder.join("doc2.txt")).unwrap();
    std::fs::write(folder.join("doc5.txt"), document(5)).unwrap();
    let out = ragd(&sync_args, dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let again = ragd(&sync_args, dir.path()).output().unwrap();
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("nothing changed: 5 files up to date"), "{again}");

    // The store holds exactly the folder: the chunks of a clean ingest, one vector each, and
    // only the current files' uploads.
    let files: Vec<(String, String)> = [0, 1, 3, 4, 5]
        .iter()
        .map(|&n| {
            let name = format!("doc{n}.txt");
            let text = std::fs::read_to_string(folder.join(&name)).unwrap();
            (name, text)
        })
        .collect();
    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    assert_eq!(chunk_counts(&catalog), clean_chunk_counts(&files, dir.path()));
    let ready = catalog.documents_with_status(&[DocumentStatus::Ready]).unwrap();
    assert_eq!(ready.len(), files.len(), "{ready:?}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(assert_one_vector_per_chunk(&data, &catalog, &ready));
    let mut stored: Vec<String> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    let mut expected: Vec<String> = ready.iter().map(|doc| doc.sha256.clone()).collect();
    expected.sort();
    assert_eq!(stored, expected, "uploads left behind or missing");
}

#[test]
fn sigterm_while_a_large_text_is_chunking_stops_within_five_seconds_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    // About 12 MB: chunking takes tens of seconds in the test build.
    let text: String = (0..200_000)
        .map(|i| format!("Line {i} of the ledger names the harbour, the copper and {i} ships.\n"))
        .collect();
    let files = [("ledger.txt".to_owned(), text)];

    let server = Server::start(&data, dir.path());
    let upload: Value = upload(&server, &client, &runtime, &files);
    let id = upload["documents"][0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = get_document(&server, &client, &runtime, &id);
        if doc["status"] == "chunking" && doc["progress"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            doc["status"] != "ready" && doc["status"] != "embedding",
            "chunked too soon: {doc}"
        );
        assert!(Instant::now() < deadline, "chunking never reported progress: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = server.stop_within(Duration::from_secs(5));
    eprintln!("stopped {took:?} after SIGTERM, mid-chunking");

    // Nothing half-written: no chunks stored, and the next start takes the document up again.
    let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    assert_eq!(catalog.count_chunks(None).unwrap(), 0);
    drop(catalog);
    let server = Server::start(&data, dir.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = get_document(&server, &client, &runtime, &id);
        if doc["status"] == "chunking" && doc["progress"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert_ne!(doc["status"], "failed", "{doc}");
        assert!(Instant::now() < deadline, "the document was not resumed: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop_within(Duration::from_secs(5));
}
