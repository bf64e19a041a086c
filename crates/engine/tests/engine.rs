//! The engine's start-up sequence on real components (SQLite, LanceDB, the bundled MiniLM
//! and SmolLM2 from `cargo xtask assets`, located through `RAGD_ASSETS_DIR` as `cargo xtask
//! test` sets it) and with swapped backends through the builder.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // Tests read RAGD_ASSETS_DIR.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ragd_engine::chat::{CreateSession, SendMessage, TaggingMode};
use ragd_engine::config::EmbeddingPrecision;
use ragd_engine::core::{
    DocumentStatus, EmbeddedRecord, ErrorKind, SessionId, TableName, VectorStore,
};
use ragd_engine::llm::manager::{BackendKind, LoadState};
use ragd_engine::search::{HybridOptions, SearchQuery};
use ragd_engine::{Engine, EngineConfig, HealthStatus};
use ragd_test_utils::{FakeEmbedder, InMemoryStore, Script, ScriptedLlm};

fn assets_dir() -> PathBuf {
    let dir = std::env::var_os("RAGD_ASSETS_DIR")
        .map(PathBuf::from)
        .expect("RAGD_ASSETS_DIR names the assets (`cargo xtask test` sets it)");
    assert!(dir.join(ragd_engine::core::assets::EMBEDDING_MODEL.path).is_file(), "{dir:?}");
    dir
}

/// Relative to the package root, the working directory of `cargo test`.
fn fixture(name: &str) -> PathBuf {
    std::env::current_dir().unwrap().join("../../fixtures/docs").join(name)
}

fn config(data: &std::path::Path) -> EngineConfig {
    let mut config = EngineConfig::new(data, assets_dir());
    config.models.autoload = "none".to_owned();
    config.telemetry.sample_interval_secs = 1;
    config
}

#[tokio::test]
async fn the_default_engine_ingests_searches_and_answers_with_citations() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.models.autoload = "bundled".to_owned();
    // Tags from the model itself (falling back to keywords only when it fails).
    config.chat.tagging = TaggingMode::Llm;
    let engine = Engine::open(config).await.unwrap();
    let health = engine.health().borrow().clone();
    assert_eq!(health.status, HealthStatus::Ok, "{health:?}");
    let description = engine.embedder_description().unwrap();
    assert!(description.contains("all-MiniLM-L6-v2"), "{description}");
    // Every file is in the assets, so `auto` timed them and says which it kept.
    assert!(description.contains("faster in the start-up probe: fp32 "), "{description}");

    let ingested = engine.documents().ingest_file(&fixture("handbook.md")).await.unwrap();
    let id = ingested.document.id;
    let document = engine.documents().wait_until_done(id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(document.status, DocumentStatus::Ready, "{:?}", document.error);

    let query = SearchQuery {
        text: "days of leave".to_owned(),
        top_k: 3,
        document_ids: Vec::new(),
        collection_ids: Vec::new(),
        filter: ragd_core::MetadataFilter::default(),
    };
    let hits = engine.search().hybrid(&query, HybridOptions::default()).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits[0].chunk.text.contains("twenty-five days"), "{:?}", hits[0].chunk.text);

    engine.wait_for_model(Duration::from_secs(120)).await.unwrap();
    let session = engine.chat().create_session(CreateSession::default()).await.unwrap();
    let mut ask = SendMessage::new("How many days of leave does everyone get?");
    ask.settings = Some(ragd_engine::core::SettingsPatch {
        max_new_tokens: Some(24),
        temperature: Some(0.0),
        seed: Some(Some(7)),
        ..Default::default()
    });
    let reply = engine.chat().send(session.id, ask).await.unwrap().finish().await.unwrap();
    assert!(!reply.assistant_message.content.trim().is_empty());
    let cited = reply.citations.first().expect("the answer cites a chunk");
    assert_eq!(cited.document_id, id);
    let chunk = engine.documents().chunk(cited.chunk_id).await.unwrap();
    assert_eq!(chunk.document_id, id);

    // LLM tagging ran with the bundled model: the session has automatic tags.
    let session = engine.chat().session(session.id).await.unwrap();
    assert!(!session.tags.is_empty(), "{session:?}");
}

#[tokio::test]
async fn the_builder_swaps_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(InMemoryStore::new());
    let llm = ScriptedLlm::new(Script::Fixed("Twenty-five days [1].".to_owned()), 4096);
    let engine = Engine::builder(config(dir.path()))
        .embedder(Arc::new(FakeEmbedder::new(16)))
        .vector_store(store.clone())
        .llm(Arc::new(llm.clone()))
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    assert_eq!(engine.health().borrow().status, HealthStatus::Ok);
    let status = engine.models().status();
    assert_eq!(status.state, LoadState::Loaded);
    assert_eq!(status.model.unwrap().backend, BackendKind::Custom);

    let ingested = engine.documents().ingest_file(&fixture("handbook.md")).await.unwrap();
    let id = ingested.document.id;
    let document = engine.documents().wait_until_done(id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(document.status, DocumentStatus::Ready, "{:?}", document.error);
    assert!(store.len(TableName::Chunks) > 0, "the vectors went to the given store");

    let session = engine.chat().create_session(CreateSession::default()).await.unwrap();
    let ask = SendMessage::new("How many days of leave?");
    let reply = engine.chat().send(session.id, ask).await.unwrap().finish().await.unwrap();
    assert_eq!(reply.assistant_message.content, "Twenty-five days [1].");
    assert_eq!(llm.requests().len(), 1);
}

#[tokio::test]
async fn start_up_removes_orphan_vectors_through_the_store_trait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(InMemoryStore::new());
    let orphan = |session_id| EmbeddedRecord {
        id: *ragd_engine::core::ChunkId::new().as_uuid(),
        document_id: None,
        session_id,
        vector: vec![0.5; 16],
    };
    store.upsert(TableName::Chunks, vec![orphan(None), orphan(None)]).await.unwrap();
    store.upsert(TableName::Memory, vec![orphan(Some(SessionId::new()))]).await.unwrap();
    assert_eq!(store.len(TableName::Chunks), 2);
    let _engine = Engine::builder(config(dir.path()))
        .embedder(Arc::new(FakeEmbedder::new(16)))
        .vector_store(store.clone())
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    assert_eq!(store.len(TableName::Chunks), 0);
    assert_eq!(store.len(TableName::Memory), 0);
}

#[tokio::test]
async fn a_read_only_start_up_changes_nothing_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(InMemoryStore::new());
    let orphan = EmbeddedRecord {
        id: *ragd_engine::core::ChunkId::new().as_uuid(),
        document_id: None,
        session_id: None,
        vector: vec![0.5; 16],
    };
    store.upsert(TableName::Chunks, vec![orphan]).await.unwrap();
    // An upload a server next door is receiving.
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let partial = uploads.join(".upload-in-flight");
    std::fs::write(&partial, b"half a file").unwrap();
    let build = |recover| {
        Engine::builder(config(dir.path()))
            .embedder(Arc::new(FakeEmbedder::new(16)))
            .vector_store(store.clone())
            .system_monitor(false)
            .recover(recover)
            .build()
    };
    drop(build(false).await.unwrap());
    assert!(partial.is_file(), "a read-only start-up removed an upload in flight");
    assert_eq!(store.len(TableName::Chunks), 1, "a read-only start-up removed vectors");
    drop(build(true).await.unwrap());
    assert!(!partial.exists(), "recovery removes partial uploads");
    assert_eq!(store.len(TableName::Chunks), 0);
}

#[tokio::test]
async fn another_embedding_model_is_served_from_the_old_index_until_the_rebuild_swaps() {
    let dir = tempfile::tempdir().unwrap();
    // A first engine whose embedder is a 16-dimensional fake stamps the LanceDB tables
    // with the fake's id and dimension, whatever `[embedding]` says.
    let llm = ScriptedLlm::new(Script::Fixed("Twenty-five days of leave.".to_owned()), 4096);
    let engine = Engine::builder(config(dir.path()))
        .embedder(Arc::new(FakeEmbedder::new(16)))
        .llm(Arc::new(llm))
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    assert_eq!(engine.health().borrow().status, HealthStatus::Ok);
    let ingested = engine.documents().ingest_file(&fixture("handbook.md")).await.unwrap();
    let document = ingested.document.id;
    engine.documents().wait_until_done(document, Duration::from_secs(60)).await.unwrap();
    // One exchange in long-term memory.
    let session = engine.chat().create_session(CreateSession::default()).await.unwrap();
    let ask = SendMessage::new("How many days of leave?");
    engine.chat().send(session.id, ask).await.unwrap().finish().await.unwrap();
    drop(engine);

    // The bundled MiniLM (384 dimensions) cannot use those tables and the fake cannot be
    // loaded by id, so semantic search waits for the rebuild with MiniLM, which starts by
    // itself; keyword search works throughout.
    let engine = Engine::builder(config(dir.path())).system_monitor(false).build().await.unwrap();
    let status = engine.index_status().unwrap();
    assert_eq!(status.configured_model.as_deref(), Some("sentence-transformers/all-MiniLM-L6-v2"));
    let query = SearchQuery {
        text: "leave".to_owned(),
        top_k: 3,
        document_ids: Vec::new(),
        collection_ids: Vec::new(),
        filter: ragd_core::MetadataFilter::default(),
    };
    assert!(engine.search().keyword(&query).await.is_ok());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let report = loop {
        let status = engine.index_status().unwrap();
        if let Some(report) = status.last_build {
            break report;
        }
        assert!(status.error.is_none(), "{status:?}");
        assert!(std::time::Instant::now() < deadline, "the rebuild did not finish: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report.target.model_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(report.target.dimensions, 384);
    let chunks = engine.catalog().count_chunks(None).unwrap();
    assert!(chunks > 0);
    assert_eq!(report.chunks, chunks);
    assert_eq!(report.memories, 1, "the remembered exchange is re-embedded too");
    let recalled = engine.chat().search_memory(session.id, "days of leave", 3).await.unwrap();
    assert_eq!(recalled.len(), 1);
    assert_eq!(recalled[0].exchange.assistant, "Twenty-five days of leave.");
    let hits = engine.search().semantic(&query).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|hit| hit.chunk.document_id == document));
    assert_eq!(engine.health().borrow().status, HealthStatus::Ok, "the swap reports the store");
    // The old generation is gone, the new one is what the next start opens.
    drop(engine);
    let engine = Engine::builder(config(dir.path())).system_monitor(false).build().await.unwrap();
    let status = engine.index_status().unwrap();
    assert_eq!(status.active.unwrap().model_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert!(status.building.is_none());
    assert!(!dir.path().join("lance/chunks.lance").exists(), "generation 0 was dropped");
}

/// [`FakeEmbedder`] under another model id, taking `per_text` for each text it embeds.
#[derive(Debug)]
struct SlowEmbedder {
    inner: FakeEmbedder,
    id: &'static str,
    per_text: Duration,
}

#[async_trait::async_trait]
impl ragd_engine::core::Embedder for SlowEmbedder {
    fn model_id(&self) -> &str {
        self.id
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn count_tokens(&self, text: &str) -> ragd_engine::core::Result<usize> {
        self.inner.count_tokens(text)
    }

    async fn embed_documents(
        &self,
        texts: Vec<String>,
    ) -> ragd_engine::core::Result<Vec<ragd_engine::core::Embedding>> {
        tokio::time::sleep(self.per_text * u32::try_from(texts.len()).unwrap()).await;
        self.inner.embed_documents(texts).await
    }

    async fn embed_query(
        &self,
        text: String,
    ) -> ragd_engine::core::Result<ragd_engine::core::Embedding> {
        self.inner.embed_query(text).await
    }
}

#[tokio::test]
async fn exchanges_remembered_during_a_rebuild_survive_the_swap() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.ingest.chunk_max_tokens = 24;
    config.ingest.chunk_overlap_tokens = 0;
    let embedder =
        |id, per_text| Arc::new(SlowEmbedder { inner: FakeEmbedder::new(16), id, per_text });
    // An index built with a model that the next start cannot load by its id.
    let engine = Engine::builder(config.clone())
        .embedder(embedder("fake-a", Duration::ZERO))
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    let ingested = engine.documents().ingest_file(&fixture("handbook.md")).await.unwrap();
    engine
        .documents()
        .wait_until_done(ingested.document.id, Duration::from_secs(60))
        .await
        .unwrap();
    drop(engine);

    // Another model: the rebuild starts at open and takes a while; an exchange made
    // meanwhile goes to the new index only (the old one has no model to serve it).
    let llm = ScriptedLlm::new(Script::Fixed("Twenty-five days of leave.".to_owned()), 4096);
    let engine = Engine::builder(config)
        .embedder(embedder("fake-b", Duration::from_millis(40)))
        .llm(Arc::new(llm))
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    let session = engine.chat().create_session(CreateSession::default()).await.unwrap();
    let ask = SendMessage::new("How many days of leave?");
    engine.chat().send(session.id, ask).await.unwrap().finish().await.unwrap();
    let status = engine.index_status().unwrap();
    assert!(status.building.is_some(), "the rebuild ended before the exchange: {status:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while engine.index_status().unwrap().last_build.is_none() {
        assert!(std::time::Instant::now() < deadline, "the rebuild did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recalled = engine.chat().search_memory(session.id, "days of leave", 3).await.unwrap();
    assert_eq!(recalled.len(), 1, "the exchange made during the rebuild is remembered");
}

#[tokio::test]
async fn a_bad_configuration_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = config(&data);
    config.ingest.chunk_overlap_tokens = config.ingest.chunk_max_tokens;
    let err = Engine::open(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("chunk_overlap_tokens"), "{err}");
    assert!(!data.exists());
}

#[tokio::test]
async fn chunks_are_sized_by_the_loaded_embedders_own_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.ingest.chunk_max_tokens = 12;
    config.ingest.chunk_overlap_tokens = 2;
    let engine = Engine::builder(config).system_monitor(false).build().await.unwrap();
    let ingested = engine.documents().ingest_file(&fixture("handbook.md")).await.unwrap();
    let id = ingested.document.id;
    let document = engine.documents().wait_until_done(id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(document.status, DocumentStatus::Ready, "{:?}", document.error);
    let chunks = engine.documents().chunks(id, 100, 0).await.unwrap().items;
    assert!(chunks.len() > 1, "{chunks:?}");
    let embedder = engine.embedder().unwrap();
    let special = embedder.count_tokens("").unwrap();
    assert_eq!(special, 2, "MiniLM adds [CLS] and [SEP]");
    for chunk in &chunks {
        let counted = embedder.count_tokens(&chunk.text).unwrap() - special;
        assert_eq!(counted, chunk.token_count as usize, "{chunk:?}");
        assert!(counted <= 12, "{chunk:?}");
        // The whole chunk fits the embedder's window: nothing is truncated.
        assert!(counted + special <= embedder.max_tokens());
    }
}

#[tokio::test]
async fn a_configured_precision_loads_that_file_without_a_probe() {
    const TEXT: &str = "The lighthouse keeper logs the weather every four hours.";
    let mut vectors = Vec::new();
    for (precision, expected) in [
        (EmbeddingPrecision::Int8, "int8, configured"),
        (EmbeddingPrecision::Fp32, "fp32, configured"),
        (EmbeddingPrecision::Int8Fused, "int8_fused, configured"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.embedding.precision = precision;
        let engine = Engine::open(config).await.unwrap();
        let description = engine.embedder_description().unwrap();
        assert!(description.contains(expected), "{description}");
        let query = SearchQuery {
            text: "anything".to_owned(),
            top_k: 1,
            document_ids: Vec::new(),
            collection_ids: Vec::new(),
            filter: ragd_core::MetadataFilter::default(),
        };
        // The embedder answers (no documents, so no hits).
        assert!(engine.search().semantic(&query).await.unwrap().is_empty());
        // Configured, nothing is probed, so no choice is kept.
        assert!(!dir.path().join("embedding-precision").exists());
        let vector = engine.embedder().unwrap().embed_query(TEXT.to_owned()).await.unwrap();
        vectors.push((precision, vector));
    }
    // Three files, three slightly different vectors: each setting loaded its own file.
    for (i, (a, first)) in vectors.iter().enumerate() {
        for (b, second) in &vectors[i + 1..] {
            let cosine: f32 = first.iter().zip(second).map(|(x, y)| x * y).sum();
            assert!((0.97..0.99999).contains(&cosine), "{a:?} and {b:?}: cosine {cosine}");
        }
    }
}

/// The int8_fused file quantises its activations per run, scaled by the largest value in
/// the batch; run in batches, a text's vector would depend on the texts beside it.
#[tokio::test]
async fn the_int8_fused_file_gives_a_text_one_vector_whatever_it_is_batched_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.embedding.precision = EmbeddingPrecision::Int8Fused;
    let engine = Engine::open(config).await.unwrap();
    let embedder = engine.embedder().unwrap();
    let text = "The lighthouse keeper logs the weather every four hours.";
    let alone = embedder.embed_query(text.to_owned()).await.unwrap();
    let loud = "ZX-4417 OVERFLOW 98765432109876543210 ".repeat(30);
    let batch = vec![loud, text.to_owned(), "tea".to_owned()];
    let batched = embedder.embed_documents(batch).await.unwrap();
    let cosine: f32 = alone.iter().zip(&batched[1]).map(|(a, b)| a * b).sum();
    assert!(cosine >= 0.999_999, "cosine {cosine} between the text alone and in a batch");
}

#[tokio::test]
async fn the_precision_probe_runs_once_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::open(config(dir.path())).await.unwrap();
    let probed = first.embedder_description().unwrap().to_owned();
    assert!(probed.contains("faster in the start-up probe"), "{probed}");
    drop(first);
    let kept = std::fs::read_to_string(dir.path().join("embedding-precision")).unwrap();
    let precision = kept.lines().next().unwrap();
    assert!(matches!(precision, "fp32" | "int8" | "int8_fused"), "{kept}");
    assert!(probed.contains(&format!("cpu, {precision}, faster")), "{probed}");
    // Every bundled file was timed; int8_fused only where the CPU multiplies int8 natively.
    #[cfg(target_arch = "x86_64")]
    let int8_native = std::arch::is_x86_feature_detected!("avx512vnni")
        || std::arch::is_x86_feature_detected!("avxvnni");
    #[cfg(not(target_arch = "x86_64"))]
    let int8_native = true;
    for timed in ["fp32", "int8"] {
        assert!(probed.contains(&format!(" {timed} ")), "{timed} not probed: {probed}");
    }
    assert_eq!(probed.contains(" int8_fused "), int8_native, "{probed}");

    // The next start keeps that file, so one index never mixes vectors of two.
    let second = Engine::open(config(dir.path())).await.unwrap();
    let description = second.embedder_description().unwrap();
    assert!(description.contains(&format!("cpu, {precision}, faster")), "{description}");
    assert!(description.ends_with("; kept)"), "{description}");
}

#[tokio::test]
async fn a_data_directory_indexed_before_the_choice_stays_on_int8() {
    let dir = tempfile::tempdir().unwrap();
    // An index from before there were two files: its vectors came from the int8 one.
    let first = Engine::open(config(dir.path())).await.unwrap();
    drop(first);
    std::fs::remove_file(dir.path().join("embedding-precision")).unwrap();
    assert!(dir.path().join("lance/chunks.lance").exists());

    let engine = Engine::open(config(dir.path())).await.unwrap();
    let description = engine.embedder_description().unwrap();
    assert!(description.contains("int8: this data directory was indexed before"), "{description}");
    let kept = std::fs::read_to_string(dir.path().join("embedding-precision")).unwrap();
    assert_eq!(kept.lines().next(), Some("int8"), "{kept}");
}

/// Uploads shared through a bucket (`ingest.uploads_uri`): a file larger than one buffer goes
/// up in parts and comes back byte for byte; a name the bucket holds is not sent again (the
/// names are sha256s, so its bytes are those already there); a missing upload is `NotFound`;
/// a bucket that is not there fails the upload as `Unavailable`, small or multipart.
#[tokio::test]
async fn uploads_in_a_bucket_stream_both_ways_and_are_not_sent_twice() {
    use ragd_ingest::UploadStore as _;

    let bucket = ragd_test_utils::S3Bucket::create();
    let uploads =
        ragd_engine::ObjectUploads::open(&bucket.uri("uploads"), &bucket.storage_options())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 12 MiB: more than the writer's 10 MiB buffer, so a multipart upload of two parts.
    let big: Vec<u8> =
        (0..12u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let first = dir.path().join("first");
    std::fs::write(&first, &big).unwrap();
    uploads.put("a1", &first).await.unwrap();
    let back = dir.path().join("back");
    uploads.get("a1", &back).await.unwrap();
    assert!(std::fs::read(&back).unwrap() == big, "the fetched upload differs");

    let other = dir.path().join("other");
    std::fs::write(&other, b"other bytes").unwrap();
    uploads.put("a1", &other).await.unwrap();
    std::fs::remove_file(&back).unwrap();
    uploads.get("a1", &back).await.unwrap();
    assert_eq!(std::fs::metadata(&back).unwrap().len(), big.len() as u64, "sent again");

    let err = uploads.get("missing", &dir.path().join("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert!(!dir.path().join("missing").exists());

    // A bucket that is not there: the PUT fails, as an error, not a panic.
    let nowhere = ragd_engine::ObjectUploads::open(
        &format!("s3://{}-gone/uploads", bucket.name),
        &bucket.storage_options(),
    )
    .unwrap();
    let err = nowhere.put("b2", &other).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let err = nowhere.put("b3", &first).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");

    uploads.delete("a1").await.unwrap();
    uploads.delete("a1").await.unwrap();
    let err = uploads.get("a1", &dir.path().join("again")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
}
