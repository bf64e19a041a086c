//! `OpenAiBackend` and `ModelManager` against a real llama.cpp `llama-server` on loopback,
//! serving the bundled SmolLM2 GGUF (the wire format alone is tested against recorded
//! answers in `tests/remote.rs`).
//!
//! The server binary: `$XTASK_LLAMA_SERVER` (set by `cargo xtask test`), else where
//! `cargo xtask llama-tools` puts it for the `llama-cpp-sys-2` version `Cargo.lock` pins.
//! A missing binary fails the test with the command that builds it. Each test starts its
//! own server on a port the server picks (`--port 0`) and kills it when done.

use ragd_llm_backends::import::Quantization;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, ErrorKind, FinishReason,
    GenerationSettings, LlmBackend,
};
use ragd_llm_backends::RegistryConfig;
use ragd_llm_backends::manager::{
    BackendKind, LoadRequest, LoadState, ManagerConfig, ModelManager, ModelStatus,
};
use ragd_llm_backends::remote::HttpSettings;
use ragd_llm_backends::remote::openai::{OpenAiBackend, OpenAiConfig};

use crate::local::assets_dir;

/// The name the server is told to offer the model under (`--alias`).
const ALIAS: &str = "smollm2";

const QUESTION: &str = "What is the capital of France?";

/// Where `cargo xtask llama-tools` puts `llama-server` for this checkout's llama.cpp.
fn default_server_path() -> PathBuf {
    let lock = std::fs::read_to_string("../../Cargo.lock").unwrap();
    let mut lines = lock.lines();
    let version = loop {
        let line = lines.next().expect("Cargo.lock pins no llama-cpp-sys-2");
        if line == "name = \"llama-cpp-sys-2\"" {
            let version = lines.next().unwrap().trim_start_matches("version = ");
            break version.trim_matches('"').to_owned();
        }
    };
    let root = std::env::var_os("XTASK_LLAMA_TOOLS_DIR").map_or_else(
        || Path::new(&std::env::var_os("HOME").unwrap()).join(".cache/ragd/llama-tools"),
        PathBuf::from,
    );
    root.join(format!("llama-cpp-sys-2-{version}/bin/llama-server"))
}

fn server_binary() -> PathBuf {
    let (path, origin) = match std::env::var_os("XTASK_LLAMA_SERVER") {
        Some(path) => (PathBuf::from(path), "XTASK_LLAMA_SERVER"),
        None => (default_server_path(), "the default llama-tools location"),
    };
    assert!(
        path.is_file(),
        "llama-server not found at {} ({origin}): build it with `cargo xtask llama-tools` \
         (`cargo xtask test` does it before testing), or point XTASK_LLAMA_SERVER at one",
        path.display()
    );
    path
}

/// A `llama-server` child process, killed on drop.
struct LlamaServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
}

impl LlamaServer {
    /// Starts the server with a context of `context` tokens and waits until `/health`
    /// answers 200.
    async fn start(context: u32) -> Self {
        let model = assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
        assert!(model.is_file(), "{} is missing; run `cargo xtask assets`", model.display());
        let mut child = Command::new(server_binary())
            .arg("--model")
            .arg(&model)
            .args(["--alias", ALIAS, "--host", "127.0.0.1", "--port", "0"])
            .args(["--ctx-size", &context.to_string(), "--parallel", "1", "--threads", "1"])
            // Every request is evaluated from scratch, so equal requests give equal answers.
            .args(["--no-cache-prompt", "--no-ui"])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server logs `listening on http://127.0.0.1:PORT` once it has bound.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = tx.send(Ok(address.trim().to_owned()));
                }
                log.push(line);
            }
            // The server exited (or closed stderr) without saying where it listens.
            let _ = tx.send(Err(log.join("\n")));
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(url)) => url,
            Ok(Err(log)) => panic!("llama-server exited before listening:\n{log}"),
            Err(err) => {
                let _ = child.kill();
                panic!("llama-server did not start listening: {err}")
            }
        };
        let server = Self { child, url };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let health = client.get(format!("{}/health", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "llama-server at {} never became healthy", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn base_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    fn backend(&self, context_length: usize) -> OpenAiBackend {
        OpenAiBackend::new(OpenAiConfig {
            base_url: self.base_url(),
            api_key: None,
            model: ALIAS.to_owned(),
            context_length,
            http: HttpSettings {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(120),
                connect_retries: 1,
            },
        })
        .unwrap()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn greedy(max_new_tokens: u32) -> GenerationSettings {
    GenerationSettings {
        temperature: 0.0,
        repetition_penalty: 1.0,
        max_new_tokens,
        ..GenerationSettings::default()
    }
}

fn ask(question: &str, settings: GenerationSettings) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage { role: ChatRole::User, content: question.to_owned() }],
        settings,
    }
}

#[tokio::test]
async fn lists_the_model_and_obeys_max_new_tokens_with_a_fixed_seed() {
    let server = LlamaServer::start(1024).await;
    let backend = server.backend(1024);
    let models = backend.list_models().await.unwrap();
    assert!(models.iter().any(|m| m == ALIAS), "{models:?}");

    let settings = GenerationSettings {
        temperature: 0.9,
        seed: Some(7),
        max_new_tokens: 12,
        ..GenerationSettings::default()
    };
    let first = backend.complete(ask(QUESTION, settings.clone())).await.unwrap();
    assert!(!first.text.trim().is_empty(), "{first:?}");
    assert!(first.usage.prompt_tokens > 0, "{:?}", first.usage);
    assert!(
        first.usage.completion_tokens > 0 && first.usage.completion_tokens <= 12,
        "{:?}",
        first.usage
    );
    assert_eq!(first.model, ALIAS);
    let second = backend.complete(ask(QUESTION, settings)).await.unwrap();
    assert_eq!(first.text, second.text, "the same seed gave another answer");

    let short = backend.complete(ask("Tell me a long story.", greedy(4))).await.unwrap();
    assert_eq!(short.usage.completion_tokens, 4, "{short:?}");
    assert_eq!(short.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn generation_stops_before_a_stop_sequence() {
    let server = LlamaServer::start(1024).await;
    let backend = server.backend(1024);
    let full = backend.complete(ask(QUESTION, greedy(40))).await.unwrap();
    let text = full.text;
    // A short piece from the middle of the answer, starting on a character boundary.
    let mut middle = text.len() / 2;
    while !text.is_char_boundary(middle) {
        middle += 1;
    }
    let stop: String = text[middle..].chars().take(3).collect();
    assert_eq!(stop.chars().count(), 3, "answer too short: {text:?}");
    let expected = &text[..text.find(&stop).unwrap()];

    let mut settings = greedy(40);
    settings.stop = vec![stop.clone()];
    let stopped = backend.complete(ask(QUESTION, settings)).await.unwrap();
    assert_eq!(stopped.text, expected, "stop {stop:?} in {text:?}");
    // The OpenAI API reports a stop sequence as `stop`, like the end of the turn.
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert!(stopped.usage.completion_tokens < full.usage.completion_tokens);
}

#[tokio::test]
async fn streams_deltas_then_done() {
    let server = LlamaServer::start(1024).await;
    let backend = server.backend(1024);
    let whole = backend.complete(ask(QUESTION, greedy(24))).await.unwrap();
    let deltas: Vec<CompletionDelta> = backend
        .stream(ask(QUESTION, greedy(24)))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;

    let texts: Vec<&str> = deltas
        .iter()
        .filter_map(|delta| match delta {
            CompletionDelta::Text(text) => Some(text.as_str()),
            CompletionDelta::Done { .. } => None,
        })
        .collect();
    assert!(texts.len() >= 3, "expected several deltas, got {texts:?}");
    assert_eq!(texts.concat(), whole.text);
    let done = deltas.iter().filter(|d| matches!(d, CompletionDelta::Done { .. })).count();
    assert_eq!(done, 1);
    match deltas.last() {
        Some(CompletionDelta::Done { finish_reason, usage }) => {
            assert_eq!(*finish_reason, whole.finish_reason);
            assert_eq!(usage.completion_tokens, whole.usage.completion_tokens);
            assert_eq!(usage.prompt_tokens, whole.usage.prompt_tokens);
        }
        other => panic!("the stream did not end with Done: {other:?}"),
    }
}

#[tokio::test]
async fn errors_are_classified() {
    let mut server = LlamaServer::start(256).await;
    let backend = server.backend(256);

    let long = "lorem ipsum ".repeat(400);
    let err = backend.complete(ask(&long, greedy(8))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");
    let err = backend.stream(ask(&long, greedy(8))).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");

    // The server says `exceeds the available context size`; no other request the backend
    // can send is refused by llama-server (an empty conversation is answered), so
    // `InvalidInput` is covered by the recorded answers in `tests/remote.rs`.

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let err = backend.complete(ask(QUESTION, greedy(2))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = backend.list_models().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

/// The status once the manager is no longer loading.
async fn settled(manager: &ModelManager) -> ModelStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = manager.status();
        if !matches!(status.state, LoadState::Loading) {
            return status;
        }
        assert!(Instant::now() < deadline, "still loading: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_model_manager_loads_a_model_from_llama_server() {
    let server = LlamaServer::start(1024).await;
    let manager = ModelManager::new(ManagerConfig {
        registry: RegistryConfig::default(),
        http: HttpSettings::default(),
        default_openai_url: server.base_url(),
        default_ollama_url: "http://127.0.0.1:1".to_owned(),
        hub: None,
        allowed_dirs: Vec::new(),
        parallel: 1,
        import_dir: None,
        defaults: ragd_llm_backends::manager::LoadDefaults::default(),
    });
    let request = |model: &str| LoadRequest {
        backend: BackendKind::Openai,
        model: model.to_owned(),
        base_url: None,
        api_key: None,
        context_length: Some(1024),
        gpu_layers: 0,
        quantization: Quantization::None,
        hub: None,
        settings: None,
    };

    manager.load(request("not-served")).unwrap();
    let status = settled(&manager).await;
    let LoadState::Failed { reason } = &status.state else {
        panic!("a model the server lacks loaded: {status:?}");
    };
    assert!(reason.contains(ALIAS), "{reason}");

    manager.load(request(ALIAS)).unwrap();
    let status = settled(&manager).await;
    assert_eq!(status.state, LoadState::Loaded, "{status:?}");
    let info = status.model.unwrap();
    assert_eq!(info.model_id.as_deref(), Some(ALIAS));
    assert_eq!(info.context_length, Some(1024));
    let backend = manager.backend().unwrap();
    assert_eq!(backend.name(), "openai");
    let answer = backend.complete(ask(QUESTION, greedy(8))).await.unwrap();
    assert!(!answer.text.trim().is_empty());
}

#[tokio::test]
async fn the_llamacpp_preset_discovers_the_served_model_and_the_defaults_apply() {
    let server = LlamaServer::start(1024).await;
    let mut defaults = ragd_llm_backends::manager::LoadDefaults::default();
    defaults.settings.temperature = 0.25;
    defaults.settings.max_new_tokens = 77;
    let manager = ModelManager::new(ManagerConfig {
        registry: RegistryConfig::default(),
        http: HttpSettings::default(),
        // Not the server: the preset's request names its own address.
        default_openai_url: "http://127.0.0.1:1/v1".to_owned(),
        default_ollama_url: "http://127.0.0.1:1".to_owned(),
        hub: None,
        allowed_dirs: Vec::new(),
        parallel: 1,
        import_dir: None,
        defaults,
    });
    // The configured generation defaults are in force before any load.
    assert_eq!(manager.settings().temperature, 0.25);
    assert_eq!(manager.settings().max_new_tokens, 77);
    let request = |backend: BackendKind, base_url: &str| LoadRequest {
        backend,
        model: String::new(),
        base_url: Some(base_url.to_owned()),
        api_key: Some("secret-key".to_owned()),
        context_length: Some(1024),
        gpu_layers: 0,
        quantization: Quantization::None,
        hub: None,
        settings: None,
    };

    // No model named: the one llama-server serves.
    manager.load(request(BackendKind::Llamacpp, &server.base_url())).unwrap();
    let status = settled(&manager).await;
    assert_eq!(status.state, LoadState::Loaded, "{status:?}");
    let info = status.model.clone().unwrap();
    assert_eq!(info.backend, BackendKind::Llamacpp);
    assert_eq!(info.model, ALIAS);
    assert_eq!(info.base_url.as_deref(), Some(server.base_url().as_str()));
    let shown = serde_json::to_string(&status).unwrap();
    assert!(!shown.contains("secret-key"), "the key never shows: {shown}");
    let answer = manager.backend().unwrap().complete(ask(QUESTION, greedy(4))).await.unwrap();
    assert!(!answer.text.trim().is_empty());

    // A preset whose server is not there fails with a reason naming it and the address.
    manager.load(request(BackendKind::Lmstudio, "http://127.0.0.1:9/v1")).unwrap();
    let status = settled(&manager).await;
    let LoadState::Failed { reason } = &status.state else {
        panic!("an unreachable server loaded: {status:?}");
    };
    assert!(reason.contains("lmstudio server at http://127.0.0.1:9/v1"), "{reason}");

    // The presets' own addresses and names.
    assert_eq!(BackendKind::Llamacpp.preset_base_url(), Some("http://127.0.0.1:8080/v1"));
    assert_eq!(BackendKind::Lmstudio.preset_base_url(), Some("http://127.0.0.1:1234/v1"));
    assert_eq!(BackendKind::parse("vllm").unwrap(), BackendKind::Vllm);
    let err = BackendKind::parse("tgi").unwrap_err();
    assert!(err.message().contains("instructlab"), "{err}");
}
