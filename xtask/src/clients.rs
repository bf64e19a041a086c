//! The Python environment of the protocol tests (`bins/ragd/tests/it/protocols.rs`): the
//! official `openai`, `ollama` and `mcp` clients, pinned in
//! `bins/ragd/tests/clients/requirements.txt`, in a venv at `$HOME/.cache/ragd/clients-venv`.
//!
//! A stamp file in the venv holds the requirements it was installed from; when the pins
//! change (or there is no stamp yet), pip installs them again. `cargo xtask test`
//! hands the venv's interpreter to the tests as `XTASK_CLIENTS_PYTHON` (not a `RAGD_`
//! variable: the `ragd` processes the tests start inherit the environment and refuse
//! unknown `RAGD_` keys); `cargo xtask bench http` drives ragd with the same clients.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, home, run, workspace_root};

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
    let python = venv.join("bin/python");
    let stamp = venv.join(".ragd-requirements");
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return Ok(python);
    }
    install(&venv, &requirements)?;
    std::fs::write(&stamp, &pins).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(python)
}

/// Creates the venv unless it exists, then installs the pins (pip moves a package to its
/// pinned version and leaves what already matches alone).
fn install(venv: &Path, requirements: &Path) -> Result<()> {
    eprintln!("xtask: installing the protocol test clients into {}", venv.display());
    if !venv.join("bin/pip").is_file() {
        run({
            let mut cmd = Command::new("python3");
            cmd.args(["-m", "venv"]).arg(venv);
            cmd
        })?;
    }
    run({
        let mut cmd = Command::new(venv.join("bin/pip"));
        cmd.args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(requirements);
        cmd
    })
}
