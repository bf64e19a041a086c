//! `cargo xtask bench eval`: retrieval quality of keyword, semantic, hybrid and hybrid +
//! rerank search on the labelled set in `fixtures/eval` (public-domain texts, see its
//! README), through `ragd ingest` and `ragd eval` on a fresh data directory, appended to
//! `docs/BENCHMARKS.md`. The reranker is the bundled SmolLM2 scoring query likelihood.
//!
//! This is mainly a quality table: recall@10, MRR@10 and nDCG@10 are properties of the
//! models, the chunking and the fusion, and repeat exactly on any machine. The time per
//! query is the machine's, shown to say what each stage costs. A retrieval change (a new
//! chunker, weights, a reranker) shows here as a new row to compare with.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use super::{append, header, json_line, number};
use crate::Result;

/// The modes `ragd eval` reports, in table order.
const MODES: [&str; 4] = ["keyword", "semantic", "hybrid", "hybrid+rerank"];

pub(super) fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        return Err(format!("bench eval takes no options, got {arg:?}"));
    }
    let assets = crate::setup()?;
    let out = crate::Build::Serving.run()?;
    let data = crate::target_dir()?.join("ragd-bench/eval/data");
    if data.exists() {
        fs::remove_dir_all(&data).map_err(|err| format!("{}: {err}", data.display()))?;
    }
    let root = crate::workspace_root();
    let ragd = |args: &[&str]| {
        let mut cmd = Command::new(out.join("ragd"));
        crate::clean_cargo_env(&mut cmd);
        // LanceDB warns about a scanner default once per query; the table is what matters.
        cmd.current_dir(&root)
            .env("RAGD_ASSETS_DIR", &assets)
            .env("RAGD_LOG__FILTER", "warn,lance=error")
            .env("RAGD_RERANK__MODEL", "bundled")
            .args(args);
        Ok::<_, String>(cmd)
    };
    let data_arg = data.to_str().ok_or("the target directory is not UTF-8")?;
    crate::run(ragd(&["ingest", "fixtures/eval/docs", "--data-dir", data_arg])?)?;
    let report = json_line(ragd(&[
        "eval",
        "fixtures/eval/queries.json",
        "--json",
        "--data-dir",
        data_arg,
    ])?)?;

    let mut section = header("Retrieval quality on fixtures/eval", "cargo xtask bench eval");
    let queries = number(&report, "queries")?;
    let _ = writeln!(
        section,
        "- set: `fixtures/eval` ({queries} labelled queries over public-domain texts); \
         `ragd eval` at k = 10, default chunking (256 tokens, 32 overlap), RRF k = 60; \
         rerank: the best 20 fused candidates scored by the bundled SmolLM2-135M \
         (query likelihood)\n"
    );
    let _ = writeln!(section, "| mode | recall@10 | MRR@10 | nDCG@10 | ms per query |");
    let _ = writeln!(section, "|---|---|---|---|---|");
    for mode in MODES {
        let _ = writeln!(
            section,
            "| {mode} | {:.3} | {:.3} | {:.3} | {:.0} |",
            number(&report, &format!("modes.{mode}.recall@10"))?,
            number(&report, &format!("modes.{mode}.mrr@10"))?,
            number(&report, &format!("modes.{mode}.ndcg@10"))?,
            number(&report, &format!("modes.{mode}.ms_per_query"))?,
        );
    }
    eprint!("{section}");
    append(&section)
}
