//! The ragd contender of `cargo xtask bench embed`: [`OrtEmbedder`] throughput on fixed texts.
//!
//! `cargo xtask bench embed` builds this with the serving build (`cargo build --profile
//! serving-lto --workspace --bins --examples`) and runs it next to the Python contenders on
//! the same texts:
//!
//! ```text
//! bench_embed --assets DIR --texts texts.json --threads 2 --batch 32 --vectors out.f32
//!             [--precision int8|fp32|int8_fused]
//! ```
//!
//! It loads the bundled all-MiniLM-L6-v2 (the int8 ONNX file of its package, or with
//! `--precision fp32` or `int8_fused` a file `cargo xtask assets` builds) with `--threads`
//! intra-op threads,
//! embeds one batch to warm up, then embeds every text in calls of `--batch` texts, as the
//! ingest pipeline does, and prints one JSON line: `chunks`, `seconds`, `chunks_per_s`.
//! The vectors go to `--vectors` (little-endian f32) so they can be compared with the
//! other contenders'.

#![allow(clippy::print_stdout)] // The JSON result line is this program's output.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use ragd_embedding::{EmbedderConfig, OrtEmbedder};

type AnyResult<T> = Result<T, Box<dyn Error>>;

/// The command-line options.
#[derive(Debug)]
struct Options {
    assets: PathBuf,
    texts: PathBuf,
    threads: usize,
    batch: usize,
    max_tokens: usize,
    vectors: PathBuf,
    /// `int8`, `fp32` or `int8_fused`.
    precision: String,
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
        assets: value("--assets")?.into(),
        texts: value("--texts")?.into(),
        threads: value("--threads")?.parse()?,
        batch: value("--batch")?.parse()?,
        max_tokens: value("--max-tokens").unwrap_or_else(|_| "256".to_owned()).parse()?,
        vectors: value("--vectors")?.into(),
        precision: value("--precision").unwrap_or_else(|_| "int8".to_owned()),
    })
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(&options.texts)?)?;
    let dylib = options.assets.join(ragd_core::assets::ONNX_RUNTIME.path);
    let mut config = EmbedderConfig::minilm(&options.assets, &dylib);
    let file = match options.precision.as_str() {
        "int8" => ragd_core::assets::EMBEDDING_MODEL,
        "fp32" => ragd_core::assets::EMBEDDING_MODEL_FP32,
        "int8_fused" => ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED,
        other => return Err(format!("--precision {other:?}: int8, fp32 or int8_fused").into()),
    };
    config.model_path = options.assets.join(file.path);
    // As the engine runs it: the int8_fused file one text per run, so no vector depends
    // on its batch.
    let texts_per_run = if file == ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED {
        ragd_core::assets::EMBEDDING_MODEL_INT8_FUSED_TEXTS_PER_RUN
    } else {
        options.batch
    };
    config.intra_op_threads = Some(options.threads);
    config.max_batch_size = texts_per_run;
    config.max_tokens = options.max_tokens;
    config.batch_token_budget = config.batch_token_budget.max(options.batch * options.max_tokens);
    let embedder = OrtEmbedder::load(&config)?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (vectors, seconds) = runtime.block_on(async {
        let warm_up: Vec<String> = texts.iter().take(options.batch).cloned().collect();
        embedder.embed(warm_up).await?;
        let start = Instant::now();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(options.batch) {
            vectors.extend(embedder.embed(batch.to_vec()).await?);
        }
        Ok::<_, ragd_embedding::Error>((vectors, start.elapsed().as_secs_f64()))
    })?;

    let bytes: Vec<u8> = vectors.iter().flatten().flat_map(|value| value.to_le_bytes()).collect();
    std::fs::write(&options.vectors, bytes)?;
    let result = serde_json::json!({
        "contender": match options.precision.as_str() {
            "int8" => "ragd".to_owned(),
            other => format!("ragd-{}", other.replace('_', "-")),
        },
        "dtype": options.precision,
        "chunks": texts.len(),
        "seconds": seconds,
        "chunks_per_s": texts.len() as f64 / seconds,
        "threads": options.threads,
        "provider": embedder.provider(),
    });
    println!("{result}");
    Ok(())
}
