//! `cargo xtask fuzz`: property-based API fuzzing of a running `ragd` with schemathesis.
//!
//! It builds ragd with the test build, starts it on a free loopback port over a fresh data
//! directory (no chat model loaded, so chat answers 503 quickly instead of generating),
//! and runs schemathesis (pinned, from PyPI, in `$HOME/.cache/ragd/fuzz-venv`) against
//! `/openapi.json`: generated valid and invalid requests for every operation, checked for
//! server errors (5xx), undocumented status codes, wrong content types and responses that
//! violate their schema. A bounded number of examples per operation and a fixed seed keep
//! the run short and reproducible; `--examples N` and `--seed S` change them.
//!
//! `cargo xtask fuzz extract [--seconds N]` runs the `cargo fuzz` target `fuzz/extract`
//! (libFuzzer with AddressSanitizer, on the nightly toolchain) against every extractor for
//! N seconds (default 60), seeded with the document fixtures, PDFs read by both engines
//! (`XTASK_FUZZ_PDFIUM` names the asset's PDFium). cargo-fuzz is installed
//! (pinned) into `$HOME/.cache/ragd/cargo-fuzz`, the build goes to
//! `$HOME/.cache/ragd/fuzz-target` (sanitizer flags never touch the main build), and the
//! corpus grows in `$HOME/.cache/ragd/fuzz-corpus/extract` from run to run. A crash leaves
//! its input in `fuzz/artifacts/extract/` and fails the command.

use std::path::Path;
use std::process::Command;

use crate::local_server::{ServeOptions, serve_ragd};
use crate::{Result, home, run, setup};

/// The cargo-fuzz release `fuzz extract` installs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The schemathesis release the checks were written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// The checks that must pass.
///
/// - `not_a_server_error` is replaced by `status_code_conformance`: with no model loaded,
///   chat rightly answers the documented `503 unavailable`, which that check would count as
///   a failure; an undocumented 5xx (any 500) still fails `status_code_conformance`, as no
///   route documents 500.
/// - The positive/negative data checks are left out: the OpenAPI document does not encode
///   every validation rule (non-empty text, ranges checked by the service), so data that
///   is "valid" by the schema can rightly be refused with 400.
const CHECKS: &str = "status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance";

/// Runs the fuzzer; fails when schemathesis finds anything.
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    if let Some((first, rest)) = args.split_first()
        && first == "extract"
    {
        return fuzz_extract(rest);
    }
    let mut examples = "25".to_owned();
    let mut seed = "1".to_owned();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--examples", Some(value)) => examples.clone_from(value),
            ("--seed", Some(value)) => seed.clone_from(value),
            _ => {
                return Err(format!(
                    "usage: cargo xtask fuzz [--examples N] [--seed S] | \
                     cargo xtask fuzz extract [--seconds N], got {args:?}"
                ));
            }
        }
    }
    let assets = setup()?;
    // The tests' build: fuzzing is part of CI, which must not wait for the serving build.
    let out = crate::Build::Tests.run()?;
    let venv = home()?.join(".cache/ragd/fuzz-venv");
    crate::venv::ensure(&venv, SCHEMATHESIS, |pip| {
        pip.args(["--quiet", SCHEMATHESIS]);
    })?;

    let data = tempfile_dir()?;
    // The server as it runs for real: the bundled model loaded (so the chat path answers,
    // not only 503) and an API key required, which schemathesis sends with every request.
    let key = "xtask-fuzz-key";
    let options = ServeOptions { bundled_model: true, api_key: Some(key), env: &[] };
    let (server, port) = serve_ragd(&out.join("ragd"), &data, &assets, options)?;

    let url = format!("http://127.0.0.1:{port}/openapi.json");
    let mut st = Command::new(venv.join("bin/st"));
    st.args(["run", &url, "--checks", CHECKS, "-n", &examples, "--seed", &seed])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--phases", "examples,coverage,fuzzing"]);
    let result = run(st);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// A fresh directory under the system temp dir for the server's data.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("ragd-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// `cargo xtask fuzz extract`: the extractors under libFuzzer for a bounded time.
fn fuzz_extract(args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => 60,
        [flag, value] if flag == "--seconds" => {
            value.parse().map_err(|_| format!("--seconds needs a number, got {value:?}"))?
        }
        _ => return Err(format!("usage: cargo xtask fuzz extract [--seconds N], got {args:?}")),
    };
    let nightly = Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output();
    if !nightly.is_ok_and(|out| out.status.success()) {
        return Err("cargo fuzz needs a nightly toolchain: rustup toolchain install nightly".into());
    }
    let cache = home()?.join(".cache/ragd");
    let root = cache.join("cargo-fuzz");
    ensure_cargo_fuzz(&root)?;
    // PDFs are fuzzed through PDFium as well, as the server reads them.
    let pdfium = crate::setup()?.join(ragd_core::assets::PDFIUM.path);

    // Seeds: every committed document fixture (a few kilobytes each).
    let corpus = cache.join("fuzz-corpus/extract");
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let fixtures = crate::workspace_root().join("fixtures/docs");
    for dir in [fixtures.clone(), fixtures.join("broken"), fixtures.join("hostile")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && path.metadata().is_ok_and(|m| m.len() <= 256 * 1024) {
                let name = format!("seed-{}", entry.file_name().to_string_lossy());
                std::fs::copy(&path, corpus.join(name))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }

    let mut cmd = Command::new("rustup");
    crate::clean_cargo_env(&mut cmd);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![root.join("bin")];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).map_err(|e| e.to_string())?;
    cmd.current_dir(crate::workspace_root())
        .env("PATH", path)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env("CARGO_TARGET_DIR", cache.join("fuzz-target"))
        .env("XTASK_FUZZ_PDFIUM", &pdfium)
        .env("CARGO_BUILD_JOBS", std::env::var("CARGO_BUILD_JOBS").unwrap_or_else(|_| "2".into()))
        .args(["run", "nightly", "cargo", "fuzz", "run", "--fuzz-dir", "fuzz", "extract"])
        .arg(&corpus)
        .args(["--", "-timeout=20", "-rss_limit_mb=4096", "-max_len=262144"])
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1");
    run(cmd)
}

/// Installs the pinned cargo-fuzz into `root` unless it is there already.
fn ensure_cargo_fuzz(root: &Path) -> Result<()> {
    let stamp = root.join(".ragd-cargo-fuzz");
    if root.join("bin/cargo-fuzz").is_file()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == CARGO_FUZZ_VERSION)
    {
        return Ok(());
    }
    let mut install = Command::new("cargo");
    crate::clean_cargo_env(&mut install);
    install
        .args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION, "--root"])
        .arg(root)
        .env("CARGO_TARGET_DIR", root.join("build"));
    run(install)?;
    let _ = std::fs::remove_dir_all(root.join("build"));
    std::fs::write(&stamp, CARGO_FUZZ_VERSION).map_err(|e| format!("{}: {e}", stamp.display()))
}
