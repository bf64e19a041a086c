//! The `ragd` command-line verbs other than `serve`, run as the built binary.

use std::path::Path;
use std::process::Command;

use ragd_core::DocumentStatus;

/// An absolute fixture path (the binary runs in another directory). `cargo test` runs
/// tests in the package root.
fn fixture(name: &str) -> std::path::PathBuf {
    std::env::current_dir().unwrap().join("../../fixtures/docs").join(name)
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

#[test]
fn chat_answers_from_stdin_and_the_session_can_be_resumed() {
    use std::io::Write;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let chat = |extra: &[&str], input: &str| {
        let mut args = vec!["chat", "--data-dir", data.to_str().unwrap(), "--max-new-tokens", "6"];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragd"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = chat(&[], "What is the capital of France?\n/session\n/quit\n");
    assert!(first.starts_with("session "), "{first}");
    assert!(first.contains("tokens"), "{first}");
    let id = first.split_whitespace().nth(1).unwrap().to_owned();
    let second = chat(&["--session", &id], "And of Italy?\n");
    assert!(second.contains(&id), "{second}");

    let catalog = ragd_catalog::Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    assert_eq!(catalog.count_messages(id.parse().unwrap()).unwrap(), 4);
}

#[test]
fn eval_scores_each_search_mode_on_a_labelled_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let handbook = fixture("handbook.md");
    let pdf = fixture("two-pages.pdf");
    let out = ragd(
        &["ingest", handbook.to_str().unwrap(), pdf.to_str().unwrap(), "--data-dir", data],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let set = dir.path().join("set.json");
    std::fs::write(
        &set,
        serde_json::json!({"queries": [
            {"query": "leave days", "relevant": [{"document": "handbook.md", "phrase": "twenty-five days"}]},
            {"query": "orchards", "relevant": [{"document": "two-pages.pdf"}]},
            {"query": "zebra", "relevant": [{"document": "nothing.md"}]},
        ]})
        .to_string(),
    )
    .unwrap();

    let out = ragd(&["eval", set.to_str().unwrap(), "--json", "--data-dir", data], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["queries"], 3);
    // The keyword queries are found at rank 1; the third has no relevant document stored.
    let keyword = &report["modes"]["keyword"];
    assert!((keyword["recall@10"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{report}");
    assert!((keyword["mrr@10"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{report}");
    for mode in ["semantic", "hybrid"] {
        let ndcg = report["modes"][mode]["ndcg@10"].as_f64().unwrap();
        assert!((0.0..=2.0 / 3.0 + 1e-9).contains(&ndcg) && ndcg > 0.0, "{mode}: {report}");
        assert!(report["modes"][mode]["ms_per_query"].as_f64().unwrap() > 0.0, "{report}");
    }
    assert!(report["modes"]["hybrid+rerank"].is_null(), "no reranker configured: {report}");

    // With a reranker (./ragd.toml is read from the working directory), a fourth mode.
    std::fs::write(dir.path().join("ragd.toml"), "[rerank]\nmodel = \"bundled\"\n").unwrap();
    let out = ragd(&["eval", set.to_str().unwrap(), "--json", "--data-dir", data], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let reranked = &report["modes"]["hybrid+rerank"];
    let ndcg = reranked["ndcg@10"].as_f64().unwrap();
    assert!((0.0..=2.0 / 3.0 + 1e-9).contains(&ndcg) && ndcg > 0.0, "{report}");
    let out = ragd(&["search", "leave days", "--rerank", "true", "--data-dir", data], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reranked; fused"), "{stdout}");

    // A table by default; a malformed set is a clear error.
    let out = ragd(&["eval", set.to_str().unwrap(), "--data-dir", data], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nDCG@10"));
    std::fs::write(&set, r#"{"queries": []}"#).unwrap();
    let out = ragd(&["eval", set.to_str().unwrap(), "--data-dir", data], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no queries"));
}

#[test]
fn sync_adds_updates_removes_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("notes");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("a.md"), "# A\n\nThe first note about herons.\n").unwrap();
    std::fs::write(folder.join("sub/b.md"), "# B\n\nThe second note about otters.\n").unwrap();
    std::fs::write(folder.join("c.txt"), "The third note about beavers.\n").unwrap();
    std::fs::write(folder.join(".hidden.md"), "skipped").unwrap();
    let data = dir.path().join("data");
    let sync = || {
        let out = ragd(
            &[
                "sync",
                folder.to_str().unwrap(),
                "--collection",
                "notes",
                "--data-dir",
                data.to_str().unwrap(),
            ],
            dir.path(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };

    let first = sync();
    assert!(first.contains("3 added, 0 updated, 0 removed, 0 unchanged, 0 failed"), "{first}");
    assert!(first.contains("+ sub/b.md"), "{first}");
    assert!(sync().contains("nothing changed: 3 files up to date"));

    // A copy of a synced file is not a second document, and is reported as such each time.
    std::fs::copy(folder.join("a.md"), folder.join("copy-of-a.md")).unwrap();
    let copied = sync();
    assert!(copied.contains("= copy-of-a.md") && copied.contains("1 duplicates"), "{copied}");
    assert!(copied.contains("nothing changed: 3 files up to date"), "{copied}");
    std::fs::remove_file(folder.join("copy-of-a.md")).unwrap();
    assert!(sync().contains("nothing changed: 3 files up to date"));

    let catalog = || ragd_catalog::Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let path_of = |doc: &ragd_core::Document| doc.metadata[ragd_ingest::SOURCE_PATH].clone();
    let before = catalog().list_documents(&ragd_catalog::DocumentQuery::default()).unwrap().items;
    let old_a = before
        .iter()
        .find(|d| path_of(d) == ragd_core::MetadataValue::String("a.md".into()))
        .unwrap()
        .id;

    std::fs::write(folder.join("a.md"), "# A\n\nThe first note, now about storks.\n").unwrap();
    std::fs::remove_file(folder.join("c.txt")).unwrap();
    std::fs::write(folder.join("d.md"), "# D\n\nA fourth note about cranes.\n").unwrap();
    let second = sync();
    assert!(second.contains("1 added, 1 updated, 1 removed, 1 unchanged, 0 failed"), "{second}");
    assert!(
        second.contains("~ a.md") && second.contains("- c.txt") && second.contains("+ d.md"),
        "{second}"
    );
    assert!(sync().contains("nothing changed: 3 files up to date"));

    let catalog = catalog();
    let after = catalog.list_documents(&ragd_catalog::DocumentQuery::default()).unwrap().items;
    let mut paths: Vec<String> = after
        .iter()
        .map(|d| {
            let ragd_core::MetadataValue::String(path) = path_of(d) else { panic!("{d:?}") };
            path
        })
        .collect();
    paths.sort();
    assert_eq!(paths, ["a.md", "d.md", "sub/b.md"]);
    assert!(after.iter().all(|d| d.status == DocumentStatus::Ready), "{after:?}");
    let new_a = after
        .iter()
        .find(|d| path_of(d) == ragd_core::MetadataValue::String("a.md".into()))
        .unwrap();
    assert_eq!(new_a.id, old_a, "a changed file keeps its document id");
    assert_eq!(catalog.find_collection("notes").unwrap().document_count, 3);
    let text = after
        .iter()
        .find(|d| path_of(d) == ragd_core::MetadataValue::String("a.md".into()))
        .unwrap();
    assert!(catalog.document_text(text.id, None).unwrap().contains("storks"));
}

#[test]
fn reembed_rebuilds_with_the_configured_model_and_reports_chunks_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handbook = fixture("handbook.md");
    let out = ragd(
        &["ingest", handbook.to_str().unwrap(), "--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chunks = ragd_catalog::Catalog::open(&data.join("ragd.sqlite3"))
        .unwrap()
        .count_chunks(None)
        .unwrap();

    let paraphrase = "sentence-transformers/paraphrase-MiniLM-L3-v2";
    let reembed = |model: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ragd"));
        command
            .args(["reembed", "--data-dir", data.to_str().unwrap()])
            .current_dir(dir.path())
            .env_remove("RUST_LOG");
        if let Some(model) = model {
            command.env("RAGD_EMBEDDING__MODEL_ID", model);
        }
        command.output().unwrap()
    };
    // The same model: a rebuild by hand; then another model: the rebuild it needs.
    for (model, generation) in [(None, 1), (Some(paraphrase), 2)] {
        let out = reembed(model);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let name = model.unwrap_or("sentence-transformers/all-MiniLM-L6-v2");
        let expected =
            format!("re-embedded {chunks} chunks and 0 remembered exchanges with {name}");
        assert!(stdout.contains(&expected), "{stdout}");
        assert!(stdout.contains(&format!("index generation {generation} is in use")), "{stdout}");
    }
    let catalog = ragd_catalog::Catalog::open(&data.join("ragd.sqlite3")).unwrap();
    let generations = catalog.vector_generations().unwrap();
    assert_eq!(generations.len(), 1, "the old generations are gone: {generations:?}");
    assert_eq!(generations[0].model_id, paraphrase);
}

#[test]
fn semantic_search_logs_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let handbook = fixture("handbook.md");
    let out = ragd(&["ingest", handbook.to_str().unwrap(), "--data-dir", data], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ragd(
        &["search", "how many days of leave", "--mode", "semantic", "--data-dir", data],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("handbook.md"), "{stdout}");
    // LanceDB warned on every vector query whose columns left out `_distance`.
    let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("WARN")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn models_import_converts_a_hugging_face_folder_once_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!("data_dir = {:?}\n", data.display().to_string());
    std::fs::write(dir.path().join("ragd.toml"), config).unwrap();
    let folder = ragd_test_utils::assets_dir().join(ragd_core::assets::CHAT_MODEL_HF.path);
    let folder = folder.to_str().unwrap();
    let out = ragd(&["models", "import", folder, "--quantization", "q8_0"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let imported: Vec<_> = std::fs::read_dir(data.join("models/imported"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(imported.len(), 1, "{imported:?}");
    let file = &imported[0];
    assert!(file.display().to_string().ends_with("-q8_0.gguf"), "{}", file.display());
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");
    assert_eq!(&std::fs::read(file).unwrap()[..4], b"GGUF");

    // A second import finds the file and leaves it as it is.
    let modified = std::fs::metadata(file).unwrap().modified().unwrap();
    let again = ragd(&["models", "import", folder, "--quantization", "q8_0"], dir.path());
    assert!(again.status.success());
    assert_eq!(std::fs::metadata(file).unwrap().modified().unwrap(), modified);

    // Bad input: a folder that is not a model, a quantization that does not exist.
    let empty = data.join("models/empty");
    std::fs::create_dir(&empty).unwrap();
    let out = ragd(&["models", "import", empty.to_str().unwrap()], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without config.json"), "{stderr}");
    let out = ragd(&["models", "import", folder, "--quantization", "q3_x"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("none, q8_0, q4_k_m"), "{stderr}");
}
