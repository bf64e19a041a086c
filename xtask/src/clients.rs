//! The Python environment of the protocol and browser tests (`bins/ragd/tests/it/protocols.rs`,
//! `web.rs`): the official `openai`, `ollama` and `mcp` clients and Selenium, pinned in
//! `bins/ragd/tests/clients/requirements.txt`, in a venv at `$HOME/.cache/ragd/clients-venv`.
//!
//! The venv is kept by [`crate::venv::ensure`]: filled again when the pins change. `cargo xtask test`
//! hands the venv's interpreter to the tests as `XTASK_CLIENTS_PYTHON` (not a `RAGD_`
//! variable: the `ragd` processes the tests start inherit the environment and refuse
//! unknown `RAGD_` keys); `cargo xtask bench http` drives ragd with the same clients.

use std::path::PathBuf;

use crate::{Result, home, workspace_root};

/// The variable that names the interpreter for the tests.
pub(crate) const PYTHON_ENV: &str = "XTASK_CLIENTS_PYTHON";

/// The pinned requirements, relative to the workspace root.
const REQUIREMENTS: &str = "bins/ragd/tests/clients/requirements.txt";

/// The venv's interpreter, once the venv holds the pinned clients (installed on first use
/// and whenever the pins change). `cargo xtask test` and `bench http` use it.
pub(crate) fn python() -> Result<PathBuf> {
    let venv = home()?.join(".cache/ragd/clients-venv");
    let requirements = workspace_root().join(REQUIREMENTS);
    let pins = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    crate::venv::ensure(&venv, &pins, |pip| {
        eprintln!("xtask: installing the protocol test clients into {}", venv.display());
        pip.args(["--quiet", "-r"]).arg(&requirements);
    })
}
