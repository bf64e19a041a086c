//! The re-embed benchmark's contender (`cargo xtask bench reembed` runs it and writes the
//! table): on one data directory, ingest generated documents with model A, reopen with
//! model B (the rebuild starts by itself; its chunks/s is the throughput), measure semantic
//! search latency on the idle index, then again while a second re-embed (by hand) runs;
//! finally ingest the same documents with model B into a fresh directory, the plain-ingest
//! peer of the rebuild. Prints one JSON line.
//!
//! `bench_reembed ASSETS_DIR CHUNKS`

#![allow(clippy::print_stdout)] // The JSON line is this example's output.

use std::path::Path;
use std::time::{Duration, Instant};

use ragd_engine::search::SearchQuery;
use ragd_engine::{Engine, EngineConfig};

const MODEL_A: &str = "sentence-transformers/all-MiniLM-L6-v2";
const MODEL_B: &str = "sentence-transformers/paraphrase-MiniLM-L3-v2";
/// Chunks per generated document.
const CHUNKS_PER_DOCUMENT: usize = 100;
/// Sentences per chunk-sized piece of a document (about 60 tokens).
const WORDS: [&str; 32] = [
    "river", "orchard", "lantern", "harbour", "meadow", "signal", "copper", "glacier", "violin",
    "compass", "quarry", "saddle", "thunder", "pepper", "falcon", "marble", "ledger", "canyon",
    "ember", "walnut", "beacon", "tundra", "anchor", "prairie", "cobalt", "garnet", "kestrel",
    "lagoon", "mosaic", "nectar", "obsidian", "parsley",
];
const QUERIES: [&str; 8] = [
    "the copper lantern by the harbour",
    "a falcon over the canyon",
    "walnut and pepper in the orchard",
    "thunder on the tundra",
    "the violin ledger",
    "a beacon at the lagoon",
    "marble quarry and saddle",
    "kestrel above the prairie",
];

fn config(data: &Path, assets: &str, model: &str) -> EngineConfig {
    let mut config = EngineConfig::new(data, assets);
    config.models.autoload = "none".to_owned();
    config.embedding.model_id = model.to_owned();
    config.ingest.chunk_max_tokens = 64;
    config.ingest.chunk_overlap_tokens = 0;
    config
}

/// Document `seed`: paragraphs of pseudo-random words, about one chunk each.
fn document(seed: usize) -> String {
    let mut state = (seed as u64).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap_or(0)
    };
    (0..CHUNKS_PER_DOCUMENT)
        .map(|paragraph| {
            let words: Vec<&str> = (0..40).map(|_| WORDS[next() % WORDS.len()]).collect();
            format!("Part {paragraph} of record {seed}: {}.\n\n", words.join(" "))
        })
        .collect()
}

/// Ingests `files` and waits for all; returns the seconds it took.
async fn ingest(
    engine: &Engine,
    files: &[std::path::PathBuf],
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut ids = Vec::new();
    for file in files {
        ids.push(engine.documents().ingest_file(file).await?.document.id);
    }
    for id in ids {
        engine.documents().wait_until_done(id, Duration::from_secs(3600)).await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Milliseconds of one semantic search.
async fn search_ms(engine: &Engine, text: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let query = SearchQuery {
        text: text.to_owned(),
        top_k: 10,
        document_ids: Vec::new(),
        collection_ids: Vec::new(),
        filter: ragd_core::MetadataFilter::default(),
    };
    let started = Instant::now();
    let hits = engine.search().semantic(&query).await?;
    if hits.is_empty() {
        return Err("a search found nothing".into());
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// Waits for a re-embed to finish that builds a generation after `after`, running `meanwhile`
/// in a loop (or polling); returns its report.
async fn wait_for_build<F, Fut>(
    engine: &Engine,
    after: u32,
    meanwhile: F,
) -> Result<ragd_engine::BuildReport, Box<dyn std::error::Error>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    loop {
        let status = engine.index_status()?;
        if let Some(report) = status.last_build.filter(|r| r.target.generation > after) {
            return Ok(report);
        }
        if let Some(error) = status.error {
            return Err(error.into());
        }
        meanwhile().await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index = ((values.len() - 1) as f64 * p).round() as usize;
    values[index]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: bench_reembed ASSETS_DIR CHUNKS";
    let mut args = std::env::args().skip(1);
    let assets = args.next().ok_or(usage)?;
    let chunks: usize = args.next().ok_or(usage)?.parse()?;
    let work = tempfile::tempdir()?;
    let docs = work.path().join("docs");
    std::fs::create_dir_all(&docs)?;
    let files: Vec<_> = (0..chunks.div_ceil(CHUNKS_PER_DOCUMENT))
        .map(|seed| {
            let path = docs.join(format!("record-{seed}.txt"));
            std::fs::write(&path, document(seed)).map(|()| path)
        })
        .collect::<Result<_, _>>()?;

    // Model A: ingest.
    let data = work.path().join("data");
    let engine =
        Engine::builder(config(&data, &assets, MODEL_A)).system_monitor(false).build().await?;
    let ingest_a = ingest(&engine, &files).await?;
    let stored = engine.catalog().count_chunks(None)?;
    drop(engine);

    // Model B on the same directory: the rebuild starts at open; nothing else runs.
    let engine =
        Engine::builder(config(&data, &assets, MODEL_B)).system_monitor(false).build().await?;
    let report = wait_for_build(&engine, 0, || async { Ok(()) }).await?;

    // Search latency on the idle index, then during a second re-embed (same model, by
    // hand) that the searches run against.
    let mut idle = Vec::new();
    for round in 0..5 {
        for text in QUERIES {
            let ms = search_ms(&engine, text).await?;
            if round > 0 {
                idle.push(ms);
            }
        }
    }
    let before = report.target.generation;
    engine.reembed().await?;
    let during = std::sync::Mutex::new(Vec::new());
    let (searcher, samples) = (&engine, &during);
    let loaded = wait_for_build(&engine, before, || async move {
        for text in QUERIES {
            let ms = search_ms(searcher, text).await?;
            samples.lock().map_err(|_| "poisoned")?.push(ms);
        }
        Ok(())
    })
    .await?;
    let mut during = during.into_inner().map_err(|_| "poisoned")?;
    drop(engine);

    // The peer: a plain ingest of the same documents with model B.
    let fresh = work.path().join("fresh");
    let engine =
        Engine::builder(config(&fresh, &assets, MODEL_B)).system_monitor(false).build().await?;
    let ingest_b = ingest(&engine, &files).await?;
    drop(engine);

    let stored_f = stored as f64;
    let idle_p50 = percentile(&mut idle, 0.5);
    let during_p50 = percentile(&mut during, 0.5);
    let line = serde_json::json!({
        "chunks": stored,
        "documents": files.len(),
        "ingest_a_chunks_per_s": stored_f / ingest_a,
        "reembed_chunks": report.chunks,
        "reembed_seconds": report.seconds,
        "reembed_chunks_per_s": report.chunks_per_second,
        "loaded_reembed_seconds": loaded.seconds,
        "loaded_reembed_chunks_per_s": loaded.chunks_per_second,
        "ingest_b_seconds": ingest_b,
        "ingest_b_chunks_per_s": stored_f / ingest_b,
        "search_idle_p50_ms": idle_p50,
        "search_idle_p95_ms": percentile(&mut idle, 0.95),
        "search_during_p50_ms": during_p50,
        "search_during_p95_ms": percentile(&mut during, 0.95),
        "searches_during": during.len(),
    });
    println!("{line}");
    Ok(())
}
