//! Downloads into a temporary cache: the `huggingface-cli` layout, the cache hit without a
//! request, progress, resume, integrity, tokens and the classified errors.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ragd_core::ErrorKind;
use ragd_hub::{Error, HubClient, HubConfig, HubFile, Progress};
use ragd_test_utils::FakeHub;

const REPO: &str = "test-org/tiny-model";

/// Deterministic "weights" of `len` bytes, starting with the GGUF magic.
fn weights(len: usize) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..len - 4).map(|i| u8::try_from(i * 31 % 251).unwrap()));
    bytes
}

async fn hub_with_repo() -> FakeHub {
    let hub = FakeHub::start().await;
    hub.add_file(REPO, "model.gguf", weights(300_000), true);
    hub.add_file(REPO, "config.json", "{\"model_type\":\"llama\"}", false);
    hub.add_file(REPO, "onnx/tokenizer.json", "{\"version\":\"1.0\"}", false);
    hub
}

fn client(hub: &FakeHub, cache: &Path) -> HubClient {
    HubClient::new(HubConfig { endpoint: hub.endpoint().to_owned(), ..HubConfig::new(cache) })
        .unwrap()
}

fn files(paths: &[&str]) -> Vec<HubFile> {
    paths.iter().map(|p| HubFile::new(REPO, *p).unwrap()).collect()
}

/// Records every progress report as (file path, bytes, total).
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, u64, u64)>>);

impl Recorder {
    fn record(&self, p: &Progress<'_>) {
        self.0.lock().unwrap().push((p.file.path.clone(), p.bytes, p.total));
    }
    fn reports(&self) -> Vec<(String, u64, u64)> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn files_land_in_the_huggingface_cli_layout_and_a_second_download_costs_no_request() {
    let hub = hub_with_repo().await;
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let wanted = files(&["model.gguf", "config.json", "onnx/tokenizer.json"]);
    let recorder = Recorder::default();

    let paths = client.download(&wanted, &|p| recorder.record(p)).await.unwrap();

    let commit = hub.commit(REPO);
    let repo_dir = cache.path().join("models--test-org--tiny-model");
    let snapshot = repo_dir.join("snapshots").join(&commit);
    assert_eq!(
        paths,
        vec![
            snapshot.join("model.gguf"),
            snapshot.join("config.json"),
            snapshot.join("onnx/tokenizer.json")
        ]
    );
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), commit);
    let sha = hub.sha256(REPO, "model.gguf").unwrap();
    assert_eq!(std::fs::read(repo_dir.join("blobs").join(&sha)).unwrap(), weights(300_000));
    assert_eq!(
        std::fs::read_link(snapshot.join("model.gguf")).unwrap(),
        PathBuf::from(format!("../../blobs/{sha}"))
    );
    let tokenizer_link = std::fs::read_link(snapshot.join("onnx/tokenizer.json")).unwrap();
    assert!(tokenizer_link.starts_with("../../../blobs"), "{}", tokenizer_link.display());
    assert_eq!(std::fs::read_to_string(&paths[2]).unwrap(), "{\"version\":\"1.0\"}");
    let leftovers: Vec<_> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains('.'))
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // One HEAD per file; LFS contents from the CDN origin (which refuses tokens), the small
    // files from the resolve URL itself.
    let requests = hub.requests();
    assert_eq!(requests.iter().filter(|r| r.starts_with("HEAD ")).count(), 3, "{requests:?}");
    assert!(requests.contains(&format!("GET cdn /blobs/{sha}")), "{requests:?}");
    assert!(requests.contains(&format!("GET /{REPO}/resolve/main/config.json")), "{requests:?}");

    // Progress: bytes never go back, the total is every file's size, the end is 100 %.
    let reports = recorder.reports();
    let total = 300_000 + 22 + 17;
    assert!(reports.iter().all(|(_, _, t)| *t == total), "{:?}", reports.last());
    assert!(reports.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(reports.iter().any(|(file, bytes, _)| file == "model.gguf" && *bytes < 300_000));
    assert_eq!(reports.last().unwrap().1, total);

    hub.clear_requests();
    let again = Recorder::default();
    let cached = client.download(&wanted, &|p| again.record(p)).await.unwrap();
    assert_eq!(cached, paths);
    assert!(hub.requests().is_empty(), "cached files cost no request: {:?}", hub.requests());
    assert_eq!(again.reports().last().map(|r| (r.1, r.2)), Some((total, total)));
}

#[tokio::test]
async fn a_commit_revision_and_a_shared_blob_reuse_the_cache() {
    let hub = hub_with_repo().await;
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let commit = hub.commit(REPO);
    let pinned = HubFile::at_revision(REPO, "model.gguf", &commit).unwrap();
    let path = client.download_file(&pinned, &|_| {}).await.unwrap();
    assert!(path.ends_with(format!("snapshots/{commit}/model.gguf")));
    assert!(!cache.path().join("models--test-org--tiny-model/refs/main").exists());

    // `main` resolves to the same commit: one HEAD, no transfer, just a ref.
    hub.clear_requests();
    let main = client.download_file(&HubFile::new(REPO, "model.gguf").unwrap(), &|_| {}).await;
    assert_eq!(main.unwrap(), path);
    assert_eq!(hub.requests(), vec![format!("HEAD /{REPO}/resolve/main/model.gguf")]);
}

#[tokio::test]
async fn an_interrupted_download_resumes_and_a_corrupt_one_is_refused() {
    let hub = hub_with_repo().await;
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    let sha = hub.sha256(REPO, "model.gguf").unwrap();
    let blobs = cache.path().join("models--test-org--tiny-model/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{sha}.incomplete"));
    let file = HubFile::new(REPO, "model.gguf").unwrap();

    std::fs::write(&partial, &weights(300_000)[..100_000]).unwrap();
    let path = client.download_file(&file, &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), weights(300_000));
    assert!(hub.requests().contains(&format!("GET cdn /blobs/{sha} range=bytes=100000-")));
    assert!(!partial.exists());

    // A partial file with wrong bytes: the sha256 check catches it and removes it, so the
    // next attempt starts over.
    let other = tempfile::tempdir().unwrap();
    let client = self::client(&hub, other.path());
    let blobs = other.path().join("models--test-org--tiny-model/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{sha}.incomplete"));
    std::fs::write(&partial, vec![0_u8; 1000]).unwrap();
    let err = client.download_file(&file, &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!partial.exists());
    let path = client.download_file(&file, &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), weights(300_000));
}

#[tokio::test]
async fn gated_repos_need_the_token_and_it_never_reaches_the_cdn() {
    let hub = hub_with_repo().await;
    hub.gate(REPO, "hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let file = HubFile::new(REPO, "model.gguf").unwrap();

    let err = client(&hub, cache.path()).download_file(&file, &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { status: 401, token_sent: false, .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let message = err.to_string();
    assert!(message.contains("gated or private") && message.contains("HF_TOKEN"), "{message}");
    assert!(message.contains("GatedRepo"), "{message}");

    let with = |token: &str| {
        HubClient::new(HubConfig {
            endpoint: hub.endpoint().to_owned(),
            token: Some(token.to_owned()),
            ..HubConfig::new(cache.path())
        })
        .unwrap()
    };
    let err = with("hf_wrong").download_file(&file, &|_| {}).await.unwrap_err();
    assert!(err.to_string().contains("lacks access"), "{err}");
    assert!(!format!("{err:?}").contains("hf_wrong"));

    // The CDN answers 400 to a request with an Authorization header.
    let path = with("hf_secret").download_file(&file, &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), weights(300_000));
    assert!(!format!("{:?}", with("hf_secret").config()).contains("hf_secret"));
}

#[tokio::test]
async fn missing_repos_revisions_and_files_are_not_found() {
    let hub = hub_with_repo().await;
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path());
    for (file, code) in [
        (HubFile::new(REPO, "nope.gguf").unwrap(), "EntryNotFound"),
        (HubFile::new("test-org/nope", "model.gguf").unwrap(), "RepoNotFound"),
        (HubFile::at_revision(REPO, "model.gguf", "v9").unwrap(), "RevisionNotFound"),
    ] {
        let err = client.download_file(&file, &|_| {}).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(code), "{err}");
        let core: ragd_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::NotFound);
    }
    assert!(!cache.path().join("models--test-org--nope").exists());
}

#[tokio::test]
async fn unreachable_hubs_are_unavailable_and_offline_mode_never_asks() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cache = tempfile::tempdir().unwrap();
    let config =
        HubConfig { endpoint: format!("http://127.0.0.1:{port}"), ..HubConfig::new(cache.path()) };
    let file = HubFile::new(REPO, "model.gguf").unwrap();
    let err = HubClient::new(config.clone()).unwrap().download_file(&file, &|_| {}).await;
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    let offline = HubClient::new(HubConfig { offline: true, ..config }).unwrap();
    let err = offline.download_file(&file, &|_| {}).await.unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("offline"), "{err}");

    // Once cached (by an online client), offline mode serves the file.
    let hub = hub_with_repo().await;
    self::client(&hub, cache.path()).download_file(&file, &|_| {}).await.unwrap();
    hub.clear_requests();
    let offline = HubClient::new(HubConfig {
        endpoint: hub.endpoint().to_owned(),
        offline: true,
        ..HubConfig::new(cache.path())
    })
    .unwrap();
    let path = offline.download_file(&file, &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), weights(300_000));
    assert!(hub.requests().is_empty());
}
