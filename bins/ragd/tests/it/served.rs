//! A built `ragd serve` on loopback for end-to-end tests with outside clients: starting
//! and stopping it, keeping its log for failure messages, REST calls with an API key, and
//! running the Python scripts of `tests/clients` (the official protocol clients in
//! `protocols`, Selenium driving Chromium in `web`) with the pinned venv's interpreter.
//!
//! The interpreter is `$XTASK_CLIENTS_PYTHON`, set by `cargo xtask test` to the venv it keeps
//! at `$HOME/.cache/ragd/clients-venv` (not a `RAGD_` variable: every `ragd` the tests start
//! inherits the environment and refuses unknown `RAGD_` keys), else that venv's python; a
//! test fails, never skips, when neither exists.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::documents::assets_dir;
use crate::listening_address;

const BOUNDARY: &str = "ragd-served-boundary-9c3e";

/// Two small documents on unrelated topics, for tests that upload, search and read back.
pub(crate) const LIGHTHOUSE: &str = "# The Varnholm lighthouse\n\n\
    The keeper of the Varnholm lighthouse polishes the brass lens every Tuesday morning. \
    The lamp burns paraffin and turns twice a minute.\n";
/// See [`LIGHTHOUSE`].
pub(crate) const BREAD: &str = "# Sourdough\n\n\
    A sourdough starter is flour and water fermented by wild yeast. \
    Feed it every day and keep it warm.\n";

/// The most one client script may take.
pub(crate) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(420);

/// The last bytes a child wrote to a pipe, for failure messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogTail(Arc<Mutex<Vec<u8>>>);

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

    pub(crate) fn text(&self) -> String {
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
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    pub(crate) log: LogTail,
}

impl Server {
    /// Starts `ragd serve` on an ephemeral loopback port with data in `data`, the assets
    /// directory and `env` on top; waits for it to listen.
    pub(crate) fn start(data: &Path, cwd: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragd"))
            .args(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir"])
            .arg(data)
            .current_dir(cwd)
            .env("RAGD_ASSETS_DIR", assets_dir())
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
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

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then a clean exit within 30 s.
    pub(crate) fn stop(&mut self) {
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

/// Requests to the server with an API key, from a test thread.
pub(crate) struct Api<'a> {
    server: &'a Server,
    key: &'a str,
    pub(crate) client: reqwest::Client,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl<'a> Api<'a> {
    /// Requests with `key` as the bearer token.
    pub(crate) fn new(server: &'a Server, key: &'a str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { server, key, client: reqwest::Client::new(), runtime }
    }

    pub(crate) fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = request.bearer_auth(self.key).send().await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, body)
        })
    }

    pub(crate) fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(self.client.get(self.server.url(path)));
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.server.log.text());
        body
    }

    pub(crate) fn put(&self, path: &str, body: &Value) -> Value {
        let (status, reply) = self.send(self.client.put(self.server.url(path)).json(body));
        assert_eq!(status, 200, "PUT {path} {body}: {reply}\n{}", self.server.log.text());
        reply
    }

    /// Uploads `files` (name, text) in one multipart request; their ids by file name.
    pub(crate) fn upload(&self, files: &[(&str, &str)]) -> HashMap<String, String> {
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
    pub(crate) fn wait_for(
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
pub(crate) fn clients_python() -> PathBuf {
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
pub(crate) fn run_script(
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
