//! Integration tests of `OrtEmbedder` against the real all-MiniLM-L6-v2 files (int8, fp32
//! and int8_fused).
//!
//! They need the assets from `cargo xtask assets` and compare against the fp32 reference
//! vectors written by `xtask/scripts/reference_embeddings.py`.

// Tests locate the assets through `RAGD_ASSETS_DIR`, like `cargo xtask assets`, and unwrap
// freely: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use ragd_core::{Embedder, ErrorKind};
use ragd_embedding::{Device, EmbedderConfig, OrtEmbedder};

/// The asset directory: `RAGD_ASSETS_DIR`, else `$HOME/.cache/ragd/assets`.
fn assets_dir() -> PathBuf {
    std::env::var_os("RAGD_ASSETS_DIR").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME or RAGD_ASSETS_DIR must be set");
            Path::new(&home).join(".cache/ragd/assets")
        },
        PathBuf::from,
    )
}

/// The default MiniLM configuration on the local assets.
fn config() -> EmbedderConfig {
    let assets = assets_dir();
    let dylib = assets.join(ragd_core::assets::ONNX_RUNTIME.path);
    assert!(dylib.is_file(), "{} is missing; run `cargo xtask assets`", dylib.display());
    let mut config = EmbedderConfig::minilm(&assets, &dylib);
    // Tests run in parallel on small machines; keep each session from taking every core.
    config.intra_op_threads = Some(1);
    config
}

fn load(config: &EmbedderConfig) -> OrtEmbedder {
    OrtEmbedder::load(config).unwrap()
}

/// The fp32 reference sentences and vectors.
fn reference() -> (Vec<String>, Vec<Vec<f32>>) {
    let path = Path::new("../../").join("fixtures/embeddings/reference.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sentences = json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let vectors = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    (sentences, vectors)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Text of roughly `words` words, varied so different lengths tokenize differently.
fn text_of(words: usize, seed: usize) -> String {
    const VOCABULARY: [&str; 8] =
        ["retrieval", "vector", "lantern", "harbour", "quantum", "river", "sonnet", "granite"];
    (0..words).map(|i| VOCABULARY[(i * 7 + seed) % VOCABULARY.len()]).collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn matches_the_fp32_reference() {
    let embedder = load(&config());
    let (sentences, reference) = reference();
    let vectors = embedder.embed_documents(sentences.clone()).await.unwrap();
    assert_eq!(vectors.len(), sentences.len());
    for ((sentence, got), want) in sentences.iter().zip(&vectors).zip(&reference) {
        assert_eq!(got.len(), 384);
        assert!((dot(got, got).sqrt() - 1.0).abs() < 1e-4, "not unit norm: {sentence}");
        let similarity = cosine(got, want);
        assert!(similarity >= 0.99, "cosine {similarity} < 0.99 for {sentence:?}");
    }
    let query = embedder.embed_query(sentences[0].clone()).await.unwrap();
    assert!(cosine(&query, &vectors[0]) > 0.9999);
}

#[tokio::test]
async fn the_fp32_file_matches_the_fp32_reference_exactly() {
    let mut config = config();
    config.model_path = assets_dir().join(ragd_core::assets::EMBEDDING_MODEL_FP32.path);
    assert!(config.model_path.is_file(), "{} is missing", config.model_path.display());
    let embedder = load(&config);
    let (sentences, reference) = reference();
    let vectors = embedder.embed_documents(sentences.clone()).await.unwrap();
    assert_eq!(vectors.len(), reference.len());
    for ((sentence, got), want) in sentences.iter().zip(&vectors).zip(&reference) {
        // The int8 file reaches 0.999 at best; the fp32 one is the same computation.
        let similarity = cosine(got, want);
        assert!(similarity >= 0.9999, "cosine {similarity} < 0.9999 for {sentence:?}");
    }
}

#[tokio::test]
async fn the_int8_fused_file_stays_close_to_the_reference_and_keeps_paraphrases_apart() {
    let mut config = config();
    config.model_path = assets_dir().join(ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED.path);
    assert!(config.model_path.is_file(), "{} is missing", config.model_path.display());
    let embedder = load(&config);
    let (sentences, reference) = reference();
    let vectors = embedder.embed_documents(sentences.clone()).await.unwrap();
    assert_eq!(vectors.len(), reference.len());
    let mut total = 0.0;
    for ((sentence, got), want) in sentences.iter().zip(&vectors).zip(&reference) {
        assert!((dot(got, got).sqrt() - 1.0).abs() < 1e-4, "not unit norm: {sentence}");
        // Dynamic int8 arithmetic: close to the exact vectors, not equal to them.
        let similarity = cosine(got, want);
        assert!(similarity >= 0.97, "cosine {similarity} < 0.97 for {sentence:?}");
        total += similarity;
    }
    let mean = total / vectors.len() as f32;
    assert!(mean >= 0.985, "mean cosine {mean} < 0.985");
    // Sentences 0 and 1 are the paraphrase pair, 2 is unrelated (see the script).
    let paraphrase = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(paraphrase > unrelated + 0.3, "paraphrase {paraphrase}, unrelated {unrelated}");
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_text() {
    let embedder = load(&config());
    let (sentences, _) = reference();
    // Sentences 0 and 1 are the paraphrase pair, 2 is unrelated (see the script).
    let vectors = embedder.embed_documents(sentences[..3].to_vec()).await.unwrap();
    let paraphrase = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(paraphrase > unrelated + 0.3, "paraphrase {paraphrase}, unrelated {unrelated}");
}

#[tokio::test]
async fn order_survives_batching_by_length() {
    let mut config = config();
    config.max_batch_size = 4;
    let embedder = load(&config);
    // Lengths from 1 to about 120 words, shuffled so sorting really reorders them.
    let texts: Vec<String> = (0..40).map(|i| text_of(1 + (i * 37) % 120, i)).collect();
    let batched = embedder.embed_documents(texts.clone()).await.unwrap();
    assert_eq!(batched.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batched) {
        let alone = embedder.embed_query(text.clone()).await.unwrap();
        let similarity = cosine(&alone, vector);
        assert!(similarity > 0.9999, "cosine {similarity} for a text of {} chars", text.len());
    }
}

#[tokio::test]
async fn jobs_queued_together_run_together_and_keep_their_vectors() {
    let embedder = std::sync::Arc::new(load(&config()));
    // One long job keeps the inference thread busy while eight short ones of mixed lengths
    // queue behind it; they must run as one plan, not one run each.
    let busy: Vec<String> = (0..32).map(|i| text_of(200, i)).collect();
    let before = embedder.stats();
    let first = tokio::spawn({
        let embedder = std::sync::Arc::clone(&embedder);
        async move { embedder.embed_documents(busy).await }
    });
    // Let the long job reach the queue first.
    tokio::task::yield_now().await;
    let shorts: Vec<Vec<String>> =
        (0..8).map(|i| vec![text_of(3 + i * 11, i), text_of(40 + i, i + 1)]).collect();
    let handles: Vec<_> = shorts
        .iter()
        .map(|texts| {
            let embedder = std::sync::Arc::clone(&embedder);
            let texts = texts.clone();
            tokio::spawn(async move { embedder.embed_documents(texts).await })
        })
        .collect();
    assert_eq!(first.await.unwrap().unwrap().len(), 32);
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap().unwrap());
    }
    let after = embedder.stats();
    assert_eq!(after.jobs - before.jobs, 9);
    let runs = after.runs - before.runs;
    assert!(runs <= 3, "9 jobs took {runs} runs");
    // Each job gets its own vectors, in its own order.
    for (texts, vectors) in shorts.iter().zip(&answers) {
        assert_eq!(vectors.len(), texts.len());
        for (text, vector) in texts.iter().zip(vectors) {
            let alone = embedder.embed_query(text.clone()).await.unwrap();
            let similarity = cosine(&alone, vector);
            assert!(similarity > 0.9999, "cosine {similarity} for {text:?}");
        }
    }
}

#[tokio::test]
async fn long_text_is_truncated_not_rejected() {
    let embedder = load(&config());
    let long = text_of(2_000, 3);
    let tokens = embedder.count_tokens(&long).unwrap();
    assert!(tokens > embedder.max_tokens(), "{tokens} tokens");
    assert_eq!(embedder.max_tokens(), 256);
    let vector = embedder.embed_query(long).await.unwrap();
    assert_eq!(vector.len(), 384);
    assert!((dot(&vector, &vector).sqrt() - 1.0).abs() < 1e-4);
}

#[tokio::test]
async fn token_spans_cover_the_counted_tokens_in_order() {
    let embedder = load(&config());
    let text = "The café's opening hours: 7–11 a.m. Unbelievably, 東京 too.";
    let spans = embedder.token_spans(text).unwrap().expect("the tokenizer knows its offsets");
    // Special tokens are left out of the spans, as the chunker counts without them.
    assert_eq!(spans.len(), embedder.count_tokens(text).unwrap() - 2);
    assert!(spans.windows(2).all(|pair| pair[0].end <= pair[1].start), "{spans:?}");
    let pieces: Vec<&str> = spans.iter().map(|span| &text[span.clone()]).collect();
    assert_eq!(&pieces[..3], ["The", "café", "'"], "{pieces:?}");
    assert!(pieces.contains(&"東") && pieces.contains(&"京"), "{pieces:?}");
    assert_eq!(spans.last().map(|span| span.end), Some(text.len()));
}

#[tokio::test]
async fn empty_input_gives_empty_output() {
    let embedder = load(&config());
    assert!(embedder.embed_documents(Vec::new()).await.unwrap().is_empty());
    assert_eq!(embedder.count_tokens("").unwrap(), 2, "[CLS] and [SEP]");
}

#[tokio::test]
async fn a_full_queue_is_overloaded() {
    let mut config = config();
    config.queue_capacity = 1;
    let embedder = load(&config);
    // The first request keeps the worker busy for a long time; the later ones are sent
    // (`try_send` on first poll) microseconds after it. At most one of them fits in the
    // queue, so at least one must be refused, whatever the worker's timing.
    let busy: Vec<String> = (0..32).map(|i| text_of(200, i)).collect();
    let short = || embedder.embed_query("hello".to_owned());
    let (first, a, b, c) = tokio::join!(embedder.embed_documents(busy), short(), short(), short());
    assert_eq!(first.unwrap().len(), 32);
    let mut overloaded = 0;
    for result in [a, b, c] {
        match result {
            Ok(vector) => assert_eq!(vector.len(), 384),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
                overloaded += 1;
            }
        }
    }
    assert!(overloaded >= 1, "no request was refused");
    // The queue drains: a later request succeeds.
    assert_eq!(embedder.embed_query("again".to_owned()).await.unwrap().len(), 384);
}

#[test]
fn a_missing_model_is_unavailable_with_its_path() {
    let mut config = config();
    config.model_path = PathBuf::from("/definitely/not/here/model.onnx");
    let err = ragd_core::Error::from(OrtEmbedder::load(&config).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("/definitely/not/here/model.onnx"), "{err}");
}

#[test]
fn a_missing_tokenizer_is_unavailable_with_its_path() {
    let mut config = config();
    config.tokenizer_path = PathBuf::from("/definitely/not/here/tokenizer.json");
    let err = OrtEmbedder::load(&config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("/definitely/not/here/tokenizer.json"), "{err}");
}

#[test]
fn a_dimension_mismatch_fails_at_load() {
    let mut config = config();
    config.dimensions = 768;
    let err = OrtEmbedder::load(&config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("768"), "{err}");
}

#[cfg(not(feature = "cuda"))]
#[tokio::test]
async fn cuda_without_the_feature_falls_back_to_cpu() {
    let mut config = config();
    config.device = Device::Cuda(0);
    let embedder = load(&config);
    assert_eq!(embedder.provider(), "cpu");
    assert_eq!(embedder.embed_query("fallback".to_owned()).await.unwrap().len(), 384);
}

#[test]
fn reports_its_metadata() {
    let embedder = load(&config());
    assert_eq!(embedder.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.max_batch_size(), Some(32));
    assert_eq!(embedder.provider(), "cpu");
    let _ = Device::Cpu;
}

/// The nice values of this process's threads named `name` (Linux `/proc` layout).
#[cfg(target_os = "linux")]
fn nice_values_of_threads(name: &str) -> Vec<i64> {
    let mut nice = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(task.join("comm")) else { continue };
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // Fields after "(comm)": state is field 3 of stat(5), nice is field 19.
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        nice.push(after_comm.split(' ').nth(16).unwrap().parse().unwrap());
    }
    nice
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_background_embedder_runs_at_the_lowest_priority() {
    let mut config = config();
    config.priority = ragd_embedding::Priority::Background;
    let embedder = load(&config);
    // An answer proves the inference thread is running (and set its priority first).
    assert_eq!(embedder.embed_query("low priority".to_owned()).await.unwrap().len(), 384);
    let nice = nice_values_of_threads("ragd-embedder");
    assert!(nice.contains(&19), "no embedder thread at nice 19: {nice:?}");
}
