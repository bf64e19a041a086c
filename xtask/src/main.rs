//! `cargo xtask`: project automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask assets`: fetch the pinned model and runtime packages and unpack them.
//! - `cargo xtask serve [ARGS]`: set everything up, then run `ragd serve ARGS`.
//! - `cargo xtask test [ARGS]`: set everything up, then run the whole test suite (doc tests
//!   included) and the `ragd-engine` example, as a library user would.
//! - `cargo xtask screenshots`: the web page's browser test, its pictures into
//!   `docs/screenshots` (the README shows them).
//! - `clients.rs`: the pinned official Python clients (`openai`, `ollama`, `mcp`) the protocol
//!   tests drive `ragd` with, in `$HOME/.cache/ragd/clients-venv`, set up by `test`.
//! - `cargo xtask fuzz`: schemathesis against a local `ragd` (no 5xx, responses match
//!   the OpenAPI document).
//! - `cargo xtask sysdeps`: install the system packages the build needs (cmake, ...).
//! - `cargo xtask bench embed|search|http|eval|reembed|ingest|memory|llm [ARGS]`: benchmarks against peers, appended to
//!   `docs/BENCHMARKS.md` (see `bench/mod.rs`; `llm` is in `llama.rs`).
//! - `cargo xtask llama-tools`: build llama.cpp's `llama-server` and `llama-bench` (cached).
//! - `cargo xtask third-party [--check]`: write `docs/THIRD_PARTY.md` from `cargo metadata`
//!   (every dependency, its version and licence; the purpose of the direct ones).
//!
//! Heavy builds go to one shared target directory (`$CARGO_TARGET_DIR`, default
//! `$HOME/.cache/ragd/target`), so every clone and CI run reuses the same build. Tidy checks
//! (module docs, dependency invariants) are `#[test]`s in `tidy.rs`, run by `cargo xtask test`.

#![allow(clippy::disallowed_methods)] // xtask reads the environment, like the binary.
#![allow(clippy::print_stdout, clippy::print_stderr)] // Printing is what a CLI tool does.

mod assets;
mod bench;
mod clients;
mod fuzz;
mod llama;
mod local_server;
mod sysdeps;
mod third_party;
#[cfg(test)]
mod tidy;
mod venv;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T, E = String> = std::result::Result<T, E>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  assets [--dir DIR]   fetch and verify the bundled models and ONNX Runtime (idempotent)
  sysdeps              install the system packages the build needs (apt, as root)
  serve [ARGS...]      set up, then run `ragd serve ARGS...` (e.g. --port 8080)
  test [ARGS...]       set up, then run every test (`cargo test --workspace ARGS...`)
  screenshots          run the web page's browser test, saving its pictures to docs/screenshots
  fuzz [--examples N]  fuzz the HTTP API with schemathesis against a local ragd (pip, pinned)
  bench embed [--n N] [--rounds R] [--threads T] [--batch B] [--skip-st] [--mixed]
                       embedding throughput vs Python onnxruntime and sentence-transformers
  bench search [--sizes N,N...] [--queries Q] [--flat-queries F] [--ann-max-rows N]
               [--ef-sweep EF,EF...] [--no-s3]
                       vector search p50/p99 and recall@10 vs chromadb and pylance, and
                       ragd's store on a local directory vs an S3 bucket (moto, loopback)
  bench http [--seconds S] [--connections C]
                       HTTP req/s and p99 with wrk vs a FastAPI service on the same data
  bench ingest [--rounds R] [--threads T] [--workers W,W...]
                       real documents through ragd's pipeline vs the Python pipeline
  bench eval           recall@10, MRR@10, nDCG@10 of each search mode on fixtures/eval
  bench extract [--rounds R] [--ocr-pages N]
                       PDF engines vs pdftotext, MB/s per format, OCR vs tesseract
  bench reembed [--chunks N]
                       re-embed with another model vs a plain ingest; search latency meanwhile
  bench memory [--text-mb N] [--embed-seconds S]
                       resident memory: idle with both bundled models, and ingesting 100 MB
  bench replicas [--rounds R] [--replicas N[,N...]] [--workers W] [--threads T] [--ragd PATH]
                       ingest with 1 and 2 replicas sharing a Postgres catalog and an S3 bucket
  bench llm [--rounds R] [--reps N] [--threads T] [--pp P] [--tg G] [--imports] [--record]
                       tokens/s of the local LLM vs llama-bench on the bundled GGUF (--imports:
                       also its Hugging Face folder imported at F16, Q8_0, Q4_K_M)
  bench llm --concurrency 1,2,4,8 [--rounds R] [--tokens T] [--context C] [--record]
                       concurrent chats over HTTP vs llama-server --parallel N
                       (benchmarks append their results to docs/BENCHMARKS.md)
  llama-tools          build llama.cpp's llama-server and llama-bench (cached; test does it too)
  third-party [--check]
                       write docs/THIRD_PARTY.md from cargo metadata (--check: fail if stale)

environment:
  RAGD_ASSETS_DIR      asset directory (default $HOME/.cache/ragd/assets)
  XTASK_LLAMA_TOOLS_DIR  llama.cpp tools cache (default $HOME/.cache/ragd/llama-tools)
  CARGO_TARGET_DIR     build directory (default $HOME/.cache/ragd/target)
  CARGO_BUILD_JOBS     parallel build jobs (default 2)
  OMP_WAIT_POLICY      llama.cpp's OpenMP waiting (default PASSIVE)
  XTASK_BENCH_VENV     Python environment of the benchmark peers (default $HOME/.cache/ragd/bench-venv)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "assets" => assets_command(rest),
        "sysdeps" => sysdeps::ensure(),
        "serve" => serve(rest),
        "test" => test(rest),
        "screenshots" => screenshots(),
        "fuzz" => fuzz::fuzz(rest),
        "bench" => match rest.split_first() {
            Some((kind, args))
                if matches!(
                    kind.as_str(),
                    "embed"
                        | "search"
                        | "http"
                        | "eval"
                        | "reembed"
                        | "ingest"
                        | "memory"
                        | "replicas"
                        | "extract"
                ) =>
            {
                bench::run(kind, args)
            }
            Some((kind, args)) if kind == "llm" => llama::bench_llm(args),
            _ => Err(format!(
                "usage: cargo xtask bench embed|search|http|eval|reembed|ingest|memory|replicas|extract|llm [OPTIONS]\n\n{USAGE}"
            )),
        },
        "llama-tools" => llama::tools_command(),
        "third-party" => third_party::command(rest),
        // The benchmark's first name, kept as an alias of `bench llm`.
        "bench-llm" => llama::bench_llm(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from).ok_or_else(|| "HOME is not set".to_owned())
}

fn assets_dir() -> Result<PathBuf> {
    match std::env::var_os("RAGD_ASSETS_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(home()?.join(".cache/ragd/assets")),
    }
}

fn assets_command(args: &[String]) -> Result<()> {
    let dir = match args {
        [] => assets_dir()?,
        [flag, dir] if flag == "--dir" => PathBuf::from(dir),
        _ => return Err(format!("usage: cargo xtask assets [--dir DIR], got {args:?}")),
    };
    assets::ensure(&dir)
}

/// Workspace root: xtask lives one level below it.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` for the process; that is preferred over the value
/// baked in at compile time, because the shared target dir may hold an xtask built from
/// another clone of the repository.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `$CARGO_TARGET_DIR`, else the shared `$HOME/.cache/ragd/target`.
fn target_dir() -> Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(home()?.join(".cache/ragd/target")),
    }
}

/// Removes the variables `cargo run` set for this xtask process (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, ...). Build scripts track some of them (ring's tracks
/// `CARGO_MANIFEST_DIR`): inherited, they would make every build started from xtask look
/// different from a plain `cargo` build and rebuild ring, rustls, reqwest and everything
/// above them, lancedb included, each time one follows the other.
fn clean_cargo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo_run = key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            cmd.env_remove(key.as_ref());
        }
    }
}

/// A `cargo` command with the shared target dir and a job limit unless the caller set them.
fn cargo() -> Result<Command> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    clean_cargo_env(&mut cmd);
    cmd.current_dir(workspace_root()).env("CARGO_TARGET_DIR", target_dir()?);
    if std::env::var_os("CARGO_BUILD_JOBS").is_none() {
        cmd.env("CARGO_BUILD_JOBS", "2");
    }
    passive_openmp(&mut cmd);
    Ok(cmd)
}

/// llama.cpp's OpenMP threads spin while they wait; on a machine with few cores and other
/// work running, that cut generation from ~35 to ~1 token/s here. Passive waiting keeps
/// ~32 tokens/s. The binary cannot set it for itself without `unsafe`, so it is set here
/// for the tests and the server (users running `ragd` directly: see the README).
fn passive_openmp(cmd: &mut Command) {
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        cmd.env("OMP_WAIT_POLICY", "PASSIVE");
    }
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("{cmd:?} failed: {status}")) }
}

/// Everything both README commands need before cargo builds ragd.
fn setup() -> Result<PathBuf> {
    sysdeps::ensure()?;
    let dir = assets_dir()?;
    assets::ensure(&dir)?;
    Ok(dir)
}

/// The two builds (docs/BUILD.md). Each is always the same cargo invocation, so cargo
/// resolves the same feature set every time and a warm build is a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// `cargo test --workspace --no-run`, the `dev` profile: what `test` and `fuzz` run.
    /// ragd's crates at opt-level 0 rebuild in seconds after an edit.
    Tests,
    /// `cargo build --profile serving-lto --workspace --bins --examples`: everything
    /// optimised, cross-crate thin LTO. `serve` and every benchmark run it (the benchmark
    /// contenders are the workspace's examples). [`SERVING_PROFILE_ENV`] names another cargo
    /// profile, to iterate without the LTO links or to measure a variant.
    Serving,
}

/// Names the cargo profile of [`Build::Serving`] when set (default [`SERVING_PROFILE`]):
/// `release`, cargo's defaults, relinks in minutes instead of the LTO build's 20 minutes a
/// binary.
pub(crate) const SERVING_PROFILE_ENV: &str = "XTASK_SERVING_PROFILE";

/// The serving build's cargo profile (`Cargo.toml`, docs/BUILD.md).
pub(crate) const SERVING_PROFILE: &str = "serving-lto";

/// The cargo profile [`Build::Serving`] builds: [`SERVING_PROFILE`] unless
/// [`SERVING_PROFILE_ENV`] names another.
pub(crate) fn serving_profile() -> String {
    match std::env::var(SERVING_PROFILE_ENV) {
        Ok(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => SERVING_PROFILE.to_owned(),
    }
}

/// The directory of the target directory that cargo writes `profile`'s output to: its name,
/// except for the built-in profiles that share `debug/` and `release/`.
fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        custom => custom,
    }
}

impl Build {
    /// Runs the build and returns its output directory (`debug/` or the profile's directory
    /// of the target directory), where the `ragd` binary and `examples/` are.
    pub(crate) fn run(self) -> Result<PathBuf> {
        let mut build = cargo()?;
        let dir = match self {
            Self::Tests => {
                build.args(["test", "--workspace", "--no-run"]);
                "debug".to_owned()
            }
            Self::Serving => {
                let profile = serving_profile();
                build.args(["build", "--profile", &profile, "--workspace", "--bins", "--examples"]);
                profile_dir(&profile).to_owned()
            }
        };
        run(build)?;
        Ok(target_dir()?.join(dir))
    }
}

/// Builds the serving build, then runs its `ragd serve`. Not `cargo run -p ragd`: that
/// resolves another feature set (no dev-dependencies, no other workspace members) than the
/// benchmarks' build and would compile tokio, hyper and everything above them twice.
fn serve(args: &[String]) -> Result<()> {
    let assets = setup()?;
    sysdeps::ensure_ocr()?;
    let out = Build::Serving.run()?;
    let mut cmd = Command::new(out.join("ragd"));
    clean_cargo_env(&mut cmd);
    cmd.current_dir(workspace_root()).arg("serve").args(args).env("RAGD_ASSETS_DIR", assets);
    passive_openmp(&mut cmd);
    run(cmd)
}

/// Sets up, builds llama.cpp's `llama-server` (the OpenAI-compatible backend is tested
/// against a real one), installs Chromium for the web page's tests and the venv of the
/// official protocol clients and Selenium, then runs every test.
fn test(args: &[String]) -> Result<()> {
    let assets = setup()?;
    sysdeps::ensure_browser()?;
    sysdeps::ensure_documents()?;
    sysdeps::ensure_ocr()?;
    sysdeps::ensure_database()?;
    let corpus = fetch_corpus()?;
    let server = llama::ToolsDir::locate()?.server()?;
    let clients_python = clients::python()?;
    let mut cmd = cargo()?;
    cmd.args(["test", "--workspace"])
        .args(args)
        .env("RAGD_ASSETS_DIR", &assets)
        .env("XTASK_CORPUS_DIR", &corpus)
        // Not `RAGD_*`: `ragd` reads those as configuration and refuses unknown keys.
        .env("XTASK_LLAMA_SERVER", server)
        .env(clients::PYTHON_ENV, clients_python);
    run(cmd)?;
    run_engine_example(&assets)
}

/// Fetches the regression corpus of real documents (`fixtures/ingest-corpus/fetch.py`; a
/// complete folder is only checked) into the target directory and returns its path.
pub(crate) fn fetch_corpus() -> Result<PathBuf> {
    let dir = target_dir()?.join("ragd-corpus");
    let mut cmd = Command::new("python3");
    cmd.arg(workspace_root().join("fixtures/ingest-corpus/fetch.py")).arg("--out").arg(&dir);
    run(cmd)?;
    Ok(dir)
}

/// The browser test's pictures the README shows.
const README_SCREENSHOTS: [&str; 5] = ["documents", "search", "chat", "models", "system"];

/// Runs the web page's browser test and keeps the pictures the README shows in
/// `docs/screenshots` (`cargo xtask screenshots`).
fn screenshots() -> Result<()> {
    let assets = setup()?;
    sysdeps::ensure_browser()?;
    let clients_python = clients::python()?;
    let taken = target_dir()?.join("tmp/web-screenshots");
    if taken.exists() {
        std::fs::remove_dir_all(&taken).map_err(|e| format!("{}: {e}", taken.display()))?;
    }
    let mut cmd = cargo()?;
    cmd.args(["test", "--workspace", "--test", "it", "web::"])
        .env("RAGD_ASSETS_DIR", &assets)
        .env(clients::PYTHON_ENV, clients_python)
        .env("XTASK_SCREENSHOTS_DIR", &taken);
    run(cmd)?;
    let docs = workspace_root().join("docs/screenshots");
    std::fs::create_dir_all(&docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    for name in README_SCREENSHOTS {
        let file = format!("{name}.png");
        std::fs::copy(taken.join(&file), docs.join(&file))
            .map_err(|e| format!("{}: {e}", taken.join(&file).display()))?;
    }
    eprintln!("xtask: {} in {}", README_SCREENSHOTS.join(", "), docs.display());
    Ok(())
}

/// Runs `crates/engine/examples/rag.rs` as a library user would, from the build `cargo test
/// --workspace` just made (the same feature set, so nothing is rebuilt): it must ingest the
/// handbook, answer a question and print the chunk it cites, or exit non-zero.
fn run_engine_example(assets: &Path) -> Result<()> {
    let mut cmd = Command::new(target_dir()?.join("debug/examples/rag"));
    clean_cargo_env(&mut cmd);
    cmd.current_dir(workspace_root())
        .arg(assets)
        .arg("fixtures/docs/handbook.md")
        .arg("How many days of leave does everyone get?");
    passive_openmp(&mut cmd);
    eprintln!("xtask: running the ragd-engine example (crates/engine/examples/rag.rs)");
    run(cmd)
}
