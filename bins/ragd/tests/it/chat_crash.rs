//! Crash safety of chat: `ragd` killed with SIGKILL while it streams a reply keeps the
//! user message, and the session works again after a restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::listening_address;

/// Starts `ragd serve` on a free loopback port over `data_dir` with the bundled model.
fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(["serve", "--port", "0", "--host", "127.0.0.1", "--data-dir"])
        .arg(data_dir)
        .env("RAGD_LOG__FILTER", "info")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = listening_address(stderr, Duration::from_secs(60));
    (child, format!("http://{addr}"))
}

async fn wait_for_model(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        let status: Value = client
            .get(format!("{base}/api/v1/models/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["state"] == "loaded" {
            return;
        }
        assert_ne!(status["state"], "failed", "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the model did not load");
}

#[tokio::test]
async fn a_kill_during_generation_keeps_the_user_message() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let client = reqwest::Client::new();

    let (mut child, base) = start(&data_dir);
    wait_for_model(&client, &base).await;
    let session: Value = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    let messages = format!("{base}/api/v1/sessions/{id}/messages");
    let mut response = client
        .post(&messages)
        .json(&json!({
            "content": "Write a long story about a lighthouse keeper.",
            "stream": true,
            "settings": {"max_new_tokens": 400}
        }))
        .send()
        .await
        .unwrap();
    // Read until the first token is out, then kill the server mid-generation.
    let mut seen = String::new();
    while !seen.contains("event: token") {
        let chunk = response.chunk().await.unwrap().expect("the stream ended before a token");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(response);

    let (mut child, base) = start(&data_dir);
    let messages = format!("{base}/api/v1/sessions/{id}/messages");
    let stored: Value = client.get(&messages).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["total"], 1, "{stored}");
    assert_eq!(stored["items"][0]["role"], "user");
    assert_eq!(stored["items"][0]["content"], "Write a long story about a lighthouse keeper.");

    wait_for_model(&client, &base).await;
    let reply = client
        .post(&messages)
        .json(&json!({"content": "Shorter, please.", "settings": {"max_new_tokens": 4}}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
    let stored: Value = client.get(&messages).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["total"], 3, "{stored}");
    child.kill().unwrap();
    child.wait().unwrap();
}
