//! The Python virtual environments of xtask commands (the protocol clients of the tests,
//! schemathesis for `fuzz`, the benchmark peers): created when missing, filled by pip, and
//! filled again whenever their pins change.
//!
//! A stamp file in the venv holds the pins it was filled from; a venv whose stamp matches
//! is used as it is, offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

/// The stamp file, inside the venv.
const STAMP: &str = ".ragd-pins";

/// The interpreter of the venv in `dir`, once it holds `pins`: when the stamp differs (or
/// there is none), the venv is created if missing and `install` adds its arguments to
/// `python -m pip install` (the pinned packages, where to find them, pip's flags).
pub(crate) fn ensure(
    dir: &Path,
    pins: &str,
    install: impl FnOnce(&mut Command),
) -> Result<PathBuf> {
    let python = dir.join("bin/python");
    let stamp = dir.join(STAMP);
    if python.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) {
        return Ok(python);
    }
    if !python.is_file() {
        let system = if crate::sysdeps::on_path("python3") { "python3" } else { "python" };
        let mut venv = Command::new(system);
        venv.args(["-m", "venv"]).arg(dir);
        crate::run(venv)?;
    }
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check"]);
    install(&mut pip);
    crate::run(pip)?;
    std::fs::write(&stamp, pins).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(python)
}
