//! Where tests find what `cargo xtask` prepared: the asset directory and the corpus of
//! real documents, one definition for every crate's tests.

// Tests read the same environment as `cargo xtask`, which sets it.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;

/// The asset directory: `RAGD_ASSETS_DIR`, else `$HOME/.cache/ragd/assets` (`cargo xtask
/// assets` fills it).
///
/// # Panics
/// When neither `RAGD_ASSETS_DIR` nor `HOME` is set.
#[must_use]
pub fn assets_dir() -> PathBuf {
    std::env::var_os("RAGD_ASSETS_DIR").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME or RAGD_ASSETS_DIR must be set");
            PathBuf::from(home).join(".cache/ragd/assets")
        },
        PathBuf::from,
    )
}

/// The corpus folder `XTASK_CORPUS_DIR` names (`cargo xtask test` fetches it there with
/// `fixtures/ingest-corpus/fetch.py`).
///
/// # Panics
/// When the variable is unset or the folder holds no complete corpus (no `MANIFEST.json`).
#[must_use]
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("XTASK_CORPUS_DIR").map(PathBuf::from).expect(
        "XTASK_CORPUS_DIR names the corpus folder: run `cargo xtask test`, or \
         `python3 fixtures/ingest-corpus/fetch.py --out DIR` and set it",
    );
    assert!(dir.join("MANIFEST.json").is_file(), "{} holds no fetched corpus", dir.display());
    dir
}

/// The documents of the corpus, sorted: every file of [`corpus_dir`] but its manifest.
///
/// # Panics
/// As [`corpus_dir`], and when the folder cannot be read.
#[must_use]
pub fn corpus_documents() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display())))
        .map(|entry| entry.path())
        .filter(|path| path.file_name().is_some_and(|name| name != "MANIFEST.json"))
        .collect();
    files.sort();
    files
}
