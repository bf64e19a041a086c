//! The web page in a real browser: `tests/clients/test_web.py` drives Debian's headless
//! Chromium (through `chromium-driver` and the pinned Selenium) against one built `ragd
//! serve` that requires an API key and starts with no chat model, through every panel's
//! main flow: the key prompt, uploads to `ready`, a document's chunks, search, loading the
//! bundled model, the server's validation message, a streamed chat whose citation opens the
//! cited chunk, a 415, and document text holding markup that must stay text.
//!
//! Each flow saves a screenshot into `$XTASK_SCREENSHOTS_DIR` (`cargo xtask screenshots`
//! points it at `docs/screenshots`), else into this test's temporary directory. Afterwards
//! the server's own state is checked through the API: what the page did really happened.
//! `cargo xtask test` installs `chromium` and `chromium-driver`; the test fails, never
//! skips, without them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::served::{Api, Server, clients_python, run_script};

/// The API key the server requires (the page asks for it).
const KEY: &str = "web-test-key-7f3a";

/// Configuration of the served `ragd`: keys, no chat model until the page loads one, and
/// the bundled model as the reranker.
const SERVER_ENV: [(&str, &str); 6] = [
    ("RAGD_MODELS__AUTOLOAD", "none"),
    ("RAGD_RERANK__MODEL", "bundled"),
    ("RAGD_AUTH__KEYS", KEY),
    ("RAGD_HUB__OFFLINE", "true"),
    ("RAGD_LOG__FILTER", "info"),
    ("NO_COLOR", "1"),
];

/// The browser and its driver, from Debian's `chromium` and `chromium-driver`.
const BROWSER: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

fn screenshots_dir(scratch: &Path) -> PathBuf {
    #[allow(clippy::disallowed_methods)] // Set by `cargo xtask screenshots`.
    match std::env::var_os("XTASK_SCREENSHOTS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => scratch.join("screenshots"),
    }
}

/// The documents of `GET /api/v1/documents`, as (file name, status).
fn documents(api: &Api<'_>) -> Vec<(String, String)> {
    let listing = api.get("/api/v1/documents?limit=100");
    listing["items"]
        .as_array()
        .unwrap_or_else(|| panic!("documents listing: {listing}"))
        .iter()
        .map(|doc| (doc["filename"].as_str().unwrap().to_owned(), doc["status"].to_string()))
        .collect()
}

#[test]
fn the_web_page_works_in_headless_chromium() {
    for program in BROWSER {
        assert!(
            Path::new(program).is_file(),
            "{program} is missing: `cargo xtask test` installs Debian's chromium and \
             chromium-driver (apt, as root)"
        );
    }
    let python = clients_python();
    let dir = tempfile::tempdir().unwrap();
    let (data, work) = (dir.path().join("data"), dir.path().join("work"));
    std::fs::create_dir_all(&work).unwrap();
    let mut server = Server::start(&data, dir.path(), &SERVER_ENV);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/docs");
    let vars = [
        ("WEB_TEST_BASE_URL", format!("http://{}", server.addr)),
        ("WEB_TEST_API_KEY", KEY.to_owned()),
        ("WEB_TEST_FIXTURES", fixtures.to_str().unwrap().to_owned()),
        ("WEB_TEST_WORK", work.to_str().unwrap().to_owned()),
        (
            "WEB_TEST_HF_FOLDER",
            ragd_test_utils::assets_dir()
                .join(ragd_core::assets::CHAT_MODEL_HF.path)
                .to_str()
                .unwrap()
                .to_owned(),
        ),
        ("WEB_TEST_SCREENSHOTS", screenshots_dir(dir.path()).to_str().unwrap().to_owned()),
    ];
    run_script(&python, "test_web.py", &[], &vars, dir.path(), Some(&server.log));

    // What the page did, as the API sees it.
    let api = Api::new(&server, KEY);
    let mut docs = documents(&api);
    docs.sort();
    let ready = |name: &str| docs.iter().any(|(n, s)| n == name && s == "\"ready\"");
    assert!(
        ready("two-pages.pdf") && ready("report.docx") && ready("hostile.txt"),
        "the uploaded documents are ready: {docs:?}"
    );
    assert!(!docs.iter().any(|(n, _)| n == "junk.bin"), "the refused file is not stored: {docs:?}");
    let status = api.get("/api/v1/models/status");
    assert_eq!(status["state"], "loaded", "{status}");
    let config = api.get("/api/v1/models/config");
    assert_eq!(config["max_new_tokens"], 48, "the valid setting was saved: {config}");
    assert_ne!(config["temperature"], Value::from(7), "the invalid one was not: {config}");
    let sessions = api.get("/api/v1/sessions?name=orchards");
    let session = &sessions["items"][0];
    let messages =
        api.get(&format!("/api/v1/sessions/{}/messages", session["id"].as_str().unwrap()));
    assert_eq!(messages["total"], 4, "two questions, two replies (one stopped): {messages}");
    drop(api);
    server.stop();
}
