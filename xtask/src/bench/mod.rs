//! `cargo xtask bench`: benchmarks against peers run on the same machine in the same run.
//!
//! - `cargo xtask bench embed`: embedding throughput ([`embed`]).
//! - `cargo xtask bench extract`: PDF engines against `pdftotext`, extraction per format,
//!   and OCR against `tesseract` ([`extract`]).
//! - `cargo xtask bench ingest`: the whole ingest pipeline on real documents against the
//!   Python pipeline ragd replaces ([`ingest`]).
//! - `cargo xtask bench search`: vector search latency and recall ([`search`]).
//! - `cargo xtask bench http`: HTTP throughput and p99 with wrk ([`http`]).
//! - `cargo xtask bench eval`: retrieval quality on the labelled set ([`eval`]).
//! - `cargo xtask bench reembed`: re-embedding with another model against a plain ingest,
//!   and search latency during it ([`reembed`]).
//! - `cargo xtask bench memory`: resident memory at idle with both bundled models, and
//!   while ingesting a large text ([`memory`]).
//! - `cargo xtask bench replicas`: ingest throughput of 1 and 2 replicas sharing a Postgres
//!   catalog and an S3 bucket ([`replicas`]).
//! - `cargo xtask bench llm --concurrency 1,2,4,8`: concurrent generation against
//!   `llama-server --parallel N` ([`llm_concurrency`]; `bench llm` without it is in
//!   `llama.rs`).
//!
//! Performance is reported as ratios against a peer measured in the same run, never as
//! timed assertions in tests: absolute numbers depend on the machine and on what else runs
//! on it. Each run appends a section to `docs/BENCHMARKS.md`.
//!
//! The Rust contenders are examples (`crates/*/examples/bench_*.rs`) and the `ragd` binary
//! of the serving build ([`crate::Build::Serving`], the `serving-lto` profile `cargo xtask
//! serve` runs), so every figure is of the optimised code people serve with. The
//! Python peers run in a virtual environment with pinned packages ([`REQUIREMENTS`]) under
//! `$HOME/.cache/ragd/bench-venv` (`XTASK_BENCH_VENV` overrides it), installed from PyPI.

mod embed;
mod eval;
mod extract;
mod http;
mod ingest;
pub(crate) mod llm_concurrency;
mod memory;
mod reembed;
mod replicas;
mod search;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;

/// The Python packages of the peers, pinned. `onnxruntime` is the version of the asset
/// wheel (`xtask/src/assets.rs`), and pip takes that very wheel from the asset cache.
/// PyPI's torch for Linux x86_64 is the CUDA build: it pulls about 3 GB of NVIDIA wheels
/// even though the benchmark runs it on the CPU.
const REQUIREMENTS: &[&str] = &[
    "numpy==2.4.6",
    "onnxruntime==1.32.0",
    "tokenizers==0.23.3",
    "torch==2.15.0",
    "sentence-transformers==6.2.0",
    "chromadb==1.5.9",
    // Lance's own release build, the version ragd's `lance` crate has (Cargo.lock).
    "pylance==14.0.2",
    // The Python ingest pipeline of `bench ingest`.
    "pypdf==7.1.1",
    "python-docx==1.2.0",
    "beautifulsoup4==4.15.0",
    "langchain-text-splitters==1.1.3",
    // The FastAPI service of `bench http` (`http_peer.py`).
    "fastapi==0.165.0",
    "starlette==1.10.0",
    "uvicorn[standard]==0.55.0",
    "httptools==0.9.0",
    "uvloop==0.23.0",
    "regex==2026.11.19",
    "pydantic==2.14.4",
    "pyarrow==26.0.1",
    // The S3 server `bench search` runs ragd's store on: moto's, the version the test
    // suite's S3 peer pins (`bins/ragd/tests/clients/requirements.txt`).
    "moto[server]==5.2.5",
];

/// Runs `cargo xtask bench KIND ARGS...` for `embed` and `search`.
pub(crate) fn run(kind: &str, args: &[String]) -> Result<()> {
    match kind {
        "embed" => embed::run(args),
        "extract" => extract::run(args),
        "search" => search::run(args),
        "http" => http::run(args),
        "eval" => eval::run(args),
        "reembed" => reembed::run(args),
        "ingest" => ingest::run(args),
        "memory" => memory::run(args),
        "replicas" => replicas::run(args),
        other => Err(format!("unknown benchmark {other:?}")),
    }
}

/// What every benchmark needs before it starts: assets, the build, the Python peers.
struct Setup {
    /// The asset directory.
    assets: PathBuf,
    /// The serving build's output directory (`ragd`, `examples/`).
    out: PathBuf,
    /// The Python interpreter of the benchmark's virtual environment.
    python: PathBuf,
    /// A scratch directory for inputs and outputs of this benchmark.
    work: PathBuf,
}

impl Setup {
    /// Sets up assets, runs the serving build, installs the Python peers.
    fn new(name: &str) -> Result<Self> {
        let assets = crate::setup()?;
        let out = crate::Build::Serving.run()?;
        let python = ensure_venv(&assets)?;
        let work = crate::target_dir()?.join("ragd-bench").join(name);
        fs::create_dir_all(&work)
            .map_err(|err| format!("cannot create {}: {err}", work.display()))?;
        Ok(Self { assets, out, python, work })
    }

    /// A command for one of the benchmark examples that the serving build in `out` produced.
    fn example(out: &Path, name: &str) -> Result<Command> {
        let path = out.join("examples").join(name);
        if !path.is_file() {
            return Err(format!("{} is missing after the build", path.display()));
        }
        let mut cmd = Command::new(path);
        crate::clean_cargo_env(&mut cmd);
        cmd.current_dir(crate::workspace_root());
        Ok(cmd)
    }

    /// A command running one of the Python scripts in `xtask/bench/`.
    fn script(&self, name: &str) -> Command {
        let mut cmd = Command::new(&self.python);
        crate::clean_cargo_env(&mut cmd);
        cmd.current_dir(crate::workspace_root())
            .arg(crate::workspace_root().join("xtask/bench").join(name))
            // Nothing is fetched from a model hub; the models are local files.
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .env("ANONYMIZED_TELEMETRY", "False");
        cmd
    }
}

/// The benchmark virtual environment, created and filled when missing or outdated.
fn ensure_venv(assets: &Path) -> Result<PathBuf> {
    let dir = match std::env::var_os("XTASK_BENCH_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate::home()?.join(".cache/ragd/bench-venv"),
    };
    let wanted = REQUIREMENTS.join("\n") + "\n";
    let python = crate::venv::ensure(&dir, &wanted, |pip| {
        eprintln!("xtask: bench: installing the Python peers (torch alone is several GB)");
        pip.args(["--progress-bar", "off", "--find-links"])
            .arg(assets.join("wheels"))
            .args(REQUIREMENTS);
    })?;
    eprintln!("xtask: bench: Python peers in {}", dir.display());
    Ok(python)
}

/// Runs `cmd` (stderr passes through) and returns the last JSON object line it printed.
fn json_line(mut cmd: Command) -> Result<serde_json::Value> {
    eprintln!("xtask: bench: running {cmd:?}");
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    if !output.status.success() {
        return Err(format!("{cmd:?} failed: {}", output.status));
    }
    last_json_line(&String::from_utf8_lossy(&output.stdout), &format!("{cmd:?}"))
}

/// The last line of `stdout` that is a JSON object, parsed; `who` printed it.
fn last_json_line(stdout: &str, who: &str) -> Result<serde_json::Value> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{who} printed no JSON result:\n{stdout}"))?;
    serde_json::from_str(line).map_err(|err| format!("bad JSON from {who}: {err}: {line}"))
}

/// A number field of a JSON result, by path (`"ann.p50_ms"`).
fn number(value: &serde_json::Value, path: &str) -> Result<f64> {
    path.split('.')
        .try_fold(value, |value, key| value.get(key))
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| format!("result has no number at {path}: {value}"))
}

/// The median of `values` (mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        len if len % 2 == 1 => sorted[mid],
        _ => f64::midpoint(sorted[mid - 1], sorted[mid]),
    }
}

/// The first line of a command's output, or `unknown`.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(crate::workspace_root())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The value of `key` in a `/proc` file of `key: value` lines.
fn proc_field(file: &str, key: &str) -> Option<String> {
    fs::read_to_string(file).ok()?.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().to_owned())
    })
}

/// The 1-minute load average, a hint of how much else ran meanwhile.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The header lines every section starts with: when, which code, which machine, how built.
fn header(title: &str, command: &str) -> String {
    header_for(title, command, &build_line())
}

/// [`header`] with another line naming the build.
fn header_for(title: &str, command: &str, build_line: &str) -> String {
    let mut commit = first_line("git", &["rev-parse", "--short=12", "HEAD"]);
    if !first_line(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)docs/BENCHMARKS.md",
        ],
    )
    .eq("unknown")
    {
        commit.push_str(" (with uncommitted changes)");
    }
    let cpu = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = proc_field("/proc/meminfo", "MemTotal")
        .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0));
    let mut out = String::new();
    let _ = writeln!(out, "\n## {title}, {}\n", first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- commit: {commit}");
    let _ = writeln!(out, "- machine: {cpu}, {cores} cores available, {memory} RAM");
    let _ = writeln!(out, "{build_line}");
    out
}

/// The header line naming the build every ragd contender comes from: the serving build, or
/// the variant profile [`crate::SERVING_PROFILE_ENV`] names.
pub(crate) fn build_line() -> String {
    let profile = crate::serving_profile();
    let (what, rust) = if profile == crate::SERVING_PROFILE {
        (
            "the serving build",
            "every Rust crate at opt-level 3, cross-crate thin LTO, one codegen unit per crate",
        )
    } else {
        ("a variant of the serving build", "its settings are in `Cargo.toml`")
    };
    format!(
        "- build: {what} (`cargo build --profile {profile} --workspace --bins --examples`): \
         {rust}; llama.cpp as a cmake Release build; ONNX Runtime is the optimised release \
         library from the asset wheel"
    )
}

/// Appends `section` to `docs/BENCHMARKS.md`, creating the file with its introduction.
fn append(section: &str) -> Result<()> {
    let path = crate::workspace_root().join("docs/BENCHMARKS.md");
    let mut text = fs::read_to_string(&path).unwrap_or_else(|_| INTRO.to_owned());
    text.push_str(section);
    fs::write(&path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    eprintln!("xtask: bench: appended the results to {}", path.display());
    Ok(())
}

/// The start of a new `docs/BENCHMARKS.md`.
const INTRO: &str = "# Benchmarks

Written by `cargo xtask bench embed` and `cargo xtask bench search` (see the README's
Benchmarks section); each run appends a section. Numbers are relative to peers measured on
the same machine in the same run: compare ratios, not absolute numbers, across sections.

What to keep in mind when reading them:

- **Build profile.** The ragd contenders come from the serving build (`cargo build
  --profile serving-lto --workspace --bins --examples`, everything at opt-level 3 with
  cross-crate thin LTO; see `docs/BUILD.md`), the build `cargo xtask serve` runs; each
  section's build line names its profile. Sections whose build line says `--release`
  (2026-12-03 to 2026-12-05 05:38 UTC) ran cargo's release defaults without cross-crate LTO,
  those before 2026-12-03 the test build
  (dependencies at opt-level 1, ragd's crates at 0), and those before 2026-11-25 16:00 UTC
  every Rust dependency at opt-level 0. ONNX Runtime is the optimised library from the asset
  wheel.
- **Embedding.** ragd and the Python onnxruntime peer run the same int8 ONNX file (the
  bundled model); sentence-transformers runs the fp32 safetensors of the same model.
  ragd also runs its fp32 ONNX file (`ragd-fp32`), built from those safetensors, and
  `ragd-int8-fused`, quantised from it for int8 arithmetic (one text per run, as the engine
  runs it).
- **Search.** ragd's IVF_HNSW_SQ index is built and measured at every size up to
  `--ann-max-rows` (default 100 000); the exact flat scan is measured too.
- **Noise.** The machine is shared with other builds. Contenders are interleaved and the
  load average is recorded with each run; embedding rounds report the median and spread.
";

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Command-line arguments for the benchmarks' option parsers.
    pub(in crate::bench) fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn numbers_are_read_by_path() {
        let value = serde_json::json!({"ann": {"p50_ms": 1.5}, "n": 10});
        assert!((number(&value, "ann.p50_ms").unwrap() - 1.5).abs() < 1e-12);
        assert!((number(&value, "n").unwrap() - 10.0).abs() < 1e-12);
        assert!(number(&value, "flat.p50_ms").is_err());
    }

    #[test]
    fn every_requirement_is_pinned() {
        assert!(REQUIREMENTS.iter().all(|req| req.contains("==")));
        let ort = REQUIREMENTS.iter().find(|req| req.starts_with("onnxruntime==")).unwrap();
        let version = ort.trim_start_matches("onnxruntime==");
        let assets = std::fs::read_to_string(crate::workspace_root().join("xtask/src/assets.rs"));
        let pinned = format!("name: \"onnxruntime\",\n        version: \"{version}\",");
        assert!(
            assets.unwrap().contains(&pinned),
            "the benchmark's onnxruntime must be the asset wheel's version ({version})"
        );
    }
}
