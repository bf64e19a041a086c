//! The ragd contender of `cargo xtask bench search`: [`LanceStore`] search latency and recall.
//!
//! `cargo xtask bench search` builds this with the serving build (`cargo build --profile
//! serving-lto --workspace --bins --examples`) and runs it on vector files written by
//! `xtask/bench/search.py`:
//!
//! ```text
//! bench_search --data DIR --n 10000 --queries 200 --flat-queries 50 --db TMPDIR [--skip-ann]
//!              [--ef EF] [--ef-sweep EF,EF...] [--keep-db]
//! ```
//!
//! 1. Loads the first `n` rows of `DIR/base.f32` into the `chunks` table of a new store
//!    whose index threshold is out of reach, through `VectorStore::upsert` in batches, as
//!    the ingest pipeline writes them.
//! 2. Searches it with the first `--flat-queries` queries: an exact flat scan (no index yet).
//! 3. Reopens the store with `index_threshold_rows = n` and upserts one row again, which
//!    builds the IVF_HNSW_SQ index exactly as the product does once a table is large enough.
//! 4. Searches again through the index, with every query.
//!
//! `--skip-ann` leaves out steps 3 and 4 (the index build is slow in an unoptimised build).
//! `--ef` sets `LanceStoreConfig::search_ef` (default: the store's default);
//! `--ef-sweep` repeats step 4 with each of those values too (`sweep` in the output). `--keep-db`
//! leaves the database in place, so another reader (the `lance` Python wheel) can query
//! the very same index.
//!
//! `--db` may be an object-store URI (`s3://bucket/prefix`, a fresh prefix per run); the
//! store then reads its endpoint and credentials from the `AWS_*` environment variables,
//! as ragd does.
//!
//! Latencies are per query, sequential, after a short warm-up; recall@k is against the
//! exact answers in `DIR/truth-N.u32` (numpy brute force). Prints one JSON line.

#![allow(clippy::print_stdout)] // The JSON result line is this program's output.

use std::collections::HashSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ragd_core::{
    DocumentId, EmbeddedRecord, SearchRequest, TableName, VectorFilter, VectorStore as _,
};
use ragd_vector_store::{LanceStore, LanceStoreConfig, is_object_store_uri};
use uuid::Uuid;

type AnyResult<T> = Result<T, Box<dyn Error>>;

/// Rows of one `upsert` call while loading.
const LOAD_BATCH: usize = 5_000;
/// Queries run before timing starts.
const WARM_UP: usize = 5;
/// Rows per made-up document, so rows carry document ids as real chunks do.
const ROWS_PER_DOCUMENT: usize = 50;

/// The command-line options.
#[derive(Debug)]
struct Options {
    data: PathBuf,
    n: usize,
    queries: usize,
    flat_queries: usize,
    k: usize,
    dim: usize,
    db: PathBuf,
    skip_ann: bool,
    ef: Option<usize>,
    ef_sweep: Vec<usize>,
    keep_db: bool,
}

fn parse(args: &[String]) -> AnyResult<Options> {
    let value = |name: &str| -> AnyResult<String> {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|at| args.get(at + 1))
            .cloned()
            .ok_or_else(|| format!("missing {name} VALUE").into())
    };
    Ok(Options {
        data: value("--data")?.into(),
        n: value("--n")?.parse()?,
        queries: value("--queries")?.parse()?,
        flat_queries: value("--flat-queries").map_or(Ok(usize::MAX), |v| v.parse())?,
        k: value("--k").unwrap_or_else(|_| "10".to_owned()).parse()?,
        dim: value("--dim").unwrap_or_else(|_| "384".to_owned()).parse()?,
        db: value("--db")?.into(),
        skip_ann: args.iter().any(|arg| arg == "--skip-ann"),
        ef: value("--ef").ok().map(|v| v.parse()).transpose()?,
        ef_sweep: match value("--ef-sweep") {
            Ok(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
            Err(_) => Vec::new(),
        },
        keep_db: args.iter().any(|arg| arg == "--keep-db"),
    })
}

/// Reads little-endian 4-byte values; `rows` of `width` from the start of the file.
fn read_rows<T>(
    path: &Path,
    width: usize,
    rows: usize,
    decode: fn([u8; 4]) -> T,
) -> AnyResult<Vec<Vec<T>>> {
    let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let values: Vec<T> = bytes.chunks_exact(4).map(|c| decode([c[0], c[1], c[2], c[3]])).collect();
    if values.len() < width * rows {
        return Err(format!("{} holds fewer than {rows} rows of {width}", path.display()).into());
    }
    let mut values = values.into_iter();
    Ok((0..rows).map(|_| values.by_ref().take(width).collect()).collect())
}

/// The id of row `row`: a UUID whose low bits are the row number, so hits map back.
fn row_id(row: usize) -> Uuid {
    Uuid::from_u128(0xbe00_0000_0000_4000_8000_0000_0000_0000 | row as u128)
}

fn row_of(id: Uuid) -> usize {
    usize::try_from(id.as_u128() & 0xffff_ffff).unwrap_or(usize::MAX)
}

/// Latency percentiles (ms) and recall@k of one pass over the queries.
#[derive(Debug)]
struct Pass {
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    recall: f64,
}

impl Pass {
    fn json(&self) -> String {
        format!(
            "{{\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"mean_ms\":{:.3},\"recall\":{:.4}}}",
            self.p50_ms, self.p99_ms, self.mean_ms, self.recall
        )
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    // Linear interpolation between closest ranks, as numpy's default.
    let at = q / 100.0 * (sorted.len().saturating_sub(1)) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    let (a, b) =
        (sorted.get(low).copied().unwrap_or(0.0), sorted.get(high).copied().unwrap_or(0.0));
    a + (b - a) * (at - at.floor())
}

async fn search_pass(
    store: &LanceStore,
    queries: &[Vec<f32>],
    truth: &[Vec<u32>],
    k: usize,
) -> AnyResult<Pass> {
    let request = |vector: &Vec<f32>| SearchRequest {
        table: TableName::Chunks,
        vector: vector.clone(),
        top_k: k,
        filter: VectorFilter::default(),
    };
    for query in queries.iter().take(WARM_UP) {
        store.search(request(query)).await?;
    }
    let mut latencies = Vec::with_capacity(queries.len());
    let mut hits = 0_usize;
    for (query, exact) in queries.iter().zip(truth) {
        let request = request(query);
        let start = Instant::now();
        let found = store.search(request).await?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        let exact: HashSet<usize> = exact.iter().take(k).map(|&row| row as usize).collect();
        hits += found.iter().filter(|hit| exact.contains(&row_of(hit.id))).count();
    }
    let mean_ms = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    latencies.sort_by(f64::total_cmp);
    Ok(Pass {
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        mean_ms,
        recall: hits as f64 / (queries.len() * k).max(1) as f64,
    })
}

/// The `ef` a search of `k` hits runs with under `config` (the store never goes below
/// LanceDB's 1.5 × k).
fn effective_ef(config: &LanceStoreConfig, k: usize) -> usize {
    config.search_ef.max(k * 3 / 2)
}

/// Whether `--db` is a local directory (else an object-store URI, left as it is: give each
/// run a fresh prefix).
fn on_disk(options: &Options) -> bool {
    !is_object_store_uri(&options.db.to_string_lossy())
}

fn config(options: &Options, index_threshold_rows: usize) -> LanceStoreConfig {
    let mut config = LanceStoreConfig::new(
        options.db.to_string_lossy(),
        "sentence-transformers/all-MiniLM-L6-v2",
        options.dim,
    );
    config.index_threshold_rows = index_threshold_rows;
    if let Some(ef) = options.ef {
        config.search_ef = ef;
    }
    config
}

fn record(row: usize, vector: Vec<f32>, documents: &[DocumentId]) -> EmbeddedRecord {
    EmbeddedRecord {
        id: row_id(row),
        document_id: documents.get(row / ROWS_PER_DOCUMENT).copied(),
        session_id: None,
        vector,
    }
}

async fn run(options: &Options) -> AnyResult<String> {
    let truth_k = 10;
    let base =
        read_rows(&options.data.join("base.f32"), options.dim, options.n, f32::from_le_bytes)?;
    let queries = read_rows(
        &options.data.join("queries.f32"),
        options.dim,
        options.queries,
        f32::from_le_bytes,
    )?;
    let truth_file = options.data.join(format!("truth-{}.u32", options.n));
    let truth = read_rows(&truth_file, truth_k, options.queries, u32::from_le_bytes)?;
    let documents: Vec<DocumentId> =
        (0..options.n.div_ceil(ROWS_PER_DOCUMENT)).map(|_| DocumentId::new()).collect();
    if on_disk(options) && options.db.exists() {
        std::fs::remove_dir_all(&options.db)?;
    }

    // 1. Load, with the index threshold out of reach.
    let store = LanceStore::open(config(options, usize::MAX)).await?;
    let start = Instant::now();
    let mut rows = base.iter().cloned().enumerate();
    loop {
        let batch: Vec<EmbeddedRecord> =
            rows.by_ref().take(LOAD_BATCH).map(|(row, v)| record(row, v, &documents)).collect();
        if batch.is_empty() {
            break;
        }
        store.upsert(TableName::Chunks, batch).await?;
    }
    let load_s = start.elapsed().as_secs_f64();
    let count = store.count(TableName::Chunks).await?;

    // 2. Exact: a flat scan.
    let flat_queries = options.flat_queries.min(queries.len());
    let flat = search_pass(&store, &queries[..flat_queries], &truth, options.k).await?;
    drop(store);

    let mut index_s = None;
    let mut ann = None;
    let mut sweep = Vec::new();
    if !options.skip_ann {
        // 3. Build the index the way the product does: the next upsert past the threshold.
        let store = LanceStore::open(config(options, options.n)).await?;
        let start = Instant::now();
        let again = base.first().cloned().ok_or("no rows")?;
        store.upsert(TableName::Chunks, vec![record(0, again, &documents)]).await?;
        index_s = Some(start.elapsed().as_secs_f64());
        if !store.has_vector_index(TableName::Chunks).await? {
            return Err("the store did not build its ANN index".into());
        }
        // 4. Through the index.
        ann = Some(search_pass(&store, &queries, &truth, options.k).await?);
        drop(store);
        for &ef in &options.ef_sweep {
            let mut config = config(options, options.n);
            config.search_ef = ef;
            let used = effective_ef(&config, options.k);
            let store = LanceStore::open(config).await?;
            let pass = search_pass(&store, &queries, &truth, options.k).await?;
            sweep.push(format!("{{\"ef\":{used},\"pass\":{}}}", pass.json()));
        }
    }
    if !options.keep_db && on_disk(options) {
        std::fs::remove_dir_all(&options.db)?;
    }

    Ok(format!(
        concat!(
            "{{\"contender\":\"ragd-lancedb\",\"n\":{},\"rows\":{},\"queries\":{},",
            "\"flat_queries\":{},\"k\":{},\"ef\":{},\"load_s\":{:.3},\"index_s\":{},",
            "\"flat\":{},\"ann\":{},\"sweep\":[{}]}}"
        ),
        options.n,
        count,
        options.queries,
        flat_queries,
        options.k,
        effective_ef(&config(options, 0), options.k),
        load_s,
        index_s.map_or_else(|| "null".to_owned(), |s| format!("{s:.3}")),
        flat.json(),
        ann.map_or_else(|| "null".to_owned(), |pass| pass.json()),
        sweep.join(","),
    ))
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    if options.k > 10 {
        return Err("--k is at most 10 (the exact answers hold the top 10)".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let line = runtime.block_on(run(&options))?;
    println!("{line}");
    Ok(())
}
