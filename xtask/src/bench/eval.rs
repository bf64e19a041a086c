//! `cargo xtask bench eval`: retrieval quality of keyword, semantic, hybrid and hybrid +
//! rerank search on the labelled set in `fixtures/eval` (public-domain texts, see its
//! README), through `ragd ingest` and `ragd eval` on a fresh data directory, appended to
//! `docs/BENCHMARKS.md`. The reranker is the bundled SmolLM2 scoring query likelihood.
//!
//! `--precisions fp32,int8_fused,...` runs the whole set once per file of the bundled
//! MiniLM (`embedding.precision`, default `auto`), so a faster file's cost in quality shows;
//! `--no-rerank` leaves out the slow reranked mode.
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

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// `embedding.precision` of each run: `auto` (the default) or a file of the bundled
    /// MiniLM, each on its own fresh data directory.
    precisions: Vec<String>,
    /// Whether to score hybrid + rerank (the bundled SmolLM2; about 20 s per query here).
    rerank: bool,
}

const USAGE: &str = "usage: cargo xtask bench eval [--precisions auto|fp32|int8|int8_fused[,...]] \
                     [--no-rerank]";

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { precisions: vec!["auto".to_owned()], rerank: true };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--no-rerank" => options.rerank = false,
            "--precisions" => {
                let list =
                    rest.next().ok_or_else(|| format!("--precisions needs a value\n{USAGE}"))?;
                options.precisions = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = options
                    .precisions
                    .iter()
                    .find(|p| !matches!(p.as_str(), "auto" | "fp32" | "int8" | "int8_fused"))
                {
                    return Err(format!("unknown precision {bad:?}\n{USAGE}"));
                }
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let assets = crate::setup()?;
    let out = crate::Build::Serving.run()?;
    let root = crate::workspace_root();
    let mut reports = Vec::new();
    for precision in &options.precisions {
        let data = crate::target_dir()?.join(format!("ragd-bench/eval/data-{precision}"));
        if data.exists() {
            fs::remove_dir_all(&data).map_err(|err| format!("{}: {err}", data.display()))?;
        }
        let ragd = |args: &[&str]| {
            let mut cmd = Command::new(out.join("ragd"));
            crate::clean_cargo_env(&mut cmd);
            // LanceDB warns about a scanner default once per query; the table is what matters.
            cmd.current_dir(&root)
                .env("RAGD_ASSETS_DIR", &assets)
                .env("RAGD_LOG__FILTER", "warn,lance=error")
                .env("RAGD_EMBEDDING__PRECISION", precision)
                .args(args);
            if options.rerank {
                cmd.env("RAGD_RERANK__MODEL", "bundled");
            }
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
        // `auto` names the file its probe kept.
        let file = match fs::read_to_string(data.join("embedding-precision")) {
            Ok(kept) if precision == "auto" => {
                format!("auto: {}", kept.lines().next().unwrap_or("?"))
            }
            _ => precision.clone(),
        };
        reports.push((file, report));
    }

    let command = format!("cargo xtask bench eval {}", args.join(" "));
    let mut section = header("Retrieval quality on fixtures/eval", command.trim());
    let queries = number(&reports[0].1, "queries")?;
    let _ = writeln!(
        section,
        "- set: `fixtures/eval` ({queries} labelled queries over public-domain texts); \
         `ragd eval` at k = 10, default chunking (256 tokens, 32 overlap), RRF k = 60; \
         each embedding file on its own fresh data directory{}\n",
        if options.rerank {
            "; rerank: the best 20 fused candidates scored by the bundled SmolLM2-135M \
             (query likelihood)"
        } else {
            "; no reranker"
        }
    );
    let _ = writeln!(
        section,
        "| embedding file | mode | recall@10 | MRR@10 | nDCG@10 | ms per query |"
    );
    let _ = writeln!(section, "|---|---|---|---|---|---|");
    let modes = if options.rerank { &MODES[..] } else { &MODES[..3] };
    for (file, report) in &reports {
        for mode in modes {
            let _ = writeln!(
                section,
                "| {file} | {mode} | {:.3} | {:.3} | {:.3} | {:.0} |",
                number(report, &format!("modes.{mode}.recall@10"))?,
                number(report, &format!("modes.{mode}.mrr@10"))?,
                number(report, &format!("modes.{mode}.ndcg@10"))?,
                number(report, &format!("modes.{mode}.ms_per_query"))?,
            );
        }
    }
    eprint!("{section}");
    append(&section)
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::*;

    #[test]
    fn options_default_and_override() {
        assert_eq!(
            parse(&[]).unwrap(),
            Options { precisions: vec!["auto".to_owned()], rerank: true }
        );
        let options = parse(&args(&["--precisions", "fp32,int8_fused", "--no-rerank"])).unwrap();
        assert_eq!(options.precisions, ["fp32", "int8_fused"]);
        assert!(!options.rerank);
        assert!(parse(&args(&["--precisions", "fp16"])).is_err());
        assert!(parse(&args(&["--precisions"])).is_err());
        assert!(parse(&args(&["--bogus"])).is_err());
    }
}
