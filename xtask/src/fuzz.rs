//! `cargo xtask fuzz`: property-based API fuzzing of a running `ragd` with schemathesis.
//!
//! It builds ragd with the test build, starts it on a free loopback port over a fresh data
//! directory (no chat model loaded, so chat answers 503 quickly instead of generating),
//! and runs schemathesis (pinned, from PyPI, in `$HOME/.cache/ragd/fuzz-venv`) against
//! `/openapi.json`: generated valid and invalid requests for every operation, checked for
//! server errors (5xx), undocumented status codes, wrong content types and responses that
//! violate their schema. A bounded number of examples per operation and a fixed seed keep
//! the run short and reproducible; `--examples N` and `--seed S` change them.

use std::path::Path;
use std::process::Command;

use crate::local_server::serve_ragd;
use crate::{Result, home, run, setup};

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

fn ensure_venv(venv: &Path) -> Result<()> {
    let st = venv.join("bin/st");
    let stamp = venv.join(".ragd-schemathesis");
    if st.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == SCHEMATHESIS) {
        return Ok(());
    }
    run({
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(venv);
        cmd
    })?;
    run({
        let mut cmd = Command::new(venv.join("bin/pip"));
        cmd.args(["install", "--quiet", SCHEMATHESIS]);
        cmd
    })?;
    std::fs::write(&stamp, SCHEMATHESIS).map_err(|e| format!("{}: {e}", stamp.display()))
}

/// Runs the fuzzer; fails when schemathesis finds anything.
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let mut examples = "25".to_owned();
    let mut seed = "1".to_owned();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--examples", Some(value)) => examples.clone_from(value),
            ("--seed", Some(value)) => seed.clone_from(value),
            _ => {
                return Err(format!(
                    "usage: cargo xtask fuzz [--examples N] [--seed S], got {args:?}"
                ));
            }
        }
    }
    let assets = setup()?;
    run({
        let mut build = crate::cargo()?;
        build.args(["test", "--workspace", "--no-run"]);
        build
    })?;
    let venv = home()?.join(".cache/ragd/fuzz-venv");
    ensure_venv(&venv)?;

    let data = tempfile_dir()?;
    let (server, port) = serve_ragd(&data, &assets)?;

    let url = format!("http://127.0.0.1:{port}/openapi.json");
    let mut st = Command::new(venv.join("bin/st"));
    st.args(["run", &url, "--checks", CHECKS, "-n", &examples, "--seed", &seed])
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
