//! The `ragd` command-line verbs other than `serve`, run as the built binary.

use std::path::Path;
use std::process::Command;

use ragd_core::DocumentStatus;

/// An absolute path: `ragd` runs in a temporary directory, where a relative one would
/// point nowhere.
fn fixture(name: &str) -> std::path::PathBuf {
    std::fs::canonicalize(Path::new("../../").join("fixtures/docs").join(name)).unwrap()
}

fn ragd(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn ingest_walks_folders_and_leaves_ready_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("nested")).unwrap();
    std::fs::copy(fixture("handbook.md"), docs.join("handbook.md")).unwrap();
    std::fs::copy(fixture("two-pages.pdf"), docs.join("nested/two-pages.pdf")).unwrap();
    std::fs::write(docs.join(".hidden.txt"), "skipped").unwrap();

    let data = dir.path().join("data");
    let out =
        ragd(&["ingest", docs.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 files: 2 ok"), "{stdout}");

    let catalog = ragd_catalog::Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let ready = catalog.documents_with_status(&[DocumentStatus::Ready]).unwrap();
    assert_eq!(ready.len(), 2);
    assert!(catalog.count_chunks(None).unwrap() >= 2);
}

#[test]
fn ingest_fails_when_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let junk = fixture("junk.bin");
    let out =
        ragd(&["ingest", junk.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("junk.bin") && stdout.contains("unsupported"), "{stdout}");
}

#[test]
fn status_prints_a_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = ragd(&["status"], dir.path());
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("cpu") && table.contains("memory") && table.contains("gpu"), "{table}");

    let out = ragd(&["status", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["cpu"]["logical_cores"].as_u64().unwrap() >= 1);
}
