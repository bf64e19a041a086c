//! The system packages the build and the tests need, and installing them with apt when they
//! are missing.
//!
//! `protoc` (lancedb's build), `cmake` and libclang (llama.cpp's build through
//! `llama-cpp-2`) cannot come from crates.io; the web page's browser tests need Debian's
//! `chromium` and `chromium-driver` (`ensure_browser`, called by `cargo xtask test`), and the
//! document tests Poppler's `pdftotext` and pandoc (`ensure_documents`); the server reads
//! images with Tesseract (`ensure_ocr`, called by `serve` and `test`); the catalog's tests
//! start a throwaway Postgres server (`ensure_database`). As root
//! on a Debian-like machine this installs them; otherwise it prints the exact command and
//! stops.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// A system dependency: how to tell it is there, and the Debian package that provides it.
struct SysDep {
    what: &'static str,
    package: &'static str,
    present: fn() -> bool,
}

/// What the build needs.
const BUILD: [SysDep; 3] = [
    SysDep { what: "protoc", package: "protobuf-compiler", present: || on_path("protoc") },
    SysDep { what: "cmake", package: "cmake", present: || on_path("cmake") },
    SysDep { what: "libclang", package: "libclang-dev", present: libclang_present },
];

/// What the web page's browser tests need (`bins/ragd/tests/it/web.rs`).
const BROWSER: [SysDep; 2] = [
    SysDep { what: "chromium", package: "chromium", present: || on_path("chromium") },
    SysDep {
        what: "chromedriver",
        package: "chromium-driver",
        present: || on_path("chromedriver"),
    },
];

/// What the document tests compare ragd's extraction with, and convert the corpus with
/// (`crates/ingest/tests/corpus.rs`).
const DOCUMENTS: [SysDep; 2] = [
    SysDep { what: "pdftotext", package: "poppler-utils", present: || on_path("pdftotext") },
    SysDep { what: "pandoc", package: "pandoc", present: || on_path("pandoc") },
];

/// What the catalog's Postgres tests start a throwaway server from
/// (`ragd_test_utils::PgDatabase`): Debian's server package (`initdb`, `postgres`, `psql`),
/// and `openssl`, which makes the server's test certificates for the TLS tests.
const DATABASE: [SysDep; 2] = [
    SysDep { what: "postgres", package: "postgresql", present: postgres_present },
    SysDep { what: "openssl", package: "openssl", present: || on_path("openssl") },
];

/// Whether a Postgres server's binaries are installed (Debian keeps them off `PATH`).
fn postgres_present() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions.flatten().any(|version| version.path().join("bin/initdb").is_file())
    })
}

/// What reads images (`ragd-ingest`'s OCR): Tesseract and its English data.
const OCR: [SysDep; 2] = [
    SysDep { what: "tesseract", package: "tesseract-ocr", present: || on_path("tesseract") },
    SysDep {
        what: "tesseract English data",
        package: "tesseract-ocr-eng",
        present: || Path::new("/usr/share/tesseract-ocr/5/tessdata/eng.traineddata").is_file(),
    },
];

/// Whether `program` is an executable file in a `PATH` directory.
pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn libclang_present() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir("/usr/lib") else { return false };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        name.to_string_lossy().starts_with("llvm-") && has_libclang(&entry.path().join("lib"))
    })
}

fn has_libclang(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libclang.so"))
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Installs whatever the build needs that is missing, or explains how to.
pub(crate) fn ensure() -> Result<()> {
    install(&BUILD)
}

/// Installs the browser and driver of the web page's tests when missing, or explains how to.
pub(crate) fn ensure_browser() -> Result<()> {
    install(&BROWSER)
}

/// Installs Tesseract, which the server runs to read images, when missing, or explains how.
pub(crate) fn ensure_ocr() -> Result<()> {
    install(&OCR)
}

/// Installs the reference tools of the document tests (Poppler's `pdftotext`, pandoc) when
/// missing, or explains how to.
pub(crate) fn ensure_documents() -> Result<()> {
    install(&DOCUMENTS)
}

/// Installs the Postgres server the catalog's tests start when missing, or explains how to.
pub(crate) fn ensure_database() -> Result<()> {
    install(&DATABASE)
}

fn install(deps: &[SysDep]) -> Result<()> {
    let missing: Vec<&SysDep> = deps.iter().filter(|dep| !(dep.present)()).collect();
    if missing.is_empty() {
        let names: Vec<&str> = deps.iter().map(|dep| dep.what).collect();
        eprintln!("xtask: system packages present ({})", names.join(", "));
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|dep| dep.package).collect();
    let names: Vec<&str> = missing.iter().map(|dep| dep.what).collect();
    let install = format!("apt-get install -y {}", packages.join(" "));
    if !(is_root() && on_path("apt-get")) {
        return Err(format!(
            "missing {}: install them with `sudo apt-get update && sudo {install}`",
            names.join(", ")
        ));
    }
    eprintln!("xtask: installing {}", packages.join(" "));
    for args in [
        vec!["update", "-qq"],
        ["install", "-y", "-qq"].into_iter().chain(packages.iter().copied()).collect(),
    ] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|err| format!("cannot run apt-get: {err}"))?;
        if !status.success() {
            return Err(format!(
                "apt-get {} failed ({status}); run `{install}` by hand",
                args.join(" ")
            ));
        }
    }
    Ok(())
}
