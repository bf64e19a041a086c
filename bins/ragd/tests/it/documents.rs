//! `/api/v1/documents` over the real pipeline: SQLite in a temp dir, the real tokenizer,
//! real fixture files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ragd::AppState;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::test_config;

const BOUNDARY: &str = "ragd-test-boundary-5f1c";

pub(crate) use ragd_test_utils::assets_dir;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("../../").join("fixtures/docs").join(name)).unwrap()
}

pub(crate) struct App {
    router: Router,
    _dir: tempfile::TempDir,
}

impl App {
    pub(crate) async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub(crate) async fn with(tweak: impl FnOnce(&mut ragd::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(&dir.path().join("data"));
        config.assets_dir = assets_dir();
        tweak(&mut config);
        Self { router: ragd::api::router(AppState::open(config).await.unwrap()), _dir: dir }
    }

    /// The router, for requests whose answer is not JSON.
    pub(crate) fn router(&self) -> Router {
        self.router.clone()
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, body)
    }

    pub(crate) async fn post(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub(crate) async fn patch(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        let request = Request::patch(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub(crate) async fn delete(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::delete(uri).body(Body::empty()).unwrap()).await
    }

    /// Uploads `text` as `name`, waits until it is ready and returns the document id.
    pub(crate) async fn add(&self, name: &str, text: &str) -> String {
        let (status, body) = self.upload(&[(name, text.as_bytes())]).await;
        assert!(status.is_success(), "{status} {body}");
        let id = id_of(&body, 0);
        let doc = self.wait(&id).await;
        assert_eq!(doc["status"], "ready", "{name}: {doc}");
        id
    }

    pub(crate) async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub(crate) async fn upload(&self, files: &[(&str, &[u8])]) -> (StatusCode, Value) {
        self.upload_to("/api/v1/documents", files).await
    }

    /// Uploads `files` to `uri` (`/api/v1/documents?collection=...`, say).
    pub(crate) async fn upload_to(
        &self,
        uri: &str,
        files: &[(&str, &[u8])],
    ) -> (StatusCode, Value) {
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = Request::post(uri)
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// Polls the document until it is `ready` or `failed`.
    pub(crate) async fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
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
}

fn id_of(upload: &Value, index: usize) -> String {
    upload["documents"][index]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn upload_process_and_read_back_by_id() {
    let app = App::new().await;
    let (status, body) = app
        .upload(&[
            ("handbook.md", &fixture("handbook.md")),
            ("two-pages.pdf", &fixture("two-pages.pdf")),
        ])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let docs = body["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["filename"], "handbook.md");
    assert_eq!(docs[0]["status_url"], format!("/api/v1/documents/{}", id_of(&body, 0)));

    for index in 0..2 {
        let id = id_of(&body, index);
        let doc = app.wait(&id).await;
        assert_eq!(doc["status"], "ready", "{doc}");
        assert_eq!(doc["progress"], 100);

        let (status, page) = app.get(&format!("/api/v1/documents/{id}/chunks?limit=2")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page["total"].as_u64().unwrap() >= 1);
        // The document counts its chunks, and its vectors in the index once ready; a list
        // counts chunks only.
        assert_eq!(doc["chunk_count"], page["total"], "{doc}");
        assert_eq!(doc["vector_count"], page["total"], "{doc}");
        let (_, listed) = app
            .get(&format!("/api/v1/documents?filename={}", doc["filename"].as_str().unwrap()))
            .await;
        assert_eq!(listed["items"][0]["chunk_count"], page["total"], "{listed}");
        assert!(listed["items"][0]["vector_count"].is_null(), "{listed}");
        let chunk = &page["items"][0];
        // A chunk's offsets address the same text in the document's text.
        let (start, end) =
            (chunk["char_start"].as_u64().unwrap(), chunk["char_end"].as_u64().unwrap());
        let (status, text) =
            app.get(&format!("/api/v1/documents/{id}/text?start={start}&end={end}")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(text["text"], chunk["text"]);
        // An open end reads to the end of the text; a start past it is a 400.
        let (_, whole) = app.get(&format!("/api/v1/documents/{id}/text")).await;
        let whole = whole["text"].as_str().unwrap().to_owned();
        let (status, tail) = app.get(&format!("/api/v1/documents/{id}/text?start={start}")).await;
        assert_eq!(status, StatusCode::OK, "{tail}");
        let expected: String = whole.chars().skip(usize::try_from(start).unwrap()).collect();
        assert_eq!(tail["text"], expected.as_str());
        let past = whole.chars().count() + 1;
        // An end past the text stops at the end (a reader asking for "the first 200 000
        // chars" gets the whole text of a shorter document).
        let (status, head) = app
            .get(&format!("/api/v1/documents/{id}/text?start={start}&end={}", past + 100_000))
            .await;
        assert_eq!(status, StatusCode::OK, "{head}");
        assert_eq!(head["text"], expected.as_str());
        let (status, body) = app.get(&format!("/api/v1/documents/{id}/text?start={past}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("past the end"), "{body}");
        // And the chunk can be fetched by its own id.
        let chunk_id = chunk["id"].as_str().unwrap();
        let (status, by_id) = app.get(&format!("/api/v1/documents/chunks/{chunk_id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(by_id["text"], chunk["text"]);
    }
    let (_, pdf_chunks) = app.get(&format!("/api/v1/documents/{}/chunks", id_of(&body, 1))).await;
    assert_eq!(pdf_chunks["items"][0]["page"], 1);
}

#[tokio::test]
async fn spreadsheets_and_office_tables_are_chunked_row_by_row_under_their_header() {
    let app = App::new().await;
    let files = ["workbook.xlsx", "workbook.ods", "tables-pandoc.docx", "prices.csv"];
    let bytes: Vec<Vec<u8>> = files.iter().map(|name| fixture(name)).collect();
    let upload: Vec<(&str, &[u8])> =
        files.iter().zip(&bytes).map(|(name, bytes)| (*name, bytes.as_slice())).collect();
    let (status, body) = app.upload(&upload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut chunks = Vec::new();
    for (index, name) in files.iter().enumerate() {
        let id = id_of(&body, index);
        let doc = app.wait(&id).await;
        assert_eq!(doc["status"], "ready", "{name}: {doc}");
        let (_, page) = app.get(&format!("/api/v1/documents/{id}/chunks?limit=100")).await;
        chunks.push(page["items"].as_array().unwrap().clone());
    }
    // Both workbooks: each sheet a table under its name, dates and numbers as written.
    for sheets in &chunks[..2] {
        let inventory = sheets.iter().find(|c| c["text"].as_str().unwrap().contains("Brass hinge"));
        let inventory = inventory.unwrap();
        assert_eq!(inventory["heading"], "Inventory", "{inventory}");
        let text = inventory["text"].as_str().unwrap();
        assert!(text.contains("| Part | Count | Checked |\n| --- | --- | --- |"), "{text}");
        assert!(text.contains("| Brass hinge | 40 | 2026-03-14 |"), "{text}");
        assert!(text.contains("| Oak panel \\| large | 2.5 | 2026-04-01 |"), "{text}");
        let suppliers = sheets.iter().find(|c| c["text"].as_str().unwrap().contains("Fenwick"));
        assert_eq!(suppliers.unwrap()["heading"], "Suppliers");
    }
    // The DOCX pandoc wrote (with `w:val="true"` booleans): its tables as Markdown tables.
    let docx: String = chunks[2].iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert!(docx.contains("| 09:30 | 10:05 | Tern | Bicycles free |"), "{docx}");
    let crossing = chunks[2].iter().find(|c| c["text"].as_str().unwrap().contains("Tern")).unwrap();
    assert_eq!(crossing["heading"], "Harbour timetable > Crossings");
    // A semicolon-separated CSV with quoted fields and a line break inside one.
    let csv = chunks[3][0]["text"].as_str().unwrap();
    assert!(csv.starts_with("| Product | Price | Comment |\n| --- | --- | --- |\n"), "{csv}");
    assert!(csv.contains("| Tea; green | 3,20 | Loose leaf, 100 g |"), "{csv}");
    assert!(csv.contains("| Jam \"homemade\" | 4,00 | Strawberry and rhubarb |"), "{csv}");
    // Rows are found by keyword, and the hit names its sheet.
    let (status, hits) = app.post("/api/v1/search/keyword", &json!({"query": "brass hinge"})).await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    let first = &hits["hits"][0];
    assert!(first["filename"].as_str().unwrap().starts_with("workbook."), "{hits}");
    assert_eq!(first["heading"], "Inventory", "{hits}");
}

#[tokio::test]
async fn slides_books_mail_opendocument_text_and_scans_are_uploaded_and_read() {
    let app = App::new().await;
    let files = ["slides.pptx", "book.epub", "letter.eml", "tables.odt", "notice.png"];
    let bytes: Vec<Vec<u8>> = files.iter().map(|name| fixture(name)).collect();
    let upload: Vec<(&str, &[u8])> =
        files.iter().zip(&bytes).map(|(name, bytes)| (*name, bytes.as_slice())).collect();
    let (status, body) = app.upload(&upload).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mimes = [
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/epub+zip",
        "message/rfc822",
        "application/vnd.oasis.opendocument.text",
        "image/png",
    ];
    let mut texts = Vec::new();
    for (index, mime) in mimes.iter().enumerate() {
        let id = id_of(&body, index);
        let doc = app.wait(&id).await;
        assert_eq!(doc["status"], "ready", "{}: {doc}", files[index]);
        assert_eq!(doc["mime"], *mime, "{doc}");
        let (_, text) = app.get(&format!("/api/v1/documents/{id}/text")).await;
        texts.push(text["text"].as_str().unwrap().to_owned());
    }
    assert!(texts[0].contains("Notes: Mention the late frost in April."), "{}", texts[0]);
    assert!(texts[1].contains("# The Logbook"), "{}", texts[1]);
    assert!(texts[2].starts_with("From: Ada Quill <ada@example.org>"), "{}", texts[2]);
    assert!(texts[3].contains("| Single | 4.50 | 2.00 |"), "{}", texts[3]);
    // The scanned page, read by Tesseract.
    assert!(
        texts[4].contains("Notice to mariners") && texts[4].contains("green light"),
        "{}",
        texts[4]
    );
    // The slide's page and the mail's subject reach the chunks.
    let (_, chunks) = app.get(&format!("/api/v1/documents/{}/chunks", id_of(&body, 0))).await;
    let notes = chunks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"].as_str().unwrap().contains("late frost"))
        .unwrap();
    assert_eq!(
        (notes["page"].as_u64(), notes["heading"].as_str()),
        (Some(2), Some("Harvest figures"))
    );
}

#[tokio::test]
async fn a_pdf_with_a_scanned_page_is_read_through_pdfium_and_ocr() {
    let app = App::new().await;
    let (status, body) = app.upload(&[("scanned.pdf", &fixture("scanned.pdf"))]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = id_of(&body, 0);
    let doc = app.wait(&id).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    let (_, text) = app.get(&format!("/api/v1/documents/{id}/text")).await;
    let text = text["text"].as_str().unwrap();
    assert!(text.starts_with("Harbour office report\nTide tables"), "{text}");
    assert!(text.contains("green light"), "the scanned page was not read: {text}");
    // Both pages fit one chunk of the default size, which cites the page it starts on
    // (`crates/ingest/tests/ingest.rs` checks pages with smaller chunks).
    let (_, chunks) = app.get(&format!("/api/v1/documents/{id}/chunks")).await;
    let scanned = chunks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"].as_str().unwrap().contains("dredged"))
        .unwrap();
    assert_eq!(scanned["page"], 1, "{chunks}");
    let (_, document) = app.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(document["mime"], "application/pdf", "{document}");
    assert_eq!(document["warnings"], serde_json::json!([]), "{document}");

    // A language Tesseract lacks: the scan cannot be read, the text page is kept, and the
    // document says which page it left out.
    let app = App::with(|c| c.ingest.ocr_languages = "qqq".to_owned()).await;
    let (_, body) = app.upload(&[("scanned.pdf", &fixture("scanned.pdf"))]).await;
    let doc = app.wait(&id_of(&body, 0)).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    let warnings = doc["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{doc}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("page 2 was left empty: OCR failed (tesseract failed"),
        "{warning}"
    );
}

/// The regression corpus of real documents (`fixtures/ingest-corpus`, fetched by `cargo
/// xtask test` into `XTASK_CORPUS_DIR`) through the server and its extraction workers:
/// every file reaches `ready`, damaged PDFs that PDFium repairs included.
#[tokio::test]
async fn every_real_document_of_the_corpus_reaches_ready() {
    let files = ragd_test_utils::corpus_documents();
    assert!(files.len() >= 70, "the corpus has {} files", files.len());
    let app = App::new().await;
    let mut uploaded = Vec::new();
    for batch in files.chunks(8) {
        let contents: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(path).unwrap())
            })
            .collect();
        let parts: Vec<(&str, &[u8])> =
            contents.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())).collect();
        let (status, body) = app.upload(&parts).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        for (index, (name, _)) in contents.iter().enumerate() {
            uploaded.push((name.clone(), id_of(&body, index)));
        }
    }
    let mut failed = Vec::new();
    for (name, id) in &uploaded {
        let doc = app.wait(id).await;
        if doc["status"] != "ready" {
            failed.push(format!("{name}: {}", doc["error"]));
        }
    }
    assert!(failed.is_empty(), "real documents that did not reach ready: {failed:#?}");
}

#[tokio::test]
async fn a_second_upload_of_the_same_bytes_returns_the_existing_id() {
    let app = App::new().await;
    let (status, first) = app.upload(&[("menu.txt", &fixture("menu-utf8.txt"))]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, second) = app.upload(&[("menu-copy.txt", &fixture("menu-utf8.txt"))]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["documents"][0]["duplicate"], true);
    assert_eq!(id_of(&first, 0), id_of(&second, 0));
    let (_, list) = app.get("/api/v1/documents").await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn broken_files_fail_with_a_reason_and_the_server_keeps_serving() {
    let app = App::new().await;
    let (status, body) = app
        .upload(&[
            ("truncated.pdf", &fixture("truncated.pdf")),
            ("not-a-zip.docx", &fixture("not-a-zip.docx")),
        ])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for index in 0..2 {
        let doc = app.wait(&id_of(&body, index)).await;
        assert_eq!(doc["status"], "failed");
        assert!(!doc["error"].as_str().unwrap().is_empty());
    }
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok", "with the models every component works: {health}");
    let (status, _) = app.upload(&[("menu.txt", &fixture("menu-utf8.txt"))]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "uploads keep working after failures");
}

#[tokio::test]
async fn refused_uploads_get_clear_errors() {
    let app = App::new().await;
    let (status, body) = app.upload(&[("junk.bin", &fixture("junk.bin"))]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    let (status, body) = app.upload(&[("empty.txt", b"")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = app.upload(&[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // One good file and one bad: the good one is queued, the bad one carries its error.
    let (status, body) = app
        .upload(&[("menu.txt", &fixture("menu-utf8.txt")), ("junk.bin", &fixture("junk.bin"))])
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body["documents"][0]["error"].is_null());
    assert_eq!(body["documents"][1]["error"]["code"], "unsupported_media_type");

    let small = App::with(|c| c.ingest.max_upload_bytes = 100).await;
    let (status, body) = small.upload(&[("big.txt", &[b'a'; 500])]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    let request = Request::post("/api/v1/documents")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = app.send(request).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body["error"]["code"].is_string());
}

#[tokio::test]
async fn uploads_answer_503_without_the_tokenizer_asset() {
    let app = App::with(|c| c.assets_dir = PathBuf::from("/nonexistent")).await;
    let (status, body) = app.upload(&[("menu.txt", &fixture("menu-utf8.txt"))]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("cargo xtask assets"));
    assert_eq!(app.get("/api/v1/documents").await.0, StatusCode::OK, "reads still work");
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = App::new().await;
    let (_, body) = app
        .upload(&[
            ("menu.txt", &fixture("menu-utf8.txt")),
            ("handbook.md", &fixture("handbook.md")),
            ("guide.html", &fixture("guide.html")),
        ])
        .await;
    for index in 0..3 {
        app.wait(&id_of(&body, index)).await;
    }
    let (_, all) = app.get("/api/v1/documents?limit=2").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!((&all["limit"], &all["offset"]), (&Value::from(2), &Value::from(0)), "{all}");
    // One timestamp format on the wire: RFC 3339, UTC, milliseconds, `Z`.
    let created = all["items"][0]["created_at"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.as_bytes()[19] == b'.',
        "{created}"
    );
    let (_, rest) = app.get("/api/v1/documents?limit=2&offset=2").await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    let (_, md) = app.get("/api/v1/documents?mime=text/markdown").await;
    assert_eq!(md["total"], 1);
    let (_, named) = app.get("/api/v1/documents?filename=GUIDE&status=ready").await;
    assert_eq!(named["total"], 1);
    assert_eq!(named["items"][0]["filename"], "guide.html");

    let (status, body) = app.get("/api/v1/documents?status=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app.get("/api/v1/documents?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/v1/documents?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
}

#[tokio::test]
async fn delete_and_reindex() {
    let app = App::new().await;
    let (_, body) = app.upload(&[("handbook.md", &fixture("handbook.md"))]).await;
    let id = id_of(&body, 0);
    app.wait(&id).await;
    let (_, chunks) = app.get(&format!("/api/v1/documents/{id}/chunks")).await;
    let chunk_id = chunks["items"][0]["id"].as_str().unwrap().to_owned();

    let reindex =
        Request::post(format!("/api/v1/documents/{id}/reindex")).body(Body::empty()).unwrap();
    let (status, doc) = app.send(reindex).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let ready = app.wait(&id).await;
    assert_eq!(ready["status"], "ready");
    // A reindex leaves exactly one vector per chunk (the old ones are gone).
    assert_eq!(ready["vector_count"], ready["chunk_count"], "{ready}");
    assert!(ready["chunk_count"].as_u64() > Some(0), "{ready}");

    let delete = || Request::delete(format!("/api/v1/documents/{id}")).body(Body::empty()).unwrap();
    let (status, _) = app.send(delete()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/documents/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v1/documents/chunks/{chunk_id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.send(delete()).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_and_unknown_ids_are_4xx_json() {
    let app = App::new().await;
    let (status, body) = app.get("/api/v1/documents/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_input");
    let unknown = ragd_core::DocumentId::new();
    let (status, body) = app.get(&format!("/api/v1/documents/{unknown}/text")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.get(&format!("/api/v1/documents/{unknown}/chunks")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn start_up_removes_vectors_whose_chunk_or_message_is_gone() {
    use ragd_core::{EmbeddedRecord, SessionId, TableName, VectorStore};
    use ragd_vector_store::{LanceStore, LanceStoreConfig};

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir.path().join("data"));
    config.assets_dir = assets_dir();
    config.models.autoload = "none".to_owned();

    let engine = ragd_engine::Engine::open(config.engine_config()).await.unwrap();
    let path = std::env::current_dir().unwrap().join("../../fixtures/docs/handbook.md");
    let ingested = engine.documents().ingest_file(&path).await.unwrap();
    let document = engine
        .documents()
        .wait_until_done(ingested.document.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(document.status, ragd_core::DocumentStatus::Ready);
    drop(engine);

    // The tables as the engine stamped them, opened directly to plant and count rows.
    let lance = || async {
        let uri = config.engine_config().vector_store_uri();
        let store_config =
            LanceStoreConfig::new(uri, "sentence-transformers/all-MiniLM-L6-v2", 384);
        LanceStore::open(store_config).await.unwrap()
    };
    let store = lance().await;
    let chunks = store.count(TableName::Chunks).await.unwrap();
    assert!(chunks > 0);
    let orphan = |session_id| EmbeddedRecord {
        id: uuid::Uuid::now_v7(),
        document_id: None,
        session_id,
        vector: vec![0.1; 384],
    };
    store.upsert(TableName::Chunks, vec![orphan(None)]).await.unwrap();
    store.upsert(TableName::Memory, vec![orphan(Some(SessionId::new()))]).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), chunks + 1);
    drop(store);

    // Every verb opens the same engine, so each removes orphans at start.
    drop(AppState::open(config.clone()).await.unwrap());
    let store = lance().await;
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), chunks);
    assert_eq!(store.count(TableName::Memory).await.unwrap(), 0);
}

#[tokio::test]
async fn an_upload_declaring_more_than_all_files_may_carry_is_refused_unread() {
    let app = App::with(|config| {
        config.ingest.max_upload_bytes = 1000;
        config.ingest.max_files_per_upload = 2;
        config.models.autoload = "none".to_owned();
    })
    .await;
    let request = Request::post("/api/v1/documents")
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", (1u64 << 30).to_string())
        .body(Body::from("--x--\r\n"))
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
}

/// A Markdown document of `sections` sections, each long enough to be its own chunk; the
/// section named `changed` gets other words.
fn sectioned(sections: &[&str], changed: Option<&str>) -> String {
    let mut text = String::from("# Field notes\n\n");
    for name in sections {
        let topic = if Some(*name) == changed { "glaciers carving fjords" } else { name };
        text.push_str(&format!("## {name}\n\n"));
        for n in 0..40 {
            text.push_str(&format!("Observation {n} about {topic} in the {name} section. "));
        }
        text.push_str("\n\n");
    }
    text
}

async fn put_content(
    app: &App,
    id: &str,
    name: &str,
    bytes: &[u8],
    field: &str,
) -> (StatusCode, Value) {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
         Content-Type: text/markdown\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let request = Request::put(format!("/api/v1/documents/{id}/content"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

async fn chunk_ids(app: &App, id: &str) -> Vec<String> {
    let (_, chunks) = app.get(&format!("/api/v1/documents/{id}/chunks?limit=500")).await;
    chunks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn replacing_content_keeps_the_id_and_the_vectors_of_unchanged_chunks() {
    let app = App::new().await;
    let sections = ["herons", "otters", "beavers", "kingfishers"];
    let id = app.add("notes.md", &sectioned(&sections, None)).await;
    let (_, collection) = app.post("/api/v1/collections", &json!({"name": "field"})).await;
    let (status, _) =
        app.post("/api/v1/collections/field/documents", &json!({"document_ids": [id]})).await;
    assert_eq!(status, StatusCode::OK, "{collection}");
    let before = chunk_ids(&app, &id).await;
    assert!(before.len() >= 4, "one chunk per section at least: {before:?}");

    // One section changes: the others keep their chunk ids (and vectors).
    let new = sectioned(&sections, Some("otters"));
    let (status, replaced) = put_content(&app, &id, "notes-v2.md", new.as_bytes(), "file").await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["changed"], true);
    assert_eq!(replaced["document"]["id"], id.as_str());
    assert_eq!(replaced["document"]["status"], "ready", "{replaced}");
    assert_eq!(replaced["document"]["filename"], "notes-v2.md");
    let (kept, added, removed) = (
        replaced["chunks"]["kept"].as_u64().unwrap(),
        replaced["chunks"]["added"].as_u64().unwrap(),
        replaced["chunks"]["removed"].as_u64().unwrap(),
    );
    assert!(kept >= 2 && added >= 1 && removed >= 1, "{replaced}");
    let after = chunk_ids(&app, &id).await;
    assert_eq!(after.len() as u64, kept + added, "{replaced}");
    let still: Vec<&String> = after.iter().filter(|c| before.contains(c)).collect();
    assert_eq!(still.len() as u64, kept, "kept chunks keep their ids");
    for gone in before.iter().filter(|c| !after.contains(c)) {
        let (status, _) = app.get(&format!("/api/v1/documents/chunks/{gone}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // The new text is found by meaning and by word, the old one no longer by word; the
    // collection still holds the document.
    let (_, hits) = app
        .post("/api/v1/search/semantic", &json!({"query": "glaciers carving fjords", "top_k": 1}))
        .await;
    assert_eq!(hits["hits"][0]["document_id"], id.as_str(), "{hits}");
    let (_, old) = app.post("/api/v1/search/keyword", &json!({"query": "otters"})).await;
    assert!(
        old["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| !h["text"].as_str().unwrap().contains("about otters")),
        "{old}"
    );
    // A kept chunk is still found by meaning: its vector was kept with its id.
    let (_, unchanged) = app
        .post(
            "/api/v1/search/semantic",
            &json!({"query": "observation about kingfishers", "top_k": 1}),
        )
        .await;
    let found = unchanged["hits"][0]["chunk_id"].as_str().unwrap().to_owned();
    assert!(still.contains(&&found), "{unchanged}");
    let (_, field) = app.get("/api/v1/collections/field").await;
    assert_eq!(field["document_count"], 1);

    // The same bytes again change nothing; another document's bytes are refused.
    let (status, same) = put_content(&app, &id, "notes-v2.md", new.as_bytes(), "file").await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["changed"], false);
    assert_eq!(chunk_ids(&app, &id).await, after);
    let other = app.add("other.md", "# Other\n\nSomething else entirely.\n").await;
    let (status, body) = put_content(&app, &other, "dup.md", new.as_bytes(), "file").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&id), "{body}");
    // Bad requests.
    let unknown = uuid::Uuid::now_v7();
    let (status, _) = put_content(&app, &unknown.to_string(), "x.md", b"# X\n\nx\n", "file").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = put_content(&app, &id, "x.md", b"# X\n\nx\n", "files").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = put_content(&app, &id, "junk.bin", &fixture("junk.bin"), "file").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (_, doc) = app.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(doc["filename"], "notes-v2.md", "a refused replacement changes nothing: {doc}");

    // A replacement that fails leaves nothing of the old content searchable.
    let (status, failed) = put_content(&app, &id, "blank.txt", b"   \n\n   \n", "file").await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["document"]["status"], "failed", "{failed}");
    let (_, chunks) = app.get(&format!("/api/v1/documents/{id}/chunks")).await;
    assert_eq!(chunks["total"], 0, "{chunks}");
    let (status, _) = app.get(&format!("/api/v1/documents/{id}/text")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, hits) = app.post("/api/v1/search/keyword", &json!({"query": "kingfishers"})).await;
    assert!(hits["hits"].as_array().unwrap().is_empty(), "{hits}");
    let (_, hits) = app.post("/api/v1/search/semantic", &json!({"query": "kingfishers"})).await;
    assert!(
        hits["hits"].as_array().unwrap().iter().all(|h| h["document_id"] != id.as_str()),
        "{hits}"
    );
}

#[tokio::test]
async fn a_server_folder_syncs_over_the_api_only_inside_sync_dirs() {
    let outside = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("team");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("a.md"), "# A\n\nApples in the orchard.\n").unwrap();
    std::fs::write(folder.join("b.md"), "# B\n\nBoats on the river.\n").unwrap();
    let root = shared.path().to_path_buf();
    let app = App::with(move |config| config.server.sync_dirs = vec![root]).await;
    let sync = |folder: &std::path::Path| json!({"folder": folder, "collection": "Team"});

    let (status, body) = app.post("/api/v1/documents/sync", &sync(&folder)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    let changes: Vec<(&str, &str)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("a.md", "added"), ("b.md", "added")]);
    for item in body["items"].as_array().unwrap() {
        assert_eq!(app.wait(item["document_id"].as_str().unwrap()).await["status"], "ready");
    }
    let (status, team) = app.get("/api/v1/collections/Team").await;
    assert_eq!(status, StatusCode::OK, "the collection was created: {team}");
    assert_eq!(team["document_count"], 2);

    // Nothing changed: it says so. Then one file changes and one goes.
    let (_, again) = app.post("/api/v1/documents/sync", &sync(&folder)).await;
    assert_eq!(again["changed"], false, "{again}");
    std::fs::write(folder.join("a.md"), "# A\n\nApples and pears in the orchard.\n").unwrap();
    std::fs::remove_file(folder.join("b.md")).unwrap();
    let (status, body) = app.post("/api/v1/documents/sync", &sync(&folder)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let changes: Vec<&str> =
        body["items"].as_array().unwrap().iter().map(|i| i["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["updated", "removed"]);

    // Only inside server.sync_dirs, links and `..` resolved first.
    let escape = shared.path().join("team/../..");
    for folder in [outside.path(), escape.as_path(), std::path::Path::new("/nonexistent")] {
        let (status, body) = app.post("/api/v1/documents/sync", &sync(folder)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", folder.display());
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    let (status, _) = app.post("/api/v1/documents/sync", &json!({"dir": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
