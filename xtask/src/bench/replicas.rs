//! `cargo xtask bench replicas`: ingest throughput of 1 and 2 ragd replicas sharing a
//! Postgres catalog and an S3 bucket, on the corpus `bench ingest` reads.
//!
//! Each run (`xtask/bench/replicas.py`, in the clients venv, which has moto) starts a
//! throwaway Postgres cluster, moto's S3 server on loopback and N `ragd serve` processes
//! (`catalog.url`, `vector_store.uri`, `ingest.uploads_uri` shared), uploads every corpus
//! file round robin over the replicas, and times from the first upload until every document
//! is `ready` or `failed`. Replica counts alternate order across rounds; the table has the
//! median of the rounds and the ratio to one replica.
//!
//! The replicas share the machine: on a 2-core machine two replicas share two cores, so the
//! ratio says what the shared queue costs or gains there, not what two machines would do.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use super::{json_line, median, number};
use crate::Result;

const USAGE: &str = "usage: cargo xtask bench replicas [--rounds R] [--replicas N[,N...]] \
     [--workers W] [--threads T] [--ragd PATH]";

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    rounds: usize,
    replicas: Vec<usize>,
    /// `ingest.workers` of each replica.
    workers: usize,
    /// Intra-op threads of each replica's embedding model.
    threads: usize,
    /// The `ragd` to run; default: the serving build's.
    ragd: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self { rounds: 1, replicas: vec![1, 2], workers: 2, threads: 2, ragd: None }
    }
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let positive = |text: &str| text.parse::<usize>().ok().filter(|n| *n > 0);
        let bad = || format!("{flag} needs positive numbers, got {value:?}\n{USAGE}");
        match flag.as_str() {
            "--rounds" => options.rounds = positive(value).ok_or_else(bad)?,
            "--workers" => options.workers = positive(value).ok_or_else(bad)?,
            "--threads" => options.threads = positive(value).ok_or_else(bad)?,
            "--replicas" => {
                options.replicas =
                    value.split(',').map(positive).collect::<Option<Vec<_>>>().ok_or_else(bad)?;
            }
            "--ragd" => options.ragd = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// One run's outcome.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    files: f64,
    failed: f64,
    chunks: f64,
    seconds: f64,
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let assets = crate::setup()?;
    crate::sysdeps::ensure_database()?;
    let (ragd, build_line) = match &options.ragd {
        Some(path) => (path.clone(), format!("- build: `{}`, given with `--ragd`", path.display())),
        None => (crate::Build::Serving.run()?.join("ragd"), super::build_line()),
    };
    let python = crate::clients::python()?;
    let corpus = crate::fetch_corpus()?;
    let files = super::ingest::corpus_files(&corpus)?;

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); options.replicas.len()];
    let load_before = super::load_average();
    for round in 0..options.rounds {
        for offset in 0..options.replicas.len() {
            let index = (round + offset) % options.replicas.len();
            let replicas = options.replicas[index];
            let mut cmd = Command::new(&python);
            crate::clean_cargo_env(&mut cmd);
            cmd.arg(crate::workspace_root().join("xtask/bench/replicas.py"))
                .arg("--ragd")
                .arg(&ragd)
                .args(["--replicas", &replicas.to_string()])
                .args(["--workers", &options.workers.to_string()])
                .args(["--threads", &options.threads.to_string()])
                .args(&files)
                .env("RAGD_ASSETS_DIR", &assets);
            let result = json_line(cmd)?;
            let run = Run {
                files: number(&result, "files")?,
                failed: number(&result, "failed")?,
                chunks: number(&result, "chunks")?,
                seconds: number(&result, "seconds")?,
            };
            eprintln!("xtask: bench replicas: round {} {replicas} replica(s): {run:?}", round + 1);
            runs[index].push(run);
        }
    }
    let load_after = super::load_average();

    let command = format!("cargo xtask bench replicas {}", args.join(" "));
    let mut out = super::header_for(
        "Ingest with 1 and 2 replicas sharing Postgres and S3",
        command.trim(),
        &build_line,
    );
    let _ = writeln!(
        out,
        "- corpus: the {} documents of `bench ingest`, uploaded round robin over the replicas; \
         each run a fresh Postgres cluster, a fresh moto S3 server on loopback and fresh data \
         directories, replicas started before the clock; per replica {} ingest workers and {} \
         intra-op threads, int8 embedding; {} round(s), replica counts alternating; median",
        files.len(),
        options.workers,
        options.threads,
        options.rounds
    );
    let _ = writeln!(out, "- 1-minute load average before / after: {load_before} / {load_after}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| replicas | files | failed | chunks | seconds | files/s | chunks/s | files/s vs 1 replica |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |runs: &[Run]| median(&runs.iter().map(|r| r.files / r.seconds).collect::<Vec<_>>());
    let base =
        options.replicas.iter().position(|&n| n == 1).map_or(f64::NAN, |index| rate(&runs[index]));
    for (replicas, runs) in options.replicas.iter().zip(&runs) {
        let mid = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            out,
            "| {replicas} | {:.0} | {:.0} | {:.0} | {:.1} | {:.3} | {:.1} | {:.2}x |",
            mid(|r| r.files),
            mid(|r| r.failed),
            mid(|r| r.chunks),
            mid(|r| r.seconds),
            rate(runs),
            mid(|r| r.chunks / r.seconds),
            rate(runs) / base
        );
    }
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(
        out,
        "\nAll replicas run on this one machine ({cores} cores): the ratio measures the shared \
         queue's overhead or gain on the same hardware, not a second machine's capacity."
    );
    super::append(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::args;

    #[test]
    fn parses_options() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options =
            parse(&args(&["--replicas", "1,2,3", "--rounds", "2", "--ragd", "/x/ragd"])).unwrap();
        assert_eq!(options.replicas, vec![1, 2, 3]);
        assert_eq!(options.rounds, 2);
        assert_eq!(options.ragd, Some(PathBuf::from("/x/ragd")));
        assert!(parse(&args(&["--replicas", "0"])).is_err());
        assert!(parse(&args(&["--bogus", "1"])).is_err());
    }
}
