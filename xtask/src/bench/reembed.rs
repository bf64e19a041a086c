//! `cargo xtask bench reembed`: re-embedding the index with another model, against the
//! plain ingest of the same chunks with that model, and search latency during the rebuild
//! against the idle index.
//!
//! The contender is the example `bench_reembed` of `ragd-engine` (see its docs): generated
//! documents (`--chunks`, default 10 000, 64-token chunks) are ingested with
//! all-MiniLM-L6-v2, searched while idle, then the engine is reopened with
//! paraphrase-MiniLM-L3-v2, which re-embeds in the background while the same searches run;
//! finally the same documents are ingested with paraphrase-MiniLM-L3-v2 into a fresh
//! directory. The peer of the re-embed is that plain ingest: the same chunks, the same model,
//! the same process and machine, so the ratio says what the rebuild costs over embedding
//! alone (it skips extraction and chunking, and adds the read of the catalog and the swap).

use std::fmt::Write as _;

use super::{Setup, append, header, json_line, load_average, number};
use crate::Result;

const USAGE: &str = "usage: cargo xtask bench reembed [--chunks N]";

pub(super) fn run(args: &[String]) -> Result<()> {
    let chunks = match args {
        [] => 10_000,
        [flag, value] if flag == "--chunks" => value
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 100)
            .ok_or_else(|| format!("--chunks needs a number of at least 100\n{USAGE}"))?,
        _ => return Err(USAGE.to_owned()),
    };
    // No Python peer: the peer is ragd's own ingest, so no virtual environment either.
    let assets = crate::setup()?;
    let out = crate::Build::Serving.run()?;
    let mut cmd = Setup::example(&out, "bench_reembed")?;
    cmd.env("RUST_LOG", "warn,lance=error").arg(&assets).arg(chunks.to_string());
    let load = load_average();
    let r = json_line(cmd)?;

    let command = if args.is_empty() {
        "cargo xtask bench reembed".to_owned()
    } else {
        format!("cargo xtask bench reembed {}", args.join(" "))
    };
    let mut section = header("Re-embedding with another model", &command);
    let stored = number(&r, "chunks")?;
    let reembed = number(&r, "reembed_chunks_per_s")?;
    let ingest = number(&r, "ingest_b_chunks_per_s")?;
    let idle = number(&r, "search_idle_p50_ms")?;
    let during = number(&r, "search_during_p50_ms")?;
    let _ = writeln!(
        section,
        "- data: {stored} chunks of 64 tokens in {} generated documents; index built with \
         all-MiniLM-L6-v2 (int8), re-embedded with paraphrase-MiniLM-L3-v2 (fp32); load \
         average at start {load}\n",
        number(&r, "documents")?
    );
    let _ = writeln!(section, "| | chunks/s | seconds | ratio |");
    let _ = writeln!(section, "|---|---|---|---|");
    let _ = writeln!(
        section,
        "| re-embed (background rebuild, then swap) | {reembed:.1} | {:.1} | {:.2}x |",
        number(&r, "reembed_seconds")?,
        reembed / ingest
    );
    let _ = writeln!(
        section,
        "| plain ingest of the same documents, same model (peer) | {ingest:.1} | {:.1} | 1.00x |",
        number(&r, "ingest_b_seconds")?
    );
    let loaded = number(&r, "loaded_reembed_chunks_per_s")?;
    let _ = writeln!(
        section,
        "| re-embed while the searches below run back to back | {loaded:.1} | {:.1} | {:.2}x |",
        number(&r, "loaded_reembed_seconds")?,
        loaded / ingest
    );
    let _ = writeln!(section, "\n| semantic search, top 10 | p50 ms | p95 ms | p50 ratio |");
    let _ = writeln!(section, "|---|---|---|---|");
    let _ = writeln!(
        section,
        "| idle index | {idle:.1} | {:.1} | 1.00x |",
        number(&r, "search_idle_p95_ms")?
    );
    let _ = writeln!(
        section,
        "| during the re-embed ({} searches) | {during:.1} | {:.1} | {:.2}x |",
        number(&r, "searches_during")?,
        number(&r, "search_during_p95_ms")?,
        during / idle
    );
    eprint!("{section}");
    append(&section)
}
