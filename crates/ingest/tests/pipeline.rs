//! The ingest pipeline end to end: real SQLite catalog in a temp dir, real tokenizer, and
//! the deterministic fakes for the embedder and vector store (the real ONNX embedder and
//! LanceDB store are tested with the pipeline once wired, in `bins/ragd`).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ragd_catalog::{Catalog, KeywordQuery, NewDocument};
use ragd_core::{
    Chunk, ChunkId, DocumentId, DocumentStatus, Embedder, Embedding, ErrorKind, TableName,
    VectorStore,
};
use ragd_ingest::{Chunker, ChunkerConfig, IngestConfig, IngestParts, Ingestor};
use ragd_test_utils::{FakeEmbedder, InMemoryStore};

const WAIT: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new("../../").join("fixtures/docs").join(name)).unwrap()
}

struct Harness {
    _dir: tempfile::TempDir,
    data: PathBuf,
    ingestor: Ingestor,
    store: Arc<InMemoryStore>,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (ingestor, store) = Self::ingestor(&data, |_| {});
        Self { _dir: dir, data, ingestor, store }
    }

    fn ingestor(
        data: &Path,
        tweak: impl FnOnce(&mut IngestConfig),
    ) -> (Ingestor, Arc<InMemoryStore>) {
        Self::ingestor_embedding(data, Arc::new(FakeEmbedder::new(16)), tweak)
    }

    fn ingestor_embedding(
        data: &Path,
        embedder: Arc<dyn Embedder>,
        tweak: impl FnOnce(&mut IngestConfig),
    ) -> (Ingestor, Arc<InMemoryStore>) {
        let catalog = Catalog::open(&data.join("ragd.sqlite3")).unwrap();
        let mut config = IngestConfig::new(data);
        config.chunker = ChunkerConfig { max_tokens: 64, overlap_tokens: 8 };
        config.embed_batch_size = 4;
        tweak(&mut config);
        let chunker = Chunker::from_file(
            config.chunker,
            &ragd_test_utils::assets_dir().join("all-minilm-l6-v2/tokenizer.json"),
        )
        .map_err(|e| e.to_string());
        let store = Arc::new(InMemoryStore::new());
        let parts = IngestParts {
            catalog,
            chunker,
            vectors: Some(ragd_core::FixedVectors::shared(embedder, store.clone())),
            uploads: None,
        };
        (Ingestor::new(parts, config).unwrap(), store)
    }

    async fn upload(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> ragd_ingest::Result<ragd_ingest::Ingested> {
        let stream = futures::stream::iter(
            bytes.chunks(1000).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
        );
        self.ingestor.ingest_stream(name, stream).await
    }

    fn uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.data.join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn a_document_goes_through_every_stage_to_ready() {
    let h = Harness::new();
    let ingested = h.upload("handbook.md", fixture("handbook.md")).await.unwrap();
    assert!(!ingested.duplicate);
    assert_eq!(ingested.document.status, DocumentStatus::Queued);
    assert_eq!(ingested.document.mime, "text/markdown");

    let done = h.ingestor.wait_until_done(ingested.document.id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{:?}", done.error);
    assert_eq!(done.progress, 100);
    let chunks = h.ingestor.catalog().count_chunks(Some(done.id)).unwrap();
    assert!(chunks > 0);
    assert_eq!(h.store.len(TableName::Chunks) as u64, chunks, "one vector per chunk");
    assert_eq!(h.uploads(), vec![done.sha256.clone()], "stored under its sha256, no temp left");
}

#[tokio::test]
async fn pdf_chunks_keep_page_numbers() {
    let h = Harness::new();
    let id = h.upload("two-pages.pdf", fixture("two-pages.pdf")).await.unwrap().document.id;
    let done = h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{:?}", done.error);
    let chunks = h.ingestor.catalog().list_chunks(id, 100, 0).unwrap().items;
    assert!(chunks.iter().all(|c| c.page.is_some()));
}

#[tokio::test]
async fn the_same_bytes_twice_are_one_document() {
    let h = Harness::new();
    let first = h.upload("a.md", fixture("handbook.md")).await.unwrap();
    let second = h.upload("b.md", fixture("handbook.md")).await.unwrap();
    assert!(second.duplicate);
    assert_eq!(first.document.id, second.document.id);
    h.ingestor.wait_until_done(first.document.id, WAIT).await.unwrap();
    assert_eq!(h.ingestor.catalog().count_documents().unwrap(), 1);
    assert_eq!(h.uploads().len(), 1);
}

#[tokio::test]
async fn a_broken_file_fails_with_a_reason() {
    let h = Harness::new();
    let id = h.upload("truncated.pdf", fixture("truncated.pdf")).await.unwrap().document.id;
    let done = h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Failed);
    let reason = done.error.unwrap();
    assert!(reason.contains("pdf"), "{reason}");

    let id = h.upload("not-a-zip.docx", fixture("not-a-zip.docx")).await.unwrap().document.id;
    let done = h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Failed);
    assert!(done.error.unwrap().contains("docx"));
}

#[tokio::test]
async fn rejected_uploads_leave_nothing_behind() {
    let h = Harness::new();
    let junk = h.upload("junk.bin", fixture("junk.bin")).await.unwrap_err();
    assert_eq!(junk.kind(), ErrorKind::UnsupportedMediaType);
    let empty = h.upload("empty.txt", Vec::new()).await.unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);

    let dir = tempfile::tempdir().unwrap();
    let (small, _) = Harness::ingestor(dir.path(), |c| c.max_upload_bytes = 100);
    let stream =
        futures::stream::iter(vec![Ok::<_, std::io::Error>(vec![b'a'; 80]), Ok(vec![b'b'; 80])]);
    let err = small.ingest_stream("big.txt", stream).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);

    assert!(h.uploads().is_empty(), "{:?}", h.uploads());
    assert_eq!(std::fs::read_dir(dir.path().join("uploads")).unwrap().count(), 0);
    assert_eq!(h.ingestor.catalog().count_documents().unwrap(), 0);
}

#[tokio::test]
async fn delete_leaves_no_rows_fts_entries_vectors_or_file() {
    let h = Harness::new();
    let id = h.upload("handbook.md", fixture("handbook.md")).await.unwrap().document.id;
    h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    let query = KeywordQuery { text: "handbook".to_owned(), top_k: 10, document_ids: Vec::new() };
    assert!(!h.ingestor.catalog().keyword_search(&query).unwrap().is_empty());

    h.ingestor.delete(id).await.unwrap();
    let catalog = h.ingestor.catalog();
    assert_eq!(catalog.get_document(id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(catalog.count_chunks(None).unwrap(), 0);
    assert!(catalog.keyword_search(&query).unwrap().is_empty());
    assert!(h.store.is_empty(TableName::Chunks));
    assert!(h.uploads().is_empty());
    assert_eq!(h.ingestor.delete(id).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn unfinished_documents_resume_after_a_restart() {
    let h = Harness::new();
    // A previous process stored the upload and died mid-way through extraction.
    let bytes = fixture("menu-utf8.txt");
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    std::fs::write(h.data.join("uploads").join(&sha), &bytes).unwrap();
    let catalog = h.ingestor.catalog();
    let id = DocumentId::new();
    let new = NewDocument {
        id,
        filename: "menu.txt".into(),
        mime: "text/plain".into(),
        sha256: sha,
        bytes: bytes.len() as u64,
    };
    catalog.insert_document(new).unwrap();
    catalog.set_status(id, DocumentStatus::Extracting, 40, None).unwrap();

    let (restarted, store) = Harness::ingestor(&h.data, |_| {});
    assert_eq!(restarted.recover().await.unwrap(), 1);
    let done = restarted.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{:?}", done.error);
    assert!(store.len(TableName::Chunks) > 0);
    assert_eq!(restarted.recover().await.unwrap(), 0, "nothing left to resume");
}

#[tokio::test]
async fn reindex_replaces_chunks_and_vectors() {
    let h = Harness::new();
    let id = h.upload("guide.html", fixture("guide.html")).await.unwrap().document.id;
    h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    let before: Vec<_> =
        h.ingestor.catalog().list_chunks(id, 100, 0).unwrap().items.iter().map(|c| c.id).collect();

    let queued = h.ingestor.reindex(id).await.unwrap();
    assert_eq!(queued.status, DocumentStatus::Queued);
    let done = h.ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready);
    let after: Vec<_> =
        h.ingestor.catalog().list_chunks(id, 100, 0).unwrap().items.iter().map(|c| c.id).collect();
    assert_eq!(before.len(), after.len());
    assert!(before.iter().all(|id| !after.contains(id)), "new chunk ids");
    assert_eq!(h.store.len(TableName::Chunks), after.len(), "old vectors removed");
}

#[tokio::test]
async fn many_documents_finish_with_a_small_worker_pool() {
    let h = Harness::new();
    let mut ids = Vec::new();
    for i in 0..6 {
        let text =
            format!("Document number {i}. It talks about topic {i} at some length.\n").repeat(20);
        ids.push(h.upload(&format!("doc{i}.txt"), text.into_bytes()).await.unwrap().document.id);
    }
    for id in ids {
        let done = h.ingestor.wait_until_done(id, WAIT).await.unwrap();
        assert_eq!(done.status, DocumentStatus::Ready);
    }
    assert_eq!(h.ingestor.queue_depth(), 0);
}

/// A hostile fixture from `fixtures/docs/hostile/`.
fn hostile(name: &str) -> Vec<u8> {
    fixture(&format!("hostile/{name}"))
}

#[tokio::test]
async fn hostile_files_fail_with_reasons_and_leave_no_chunks_vectors_or_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (ingestor, store) = Harness::ingestor(dir.path(), |c| {
        c.max_extracted_bytes = 4 << 20;
        c.extract_timeout = Duration::from_secs(2);
    });
    let cases = [
        ("bomb.docx", "ingest.max_extracted_bytes"),
        ("self-drawing-form.pdf", "invokes itself"),
        ("parent-cycle.pdf", "cycle"),
        ("exponential-forms.pdf", "ingest.extract_timeout_secs"),
    ];
    let mut stored = Vec::new();
    for (name, reason) in cases {
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(hostile(name))]);
        let id = ingestor.ingest_stream(name, stream).await.unwrap().document.id;
        let done = ingestor.wait_until_done(id, WAIT).await.unwrap();
        assert_eq!(done.status, DocumentStatus::Failed, "{name}");
        let error = done.error.unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        assert_eq!(ingestor.catalog().count_chunks(Some(id)).unwrap(), 0, "{name}");
        stored.push(done.sha256);
    }
    assert!(store.is_empty(TableName::Chunks));
    // Only the stored uploads remain (kept for a reindex): no partial uploads, no markers.
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    stored.sort();
    assert_eq!(files, stored);

    // The pipeline keeps working after all of that.
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(fixture("handbook.md"))]);
    let id = ingestor.ingest_stream("handbook.md", stream).await.unwrap().document.id;
    let done = ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{:?}", done.error);
}

#[tokio::test]
async fn documents_with_too_many_chunks_fail_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (ingestor, store) = Harness::ingestor(dir.path(), |c| c.max_chunks_per_document = 3);
    let text = "A sentence that fills chunks one after the other. ".repeat(200);
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(text.into_bytes())]);
    let id = ingestor.ingest_stream("long.txt", stream).await.unwrap().document.id;
    let done = ingestor.wait_until_done(id, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Failed);
    let error = done.error.unwrap();
    assert!(error.contains("ingest.max_chunks_per_document (3)"), "{error}");
    assert_eq!(ingestor.catalog().count_chunks(Some(id)).unwrap(), 0);
    assert!(store.is_empty(TableName::Chunks));
}

#[tokio::test]
async fn recovery_removes_partial_uploads_and_gives_up_on_files_that_crash_extraction() {
    let h = Harness::new();
    let uploads = h.data.join("uploads");
    // A previous process died mid-upload, and twice while extracting the same document.
    std::fs::write(uploads.join(".upload-0192aaaa-dead-7000-8000-000000000000"), b"partial")
        .unwrap();
    let bytes = fixture("menu-utf8.txt");
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    std::fs::write(uploads.join(&sha), &bytes).unwrap();
    let catalog = h.ingestor.catalog();
    let poison = DocumentId::new();
    let new = NewDocument {
        id: poison,
        filename: "menu.txt".into(),
        mime: "text/plain".into(),
        sha256: sha.clone(),
        bytes: bytes.len() as u64,
    };
    catalog.insert_document(new).unwrap();
    catalog.set_status(poison, DocumentStatus::Extracting, 0, None).unwrap();
    std::fs::write(uploads.join(format!(".extracting-{poison}")), "2").unwrap();
    // A marker of a document that no longer exists.
    std::fs::write(uploads.join(format!(".extracting-{}", DocumentId::new())), "1").unwrap();

    let (restarted, _) = Harness::ingestor(&h.data, |_| {});
    assert_eq!(restarted.recover().await.unwrap(), 1);
    let done = restarted.wait_until_done(poison, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Failed);
    assert!(done.error.as_deref().unwrap().contains("interrupted 2 times"), "{:?}", done.error);
    assert_eq!(h.uploads(), vec![sha], "partial upload and markers removed");

    // A reindex tries again, and this file is fine.
    restarted.reindex(poison).await.unwrap();
    let done = restarted.wait_until_done(poison, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{:?}", done.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_text_reports_chunking_progress_and_a_delete_stops_it() {
    let h = Harness::new();
    let text: String = (0..120_000)
        .map(|i| format!("Line {i} tells of the orchard, the lantern and {i} small boats.\n"))
        .collect();
    let id = h.upload("large.txt", text.into_bytes()).await.unwrap().document.id;

    // Chunking reports how far it got while it runs.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let doc = h.ingestor.catalog().get_document(id).unwrap();
        if doc.status == DocumentStatus::Chunking && doc.progress > 0 {
            break;
        }
        assert!(
            matches!(
                doc.status,
                DocumentStatus::Queued | DocumentStatus::Extracting | DocumentStatus::Chunking
            ),
            "chunking ended before progress was seen: {doc:?}"
        );
        assert!(std::time::Instant::now() < deadline, "no chunking progress: {doc:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Deleted meanwhile: the document, its file and anything chunked are gone, and the
    // worker is free again for the next document.
    h.ingestor.delete(id).await.unwrap();
    let next = h.upload("handbook.md", fixture("handbook.md")).await.unwrap().document.id;
    h.ingestor.wait_until_done(next, WAIT).await.unwrap();
    let catalog = h.ingestor.catalog();
    assert_eq!(catalog.get_document(id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(catalog.count_documents().unwrap(), 1);
    let handbook_chunks = catalog.count_chunks(Some(next)).unwrap();
    assert_eq!(catalog.count_chunks(None).unwrap(), handbook_chunks, "chunks of the deleted text");
    assert_eq!(h.uploads().len(), 1, "{:?}", h.uploads());
}

/// Embeds like [`FakeEmbedder`], but its first `embed_documents` call waits until the test
/// lets it go: a replica that stalls for longer than its lease in the middle of embedding.
#[derive(Debug)]
struct StallingEmbedder {
    inner: FakeEmbedder,
    stalled: std::sync::atomic::AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl StallingEmbedder {
    fn new() -> Self {
        Self {
            inner: FakeEmbedder::new(16),
            stalled: std::sync::atomic::AtomicBool::new(false),
            entered: tokio::sync::Notify::new(),
            release: tokio::sync::Semaphore::new(0),
        }
    }
}

#[async_trait::async_trait]
impl Embedder for StallingEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn count_tokens(&self, text: &str) -> ragd_core::Result<usize> {
        self.inner.count_tokens(text)
    }

    async fn embed_documents(&self, texts: Vec<String>) -> ragd_core::Result<Vec<Embedding>> {
        if !self.stalled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            let _permit = self.release.acquire().await;
        }
        self.inner.embed_documents(texts).await
    }

    async fn embed_query(&self, text: String) -> ragd_core::Result<Embedding> {
        self.inner.embed_query(text).await
    }
}

/// A worker stalled past its lease while embedding; meanwhile another replica claimed the
/// document and stored its own chunks and vectors. When the stalled worker goes on, it
/// must write nothing that outlives it: the catalog keeps the new owner's chunks, status
/// and lease, and the store one vector per chunk the catalog has (a replicated deployment
/// once showed two vectors for a one-chunk document).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_while_embedding_leaves_the_new_owners_work_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let embedder = Arc::new(StallingEmbedder::new());
    let (ingestor, store) = Harness::ingestor_embedding(&data, embedder.clone(), |config| {
        config.workers = 1;
        // Long: the heartbeat does not notice the loss before the worker goes on.
        config.lease = Duration::from_secs(600);
    });
    let h = Harness { _dir: dir, data, ingestor, store };
    let id = h.upload("handbook.md", fixture("handbook.md")).await.unwrap().document.id;
    tokio::time::timeout(WAIT, embedder.entered.notified()).await.expect("embedding never began");

    // The other replica: the lease ran out, it claims the document and processes it.
    let catalog = h.ingestor.catalog().clone();
    assert_eq!(catalog.clear_leases().unwrap(), 1);
    let other = ragd_catalog::Lease::new("another-replica", Duration::from_secs(600));
    assert!(catalog.claim_document(&other, Some(id)).unwrap().is_some());
    let text = catalog.document_text(id, None).unwrap();
    let theirs: Vec<Chunk> = catalog
        .list_chunks(id, u32::MAX, 0)
        .unwrap()
        .items
        .into_iter()
        .map(|chunk| Chunk { id: ChunkId::new(), ..chunk })
        .collect();
    assert!(!theirs.is_empty(), "no chunks stored before embedding");
    assert!(catalog.replace_chunks_leased(id, &other.owner, &text, &theirs).unwrap());
    ragd_core::write_chunk_vectors(&FakeEmbedder::new(16), h.store.as_ref(), &theirs)
        .await
        .unwrap();
    // Half-way through its own embedding, it holds the document still.
    let midway = catalog.set_status_leased(id, &other.owner, DocumentStatus::Embedding, 50, None);
    assert!(midway.unwrap());

    // The stalled worker goes on; with one worker, the next document is done only after it
    // let go of the first.
    embedder.release.add_permits(1);
    let next = h.upload("notice.md", fixture("notice.md")).await.unwrap().document.id;
    let done = h.ingestor.wait_until_done(next, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready, "{done:?}");

    let expected: std::collections::HashSet<ChunkId> = theirs.iter().map(|c| c.id).collect();
    let stored = catalog.list_chunks(id, u32::MAX, 0).unwrap().items;
    assert_eq!(stored.iter().map(|c| c.id).collect::<std::collections::HashSet<_>>(), expected);
    let document = catalog.get_document(id).unwrap();
    let state = (document.status, document.progress);
    assert_eq!(
        state,
        (DocumentStatus::Embedding, 50),
        "the stalled worker recorded over the owner"
    );
    assert!(catalog.renew_lease(id, &other).unwrap(), "the other replica lost the document");
    let vectors = h.store.ids(TableName::Chunks).await.unwrap();
    let chunks = catalog.all_chunk_ids().unwrap();
    assert_eq!(vectors.len(), chunks.len(), "one vector per chunk of both documents");
    assert_eq!(vectors, chunks, "vectors of chunks the catalog does not have");
}

/// Another replica took the document over (its lease ran out and was claimed): the worker
/// notices at its next lease renewal, stops without recording anything, and frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_over_stops_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (ingestor, store) = Harness::ingestor(&data, |config| {
        config.workers = 1;
        config.lease = Duration::from_millis(600);
    });
    let h = Harness { _dir: dir, data, ingestor, store };
    let text: String = (0..120_000)
        .map(|i| format!("Line {i} tells of the orchard, the lantern and {i} small boats.\n"))
        .collect();
    let id = h.upload("large.txt", text.into_bytes()).await.unwrap().document.id;
    let catalog = h.ingestor.catalog().clone();
    let deadline = std::time::Instant::now() + WAIT;
    while catalog.get_document(id).unwrap().status != DocumentStatus::Chunking {
        assert!(std::time::Instant::now() < deadline, "chunking never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // As if this worker had stalled past its lease and another replica claimed the document.
    assert_eq!(catalog.clear_leases().unwrap(), 1);
    let other = ragd_catalog::Lease::new("another-replica", Duration::from_secs(600));
    assert!(catalog.claim_document(&other, Some(id)).unwrap().is_some());

    // With one worker, the next document can only finish once the first worker let go.
    let next = h.upload("handbook.md", fixture("handbook.md")).await.unwrap().document.id;
    let done = h.ingestor.wait_until_done(next, WAIT).await.unwrap();
    assert_eq!(done.status, DocumentStatus::Ready);
    let large = catalog.get_document(id).unwrap();
    assert!(
        !matches!(large.status, DocumentStatus::Ready | DocumentStatus::Failed),
        "the worker that lost its lease finished the document: {large:?}"
    );
    assert!(catalog.renew_lease(id, &other).unwrap(), "the other replica lost the document");
}
