//! The OpenAI- and Ollama-compatible APIs and the MCP server, driven end to end by the
//! official Python clients (`openai`, `ollama`, `mcp`, pinned in
//! `tests/clients/requirements.txt`).
//!
//! One built `ragd serve` with an API key and the bundled SmolLM2 autoloaded gets two small
//! documents through the REST API; once they are `ready` and the model is `loaded`,
//! `tests/clients/test_openai.py`, `test_ollama.py` and `test_mcp.py http` run against it in
//! that order. Then the server stops (SIGTERM) and `test_mcp.py stdio` has the SDK spawn
//! `ragd mcp` on the same data directory. Each script must exit 0; a failure shows its
//! output and the tail of the server's log.
//!
//! The server and the scripts are run by [`crate::served`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::documents::assets_dir;
use crate::served::{Api, Server, clients_python, run_script};

/// The API key the server requires.
const KEY: &str = "protocols-test-key-5d41";

/// The document the questions are about.
const LIGHTHOUSE: &str = "# The Varnholm lighthouse\n\n\
    The keeper of the Varnholm lighthouse polishes the brass lens every Tuesday morning. \
    The lamp burns paraffin and turns twice a minute. Ships passing the northern reef \
    count its flashes to find the harbour mouth.\n";
/// A phrase of [`LIGHTHOUSE`]'s text.
const PHRASE: &str = "polishes the brass lens every Tuesday";
/// A word only [`LIGHTHOUSE`] contains.
const KEYWORD: &str = "Varnholm";
/// An unrelated document, so that retrieval has something to choose from.
const BREAD: &str = "# Sourdough\n\n\
    A sourdough starter is flour and water fermented by wild yeast. \
    Feed it every day and keep it warm.\n";

/// Configuration of the served `ragd` (on top of the assets directory).
const SERVER_ENV: [(&str, &str); 5] = [
    ("RAGD_MODELS__AUTOLOAD", "bundled"),
    ("RAGD_AUTH__KEYS", KEY),
    ("RAGD_HUB__OFFLINE", "true"),
    ("RAGD_LOG__FILTER", "info"),
    ("NO_COLOR", "1"),
];

/// The ids `GET /v1/models` lists for `kind` (`ragd.kind`).
fn model_ids(models: &Value, kind: &str) -> Vec<String> {
    models["data"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /v1/models: {models}"))
        .iter()
        .filter(|model| model["ragd"]["kind"] == kind)
        .map(|model| model["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_official_openai_ollama_and_mcp_clients_work_against_ragd() {
    let python = clients_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, dir.path(), &SERVER_ENV);
    let api = Api::new(&server, KEY);

    // The key is required: the scripts' bad-key checks depend on it.
    let status = api.runtime.block_on(async {
        api.client.get(server.url("/v1/models")).send().await.unwrap().status().as_u16()
    });
    assert_eq!(status, 401, "/v1/models without a key\n{}", server.log.text());

    let ids = api.upload(&[("lighthouse.md", LIGHTHOUSE), ("bread.md", BREAD)]);
    let (doc, other) = (ids["lighthouse.md"].clone(), ids["bread.md"].clone());
    for id in [&doc, &other] {
        api.wait_for(
            &format!("/api/v1/documents/{id}"),
            Duration::from_secs(120),
            |body| body["status"] == "ready",
            |body| body["status"] == "failed",
        );
    }
    api.wait_for(
        "/api/v1/models/status",
        Duration::from_secs(300),
        |body| body["state"] == "loaded",
        |body| body["state"] == "failed",
    );
    // The lighthouse document alone in a collection, with metadata: MCP search scopes.
    let (status, body) = api.send(
        api.client.post(server.url("/api/v1/collections")).json(&json!({"name": "lighthouses"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.send(
        api.client
            .post(server.url("/api/v1/collections/lighthouses/documents"))
            .json(&json!({"document_ids": [doc]})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.send(
        api.client
            .patch(server.url(&format!("/api/v1/documents/{doc}")))
            .json(&json!({"metadata": {"topic": "sea"}})),
    );
    assert_eq!(status, 200, "{body}");
    // Short answers wherever a request sets no limit of its own (the MCP `ask` tool).
    api.put("/api/v1/models/config", &json!({"max_new_tokens": 24}));

    let models = api.get("/v1/models");
    let (chat, embedding) = (model_ids(&models, "chat"), model_ids(&models, "embedding"));
    assert!(chat.len() == 1 && embedding.len() == 1, "one chat and one embedding model: {models}");

    let vars = [
        ("CLIENT_TEST_BASE_URL", format!("http://{}", server.addr)),
        ("CLIENT_TEST_API_KEY", KEY.to_owned()),
        ("CLIENT_TEST_DOCUMENT_ID", doc),
        ("CLIENT_TEST_OTHER_DOCUMENT_ID", other),
        ("CLIENT_TEST_PHRASE", PHRASE.to_owned()),
        ("CLIENT_TEST_KEYWORD", KEYWORD.to_owned()),
        ("CLIENT_TEST_CHAT_MODEL", chat[0].clone()),
        ("CLIENT_TEST_EMBEDDING_MODEL", embedding[0].clone()),
        ("CLIENT_TEST_RAGD_BIN", env!("CARGO_BIN_EXE_ragd").to_owned()),
        ("CLIENT_TEST_DATA_DIR", data.to_str().unwrap().to_owned()),
        ("CLIENT_TEST_ASSETS_DIR", assets_dir().to_str().unwrap().to_owned()),
    ];
    let cwd = dir.path();
    drop(api);
    run_script(&python, "test_openai.py", &[], &vars, cwd, Some(&server.log));
    run_script(&python, "test_ollama.py", &[], &vars, cwd, Some(&server.log));
    run_script(&python, "test_mcp.py", &["http"], &vars, cwd, Some(&server.log));

    // `ragd mcp` over stdio on the same data, with the server gone: nothing else holds it.
    server.stop();
    run_script(&python, "test_mcp.py", &["stdio"], &vars, cwd, None);
}
