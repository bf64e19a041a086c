//! llama.cpp's own tools, `llama-server` and `llama-bench`, and `cargo xtask bench-llm`,
//! which compares ragd's `LocalLlm` with `llama-bench` on the bundled GGUF.
//!
//! Where the sources come from: `llama-cpp-sys-2` (the crate that builds ragd's llama.cpp)
//! ships llama.cpp's `ggml`, `src`, `common` and `vendor` folders but strips `tools/`
//! (only `tools/mtmd` stays), so neither tool is in it. The `llama-cpp-python` source
//! package on PyPI carries a whole llama.cpp tree, a slightly different version. Hence two
//! builds:
//!
//! - `llama-bench` is built from the crate's llama.cpp, exactly as cargo extracted it (the
//!   version `Cargo.lock` pins), with the sdist's `tools/` folders laid over it: the
//!   benchmark runs the very ggml and llama code ragd runs, so the comparison measures
//!   ragd's own overhead.
//! - `llama-server` does not compile against the crate's `common/` (its sources expect
//!   the sdist's version), so it is built from the sdist's tree alone. The tests only need
//!   a real OpenAI-compatible server, not the same llama.cpp.
//!
//! Both are cmake, Release, CPU only, `GGML_NATIVE=OFF` like `llama-cpp-sys-2`'s build
//! script (which leaves ggml's x86 defaults: AVX, AVX2, FMA, F16C, BMI2), without curl,
//! OpenSSL or the web UI (whose prebuilt download would need the network). They go to
//! `$XTASK_LLAMA_TOOLS_DIR/llama-cpp-sys-2-<version>` (default
//! `$HOME/.cache/ragd/llama-tools/...`); a stamp file per tool holding its whole recipe
//! makes a second run do nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::Result;

/// The crate whose vendored llama.cpp ragd links.
const SYS_CRATE: &str = "llama-cpp-sys-2";

/// The PyPI source package that supplies llama.cpp's `tools/` sources.
const TOOLS_PACKAGE: &str = "llama-cpp-python";
const TOOLS_VERSION: &str = "0.3.36";
const TOOLS_SDIST: &str = "llama_cpp_python-0.3.36.tar.gz";
const TOOLS_SDIST_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";
/// The llama.cpp tree inside the sdist.
const SDIST_LLAMA_DIR: &str = "llama_cpp_python-0.3.36/vendor/llama.cpp";

/// Bumped when the way the tools are built changes, so existing builds are redone.
const RECIPE_VERSION: u32 = 2;

/// cmake cache entries: Release, CPU only, no network-dependent parts.
const CMAKE_DEFINES: [&str; 13] = [
    "CMAKE_BUILD_TYPE=Release",
    "BUILD_SHARED_LIBS=OFF",
    "GGML_NATIVE=OFF",
    "LLAMA_CURL=OFF",
    "LLAMA_OPENSSL=OFF",
    "LLAMA_BUILD_TESTS=OFF",
    "LLAMA_BUILD_EXAMPLES=OFF",
    "LLAMA_BUILD_APP=OFF",
    "LLAMA_BUILD_TOOLS=ON",
    "LLAMA_BUILD_SERVER=ON",
    "LLAMA_BUILD_UI=OFF",
    "LLAMA_USE_PREBUILT_UI=OFF",
    "LLAMA_TOOLS_INSTALL=OFF",
];

/// Which source tree a tool is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The crate's llama.cpp with the sdist's `tools/` over it.
    CrateWithTools,
    /// The sdist's llama.cpp alone.
    Sdist,
}

/// One tool: its cmake target, source tree, and folders (below the version folder).
#[derive(Debug, Clone, Copy)]
struct ToolBuild {
    target: &'static str,
    layout: Layout,
    src: &'static str,
    build: &'static str,
}

const BUILDS: [ToolBuild; 2] = [
    ToolBuild { target: "llama-bench", layout: Layout::CrateWithTools, src: "src", build: "build" },
    ToolBuild {
        target: "llama-server",
        layout: Layout::Sdist,
        src: "server-src",
        build: "server-build",
    },
];

/// Where the tools are built, for the llama.cpp version `Cargo.lock` pins.
#[derive(Debug, Clone)]
pub(crate) struct ToolsDir {
    /// `<root>/llama-cpp-sys-2-<version>`.
    dir: PathBuf,
    /// The pinned `llama-cpp-sys-2` version.
    version: String,
}

impl ToolsDir {
    /// The folder for this checkout's `Cargo.lock`.
    pub(crate) fn locate() -> Result<Self> {
        let lock_path = crate::workspace_root().join("Cargo.lock");
        let lock = fs::read_to_string(&lock_path)
            .map_err(|e| format!("cannot read {}: {e}", lock_path.display()))?;
        let version = locked_version(&lock, SYS_CRATE)
            .ok_or_else(|| format!("{} does not pin {SYS_CRATE}", lock_path.display()))?;
        let dir = tools_root()?.join(format!("{SYS_CRATE}-{version}"));
        Ok(Self { dir, version })
    }

    /// `llama-cpp-sys-2 <version>`, the llama.cpp `llama-bench` runs.
    pub(crate) fn llama_cpp(&self) -> String {
        format!("{SYS_CRATE} {}", self.version)
    }

    /// `llama-server`, built unless it is there.
    pub(crate) fn server(&self) -> Result<PathBuf> {
        self.ensure(&BUILDS[1])
    }

    /// `llama-bench`, built unless it is there.
    pub(crate) fn bench(&self) -> Result<PathBuf> {
        self.ensure(&BUILDS[0])
    }

    /// Builds `tool` unless its stamp matches the recipe; returns the binary.
    fn ensure(&self, tool: &ToolBuild) -> Result<PathBuf> {
        let dir = &self.dir;
        let bin = dir.join("bin");
        let binary = bin.join(tool.target);
        let stamp = dir.join(format!("{}.stamp", tool.target));
        let recipe = recipe(&self.version, tool);
        if binary.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == recipe) {
            eprintln!("xtask: llama-tools: {} present in {}", tool.target, bin.display());
            return Ok(binary);
        }
        let started = Instant::now();
        let src = dir.join(tool.src);
        let src_stamp = dir.join(format!("{}.stamp", tool.src));
        // A source tree whose stamp matches is kept, so an interrupted build resumes.
        if !(src.is_dir() && fs::read_to_string(&src_stamp).is_ok_and(|s| s == recipe)) {
            lay_out(&tools_root()?, &src, tool.layout, &self.version)?;
            fs::write(&src_stamp, &recipe)
                .map_err(|e| format!("cannot write {}: {e}", src_stamp.display()))?;
        }
        build(&src, &dir.join(tool.build), tool.target)?;
        fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
        let built = dir.join(tool.build).join("bin").join(tool.target);
        fs::copy(&built, &binary)
            .map_err(|e| format!("cannot copy {} to {}: {e}", built.display(), binary.display()))?;
        fs::write(&stamp, &recipe).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        eprintln!(
            "xtask: llama-tools: built {} in {:.0} s",
            tool.target,
            started.elapsed().as_secs_f64()
        );
        Ok(binary)
    }
}

/// `$XTASK_LLAMA_TOOLS_DIR`, else `$HOME/.cache/ragd/llama-tools`.
fn tools_root() -> Result<PathBuf> {
    match std::env::var_os("XTASK_LLAMA_TOOLS_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(crate::home()?.join(".cache/ragd/llama-tools")),
    }
}

/// The version of `package` that `Cargo.lock` pins.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name_line {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_owned());
        }
    }
    None
}

/// `$CARGO_HOME`, else `$HOME/.cargo`.
fn cargo_home() -> Result<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => Ok(crate::home()?.join(".cargo")),
    }
}

/// The crate's extracted `llama.cpp` folder in cargo's registry, if cargo has extracted it.
fn sys_source(version: &str) -> Result<Option<PathBuf>> {
    let registry = cargo_home()?.join("registry/src");
    let Ok(indexes) = fs::read_dir(&registry) else { return Ok(None) };
    let folder = format!("{SYS_CRATE}-{version}");
    Ok(indexes
        .flatten()
        .map(|index| index.path().join(&folder).join("llama.cpp"))
        .find(|dir| dir.join("CMakeLists.txt").is_file()))
}

/// The recipe written to a tool's stamp: anything in it changing rebuilds the tool.
fn recipe(sys_version: &str, tool: &ToolBuild) -> String {
    let base = match tool.layout {
        Layout::CrateWithTools => format!("{SYS_CRATE} {sys_version} with the sdist's tools"),
        Layout::Sdist => "the sdist's llama.cpp".to_owned(),
    };
    format!(
        "recipe {RECIPE_VERSION}\ntarget {}\nsources {base}\n{TOOLS_PACKAGE} {TOOLS_VERSION} \
         {TOOLS_SDIST_SHA256}\ncmake {}\n",
        tool.target,
        CMAKE_DEFINES.join(" "),
    )
}

/// Lays out a fresh source tree at `src`.
fn lay_out(root: &Path, src: &Path, layout: Layout, version: &str) -> Result<()> {
    let sdist = download_sdist(&root.join("downloads"))?;
    remove_dir(src)?;
    match layout {
        Layout::Sdist => {
            fs::create_dir_all(src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
            extract(&sdist, src, &[SDIST_LLAMA_DIR])?;
            // A submodule pointer into the sdist's (absent) git folder; without it cmake's
            // build-info does not call git.
            let _ = fs::remove_file(src.join(".git"));
        }
        Layout::CrateWithTools => {
            let sys = crate_source(version)?;
            let unpacked = src.with_extension("sdist");
            remove_dir(&unpacked)?;
            fs::create_dir_all(&unpacked)
                .map_err(|e| format!("cannot create {}: {e}", unpacked.display()))?;
            let tools = format!("{SDIST_LLAMA_DIR}/tools");
            let ui_assets = format!("{SDIST_LLAMA_DIR}/scripts/ui-assets.cmake");
            extract(&sdist, &unpacked, &[&tools, &ui_assets])?;
            copy_tree(&sys, src)?;
            let entries = fs::read_dir(unpacked.join("tools"))
                .map_err(|e| format!("cannot read {}: {e}", unpacked.display()))?;
            for entry in entries.flatten() {
                // Every tool folder is replaced (`mtmd` too, so the tools see the
                // multimodal API of their own version); the crate's
                // `tools/CMakeLists.txt` is kept.
                if entry.path().is_dir() {
                    let dest = src.join("tools").join(entry.file_name());
                    remove_dir(&dest)?;
                    copy_tree(&entry.path(), &dest)?;
                }
            }
            let scripts = src.join("scripts");
            fs::create_dir_all(&scripts)
                .map_err(|e| format!("cannot create {}: {e}", scripts.display()))?;
            let from = unpacked.join("scripts/ui-assets.cmake");
            fs::copy(&from, scripts.join("ui-assets.cmake"))
                .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
            remove_dir(&unpacked)?;
        }
    }
    eprintln!("xtask: llama-tools: sources ({layout:?}) laid out in {}", src.display());
    Ok(())
}

/// The crate's llama.cpp, running `cargo fetch` first when cargo has not extracted it.
fn crate_source(version: &str) -> Result<PathBuf> {
    if let Some(sys) = sys_source(version)? {
        return Ok(sys);
    }
    let mut fetch = crate::cargo()?;
    fetch.arg("fetch");
    crate::run(fetch)?;
    sys_source(version)?.ok_or_else(|| format!("{SYS_CRATE} {version} is not in cargo's registry"))
}

/// Extracts `members` of the sdist (paths inside it) into `dest`, dropping the first three
/// path components (`llama_cpp_python-X/vendor/llama.cpp`).
fn extract(sdist: &Path, dest: &Path, members: &[&str]) -> Result<()> {
    let mut tar = Command::new("tar");
    tar.arg("-xzf").arg(sdist).arg("-C").arg(dest).arg("--strip-components=3").args(members);
    crate::run(tar)
}

/// Fetches the pinned sdist with pip (once) and checks its sha256.
fn download_sdist(downloads: &Path) -> Result<PathBuf> {
    let sdist = downloads.join(TOOLS_SDIST);
    if sdist.is_file() && crate::assets::sha256_file(&sdist)? == TOOLS_SDIST_SHA256 {
        return Ok(sdist);
    }
    fs::create_dir_all(downloads)
        .map_err(|e| format!("cannot create {}: {e}", downloads.display()))?;
    let spec = format!("{TOOLS_PACKAGE}=={TOOLS_VERSION}");
    eprintln!("xtask: llama-tools: downloading the {spec} source package for llama.cpp's tools");
    let python = if crate::sysdeps::on_path("python3") { "python3" } else { "python" };
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:", "--dest"])
        .arg(downloads)
        .arg(&spec);
    crate::run(pip)?;
    let actual = crate::assets::sha256_file(&sdist)?;
    if actual != TOOLS_SDIST_SHA256 {
        return Err(format!(
            "{} has sha256 {actual}, expected {TOOLS_SDIST_SHA256}: refusing to use it",
            sdist.display()
        ));
    }
    Ok(sdist)
}

/// Configures and builds `target` with cmake, `CARGO_BUILD_JOBS` (default 2) jobs.
fn build(src: &Path, build: &Path, target: &str) -> Result<()> {
    let mut configure = Command::new("cmake");
    configure.arg("-S").arg(src).arg("-B").arg(build);
    for define in CMAKE_DEFINES {
        configure.arg(format!("-D{define}"));
    }
    crate::run(configure)?;
    let jobs = std::env::var("CARGO_BUILD_JOBS").unwrap_or_else(|_| "2".to_owned());
    let mut make = Command::new("cmake");
    make.arg("--build").arg(build).args(["--parallel", &jobs, "--target", target]);
    crate::run(make)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot remove {}: {err}", dir.display())),
    }
}

/// Copies the folder `from` to `to`, files and folders only.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries = fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            fs::copy(&path, &dest).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// `cargo xtask llama-tools`: build (or find) the tools and print where they are.
pub(crate) fn tools_command() -> Result<()> {
    crate::sysdeps::ensure()?;
    let tools = ToolsDir::locate()?;
    let bench = tools.bench()?;
    let server = tools.server()?;
    eprintln!("xtask: llama-bench:  {}", bench.display());
    eprintln!("xtask: llama-server: {}", server.display());
    Ok(())
}

/// `cargo xtask bench-llm` options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BenchOptions {
    /// Rounds; each runs llama-bench and ragd once, in alternating order.
    rounds: usize,
    /// Repetitions of each test within one run.
    reps: usize,
    /// Threads for both.
    threads: usize,
    /// Prompt tokens of the prompt-processing test.
    pp: usize,
    /// Tokens of the generation test.
    tg: usize,
    /// Append the result to `docs/BENCHMARKS.md`.
    record: bool,
    /// Also import the bundled model's Hugging Face folder at each quantization and measure
    /// the imports next to the bundled file.
    imports: bool,
}

impl BenchOptions {
    fn parse(args: &[String]) -> Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut options =
            Self { rounds: 3, reps: 3, threads, pp: 512, tg: 128, record: false, imports: false };
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            if flag == "--record" {
                options.record = true;
                continue;
            }
            if flag == "--imports" {
                options.imports = true;
                continue;
            }
            let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number: usize =
                value.parse().map_err(|e| format!("{flag} {value}: not a number: {e}"))?;
            if number == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
            match flag.as_str() {
                "--rounds" => options.rounds = number,
                "--reps" => options.reps = number,
                "--threads" => options.threads = number,
                "--pp" => options.pp = number,
                "--tg" => options.tg = number,
                other => return Err(format!("unknown option {other}\n\n{BENCH_USAGE}")),
            }
        }
        Ok(options)
    }
}

const BENCH_USAGE: &str = "usage: cargo xtask bench-llm [--rounds 3] [--reps 3] [--threads N] \
                           [--pp 512] [--tg 128] [--imports] [--record]";

/// Who produced a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Runner {
    LlamaBench,
    Ragd,
}

/// Tokens-per-second samples by test (`pp512`, `tg128`) and runner.
type Samples = std::collections::BTreeMap<(String, Runner), Vec<f64>>;

/// `cargo xtask bench-llm`: ragd's `LocalLlm` against `llama-bench` on the bundled GGUF.
pub(crate) fn bench_llm(args: &[String]) -> Result<()> {
    if crate::bench::llm_concurrency::wanted(args) {
        return crate::bench::llm_concurrency::run(args);
    }
    let options = BenchOptions::parse(args)?;
    if options.imports {
        return bench_imports(&options);
    }
    let assets = crate::setup()?;
    let tools = ToolsDir::locate()?;
    let llama_bench = tools.bench()?;
    let example = crate::Build::Serving.run()?.join("examples/bench_llm");
    let model = assets.join(ragd_core::assets::CHAT_MODEL.path);

    let load_before = load_average();
    let samples = measure(&llama_bench, &example, &model, &options)?;
    let load_after = load_average();

    let section = report(&options, &tools, &samples, &load_before, &load_after)?;
    println!("{section}");
    if options.record {
        append_benchmarks(&section)?;
    }
    Ok(())
}

/// Appends `section` to `docs/BENCHMARKS.md`.
fn append_benchmarks(section: &str) -> Result<()> {
    let path = crate::workspace_root().join("docs/BENCHMARKS.md");
    let mut text = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    text.push('\n');
    text.push_str(section);
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask: bench-llm: appended to {}", path.display());
    Ok(())
}

/// `options.rounds` rounds of `llama-bench` and ragd's `bench_llm` on `model`, alternating
/// who goes first.
fn measure(
    llama_bench: &Path,
    example: &Path,
    model: &Path,
    options: &BenchOptions,
) -> Result<Samples> {
    let mut samples = Samples::new();
    for round in 1..=options.rounds {
        // Alternate who goes first, so neither always meets the warmer (or busier) machine.
        let order = if round % 2 == 1 {
            [Runner::LlamaBench, Runner::Ragd]
        } else {
            [Runner::Ragd, Runner::LlamaBench]
        };
        for runner in order {
            eprintln!("xtask: bench-llm: round {round}/{}: {runner:?}", options.rounds);
            let lines = match runner {
                Runner::LlamaBench => run_llama_bench(llama_bench, model, options)?,
                Runner::Ragd => run_ragd(example, model, options)?,
            };
            for (test, rate) in lines {
                samples.entry((test, runner)).or_default().extend(rate);
            }
        }
    }
    Ok(samples)
}

/// `cargo xtask bench llm --imports`: the bundled model's Hugging Face folder imported at
/// F16, Q8_0 and Q4_K_M (time and size, fastest of the rounds), then each import and the
/// bundled Q4_1 file measured by `llama-bench` and ragd as in the plain `bench llm`.
///
/// The ragd side is built with the release profile for `ragd-llm-backends` alone (its
/// `bench_llm` and `import_model` examples), not the whole serving build. No importer runs
/// here to compare the import with: llama.cpp's `convert_hf_to_gguf.py` needs PyTorch and
/// Ollama does not install on this machine, so the import rows have no peer.
fn bench_imports(options: &BenchOptions) -> Result<()> {
    use ragd_core::assets;

    let root = crate::setup()?;
    let tools = ToolsDir::locate()?;
    let llama_bench = tools.bench()?;
    let mut build = crate::cargo()?;
    build.args(["build", "--release", "-p", "ragd-llm-backends", "--examples"]);
    crate::run(build)?;
    let examples = crate::target_dir()?.join("release/examples");
    let work = crate::target_dir()?.join("ragd-bench/imports");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let folder = root.join(assets::CHAT_MODEL_HF.path);
    let bundled = root.join(assets::CHAT_MODEL.path);
    let folder_bytes: u64 = fs::read_dir(&folder)
        .map_err(|e| format!("{}: {e} (run `cargo xtask assets`)", folder.display()))?
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum();

    let load_before = load_average();
    // (label, file, size, fastest import in seconds)
    let mut models: Vec<(String, PathBuf, u64, Option<f64>)> = Vec::new();
    let size = |path: &Path| fs::metadata(path).map_or(0, |m| m.len());
    models.push((
        "bundled Q4_1 (the package's file)".to_owned(),
        bundled.clone(),
        size(&bundled),
        None,
    ));
    for quantization in ["none", "q8_0", "q4_k_m"] {
        let out = work.join(format!("smollm2-{quantization}.gguf"));
        let mut fastest = f64::INFINITY;
        for round in 1..=options.rounds {
            let _ = fs::remove_file(&out);
            eprintln!("xtask: bench-llm: import {quantization}, round {round}/{}", options.rounds);
            let mut cmd = Command::new(examples.join("import_model"));
            crate::clean_cargo_env(&mut cmd);
            cmd.arg("--folder").arg(&folder).arg("--out").arg(&out);
            cmd.args(["--quantization", quantization, "--threads", &options.threads.to_string()]);
            crate::passive_openmp(&mut cmd);
            let line = output(cmd)?;
            let value: serde_json::Value = serde_json::from_str(line.trim())
                .map_err(|e| format!("import_model printed {line:?}: {e}"))?;
            let seconds = value["seconds"].as_f64().ok_or("import_model printed no seconds")?;
            fastest = fastest.min(seconds);
        }
        let label = if quantization == "none" {
            "imported F16".to_owned()
        } else {
            format!("imported {}", quantization.to_uppercase())
        };
        models.push((label, out.clone(), size(&out), Some(fastest)));
    }
    let example = examples.join("bench_llm");
    let mut rows = Vec::new();
    for (label, path, bytes, import) in &models {
        eprintln!("xtask: bench-llm: measuring {label}");
        let samples = measure(&llama_bench, &example, path, options)?;
        rows.push((label.clone(), *bytes, *import, samples));
    }
    let load_after = load_average();

    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut out = String::new();
    let mut w = |line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    w(format!("## LLM: imported Hugging Face models vs the bundled GGUF, {date}"));
    w(String::new());
    w(format!("- commit: {}", commit_line()));
    w(format!("- machine: {}", machine()));
    w(format!("- load average (1, 5, 15 min) before: {load_before}; after: {load_after}"));
    w(command_of("cargo xtask bench llm --imports", options));
    w(format!(
        "- source: `{}` ({:.1} MB: F16 safetensors dequantised from the bundled Q4_1 by \
         `cargo xtask assets`), imported by the `import_model` example (release build of \
         `ragd-llm-backends`), fastest of {} rounds with {} threads; no peer importer runs \
         here (llama.cpp's `convert_hf_to_gguf.py` needs PyTorch, Ollama does not install)",
        assets::CHAT_MODEL_HF.path,
        folder_bytes as f64 / 1e6,
        options.rounds,
        options.threads
    ));
    w(format!(
        "- speed: `llama-bench` ({}, cmake Release) and ragd's `bench_llm` on each file, \
         alternating, tokens/s medians",
        tools.llama_cpp()
    ));
    w(String::new());
    let pp = format!("pp{}", options.pp);
    let tg = format!("tg{}", options.tg);
    w(format!(
        "| model | size MB | import s | llama-bench {pp} | ragd {pp} | ratio | llama-bench {tg} | ragd {tg} | ratio |"
    ));
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|".to_owned());
    for (label, bytes, import, samples) in &rows {
        let get =
            |test: &str, runner| samples.get(&(test.to_owned(), runner)).and_then(|v| median(v));
        let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
        let ratio = |test: &str| match (get(test, Runner::Ragd), get(test, Runner::LlamaBench)) {
            (Some(r), Some(l)) if l > 0.0 => format!("{:.2}", r / l),
            _ => "–".to_owned(),
        };
        w(format!(
            "| {label} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            *bytes as f64 / 1e6,
            import.map_or_else(|| "–".to_owned(), |s| format!("{s:.1}")),
            cell(get(&pp, Runner::LlamaBench)),
            cell(get(&pp, Runner::Ragd)),
            ratio(&pp),
            cell(get(&tg, Runner::LlamaBench)),
            cell(get(&tg, Runner::Ragd)),
            ratio(&tg),
        ));
    }
    println!("{out}");
    if options.record {
        append_benchmarks(&out)?;
    }
    Ok(())
}

/// The report's `- command:` line: `program` with the options in force.
fn command_of(program: &str, options: &BenchOptions) -> String {
    format!(
        "- command: `{program} --rounds {} --reps {} --threads {} --pp {} --tg {}`, \
         `OMP_WAIT_POLICY={}`",
        options.rounds,
        options.reps,
        options.threads,
        options.pp,
        options.tg,
        std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "PASSIVE".to_owned())
    )
}

/// The short commit hash, marked when the tree has uncommitted changes.
fn commit_line() -> String {
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"]);
    if dirty.is_empty() { commit } else { format!("{commit} (with uncommitted changes)") }
}

/// Output of a command, failing on a non-zero exit.
fn output(mut cmd: Command) -> Result<String> {
    eprintln!("xtask: running {cmd:?}");
    let out = cmd.output().map_err(|err| format!("cannot run {cmd:?}: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{cmd:?} printed non-UTF-8: {e}"))
}

/// Runs `llama-bench` once; returns each test's per-repetition rates.
fn run_llama_bench(
    llama_bench: &Path,
    model: &Path,
    options: &BenchOptions,
) -> Result<Vec<(String, Vec<f64>)>> {
    let mut cmd = Command::new(llama_bench);
    cmd.arg("-m")
        .arg(model)
        .args(["-p", &options.pp.to_string(), "-n", &options.tg.to_string()])
        .args(["-t", &options.threads.to_string(), "-r", &options.reps.to_string()])
        .args(["-o", "jsonl"]);
    crate::passive_openmp(&mut cmd);
    parse_llama_bench(&output(cmd)?)
}

/// Parses `llama-bench -o jsonl`: one object per test with `n_prompt`, `n_gen` and
/// `samples_ts` (tokens per second of each repetition).
fn parse_llama_bench(text: &str) -> Result<Vec<(String, Vec<f64>)>> {
    let mut tests = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("llama-bench printed {line:?}: {e}"))?;
        let n_prompt = value["n_prompt"].as_u64().unwrap_or(0);
        let n_gen = value["n_gen"].as_u64().unwrap_or(0);
        let test = match (n_prompt, n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, g) => format!("tg{g}"),
            (p, g) => format!("pp{p}+tg{g}"),
        };
        let rates: Vec<f64> = value["samples_ts"]
            .as_array()
            .ok_or_else(|| format!("llama-bench printed no samples_ts: {line}"))?
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        tests.push((test, rates));
    }
    if tests.is_empty() {
        return Err(format!("llama-bench printed no results:\n{text}"));
    }
    Ok(tests)
}

/// Runs the `bench_llm` example once; returns each test's per-repetition rates.
fn run_ragd(
    example: &Path,
    model: &Path,
    options: &BenchOptions,
) -> Result<Vec<(String, Vec<f64>)>> {
    if !example.is_file() {
        return Err(format!("{} was not built by the serving build", example.display()));
    }
    let mut cmd = Command::new(example);
    crate::clean_cargo_env(&mut cmd);
    cmd.arg("--model")
        .arg(model)
        .args(["--threads", &options.threads.to_string()])
        .args(["--pp", &options.pp.to_string(), "--tg", &options.tg.to_string()])
        .args(["--reps", &options.reps.to_string()])
        .env("RUST_LOG", "warn");
    crate::passive_openmp(&mut cmd);
    let text = output(cmd)?;
    let mut tests: Vec<(String, Vec<f64>)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("bench_llm printed {line:?}: {e}"))?;
        let test = value["test"].as_str().ok_or_else(|| format!("no test in {line}"))?;
        let rate = value["tokens_per_s"].as_f64().ok_or_else(|| format!("no rate in {line}"))?;
        match tests.iter_mut().find(|(name, _)| name == test) {
            Some((_, rates)) => rates.push(rate),
            None => tests.push((test.to_owned(), vec![rate])),
        }
    }
    if tests.is_empty() {
        return Err(format!("bench_llm printed no results:\n{text}"));
    }
    Ok(tests)
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match median(values) {
        Some(m) => format!("{m:.1} ({min:.1}–{max:.1}, n={})", values.len()),
        None => "–".to_owned(),
    }
}

/// The markdown section for `docs/BENCHMARKS.md`.
fn report(
    options: &BenchOptions,
    tools: &ToolsDir,
    samples: &Samples,
    load_before: &str,
    load_after: &str,
) -> Result<String> {
    let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = commit_line();
    let mut out = String::new();
    let w = |out: &mut String, line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    w(&mut out, format!("## LLM: ragd `LocalLlm` vs `llama-bench`, {date}"));
    w(&mut out, String::new());
    w(&mut out, format!("- commit: {commit}"));
    w(&mut out, format!("- machine: {}", machine()));
    w(
        &mut out,
        format!("- load average (1, 5, 15 min) before: {load_before}; after: {load_after}"),
    );
    w(&mut out, command_of("cargo xtask bench-llm", options));
    w(
        &mut out,
        format!(
            "- model: bundled `{}`; llama.cpp: {} for both (llama-bench: cmake Release; ragd: \
             the `bench_llm` example of the build below)",
            ragd_core::assets::CHAT_MODEL.path,
            tools.llama_cpp()
        ),
    );
    w(&mut out, crate::bench::build_line());
    w(&mut out, String::new());
    w(
        &mut out,
        "| test | llama-bench tokens/s, median (min–max, n) | ragd tokens/s, median (min–max, n) | ragd / llama-bench |"
            .to_owned(),
    );
    w(&mut out, "|---|---|---|---|".to_owned());
    let tests: std::collections::BTreeSet<&String> = samples.keys().map(|(t, _)| t).collect();
    for test in tests {
        let empty = Vec::new();
        let reference = samples.get(&(test.clone(), Runner::LlamaBench)).unwrap_or(&empty);
        let ragd = samples.get(&(test.clone(), Runner::Ragd)).unwrap_or(&empty);
        let ratio = match (median(ragd), median(reference)) {
            (Some(r), Some(l)) if l > 0.0 => format!("{:.2}", r / l),
            _ => "–".to_owned(),
        };
        w(&mut out, format!("| {test} | {} | {} | {ratio} |", spread(reference), spread(ragd)));
    }
    Ok(out)
}

/// The first line a command prints, or `unknown`.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(crate::workspace_root())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| {
                String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_owned()
            },
        )
}

/// CPU model, logical CPUs and memory, from `/proc`.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0));
    format!("{model}, {cpus} logical CPUs, {mem_gib} RAM")
}

/// `/proc/loadavg`'s first three fields.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_locked_versions() {
        let lock = "[[package]]\nname = \"llama-cpp-2\"\nversion = \"0.1.160\"\n\n\
                    [[package]]\nname = \"llama-cpp-sys-2\"\nversion = \"0.1.161\"\n";
        assert_eq!(locked_version(lock, "llama-cpp-sys-2").as_deref(), Some("0.1.161"));
        assert_eq!(locked_version(lock, "llama-cpp-2").as_deref(), Some("0.1.160"));
        assert_eq!(locked_version(lock, "llama"), None);
    }

    #[test]
    fn the_workspace_pins_the_sys_crate() {
        let lock = fs::read_to_string(crate::workspace_root().join("Cargo.lock")).unwrap();
        assert!(locked_version(&lock, SYS_CRATE).is_some());
    }

    #[test]
    fn the_recipe_names_what_the_build_depends_on() {
        let recipe = recipe("0.1.161", &BUILDS[0]);
        assert!(recipe.contains("target llama-bench"));
        assert!(recipe.contains("llama-cpp-sys-2 0.1.161"), "{recipe}");
        assert!(!self::recipe("0.1.161", &BUILDS[1]).contains("llama-cpp-sys-2"));
        assert!(recipe.contains(TOOLS_SDIST_SHA256));
        assert!(recipe.contains("LLAMA_USE_PREBUILT_UI=OFF"), "no downloads during the build");
        assert!(recipe.contains("GGML_NATIVE=OFF"), "the same CPU flags as llama-cpp-sys-2");
    }

    #[test]
    fn parses_llama_bench_jsonl() {
        let text = "{\"n_prompt\": 512, \"n_gen\": 0, \"samples_ts\": [1000.5, 990.0]}\n\
                    {\"n_prompt\": 0, \"n_gen\": 128, \"samples_ts\": [40.0, 41.0, 39.0]}\n";
        let tests = parse_llama_bench(text).unwrap();
        assert_eq!(tests[0], ("pp512".to_owned(), vec![1000.5, 990.0]));
        assert_eq!(tests[1].0, "tg128");
        assert!(parse_llama_bench("nothing").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn bench_options() {
        let defaults = BenchOptions::parse(&[]).unwrap();
        assert_eq!((defaults.pp, defaults.tg, defaults.record), (512, 128, false));
        let args: Vec<String> =
            ["--pp", "64", "--record", "--tg", "16"].iter().map(|s| (*s).to_owned()).collect();
        let options = BenchOptions::parse(&args).unwrap();
        assert_eq!((options.pp, options.tg, options.record), (64, 16, true));
        assert!(BenchOptions::parse(&["--pp".to_owned(), "0".to_owned()]).is_err());
        assert!(BenchOptions::parse(&["--nope".to_owned(), "1".to_owned()]).is_err());
    }
}
