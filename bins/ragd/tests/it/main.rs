//! Integration tests of the `ragd` server, in one test binary (fewer links, one build).
//!
//! - `api`: the router in process through `tower::ServiceExt::oneshot`.
//! - `chat`: sessions, replies with citations, memory, tags, streaming, on SmolLM2.
//! - `chat_crash`: SIGKILL during a streamed reply keeps the user message.
//! - `compat`: the OpenAI- and Ollama-compatible routes in process: limits, sessions,
//!   error shapes, NDJSON.
//! - `cli`: `ragd ingest` and `ragd status` as the built binary.
//! - `collections`: collections over the API: uploads into them, scoped search and sessions.
//! - `crash`: `ragd` killed with SIGKILL mid-embedding, restarted on the same data dir.
//! - `documents`: upload to read-back over the real pipeline.
//! - `hostile`: zip bombs, cyclic PDFs, deep HTML, odd bytes and names, a 1 GB upload.
//! - `hub`: hub downloads (a chat model over the API, the embedding model by repo id) from
//!   a loopback hub.
//! - `metadata`: document metadata and the filters of search, sessions and completions.
//! - `object_store`: the vectors in an S3 bucket (moto on loopback) through a built `ragd`.
//! - `replicas`: two built `ragd serve` sharing a Postgres catalog and an S3 bucket: reads,
//!   search and chat across replicas, a replica killed mid-batch.
//! - `protocols`: the OpenAI- and Ollama-compatible APIs and MCP (HTTP and stdio) driven by
//!   the official Python clients against the built `ragd` (`tests/clients/*.py`).
//! - `served`: a built `ragd serve` and the Python scripts of `tests/clients` against it.
//! - `web`: the web page in headless Chromium (Selenium), every panel's main flow.
//! - `system`: `/api/v1/system/status` and `/metrics` on the real machine.
//! - `search`: keyword, semantic and hybrid search on the real model and stores.
//! - `server`: a real server on an ephemeral loopback port, in process and as the built
//!   `ragd` binary, including graceful shutdown on SIGTERM.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

mod api;
mod chat;
mod chat_crash;
mod cli;
mod collections;
mod compat;
mod crash;
mod documents;
mod hostile;
mod hub;
mod metadata;
mod object_store;
mod protocols;
mod reembed;
mod replicas;
mod scoped;
mod search;
mod served;
mod server;
mod system;
mod web;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use ragd::config::{Config, ConfigFile, Env, Overrides};

/// A configuration for tests: data in `data_dir`, an ephemeral port on loopback.
fn test_config(data_dir: &std::path::Path) -> Config {
    let overrides = Overrides {
        data_dir: Some(data_dir.to_path_buf()),
        host: Some("127.0.0.1".to_owned()),
        port: Some(0),
    };
    let mut config =
        Config::load(&ConfigFile::None, &Env::from_pairs([("HOME", "/nonexistent")]), &overrides)
            .unwrap();
    // In process, the running executable is this test binary: extraction workers are the
    // built `ragd`, as in the server.
    config.ingest.extract_worker = Some(env!("CARGO_BIN_EXE_ragd").into());
    config
}

/// Waits at most `timeout` for the `listening on http://ADDR` log line on the stderr of a
/// spawned `ragd` and returns ADDR; the log keeps being drained afterwards, so the child
/// never writes into a closed pipe.
fn listening_address(stderr: impl std::io::Read + Send + 'static, timeout: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, addr)) = line.split_once("listening on http://") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    rx.recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("ragd listens within {} s", timeout.as_secs()))
}
