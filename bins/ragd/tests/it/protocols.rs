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
//! The interpreter is `$XTASK_CLIENTS_PYTHON`, set by `cargo xtask test` to the venv it keeps
//! at `$HOME/.cache/ragd/clients-venv` (not a `RAGD_` variable: every `ragd` the tests start
//! inherits the environment and refuses unknown `RAGD_` keys), else that venv's python; the
//! test fails, never skips, when neither exists.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::documents::assets_dir;
use crate::listening_address;

/// The API key the server requires.
const KEY: &str = "protocols-test-key-5d41";

const BOUNDARY: &str = "ragd-protocols-boundary-9c3e";

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

/// The most one client script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

/// The last bytes a child wrote to a pipe, for failure messages.
#[derive(Debug, Clone, Default)]
struct LogTail(Arc<Mutex<Vec<u8>>>);

impl LogTail {
    const KEEP: usize = 64 * 1024;

    fn push(&self, bytes: &[u8]) {
        let mut log = self.0.lock().unwrap();
        log.extend_from_slice(bytes);
        if log.len() > 2 * Self::KEEP {
            let cut = log.len() - Self::KEEP;
            log.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let log = self.0.lock().unwrap();
        let start = log.len().saturating_sub(Self::KEEP);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }
}

/// A reader that keeps a copy of what passes through it in a [`LogTail`].
struct Tee<R> {
    inner: R,
    tail: LogTail,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tail.push(&buf[..n]);
        Ok(n)
    }
}

/// The served `ragd`: its address and log; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    log: LogTail,
}

impl Server {
    fn start(data: &Path, cwd: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragd"))
            .args(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir"])
            .arg(data)
            .current_dir(cwd)
            .env("RAGD_ASSETS_DIR", assets_dir())
            .env_remove("RUST_LOG")
            .envs(SERVER_ENV)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = LogTail::default();
        let stderr = Tee { inner: child.stderr.take().unwrap(), tail: log.clone() };
        let listening = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            listening_address(stderr, Duration::from_secs(120))
        }));
        match listening {
            Ok(addr) => Self { child, addr, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ragd serve did not listen; its log:\n{}", log.text())
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then a clean exit within 30 s.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "ragd did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "ragd exits 0 after SIGTERM, got {status}\n{}", self.log.text());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Requests to the server with the key, from a test thread.
struct Api<'a> {
    server: &'a Server,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Api<'a> {
    fn new(server: &'a Server) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { server, client: reqwest::Client::new(), runtime }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = request.bearer_auth(KEY).send().await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, body)
        })
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(self.client.get(self.server.url(path)));
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.server.log.text());
        body
    }

    fn put(&self, path: &str, body: &Value) -> Value {
        let (status, reply) = self.send(self.client.put(self.server.url(path)).json(body));
        assert_eq!(status, 200, "PUT {path} {body}: {reply}\n{}", self.server.log.text());
        reply
    }

    /// Uploads `files` (name, text) in one multipart request; their ids by file name.
    fn upload(&self, files: &[(&str, &str)]) -> HashMap<String, String> {
        let mut body = Vec::new();
        for (name, text) in files {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; \
                     filename=\"{name}\"\r\nContent-Type: text/markdown\r\n\r\n{text}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = self
            .client
            .post(self.server.url("/api/v1/documents"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body);
        let (status, reply) = self.send(request);
        assert_eq!(status, 202, "upload: {reply}\n{}", self.server.log.text());
        let documents = reply["documents"].as_array().unwrap();
        assert_eq!(documents.len(), files.len(), "{reply}");
        documents
            .iter()
            .map(|doc| {
                let id = doc["id"].as_str().unwrap_or_else(|| panic!("no id: {reply}"));
                (doc["filename"].as_str().unwrap().to_owned(), id.to_owned())
            })
            .collect()
    }

    /// Polls `path` until `done` holds for its body; `failed` ends the wait with a panic.
    fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
        failed: impl Fn(&Value) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.get(path);
            if done(&body) {
                return;
            }
            assert!(!failed(&body), "GET {path}: {body}\n{}", self.server.log.text());
            assert!(
                Instant::now() < deadline,
                "GET {path} still {body} after {} s\n{}",
                timeout.as_secs(),
                self.server.log.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The Python with the pinned clients: `$XTASK_CLIENTS_PYTHON`, else the venv `cargo xtask
/// test` keeps. Fails (never skips) when there is none.
fn clients_python() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // Tests find the clients like `cargo xtask` sets them.
    let (configured, home) = (std::env::var_os("XTASK_CLIENTS_PYTHON"), std::env::var_os("HOME"));
    let python = match configured {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(home.expect("HOME is set")).join(".cache/ragd/clients-venv/bin/python"),
    };
    assert!(
        python.is_file(),
        "no Python with the pinned protocol clients at {}: run `cargo xtask test`, which \
         creates $HOME/.cache/ragd/clients-venv from bins/ragd/tests/clients/requirements.txt \
         and sets XTASK_CLIENTS_PYTHON",
        python.display()
    );
    python
}

/// `tests/clients`, from the package root `cargo test` runs in.
fn clients_dir() -> PathBuf {
    let dir = std::env::current_dir().unwrap().join("tests/clients");
    assert!(dir.join("requirements.txt").is_file(), "no {}", dir.display());
    dir
}

/// Runs `script ARGS` with `python` in `cwd`, with `vars` in its environment; panics with its
/// output (and the server's log, when given) unless it exits 0 within [`SCRIPT_TIMEOUT`].
#[allow(clippy::print_stderr)] // The scripts' progress shows with `--nocapture`.
fn run_script(
    python: &Path,
    script: &str,
    args: &[&str],
    vars: &[(&str, String)],
    cwd: &Path,
    server_log: Option<&LogTail>,
) {
    let mut child = Command::new(python)
        .arg(clients_dir().join(script))
        .args(args)
        .current_dir(cwd)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    let (stdout, stderr) = (LogTail::default(), LogTail::default());
    let readers = [
        drain(child.stdout.take().unwrap(), stdout.clone()),
        drain(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The pipes close when every process holding them is gone (a `ragd mcp` the script
    // started writes to its stderr too); wait a little for the last bytes, never forever.
    let drained = Instant::now() + Duration::from_secs(10);
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < drained {
        std::thread::sleep(Duration::from_millis(50));
    }
    let what = format!("{script} {}", args.join(" "));
    let report = || {
        let log = server_log.map(LogTail::text).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--- ragd serve log (tail) ---\n{log}",
            stdout.text(),
            stderr.text()
        )
    };
    match status {
        None => panic!("{what} ran past {} s\n{}", SCRIPT_TIMEOUT.as_secs(), report()),
        Some(status) if !status.success() => panic!("{what} failed ({status})\n{}", report()),
        Some(_) => eprintln!("{what}:\n{}", stdout.text()),
    }
}

fn drain(mut pipe: impl Read + Send + 'static, tail: LogTail) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.push(&buf[..n]);
        }
    })
}

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
    let mut server = Server::start(&data, dir.path());
    let api = Api::new(&server);

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
