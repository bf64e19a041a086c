//! `cargo xtask bench http`: request throughput and tail latency of the HTTP server, with
//! wrk (Debian package `wrk`), against a peer in the same run.
//!
//! ragd (the serving build) serves a fresh data directory holding the fixture documents
//! (ingested first with `ragd ingest`); no chat model is loaded. The peer is the stack ragd
//! replaces, serving the same API over the same data directory: FastAPI under uvicorn with
//! keep-alive, sentence-transformers and ChromaDB (`xtask/bench/http_peer.py`). wrk runs a
//! fixed number of seconds against `GET /health` and the keyword, semantic and hybrid
//! searches of both, one server at a time, then against ragd's `GET /api/v1/system/status`
//! (a cached snapshot; the peer has none).
//!
//! Then semantic search end to end, one query at a time (`query_e2e.py`): ragd over HTTP
//! against chromadb's `collection.query(query_texts=...)` with its default ONNX MiniLM
//! embedding function on the same chunks, the comparison a chromadb user would make.
//!
//! Then the OpenAI-compatible API (`protocols.py`, with the official `openai` SDK from the
//! clients' virtualenv): time to first token of a streamed `/v1/chat/completions` and
//! `/v1/embeddings` throughput, next to the same requests sent to llama.cpp's `llama-server`
//! on the same GGUF with the same context length and threads (`--parallel 1`). ragd runs
//! the `ragd` RAG model id too, whose prompt carries retrieved chunks (more prompt tokens, so
//! a longer first token: the table shows both). For embeddings the peer is `llama-server
//! --embeddings` on that GGUF, a different (larger) model than ragd's MiniLM: the request
//! path is the same, the work is not, and the table says so.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Result;
use crate::local_server::{KillOnDrop, ServeOptions, free_port, serve_ragd, spawn_listening};

/// What wrk measured for one endpoint.
#[derive(Debug, Clone, PartialEq)]
struct WrkResult {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Parses wrk's `--latency` report: a latency such as `1.23ms`, `850.00us` or `1.02s`.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse_wrk(output: &str) -> Option<WrkResult> {
    let mut result =
        WrkResult { requests_per_second: f64::NAN, p50_ms: f64::NAN, p99_ms: f64::NAN };
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", value] => result.requests_per_second = value.parse().ok()?,
            ["50%", value] => result.p50_ms = millis(value)?,
            ["99%", value] => result.p99_ms = millis(value)?,
            _ => {}
        }
    }
    result.requests_per_second.is_finite().then_some(result)
}

/// The fixture documents that extract cleanly: those with an `.expected.txt` beside them.
fn good_fixtures() -> Result<Vec<std::path::PathBuf>> {
    let dir = crate::workspace_root().join("fixtures/docs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            let expected = format!("{}.expected.txt", path.display());
            path.is_file() && Path::new(&expected).is_file()
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no fixtures with an .expected.txt in {}", dir.display()));
    }
    Ok(files)
}

fn wrk(url: &str, seconds: u64, connections: u32, script: Option<&Path>) -> Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    eprintln!("xtask: bench: running {cmd:?}");
    let output =
        cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed: {}\n{text}", output.status));
    }
    if text.contains("Non-2xx or 3xx responses") {
        return Err(format!("{url} answered errors under load:\n{text}"));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

/// Runs the benchmark and appends a section to `docs/BENCHMARKS.md`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut seconds = 10_u64;
    let mut connections = 16_u32;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--seconds" => seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--connections" => {
                connections = value.parse().map_err(|e| format!("--connections: {e}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !crate::sysdeps::on_path("wrk") {
        return Err("wrk is not installed: apt-get install -y wrk".to_owned());
    }
    let setup = super::Setup::new("http")?;
    let assets = setup.assets.clone();
    let work = setup.work.clone();
    let data = work.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let ragd = setup.out.join("ragd");
    let st_model = super::embed::st_model(&setup)?;

    // The fixtures that extract (those with an `.expected.txt`; the others are broken on
    // purpose), so search has something to find. A failure here stops the benchmark:
    // searching an index that is missing documents would measure nothing.
    let mut ingest = Command::new(&ragd);
    crate::clean_cargo_env(&mut ingest);
    ingest
        .arg("ingest")
        .args(good_fixtures()?)
        .arg("--data-dir")
        .arg(&data)
        .env("RAGD_ASSETS_DIR", &assets)
        // The precision probe of this first start runs with the server's threads.
        .env("RAGD_EMBEDDING__INTRA_OP_THREADS", "2")
        .stdout(Stdio::null());
    crate::run(ingest)?;

    // No chat model and no keys: the routes measured need neither. Both servers embed
    // queries with two intra-op threads.
    let threads = 2;
    let env = [("RAGD_EMBEDDING__INTRA_OP_THREADS", threads.to_string())];
    let (server, port) =
        serve_ragd(&ragd, &data, &assets, ServeOptions { env: &env, ..ServeOptions::default() })?;
    let peer_port = free_port()?;
    let mut peer = setup.script("http_peer.py");
    peer.arg("--data-dir")
        .arg(&data)
        .arg("--model-dir")
        .arg(&st_model)
        .args(["--port", &peer_port.to_string(), "--threads", &threads.to_string()])
        .stdout(Stdio::null());
    let peer = spawn_listening(peer, peer_port)?;

    let body = r#"{"query": "vacation policy handbook", "top_k": 5}"#;
    let post = work.join("post.lua");
    std::fs::write(
        &post,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = '{body}'\n"
        ),
    )
    .map_err(|e| e.to_string())?;

    let ragd_base = format!("http://127.0.0.1:{port}");
    let peer_base = format!("http://127.0.0.1:{peer_port}");
    let load_before = super::load_average();
    let mut rows = Vec::new();
    for (position, (name, path, script)) in [
        ("GET /health", "/health", None),
        ("POST /api/v1/search/keyword", "/api/v1/search/keyword", Some(post.as_path())),
        ("POST /api/v1/search/semantic", "/api/v1/search/semantic", Some(post.as_path())),
        ("POST /api/v1/search/hybrid", "/api/v1/search/hybrid", Some(post.as_path())),
    ]
    .into_iter()
    .enumerate()
    {
        // Alternate which server goes first from one endpoint to the next.
        let run = |base: &str| wrk(&format!("{base}{path}"), seconds, connections, script);
        let (ours, theirs) = if position % 2 == 0 {
            let ours = run(&ragd_base)?;
            (ours, run(&peer_base)?)
        } else {
            let theirs = run(&peer_base)?;
            (run(&ragd_base)?, theirs)
        };
        rows.push((name, ours, Some(theirs)));
    }
    let status = wrk(&format!("{ragd_base}/api/v1/system/status"), seconds, connections, None)?;
    rows.push(("GET /api/v1/system/status", status, None));
    let load_after = super::load_average();
    drop(peer);

    // Semantic search end to end, one query at a time, against chromadb's `query_texts`.
    let mut e2e = setup.script("query_e2e.py");
    e2e.args(["--ragd", &ragd_base, "--queries", &E2E_QUERIES.to_string()])
        .arg("--data-dir")
        .arg(&data)
        .arg("--model-dir")
        .arg(assets.join("all-minilm-l6-v2"));
    let e2e = super::json_line(e2e)?;
    drop(server);

    let mut section =
        super::header("HTTP throughput", &format!("cargo xtask bench http {}", args.join(" ")));
    let _ = writeln!(
        section,
        "- load: wrk 4, 2 threads, {connections} connections, {seconds} s per endpoint and \
         server, one at a time, servers alternating first; request body `{body}`; both \
         servers over the same data directory (the {} fixture documents that extract), no \
         chat model, no API keys, {threads} intra-op threads for query embeddings",
        good_fixtures()?.len()
    );
    let _ = writeln!(
        section,
        "- peer: `xtask/bench/http_peer.py`, the stack ragd replaces: FastAPI under uvicorn \
         (uvloop, httptools, keep-alive, one process), SQLite FTS5 BM25 on ragd's catalog \
         with ragd's query rules, sentence-transformers (fp32, PyTorch) for the query and \
         an in-memory ChromaDB loaded with ragd's vectors, ragd's reciprocal rank fusion"
    );
    let _ =
        writeln!(section, "- 1-minute load average before / after: {load_before} / {load_after}\n");
    let _ = writeln!(
        section,
        "| endpoint | ragd req/s | ragd p50 ms | ragd p99 ms | peer req/s | peer p50 ms | \
         peer p99 ms | req/s ÷ peer | p99 ÷ peer |"
    );
    let _ = writeln!(section, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, ours, theirs) in &rows {
        let peer = theirs.as_ref().map_or_else(
            || "– | – | – | – | –".to_owned(),
            |t| {
                format!(
                    "{:.0} | {:.2} | {:.2} | {:.2} | {:.2}",
                    t.requests_per_second,
                    t.p50_ms,
                    t.p99_ms,
                    ours.requests_per_second / t.requests_per_second,
                    ours.p99_ms / t.p99_ms
                )
            },
        );
        let _ = writeln!(
            section,
            "| {name} | {:.0} | {:.2} | {:.2} | {peer} |",
            ours.requests_per_second, ours.p50_ms, ours.p99_ms
        );
    }
    section.push('\n');
    section.push_str(&e2e_table(&e2e)?);
    let protocols = protocols(&ragd, &work, &data, &assets)?;
    section.push('\n');
    section.push_str(&protocols);
    super::append(&section)
}

/// Query texts `query_e2e.py` times on each side.
const E2E_QUERIES: usize = 60;

/// The end-to-end semantic search table, from `query_e2e.py`'s line.
fn e2e_table(e2e: &serde_json::Value) -> Result<String> {
    let ours = (super::number(e2e, "ragd.p50_ms")?, super::number(e2e, "ragd.p99_ms")?);
    let theirs = (super::number(e2e, "chroma.p50_ms")?, super::number(e2e, "chroma.p99_ms")?);
    let chunks = super::number(e2e, "chunks")?;
    let version = e2e.get("chromadb_version").and_then(serde_json::Value::as_str).unwrap_or("?");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Semantic search end to end (`xtask/bench/query_e2e.py`): a query text in, the 10 \
         nearest chunks with their text out, one query at a time, {E2E_QUERIES} distinct \
         texts after 5 warm-up queries each, the two sides alternating first. ragd: `POST \
         /api/v1/search/semantic` over one keep-alive HTTP connection, the JSON parsed. \
         chromadb {version}: `collection.query(query_texts=...)` in process on an in-memory \
         collection of ragd's {chunks:.0} chunks with its default embedding function \
         (`ONNXMiniLM_L6_V2`, fp32 MiniLM in ONNX Runtime, its model folder made from ragd's \
         fp32 file of the same weights).\n"
    );
    let _ = writeln!(
        out,
        "| contender | p50 ms | p99 ms |\n|---|---:|---:|\n| ragd | {:.1} | {:.1} |\n\
         | chromadb | {:.1} | {:.1} |\n| ragd ÷ chromadb | {:.2} | {:.2} |",
        ours.0,
        ours.1,
        theirs.0,
        theirs.1,
        ours.0 / theirs.0,
        ours.1 / theirs.1
    );
    Ok(out)
}

/// Median and p90 of one measured quantity, as `protocols.py` prints them.
fn stat(value: &serde_json::Value, server: &str, key: &str) -> Result<(f64, f64)> {
    let entry = &value[server][key];
    match (entry["median"].as_f64(), entry["p90"].as_f64()) {
        (Some(median), Some(p90)) => Ok((median, p90)),
        _ => Err(format!("protocols.py printed no {server}.{key}: {value}")),
    }
}

fn run_protocols_py(python: &Path, args: &[String]) -> Result<serde_json::Value> {
    let script = crate::workspace_root().join("xtask/src/bench/protocols.py");
    let output = Command::new(python)
        .arg(&script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!("protocols.py {} failed: {}", args.join(" "), output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("protocols.py output: {e}"))
}

/// How [`llama_server`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerOptions {
    /// The context of one request (`--ctx-size` is this times `parallel`).
    pub(super) context: u64,
    /// Requests decoded at once (`--parallel`).
    pub(super) parallel: usize,
    /// `--threads` (and so `--threads-batch`).
    pub(super) threads: usize,
    /// Serve `/v1/embeddings` with mean pooling instead of chat.
    pub(super) embeddings: bool,
}

/// The `llama-server` arguments that set context, parallel requests and threads.
fn peer_args(options: PeerOptions) -> Vec<String> {
    let total = options.context.saturating_mul(u64::try_from(options.parallel).unwrap_or(u64::MAX));
    let mut args: Vec<String> = vec![
        "--ctx-size".into(),
        total.to_string(),
        "--parallel".into(),
        options.parallel.to_string(),
        "--threads".into(),
        options.threads.to_string(),
    ];
    if options.parallel > 1 {
        // One KV cache shared by the slots, as ragd's (and llama-server's own default).
        args.push("--kv-unified".into());
    }
    if options.embeddings {
        args.extend(["--embeddings", "--pooling", "mean"].map(String::from));
    }
    args
}

/// `llama-server` on `model` on a free loopback port, healthy; returns it and its port.
pub(super) fn llama_server(model: &Path, options: PeerOptions) -> Result<(KillOnDrop, u16)> {
    let server = crate::llama::ToolsDir::locate()?.server()?;
    let port = free_port()?;
    let mut cmd = Command::new(server);
    cmd.arg("--model")
        .arg(model)
        .args(["--alias", "peer", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(peer_args(options))
        .arg("--no-webui")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    crate::passive_openmp(&mut cmd);
    let child = spawn_listening(cmd, port)?;
    // Listening comes before the model is loaded: wait for `/health`.
    let url = format!("http://127.0.0.1:{port}/health");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &url])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err("llama-server did not become healthy in 120 s".to_owned())
}

/// ragd's `GET /v1/models` once a chat model is loaded (waiting up to 120 s for it).
pub(super) fn loaded_models(ragd: &str, key: &str) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let models = curl_get(&format!("{ragd}/models"), key)?;
        let listed: serde_json::Value = serde_json::from_slice(&models).unwrap_or_default();
        if model_of_kind(&listed, "chat").is_some() {
            return Ok(listed);
        }
        if std::time::Instant::now() >= deadline {
            return Err("ragd loaded no chat model in 120 s".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The body of a GET of `url` with `key` as bearer token (empty when the request fails).
fn curl_get(url: &str, key: &str) -> Result<Vec<u8>> {
    let output = Command::new("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {key}"), url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    Ok(output.stdout)
}

/// What ragd says of its embedder in `/api/v1/info` (model, device, the precision `auto`
/// chose and why), so the table names the file that was measured.
fn embedder_detail(base: &str, key: &str) -> Result<String> {
    let info = curl_get(&format!("{base}/api/v1/info"), key)?;
    let info: serde_json::Value =
        serde_json::from_slice(&info).map_err(|e| format!("/api/v1/info: {e}"))?;
    info["components"]
        .as_array()
        .and_then(|components| components.iter().find(|c| c["name"] == "embedder"))
        .and_then(|embedder| embedder["detail"].as_str())
        .map(|detail| detail.replace('|', "/"))
        .ok_or_else(|| format!("/api/v1/info names no embedder: {info}"))
}

/// The first model of `kind` (`chat`, `rag`, `embedding`) in a `/v1/models` listing.
pub(super) fn model_of_kind(listed: &serde_json::Value, kind: &str) -> Option<serde_json::Value> {
    listed["data"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["ragd"]["kind"] == kind).cloned())
}

/// The protocol part: chat time to first token and embeddings throughput, ragd vs
/// `llama-server`, as a Markdown section.
fn protocols(ragd_binary: &Path, work: &Path, data: &Path, assets: &Path) -> Result<String> {
    const KEY: &str = "bench-key";
    const ROUNDS: &str = "10";
    let python = crate::clients::python()?;
    let gguf = assets.join(ragd_core::assets::CHAT_MODEL.path);
    let (server, port) = serve_ragd(
        ragd_binary,
        data,
        assets,
        ServeOptions { bundled_model: true, api_key: Some(KEY), env: &[] },
    )?;
    let ragd = format!("http://127.0.0.1:{port}/v1");
    // ragd's model ids and the context length it loaded the GGUF with.
    let listed = loaded_models(&ragd, KEY)?;
    let chat = model_of_kind(&listed, "chat").ok_or("ragd loaded no chat model")?;
    let embedding = model_of_kind(&listed, "embedding").ok_or("ragd has no embedding model")?;
    let chat_id = chat["id"].as_str().unwrap_or_default().to_owned();
    let embedding_id = embedding["id"].as_str().unwrap_or_default().to_owned();
    let context = chat["ragd"]["context_length"].as_u64().ok_or("no context_length")?;
    let embedder = embedder_detail(&format!("http://127.0.0.1:{port}"), KEY)?;

    let args = |kind: &str, ragd_model: &str, peer: u16| -> Vec<String> {
        [
            kind,
            &ragd,
            KEY,
            ragd_model,
            &format!("http://127.0.0.1:{peer}/v1"),
            "none",
            "peer",
            "--rounds",
            ROUNDS,
            "--batch",
            "16",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    let peer_options = PeerOptions { context, parallel: 1, threads: 1, embeddings: false };
    let (peer, peer_port) = llama_server(&gguf, peer_options)?;
    let chat_plain = run_protocols_py(&python, &args("chat", &chat_id, peer_port))?;
    let chat_rag = run_protocols_py(&python, &args("chat", "ragd", peer_port))?;
    drop(peer);
    let (peer, peer_port) = llama_server(&gguf, PeerOptions { embeddings: true, ..peer_options })?;
    let embed = run_protocols_py(&python, &args("embed", &embedding_id, peer_port))?;
    drop((peer, server));
    let _ = work;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "OpenAI-compatible API, official `openai` SDK, {ROUNDS} rounds alternating servers after \
         one warm-up each, a new question every round, differing in its last words (both servers keep \
         their prompt caches as they ship, so each reads only those words); ragd with the \
         bundled SmolLM2 (context {context}, 1 thread) and the fixture documents; peer: \
         `llama-server` on the same GGUF, `--ctx-size {context} --parallel 1 --threads 1`.\n"
    );
    let _ = writeln!(
        out,
        "| request | ragd median | ragd p90 | peer median | peer p90 | ragd ÷ peer (median) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let row = |out: &mut String, name: &str, result: &serde_json::Value, key: &str, same: bool| {
        let (rm, rp) = stat(result, "ragd", key)?;
        let (pm, pp) = stat(result, "peer", key)?;
        let ratio = if same { format!("{:.2}", rm / pm) } else { "not the same work".to_owned() };
        let _ = writeln!(out, "| {name} | {rm:.1} | {rp:.1} | {pm:.1} | {pp:.1} | {ratio} |");
        Ok::<(), String>(())
    };
    row(&mut out, "chat, model id: time to first token, ms", &chat_plain, "first", true)?;
    row(
        &mut out,
        "chat, model id: whole streamed request (16 tokens), ms",
        &chat_plain,
        "total",
        true,
    )?;
    row(
        &mut out,
        "chat, `ragd` (hybrid retrieval, chunks in the prompt): time to first token, ms; \
         peer: the plain question",
        &chat_rag,
        "first",
        false,
    )?;
    row(
        &mut out,
        &format!(
            "embeddings, batches of 16, texts/s; ragd: {embedder} (ONNX Runtime), peer: \
             `llama-server --embeddings` on the SmolLM2 GGUF (another, larger model)"
        ),
        &embed,
        "rate",
        false,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_to_end_table_has_both_sides_and_their_ratio() {
        let line = serde_json::json!({
            "ragd": {"p50_ms": 15.0, "p99_ms": 30.0, "queries": 60},
            "chroma": {"p50_ms": 60.0, "p99_ms": 90.0, "queries": 60},
            "chunks": 11,
            "chromadb_version": "1.5.9",
        });
        let table = e2e_table(&line).unwrap();
        assert!(table.contains("| ragd | 15.0 | 30.0 |"), "{table}");
        assert!(table.contains("| chromadb | 60.0 | 90.0 |"), "{table}");
        assert!(table.contains("| ragd ÷ chromadb | 0.25 | 0.33 |"), "{table}");
        assert!(table.contains("ragd's 11 chunks") && table.contains("chromadb 1.5.9"), "{table}");
        assert!(e2e_table(&serde_json::json!({"ragd": {}})).is_err());
    }

    #[test]
    fn wrk_reports_are_parsed() {
        let report = "Running 10s test @ http://127.0.0.1:1/health
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.10s
  123456 requests in 10.00s, 12.00MB read
Requests/sec:  12345.67
Transfer/sec:      1.20MB
";
        let result = parse_wrk(report).unwrap();
        assert!((result.requests_per_second - 12345.67).abs() < 1e-9);
        assert!((result.p50_ms - 0.85).abs() < 1e-9);
        assert!((result.p99_ms - 2100.0).abs() < 1e-9);
        assert!(parse_wrk("garbage").is_none());
    }
}
