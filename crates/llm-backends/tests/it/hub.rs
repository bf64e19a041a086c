//! `ModelManager` loading hub GGUF files served by a loopback hub: `downloading` with a
//! percentage, then `loaded`; the registry lists the download; cached loads and offline
//! mode cost no request.

use ragd_llm_backends::import::Quantization;
use std::path::Path;
use std::time::{Duration, Instant};

use ragd_core::ErrorKind;
use ragd_hub::{HubConfig, HubFile};
use ragd_llm_backends::manager::{
    BackendKind, LoadRequest, LoadState, ManagerConfig, ModelManager,
};
use ragd_llm_backends::remote::HttpSettings;
use ragd_llm_backends::{ModelRegistry, ModelSource, RegistryConfig};
use ragd_test_utils::FakeHub;

use crate::local::assets_dir;

const REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn manager(hub: &FakeHub, cache: &Path, offline: bool) -> ModelManager {
    ModelManager::new(ManagerConfig {
        registry: RegistryConfig {
            hf_cache_dir: Some(cache.to_path_buf()),
            ..RegistryConfig::default()
        },
        http: HttpSettings::default(),
        default_openai_url: "http://127.0.0.1:9/v1".to_owned(),
        default_ollama_url: "http://127.0.0.1:9".to_owned(),
        hub: Some(HubConfig {
            endpoint: hub.endpoint().to_owned(),
            offline,
            ..HubConfig::new(cache)
        }),
        allowed_dirs: Vec::new(),
        parallel: 1,
        import_dir: None,
        defaults: ragd_llm_backends::manager::LoadDefaults::default(),
    })
}

fn local(model: &str) -> LoadRequest {
    LoadRequest {
        backend: BackendKind::Local,
        model: model.to_owned(),
        hub: None,
        base_url: None,
        api_key: None,
        context_length: Some(512),
        gpu_layers: 0,
        quantization: Quantization::None,
        settings: None,
    }
}

/// Polls the status until the load ends; returns every state seen, in order, without
/// repeats of the same state name.
async fn states_until_done(manager: &ModelManager) -> Vec<LoadState> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen: Vec<LoadState> = Vec::new();
    loop {
        let state = manager.status().state;
        if seen.last().is_none_or(|last| last != &state) {
            seen.push(state.clone());
        }
        if matches!(state, LoadState::Loaded | LoadState::Failed { .. }) {
            return seen;
        }
        assert!(Instant::now() < deadline, "load did not finish: {seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_gguf_downloads_then_loads_and_is_listed_by_the_registry() {
    let gguf = std::fs::read(assets_dir().join(ragd_core::assets::CHAT_MODEL.path)).unwrap();
    let size = gguf.len() as u64;
    let hub = FakeHub::start().await;
    hub.add_file(REPO, FILE, gguf, true);
    // About 1500 chunks of 64 KiB with 1 ms between them: the download takes long enough
    // for the status to be watched.
    hub.set_chunk_delay(Some(Duration::from_millis(1)));
    let cache = tempfile::tempdir().unwrap();
    let models = manager(&hub, cache.path(), false);

    let id = format!("{REPO}/{FILE}");
    let started = models.load(local(&id)).unwrap();
    assert_eq!(started.state, LoadState::Loading);
    let states = states_until_done(&models).await;

    assert_eq!(states.last(), Some(&LoadState::Loaded), "{states:?}");
    let downloading: Vec<(u8, u64, u64)> = states
        .iter()
        .filter_map(|s| {
            let LoadState::Downloading { percent, downloaded_bytes, total_bytes } = s else {
                return None;
            };
            Some((*percent, *downloaded_bytes, *total_bytes))
        })
        .collect();
    assert!(downloading.iter().any(|(p, _, _)| *p > 0 && *p < 100), "{states:?}");
    assert!(downloading.iter().all(|(_, _, total)| *total == size));
    assert!(downloading.windows(2).all(|w| w[0].0 <= w[1].0), "percent never goes back");
    let first_download = states.iter().position(|s| matches!(s, LoadState::Downloading { .. }));
    let loading_after = states.iter().rposition(|s| *s == LoadState::Loading);
    assert!(first_download.unwrap() < loading_after.unwrap(), "{states:?}");

    let status = models.status();
    let info = status.model.unwrap();
    assert_eq!(info.model, id);
    assert_eq!(info.model_id.as_deref(), Some("SmolLM2-135M-Instruct.Q4_1"));
    assert_eq!(info.size_bytes, Some(size));
    let commit = hub.commit(REPO);
    let expected = cache
        .path()
        .join("models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/snapshots")
        .join(&commit)
        .join(FILE);
    assert_eq!(info.path.as_deref(), Some(expected.as_path()));

    // The existing registry scan lists the download under the id that was asked for.
    let entries = ModelRegistry::scan(&RegistryConfig {
        hf_cache_dir: Some(cache.path().to_path_buf()),
        ..RegistryConfig::default()
    });
    let entry = entries.iter().find(|e| e.id == id).unwrap_or_else(|| panic!("{entries:#?}"));
    assert_eq!(entry.source, ModelSource::HfCache);
    assert_eq!(entry.revision.as_deref(), Some(commit.as_str()));
    assert_eq!(entry.size_bytes, size);

    // Loading it again, by id or through the explicit hub field, asks the hub nothing.
    hub.clear_requests();
    models.unload().unwrap();
    let explicit = LoadRequest {
        model: String::new(),
        hub: Some(HubFile::new(REPO, FILE).unwrap()),
        ..local("")
    };
    assert_eq!(models.load(explicit).unwrap().model.unwrap().model, id);
    let states = states_until_done(&models).await;
    assert_eq!(states.last(), Some(&LoadState::Loaded), "{states:?}");
    assert!(!states.iter().any(|s| matches!(s, LoadState::Downloading { .. })), "{states:?}");
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[tokio::test]
async fn offline_mode_and_missing_files_fail_with_the_reason() {
    let hub = FakeHub::start().await;
    hub.add_file("test-org/tiny", "model.gguf", b"GGUF not really".to_vec(), true);
    let cache = tempfile::tempdir().unwrap();

    let offline = manager(&hub, cache.path(), true);
    offline.load(local("test-org/tiny/model.gguf")).unwrap();
    let states = states_until_done(&offline).await;
    let Some(LoadState::Failed { reason }) = states.last() else { panic!("{states:?}") };
    assert!(reason.contains("offline"), "{reason}");
    assert!(hub.requests().is_empty());

    let online = manager(&hub, cache.path(), false);
    online.load(local("test-org/tiny/missing.gguf")).unwrap();
    let states = states_until_done(&online).await;
    let Some(LoadState::Failed { reason }) = states.last() else { panic!("{states:?}") };
    assert!(reason.contains("not found") && reason.contains("EntryNotFound"), "{reason}");

    // Files that are not GGUF, and hub files for remote backends, are refused at once.
    let not_gguf = LoadRequest {
        hub: Some(HubFile::new("test-org/tiny", "model.safetensors").unwrap()),
        ..local("")
    };
    assert_eq!(online.load(not_gguf).unwrap_err().kind(), ErrorKind::InvalidInput);
    let remote = LoadRequest {
        backend: BackendKind::Ollama,
        hub: Some(HubFile::new("test-org/tiny", "model.gguf").unwrap()),
        ..local("x")
    };
    assert_eq!(online.load(remote).unwrap_err().kind(), ErrorKind::InvalidInput);
}
