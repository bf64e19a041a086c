//! Hostile uploads against the whole server (router, real pipeline, SQLite, LanceDB, the
//! bundled embedder): each ends `failed` with a clear reason or is refused with a 4xx JSON
//! error, the server keeps serving, and nothing is left behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use http_body_util::BodyExt;
use ragd::AppState;
use serde_json::Value;
use tower::ServiceExt;

use crate::documents::assets_dir;
use crate::test_config;

#[path = "../../../../crates/ingest/tests/fixtures/hostile.rs"]
mod hostile_fixtures;

const BOUNDARY: &str = "ragd-hostile-boundary-93b1";

/// A router on a temp data dir that the test can inspect.
struct Harness {
    router: Router,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new(tweak: impl FnOnce(&mut ragd::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir.path().join("data"));
        config.assets_dir = assets_dir();
        tweak(&mut config);
        let router = ragd::api::router(AppState::open(config).await.unwrap());
        Self { router, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    /// Uploads files whose names are written into the part headers verbatim.
    async fn upload(&self, files: &[(&str, &[u8])]) -> (StatusCode, Value) {
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.send(multipart(Body::from(body))).await
    }

    async fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, doc) = self.get(&format!("/api/v1/documents/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{doc}");
            if doc["status"] == "ready" || doc["status"] == "failed" {
                return doc;
            }
            assert!(Instant::now() < deadline, "document {id} stuck: {doc}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every file under the temp dir, relative to it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }

    /// Waits until `data/uploads` is empty: workers of deleted documents may still be
    /// finishing an extraction (whose marker they remove when done).
    async fn wait_until_no_uploads(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.uploads().is_empty() {
            assert!(Instant::now() < deadline, "left behind: {:?}", self.uploads());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The files in `data/uploads`.
    fn uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data().join("uploads"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn multipart(body: Body) -> Request<Body> {
    Request::post("/api/v1/documents")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .unwrap()
}

fn committed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("../../fixtures/docs/hostile").join(name)).unwrap()
}

fn ids(upload: &Value) -> Vec<String> {
    upload["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn hostile_documents_fail_with_reasons_and_the_server_keeps_serving() {
    let h = Harness::new(|c| {
        c.ingest.max_extracted_bytes = 8 << 20;
        c.ingest.extract_timeout_secs = 2;
    })
    .await;
    let failing = [
        ("bomb.docx", committed("bomb.docx"), "ingest.max_extracted_bytes"),
        ("giga-bomb.docx", hostile_fixtures::zip_bomb_docx(1 << 30), "ingest.max_extracted_bytes"),
        ("self-drawing-form.pdf", committed("self-drawing-form.pdf"), "invokes itself"),
        ("parent-cycle.pdf", committed("parent-cycle.pdf"), "cycle"),
        // Refused before PDFium runs; without PDFium, pdf-extract would render until the
        // worker is killed at the deadline (the ingest crate's tests cover that path).
        ("exponential-forms.pdf", committed("exponential-forms.pdf"), "1000000 form XObjects"),
        ("flate-bomb.pdf", hostile_fixtures::flate_bomb_pdf(1 << 30), "compression bomb"),
    ];
    let files: Vec<(&str, &[u8])> =
        failing.iter().map(|(name, bytes, _)| (*name, bytes.as_slice())).collect();
    let (status, body) = h.upload(&files).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for ((name, _, reason), id) in failing.iter().zip(ids(&body)) {
        let doc = h.wait(&id).await;
        assert_eq!(doc["status"], "failed", "{name}: {doc}");
        let error = doc["error"].as_str().unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        let (_, chunks) = h.get(&format!("/api/v1/documents/{id}/chunks")).await;
        assert_eq!(chunks["total"], 0, "{name}");
    }

    // Readable hostile text: deep HTML, invalid UTF-8 and late NUL bytes become clean text.
    let deep = hostile_fixtures::nested_divs(100_000);
    let readable = [
        ("nested-divs.html", deep.as_bytes().to_vec(), "Deep inside the nesting."),
        ("invalid-utf8.txt", committed("invalid-utf8.txt"), "valid words"),
        ("late-nul.txt", committed("late-nul.txt"), "zerobytesinside"),
    ];
    let files: Vec<(&str, &[u8])> =
        readable.iter().map(|(name, bytes, _)| (*name, bytes.as_slice())).collect();
    let (status, body) = h.upload(&files).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for ((name, _, expected), id) in readable.iter().zip(ids(&body)) {
        let doc = h.wait(&id).await;
        assert_eq!(doc["status"], "ready", "{name}: {doc}");
        let (_, text) = h.get(&format!("/api/v1/documents/{id}/text")).await;
        let text = text["text"].as_str().unwrap();
        assert!(text.contains(expected) && !text.contains('\0'), "{name}: {text:.200}");
    }

    // NUL bytes at the start are binary: refused up front.
    let (status, body) = h.upload(&[("nul.txt", b"\0\0\0binary")]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    assert_eq!(h.get("/health").await.0, StatusCode::OK);
    let (_, list) = h.get("/api/v1/documents").await;
    assert_eq!(list["total"], 9);
    // Stored uploads (named by sha256) only: no partial uploads or extraction markers.
    assert!(h.uploads().iter().all(|name| name.len() == 64 && !name.starts_with('.')));
    assert_eq!(h.uploads().len(), 9);
}

#[tokio::test]
async fn file_names_cannot_escape_the_uploads_directory() {
    let h = Harness::new(|_| {}).await;
    let names = [
        ("../../etc/passwd", "passwd"),
        ("/etc/hostname", "hostname"),
        ("..\\\\..\\\\windows\\\\win.ini", "win.ini"),
        ("../../../../../../../../tmp/ragd-escape.txt", "ragd-escape.txt"),
        ("..", "upload"),
    ];
    for (index, (name, stored)) in names.iter().enumerate() {
        let content = format!("File number {index} tries to escape with the name {name}.");
        let (status, body) = h.upload(&[(name, content.as_bytes())]).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        assert_eq!(body["documents"][0]["filename"], *stored, "{name}");
        let doc = h.wait(body["documents"][0]["id"].as_str().unwrap()).await;
        assert_eq!(doc["filename"], *stored);
        assert_eq!(doc["status"], "ready", "{doc}");
    }
    // A NUL in the part header is not a valid header: a 4xx JSON error, nothing stored.
    let (status, body) = h.upload(&[("evil\0.txt", b"text with a NUL in its name")]).await;
    if status.is_success() {
        let stored = body["documents"][0]["filename"].as_str().unwrap();
        assert!(!stored.contains('\0'), "{stored:?}");
    } else {
        assert!(status.is_client_error(), "{status} {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }

    // Everything written lies under data/, uploads only under data/uploads, by sha256.
    for file in h.files() {
        assert!(file.starts_with("data/"), "{file} written outside the data dir");
        if let Some(upload) = file.strip_prefix("data/uploads/") {
            assert!(upload.len() == 64 && upload.bytes().all(|b| b.is_ascii_hexdigit()), "{file}");
        }
    }
    assert!(!Path::new("/tmp/ragd-escape.txt").exists());
}

/// The resident memory of this process, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test]
async fn a_one_gigabyte_upload_streams_to_413_without_buffering() {
    const LIMIT: u64 = 32 << 20;
    const TOTAL: u64 = 1 << 30;
    const PIECE: usize = 256 * 1024;
    let h = Harness::new(|c| c.ingest.max_upload_bytes = LIMIT).await;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"huge.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let piece = Bytes::from(vec![b'a'; PIECE]);
    let pieces = TOTAL / PIECE as u64;
    let parts = std::iter::once(Bytes::from(head))
        .chain((0..pieces).map(move |_| piece.clone()))
        .chain(std::iter::once(Bytes::from(tail)));
    // Each piece is "not ready yet" once, as a socket would be between packets: multer
    // reads everything that is ready in one go, so an always-ready stream would be read
    // into its buffer whole before the handler sees a byte.
    let body = futures::stream::unfold(parts, |mut parts| async move {
        tokio::task::yield_now().await;
        parts.next().map(|piece| (piece, parts))
    })
    .map(move |piece| {
        counter.fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(piece)
    });

    let before = rss_bytes();
    let started = Instant::now();
    let (status, body) = h.send(multipart(Body::from_stream(body))).await;
    let after = rss_bytes();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let read = pulled.load(Ordering::Relaxed);
    assert!(read < LIMIT + 4 * PIECE as u64, "read {read} bytes of a {TOTAL}-byte body");
    // The bytes pulled from the body are the bound on what could have been buffered. RSS
    // is only reported: tests in this binary run in parallel (loading models), so its
    // growth here is not this request's alone.
    if let (Some(before), Some(after)) = (before, after) {
        eprintln!(
            "1 GiB upload: 413 after reading {} MiB in {:?}; process RSS {} -> {} MiB",
            read >> 20,
            started.elapsed(),
            before >> 20,
            after >> 20
        );
    }
    assert!(h.uploads().is_empty(), "the partial upload is removed: {:?}", h.uploads());
    assert_eq!(h.get("/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn too_many_files_in_one_upload_are_refused_and_nothing_is_kept() {
    let h = Harness::new(|c| c.ingest.max_files_per_upload = 3).await;
    let texts: Vec<String> =
        (0..5).map(|i| format!("Upload number {i} among too many files.")).collect();
    let files: Vec<(String, &[u8])> =
        texts.iter().enumerate().map(|(i, t)| (format!("f{i}.txt"), t.as_bytes())).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let (status, body) = h.upload(&files).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at most 3"), "{message}");
    let (_, list) = h.get("/api/v1/documents").await;
    assert_eq!(list["total"], 0, "{list}");
    h.wait_until_no_uploads().await;

    // A file over the size limit refuses the whole request too, files before it included.
    let small = Harness::new(|c| c.ingest.max_upload_bytes = 1000).await;
    let big = vec![b'b'; 5000];
    let (status, body) =
        small.upload(&[("ok.txt", b"A small file before a big one."), ("big.txt", &big)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(small.get("/api/v1/documents").await.1["total"], 0);
    small.wait_until_no_uploads().await;

    let (status, body) = h.upload(&files[..3]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "exactly the limit is fine: {body}");
}

#[tokio::test]
async fn a_wrong_field_after_a_good_file_refuses_the_upload_and_keeps_nothing() {
    let h = Harness::new(|_| {}).await;
    let mut body = Vec::new();
    for (field, name, text) in [
        ("files", "good.txt", "A good file that comes first in the form."),
        ("file", "typo.txt", "A file in a field with the wrong name."),
    ] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
                 Content-Type: text/plain\r\n\r\n{text}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let (status, reply) = h.send(multipart(Body::from(body))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("\"file\""), "{reply}");
    // The good file queued before the wrong field is removed again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = h.get("/api/v1/documents").await;
        if list["total"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the refused upload left {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.wait_until_no_uploads().await;
}

#[tokio::test]
async fn a_document_with_too_many_chunks_fails_with_the_limit_named() {
    let h = Harness::new(|c| c.ingest.max_chunks_per_document = 2).await;
    let text = "Every sentence here adds to the number of chunks of this document. ".repeat(100);
    let (status, body) = h.upload(&[("long.txt", text.as_bytes())]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = h.wait(&ids(&body)[0]).await;
    assert_eq!(doc["status"], "failed");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("max_chunks_per_document (2)"), "{error}");
}

#[tokio::test]
async fn documents_past_the_memory_limit_fail_and_only_their_worker_dies() {
    let h = Harness::new(|c| c.ingest.extract_memory_bytes = 16 << 20).await;
    // 24 MB cannot even be read into the worker: a clean refusal.
    let huge = "word ".repeat(24 << 20 >> 2);
    // 10 MB is read, but decoding and normalising copy it past 16 MiB: the allocation
    // fails, the worker aborts, and the server reports its signal and last words.
    let large = "word ".repeat(10 << 20 >> 2);
    let (status, body) =
        h.upload(&[("huge.txt", huge.as_bytes()), ("large.txt", large.as_bytes())]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let uploaded = ids(&body);
    let doc = h.wait(&uploaded[0]).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("does not fit the extraction worker's memory limit"), "{error}");
    let doc = h.wait(&uploaded[1]).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("killed by signal 6 (SIGABRT): memory allocation of"), "{error}");
    assert!(error.contains("ingest.extract_memory_bytes"), "{error}");

    // The server is unharmed and the next document goes through a worker to `ready`.
    let (status, body) = h.upload(&[("after.md", b"# After\nThe server still reads files.")]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = h.wait(&ids(&body)[0]).await;
    assert_eq!(doc["status"], "ready", "{doc}");
}

#[tokio::test]
async fn json_bodies_past_the_limit_get_413_while_uploads_keep_their_own_limit() {
    let h = Harness::new(|c| c.server.max_json_body_bytes = 4096).await;
    let search = |query: String| {
        Request::post("/api/v1/search/keyword")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::json!({ "query": query }).to_string()))
            .unwrap()
    };
    let (status, body) = h.send(search("x".repeat(8192))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    let (status, body) = h.send(search("sky".to_owned())).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A session message is JSON too.
    let (status, body) = h
        .send(
            Request::post("/api/v1/sessions")
                .header("content-type", "application/json")
                .body(Body::from(format!(r#"{{"name": "{}"}}"#, "n".repeat(8192))))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A 64 KiB upload is far past the JSON limit and still accepted.
    let text = "Uploads are bounded per file, not by the JSON limit. ".repeat(1300);
    let (status, body) = h.upload(&[("big.txt", text.as_bytes())]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
