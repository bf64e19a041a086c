//! `cargo xtask bench ingest`: ragd's whole ingest pipeline against the Python pipeline it
//! replaces, on a corpus of real documents.
//!
//! - Corpus: manuals and books from Debian packages (PDF, HTML, text, of mixed lengths),
//!   fetched and checked by `fixtures/ingest-corpus/fetch.py` into `target/ragd-corpus`,
//!   the folder `cargo xtask test` and `bench extract` read too (not committed; the script
//!   pins the files).
//! - `ragd`: `ragd ingest FILES... --data-dir FRESH` of the serving build: extraction (in
//!   worker processes, the binary's default), token-aware chunking (256 tokens, 32
//!   overlap), all-MiniLM-L6-v2 on ONNX Runtime with `embedding.precision = "auto"` (its
//!   first-start probe inside the timed run, as a new user gets it), SQLite and LanceDB,
//!   `ingest.workers` documents at a time (one row per `--workers` value).
//! - `python-pipeline`: `xtask/bench/ingest.py`: pypdf / python-docx / BeautifulSoup,
//!   LangChain's `RecursiveCharacterTextSplitter` (1000 characters, 150 overlap),
//!   sentence-transformers all-MiniLM-L6-v2 (fp32, PyTorch CPU) and ChromaDB, one file after
//!   another, as that system did.
//!
//! Both embed with the same number of intra-op threads. Each run is one process started
//! from scratch (model loading included) under `xtask/bench/measure.py`, which records the
//! wall time and the peak resident memory of the largest process (`getrusage` of the
//! children: ragd's extraction workers are separate, smaller processes and not added in).
//! Contenders alternate order across rounds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Setup, json_line, median, number};
use crate::Result;

const USAGE: &str =
    "usage: cargo xtask bench ingest [--rounds R] [--threads T] [--workers W[,W...]]";

/// The benchmark's options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    rounds: usize,
    /// Intra-op threads of every contender's embedding model.
    threads: usize,
    /// ragd's `ingest.workers` values, one contender each.
    workers: Vec<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self { rounds: 1, threads: 2, workers: vec![2] }
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
            "--threads" => options.threads = positive(value).ok_or_else(bad)?,
            "--workers" => {
                options.workers =
                    value.split(',').map(positive).collect::<Option<Vec<_>>>().ok_or_else(bad)?;
            }
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
    peak_rss_mb: f64,
}

impl Run {
    fn files_per_s(&self) -> f64 {
        self.files / self.seconds
    }
    fn chunks_per_s(&self) -> f64 {
        self.chunks / self.seconds
    }
}

/// A contender: ragd with a number of ingest workers, or the Python pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    Ragd { workers: usize },
    Python,
}

impl Contender {
    fn name(self) -> String {
        match self {
            Self::Ragd { workers } => format!("ragd (workers {workers})"),
            Self::Python => "python-pipeline".to_owned(),
        }
    }
}

pub(super) fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let setup = Setup::new("ingest")?;
    let corpus = crate::fetch_corpus()?;
    let files = corpus_files(&corpus)?;
    let st_model = super::embed::st_model(&setup)?;

    let mut contenders: Vec<Contender> =
        options.workers.iter().map(|&workers| Contender::Ragd { workers }).collect();
    contenders.push(Contender::Python);
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); contenders.len()];
    // What ragd's `embedding.precision = "auto"` chose in each run: the probe's summary.
    let mut choices: Vec<String> = Vec::new();
    let load_before = super::load_average();
    for round in 0..options.rounds {
        for offset in 0..contenders.len() {
            let index = (round + offset) % contenders.len();
            let contender = contenders[index];
            let scratch = setup.work.join("run");
            let _ = std::fs::remove_dir_all(&scratch);
            let run = match contender {
                Contender::Ragd { workers } => {
                    let run = run_ragd(&setup, &files, &scratch, workers, options.threads)?;
                    let kept = std::fs::read_to_string(scratch.join("embedding-precision"))
                        .map_err(|e| format!("ragd kept no embedding precision: {e}"))?;
                    let summary = kept.lines().nth(1).unwrap_or_default().to_owned();
                    if !choices.contains(&summary) {
                        choices.push(summary);
                    }
                    run
                }
                Contender::Python => {
                    run_python(&setup, &corpus, &st_model, &scratch, options.threads)?
                }
            };
            eprintln!("xtask: bench ingest: round {} {}: {run:?}", round + 1, contender.name());
            runs[index].push(run);
        }
    }
    let load_after = super::load_average();

    let command = format!("cargo xtask bench ingest {}", args.join(" "));
    let mut out = super::header("Ingest, ragd vs the Python pipeline", command.trim());
    let bytes: u64 = files.iter().filter_map(|file| file.metadata().ok()).map(|m| m.len()).sum();
    let _ = writeln!(
        out,
        "- corpus: {} real documents from Debian packages ({:.1} MB; \
         `fixtures/ingest-corpus/fetch.py`), every run from a fresh data directory, model \
         loading included; {} intra-op threads for each embedding model; {} round(s), \
         contenders alternating; median of the rounds",
        files.len(),
        bytes as f64 / 1e6,
        options.threads,
        options.rounds
    );
    let _ = writeln!(out, "- 1-minute load average before / after: {load_before} / {load_after}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| contender | files | failed | chunks | seconds | files/s | chunks/s | peak RSS MB \
         (largest process) | files/s vs python |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let python_rate =
        median(&runs[contenders.len() - 1].iter().map(Run::files_per_s).collect::<Vec<_>>());
    for (contender, runs) in contenders.iter().zip(&runs) {
        let mid = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.3} | {:.1} | {:.0} | {:.2}x |",
            contender.name(),
            mid(|r| r.files),
            mid(|r| r.failed),
            mid(|r| r.chunks),
            mid(|r| r.seconds),
            mid(Run::files_per_s),
            mid(Run::chunks_per_s),
            mid(|r| r.peak_rss_mb),
            mid(Run::files_per_s) / python_rate
        );
    }
    let _ = writeln!(
        out,
        "\nThe chunk counts differ by design: ragd cuts 256-token chunks with 32 tokens of \
         overlap, the Python pipeline 1000-character chunks with 150 characters of overlap \
         (about 250 tokens of English), so both embed about the same text."
    );
    for choice in &choices {
        let _ =
            writeln!(out, "\nragd's embedding file (`embedding.precision = \"auto\"`): {choice}.");
    }
    super::append(&out)
}

/// The documents of the corpus folder: every file but the script's `MANIFEST.json`.
pub(super) fn corpus_files(corpus: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file() && !path.ends_with("MANIFEST.json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("the corpus in {} is empty", corpus.display()));
    }
    Ok(files)
}

/// `command` under `measure.py`: its wall time, peak RSS and stdout.
fn measured(setup: &Setup, command: Command) -> Result<(serde_json::Value, String)> {
    let mut cmd = setup.script("measure.py");
    cmd.arg("--").arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let result = json_line(cmd)?;
    let stdout =
        result.get("stdout").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    Ok((result, stdout))
}

fn run_ragd(
    setup: &Setup,
    files: &[PathBuf],
    scratch: &Path,
    workers: usize,
    threads: usize,
) -> Result<Run> {
    let mut ingest = Command::new(setup.out.join("ragd"));
    crate::clean_cargo_env(&mut ingest);
    ingest
        .arg("ingest")
        .args(files)
        .arg("--data-dir")
        .arg(scratch)
        .env("RAGD_ASSETS_DIR", &setup.assets)
        .env("RAGD_INGEST__WORKERS", workers.to_string())
        .env("RAGD_EMBEDDING__INTRA_OP_THREADS", threads.to_string())
        .env("RAGD_LOG__FILTER", "warn,lance=error");
    let (result, stdout) = measured(setup, ingest)?;
    // `N files: K ok, P refused or failed`; a failed file is a result, not an error here.
    let failed = stdout
        .lines()
        .rev()
        .find_map(|line| line.split_once(" ok, ")?.1.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("`ragd ingest` printed no summary:\n{stdout}"))?;
    Ok(Run {
        files: files.len() as f64,
        failed,
        chunks: chunk_count(&scratch.join("ragd.sqlite3"))?,
        seconds: number(&result, "seconds")?,
        peak_rss_mb: number(&result, "peak_rss_mb")?,
    })
}

/// The number of chunks in a ragd catalog.
fn chunk_count(catalog: &Path) -> Result<f64> {
    let mut count = Command::new("python3");
    count
        .arg("-c")
        .arg("import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM chunks').fetchone()[0])")
        .arg(catalog);
    let output = count.output().map_err(|e| format!("cannot run python3: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("cannot count the chunks of {}", catalog.display()))
}

fn run_python(
    setup: &Setup,
    corpus: &Path,
    st_model: &Path,
    scratch: &Path,
    threads: usize,
) -> Result<Run> {
    let mut peer = setup.script("ingest.py");
    peer.arg("run")
        .arg("--docs")
        .arg(corpus)
        .arg("--model-dir")
        .arg(st_model)
        .arg("--db")
        .arg(scratch)
        .args(["--threads", &threads.to_string()]);
    let (result, stdout) = measured(setup, peer)?;
    let peer = super::last_json_line(&stdout, "ingest.py")?;
    Ok(Run {
        files: number(&peer, "files")?,
        failed: number(&peer, "failed")?,
        chunks: number(&peer, "chunks")?,
        seconds: number(&result, "seconds")?,
        peak_rss_mb: number(&result, "peak_rss_mb")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::args;

    #[test]
    fn parses_options() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let options = parse(&args(&["--rounds", "2", "--workers", "1,2,4"])).unwrap();
        assert_eq!(options.rounds, 2);
        assert_eq!(options.workers, vec![1, 2, 4]);
        assert!(parse(&args(&["--workers", "1,0"])).is_err());
        assert!(parse(&args(&["--threads"])).is_err());
        assert!(parse(&args(&["--fast", "1"])).is_err());
    }
}
