//! `cargo xtask bench search`: vector search latency and recall of ragd against chromadb
//! and against Lance's own release build on ragd's index.
//!
//! `xtask/bench/search.py data` writes deterministic, clustered 384-dimension unit vectors,
//! fresh query vectors and the exact top 10 of every query (numpy brute force) to files both
//! contenders read. For each table size:
//!
//! - `ragd`: `LanceStore` (example `bench_search` of `ragd-vector-store`) loads the rows
//!   through `VectorStore::upsert`, answers the queries by exact flat scan, then builds its
//!   IVF_HNSW_SQ index the way the product does and answers them again through it;
//! - `pylance`: the same queries on the table and index ragd just built, through the
//!   `pylance` wheel of the Lance version ragd links (Lance's own release build), with
//!   ragd's query parameters: what ragd's layers cost on top of Lance itself;
//! - `chromadb`: a persistent collection (HNSW, cosine) with the same rows and queries.
//!
//! Reported: per-query latency p50 and p99 (sequential queries, after a warm-up), recall@10
//! against the exact answers, load and index build times, and ragd's latency as a ratio of
//! chromadb's.

use std::fmt::Write as _;

use super::{Setup, json_line, number};
use crate::Result;

const USAGE: &str = "usage: cargo xtask bench search [--sizes N,N...] [--queries Q] \
                     [--flat-queries F] [--ef-sweep EF,EF...] [--ann-max-rows N]";

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    sizes: Vec<usize>,
    /// Queries for the ANN passes and chromadb.
    queries: usize,
    /// Queries for ragd's exact flat scan (its recall is 1, so fewer are enough).
    flat_queries: usize,
    /// More `ef` values ragd's index is searched with (recall against latency).
    ef_sweep: Vec<usize>,
    /// Tables larger than this skip ragd's index (72 s for 100 000 rows here with
    /// dependencies at opt-level 1; 11 minutes for 10 000 rows at opt-level 0).
    ann_max_rows: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizes: vec![10_000, 100_000],
            queries: 200,
            flat_queries: 50,
            ef_sweep: Vec::new(),
            ann_max_rows: 100_000,
        }
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|size| size.trim().parse().ok().filter(|n| *n >= 100))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("--sizes wants numbers of at least 100\n{USAGE}"))?;
            }
            "--ef-sweep" => {
                options.ef_sweep = value
                    .split(',')
                    .map(|ef| ef.trim().parse().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("--ef-sweep wants positive numbers\n{USAGE}"))?;
            }
            "--queries" | "--flat-queries" | "--ann-max-rows" => {
                let number = value
                    .parse()
                    .ok()
                    .filter(|q| *q > 0)
                    .ok_or_else(|| format!("{flag} needs a positive number\n{USAGE}"))?;
                match flag.as_str() {
                    "--queries" => options.queries = number,
                    "--flat-queries" => options.flat_queries = number,
                    _ => options.ann_max_rows = number,
                }
            }
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    options.sizes.sort_unstable();
    options.sizes.dedup();
    Ok(options)
}

/// The numbers of the contenders at one table size.
struct SizeResult {
    n: usize,
    ragd: serde_json::Value,
    chroma: serde_json::Value,
    /// Lance's own build on ragd's index; none when ragd built no index.
    pylance: Option<serde_json::Value>,
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let setup = Setup::new("search")?;
    let data = setup.work.join("data");
    let sizes: Vec<String> = options.sizes.iter().map(ToString::to_string).collect();
    let mut generate = setup.script("search.py");
    generate
        .args(["data", "--sizes", &sizes.join(","), "--queries", &options.queries.to_string()])
        .arg("--out")
        .arg(&data);
    crate::run(generate)?;

    let load_before = super::load_average();
    let mut results = Vec::new();
    for (position, &n) in options.sizes.iter().enumerate() {
        let lance_dir = setup.work.join("lance");
        let indexed = n <= options.ann_max_rows;
        // ragd, then Lance's own build on the index ragd left behind.
        let ragd = || -> Result<(serde_json::Value, Option<serde_json::Value>)> {
            let mut cmd = Setup::example(&setup.out, "bench_search")?;
            cmd.arg("--data").arg(&data).args(["--n", &n.to_string()]);
            cmd.args(["--queries", &options.queries.to_string()]);
            cmd.args(["--flat-queries", &options.flat_queries.to_string()]);
            if !options.ef_sweep.is_empty() {
                let sweep: Vec<String> = options.ef_sweep.iter().map(ToString::to_string).collect();
                cmd.args(["--ef-sweep", &sweep.join(",")]);
            }
            if !indexed {
                cmd.arg("--skip-ann");
            }
            cmd.arg("--db").arg(&lance_dir).arg("--keep-db");
            let ragd = json_line(cmd)?;
            let pylance = if indexed {
                let mut cmd = setup.script("search.py");
                cmd.arg("lance").arg("--dir").arg(&data).args(["--n", &n.to_string()]);
                cmd.args(["--queries", &options.queries.to_string()]);
                cmd.args(["--ef", &number(&ragd, "ef")?.to_string()]);
                cmd.arg("--table").arg(lance_dir.join("chunks.lance"));
                Some(json_line(cmd)?)
            } else {
                None
            };
            let _ = std::fs::remove_dir_all(&lance_dir);
            Ok((ragd, pylance))
        };
        let chroma = || -> Result<serde_json::Value> {
            let mut cmd = setup.script("search.py");
            cmd.arg("chroma").arg("--dir").arg(&data).args(["--n", &n.to_string()]);
            cmd.args(["--queries", &options.queries.to_string()]);
            cmd.arg("--db").arg(setup.work.join("chroma"));
            json_line(cmd)
        };
        // Alternate which contender goes first from one size to the next.
        let ((ragd, pylance), chroma) = if position % 2 == 0 {
            let first = ragd()?;
            (first, chroma()?)
        } else {
            let first = chroma()?;
            (ragd()?, first)
        };
        eprintln!(
            "xtask: bench search: n={n}: ragd {ragd}; chromadb {chroma}; pylance {pylance:?}"
        );
        results.push(SizeResult { n, ragd, chroma, pylance });
    }
    let load_after = super::load_average();

    let command = format!("cargo xtask bench search {}", args.join(" "));
    let mut out = super::header("Vector search", command.trim());
    let _ = writeln!(
        out,
        "- input: clustered unit vectors, 384 dimensions (about 100 rows per cluster, \
         within-cluster cosine about 0.4), {} fresh query vectors from the same clusters, \
         top 10, cosine; exact answers by numpy brute force; queries one at a time after 5 \
         warm-up queries; ragd's flat scan timed on the first {} queries; ragd's index built \
         for tables of up to {} rows",
        options.queries, options.flat_queries, options.ann_max_rows
    );
    let _ = writeln!(
        out,
        "- ragd: `LanceStore` through `VectorStore::upsert` / `search` in one process (rows \
         loaded in upserts of 5000); `flat` is its exact scan before the index exists, `ann` \
         the IVF_HNSW_SQ index it builds once a table passes `index_threshold_rows` (refine \
         factor 1, `ef` {}). pylance: the same table and index, queried through Lance's own \
         release build (the `pylance` wheel of the Lance version ragd links) with ragd's \
         query (cosine, same `ef`, refine factor 1, same columns). chromadb: \
         `PersistentClient`, `hnsw:space = cosine`, default HNSW parameters, queried through \
         its Python client",
        results
            .iter()
            .find_map(|r| number(&r.ragd, "ef").ok())
            .map_or_else(|| "unknown".to_owned(), |ef| ef.to_string())
    );
    let version = results
        .first()
        .and_then(|r| r.chroma.get("version"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown");
    let _ = writeln!(out, "- chromadb {version}");
    let _ = writeln!(out, "- 1-minute load average before / after: {load_before} / {load_after}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| rows | contender | p50 ms | p99 ms | recall@10 | load s | index build s | p50 ÷ chromadb p50 | p99 ÷ chromadb p99 |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for result in &results {
        let chroma_p50 = number(&result.chroma, "p50_ms")?;
        let chroma_p99 = number(&result.chroma, "p99_ms")?;
        let load = number(&result.ragd, "load_s")?;
        let index = number(&result.ragd, "index_s").ok();
        for (label, pass) in [("ragd ann", "ann"), ("ragd flat (exact)", "flat")] {
            let build = match (pass, index) {
                ("ann", Some(seconds)) => format!("{seconds:.1}"),
                _ => "–".to_owned(),
            };
            let Ok(p50) = number(&result.ragd, &format!("{pass}.p50_ms")) else {
                let _ = writeln!(
                    out,
                    "| {} | {label} | not run (larger than `--ann-max-rows`) | | | {load:.1} | – \
                     | | |",
                    result.n
                );
                continue;
            };
            let p99 = number(&result.ragd, &format!("{pass}.p99_ms"))?;
            let recall = number(&result.ragd, &format!("{pass}.recall"))?;
            let _ = writeln!(
                out,
                "| {} | {label} | {p50:.2} | {p99:.2} | {recall:.3} | {load:.1} | {build} | {:.2} | {:.2} |",
                result.n,
                p50 / chroma_p50,
                p99 / chroma_p99
            );
        }
        if let Some(pylance) = &result.pylance {
            let p50 = number(pylance, "p50_ms")?;
            let p99 = number(pylance, "p99_ms")?;
            let _ = writeln!(
                out,
                "| {} | pylance on ragd's index | {p50:.2} | {p99:.2} | {:.3} | – | – | {:.2} | {:.2} |",
                result.n,
                number(pylance, "recall")?,
                p50 / chroma_p50,
                p99 / chroma_p99
            );
        }
        let _ = writeln!(
            out,
            "| {} | chromadb | {chroma_p50:.2} | {chroma_p99:.2} | {:.3} | {:.1} | (during load) | 1.00 | 1.00 |",
            result.n,
            number(&result.chroma, "recall")?,
            number(&result.chroma, "load_s")?
        );
    }
    let _ = writeln!(out);
    for result in &results {
        if let (Some(pylance), Ok(ragd)) = (&result.pylance, number(&result.ragd, "ann.p50_ms")) {
            let _ = writeln!(
                out,
                "- {} rows: ragd's indexed query p50 is {:.2}x Lance's own build on the same index",
                result.n,
                ragd / number(pylance, "p50_ms")?
            );
        }
    }
    let sweeps: Vec<&SizeResult> = results
        .iter()
        .filter(|r| r.ragd["sweep"].as_array().is_some_and(|s| !s.is_empty()))
        .collect();
    if !sweeps.is_empty() {
        let _ = writeln!(out, "\nragd's index searched with other `ef` values (`--ef-sweep`):\n");
        let _ = writeln!(out, "| rows | ef | p50 ms | p99 ms | recall@10 |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|");
        for result in sweeps {
            for entry in result.ragd["sweep"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.2} | {:.3} |",
                    result.n,
                    number(entry, "ef")?,
                    number(entry, "pass.p50_ms")?,
                    number(entry, "pass.p99_ms")?,
                    number(entry, "pass.recall")?
                );
            }
        }
    }
    print!("{out}");
    super::append(&out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::*;

    #[test]
    fn options_default_and_override() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&args(&["--sizes", "2000,1000,2000", "--queries", "50"])).unwrap();
        assert_eq!(options.sizes, vec![1000, 2000]);
        assert_eq!(options.queries, 50);
        let options = parse(&args(&["--ef-sweep", "15,100"])).unwrap();
        assert_eq!(options.ef_sweep, vec![15, 100]);
        assert!(parse(&args(&["--ef-sweep", "15,0"])).is_err());
        let options = parse(&args(&["--flat-queries", "7", "--ann-max-rows", "100000"])).unwrap();
        assert_eq!((options.flat_queries, options.ann_max_rows), (7, 100_000));
        assert!(parse(&args(&["--sizes", "10"])).is_err());
        assert!(parse(&args(&["--queries", "0"])).is_err());
        assert!(parse(&args(&["--queries"])).is_err());
    }
}
