//! A real server on loopback: bind to port 0, answer, and shut down cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ragd::{AppState, Server};

use crate::{listening_address, test_config};

#[tokio::test]
async fn in_process_server_answers_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::bind(AppState::open(test_config(dir.path())).await.unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    assert_ne!(addr.port(), 0, "port 0 resolves to a real port");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    let body: serde_json::Value =
        reqwest::get(format!("http://{addr}/health")).await.unwrap().json().await.unwrap();
    // Up, without the models `test_config` does not point at.
    assert_eq!(body["status"], "degraded", "{body}");

    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), handle).await;
    result.expect("server stops within the grace period").unwrap().unwrap();
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err(), "port is closed");
}

#[test]
fn ragd_binary_serves_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir"])
        .arg(&data_dir)
        .current_dir(dir.path())
        .env("RAGD_LOG__FILTER", "info")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = listening_address(stderr, Duration::from_secs(30));
    assert!(data_dir.is_dir(), "serve creates the data dir");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let health: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("http://{addr}/health")).await.unwrap().json().await.unwrap()
    });
    assert_eq!(health["status"], "ok");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ragd did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "ragd exits 0 after SIGTERM, got {status}");
}

#[test]
fn ragd_binary_rejects_a_bad_config_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ragd.toml"), "[server]\nprot = 1\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("prot"), "{stderr}");
}

/// An MCP client holding its event stream open must not hold the graceful shutdown until
/// the grace period ends: the stream ends when shutdown starts.
#[tokio::test]
async fn an_open_mcp_stream_does_not_hold_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.server.shutdown_grace_secs = 60;
    let server = Server::bind(AppState::open(config).await.unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    // The MCP handshake over Streamable HTTP, then the server-to-client event stream.
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/mcp");
    let accept = "application/json, text/event-stream";
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "shutdown-test", "version": "1"}}});
    let response =
        client.post(&url).header("accept", accept).json(&initialize).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    drop(response);
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = client
        .post(&url)
        .header("accept", accept)
        .header("mcp-session-id", &session)
        .json(&initialized)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let stream = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(stream.status().is_success(), "{}", stream.status());

    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), handle).await;
    result.expect("the server stops long before its 60 s grace period").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(stream);
}
