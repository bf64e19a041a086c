//! Tidy checks that keep the tree honest, run as tests by `cargo xtask test`.
//!
//! - Every Rust file starts with a `//!` module doc (rust-analyzer's `TidyDocs`).
//! - The crate graph keeps the architecture invariants of `docs/ARCHITECTURE.md`: `ragd-core`
//!   stays light, ingest and chat never depend on concrete backends, `ragd-hub` stays below
//!   the inference runtimes, libraries never install a tracing subscriber.
//! - `docs/THIRD_PARTY.md` matches what `cargo xtask third-party` generates from `Cargo.lock`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "bins", "xtask", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} files under {}", files.len(), root.display());
    let undocumented: Vec<_> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(undocumented.is_empty(), "files without a `//!` module doc: {undocumented:#?}");
}

/// `unsafe` is denied workspace-wide (`Cargo.toml`); the files allowed to lift that are
/// the two FFI bindings (PDFium, llama.cpp's quantizer), where clippy requires a `SAFETY:`
/// comment on every `unsafe` block.
#[test]
fn unsafe_code_stays_in_the_ffi_bindings() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "bins", "xtask", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    let allowed = [
        root.join("crates/ingest/src/pdfium.rs"),
        root.join("crates/llm-backends/src/import/quantize.rs"),
    ];
    let mut lifting: Vec<_> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            // The needle is split so that this file does not match itself.
            text.contains(concat!("allow(", "unsafe_code)"))
        })
        .collect();
    lifting.sort();
    assert_eq!(lifting, allowed.iter().collect::<Vec<_>>(), "files that allow unsafe code");
    for binding in &allowed {
        let text = std::fs::read_to_string(binding).unwrap();
        assert!(
            text.contains("#![deny(clippy::undocumented_unsafe_blocks)]"),
            "{}",
            binding.display()
        );
    }
}

/// The packages `krate` depends on through normal (non-dev, non-build) edges on the host
/// platform, as `cargo tree` resolves them (offline: it needs only what the build has):
/// all of them, or only the direct ones with `depth` 1.
fn normal_deps(krate: &str, depth: Option<u32>) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none", "--format", "{p}"])
        .args(["--package", krate])
        .current_dir(workspace_root());
    if let Some(depth) = depth {
        command.args(["--depth", &depth.to_string()]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != krate)
        .map(str::to_owned)
        .collect()
}

fn transitive_deps(krate: &str) -> BTreeSet<String> {
    normal_deps(krate, None)
}

fn direct_deps(krate: &str) -> BTreeSet<String> {
    normal_deps(krate, Some(1))
}

fn workspace_libraries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .flatten()
        .map(|entry| {
            let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).unwrap();
            let name_line = manifest.lines().find(|l| l.starts_with("name = ")).unwrap();
            name_line.trim_start_matches("name = ").trim_matches('"').to_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn crate_graph_keeps_the_architecture_invariants() {
    let forbidden = |krate: &str, banned: &[&str]| {
        let deps = transitive_deps(krate);
        assert!(!deps.is_empty() || krate == "ragd-core", "cargo tree found nothing for {krate}");
        let found: Vec<_> = banned.iter().filter(|b| deps.contains(**b)).collect();
        assert!(found.is_empty(), "{krate} must not depend on {found:?} (docs/ARCHITECTURE.md)");
    };

    // Invariant 1: the API boundary is light.
    forbidden(
        "ragd-core",
        &[
            "ort",
            "arrow",
            "arrow-array",
            "lancedb",
            "axum",
            "reqwest",
            "llama-cpp-2",
            "rusqlite",
            "tokio",
        ],
    );
    // Invariant 2: logic crates are written against traits, never concrete backends.
    for logic in ["ragd-ingest", "ragd-search", "ragd-chat"] {
        forbidden(
            logic,
            &[
                "ragd-embedding",
                "ragd-vector-store",
                "ragd-llm-backends",
                "ragd-hub",
                "ort",
                "lancedb",
            ],
        );
    }
    // The hub client is shared by the embedder's and the LLMs' model resolution, so it
    // stays below both: no inference runtime, no store, no web server.
    forbidden(
        "ragd-hub",
        &[
            "ragd-embedding",
            "ragd-llm-backends",
            "ragd-vector-store",
            "llama-cpp-2",
            "ort",
            "lancedb",
            "axum",
            "hf-hub",
        ],
    );
    // Libraries that only emit metrics name them through ragd-core, not through the
    // system probes of ragd-telemetry.
    for emitter in ["ragd-ingest", "ragd-llm-backends"] {
        forbidden(emitter, &["ragd-telemetry", "sysinfo", "nvml-wrapper"]);
    }
    // Invariant 2, the other half: concrete backends are wired in one place, ragd-engine.
    // The binary and every other library reach them only through it.
    let wiring = ["ragd-embedding", "ragd-vector-store"];
    let mut packages = workspace_libraries();
    packages.push("ragd".to_owned());
    for package in packages.iter().filter(|p| p.as_str() != "ragd-engine") {
        let direct = direct_deps(package);
        let found: Vec<_> = wiring.iter().filter(|w| direct.contains(**w)).collect();
        assert!(
            found.is_empty(),
            "{package} depends on {found:?} directly; concrete backends are wired only in \
             ragd-engine (docs/ARCHITECTURE.md, invariant 2)"
        );
    }
    let engine = direct_deps("ragd-engine");
    assert!(wiring.iter().all(|w| engine.contains(*w)), "ragd-engine wires {wiring:?}: {engine:?}");

    // Invariant 4: only the binary installs a subscriber.
    let libraries = workspace_libraries();
    assert!(libraries.len() >= 8, "{libraries:?}");
    for library in &libraries {
        forbidden(library, &["tracing-subscriber"]);
    }
}

/// `fixtures/MANIFEST.toml` lists every fixture with its sha256, so a changed or
/// unlisted fixture is noticed (meilisearch's workload assets do the same).
#[test]
fn fixtures_match_their_manifest() {
    use sha2::{Digest, Sha256};

    let root = workspace_root().join("fixtures");
    let manifest = std::fs::read_to_string(root.join("MANIFEST.toml")).unwrap();
    let listed: BTreeSet<(String, String)> = manifest
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(path, hash)| (path.trim_matches('"').to_owned(), hash.trim_matches('"').to_owned()))
        .collect();

    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut present = BTreeSet::new();
    walk(&root, &root, &mut present);
    present.remove("MANIFEST.toml");
    present.remove("README.md");

    let listed_paths: BTreeSet<String> = listed.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(listed_paths, present, "fixtures/MANIFEST.toml must list exactly the fixture files");
    for (path, hash) in &listed {
        let bytes = std::fs::read(root.join(path)).unwrap();
        let actual: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            &actual, hash,
            "{path} changed; regenerate fixtures/MANIFEST.toml if on purpose"
        );
    }
}

/// `docs/THIRD_PARTY.md` lists every dependency with its licence; a changed `Cargo.lock` or
/// manifest must regenerate it. `cargo metadata --locked` also fails on a stale lock file.
#[test]
fn third_party_md_is_current() {
    let root = workspace_root();
    let expected = crate::third_party::render(&root).unwrap();
    let path = root.join(crate::third_party::OUTPUT);
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    // Not assert_eq!: both sides are the whole document.
    assert!(
        actual == expected,
        "{} is stale (or missing); run `cargo xtask third-party`",
        path.display()
    );
}
