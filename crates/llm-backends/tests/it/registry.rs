//! `ModelRegistry` on a fake Hugging Face cache and a local models folder.

use std::fs;
use std::path::{Path, PathBuf};

use ragd_llm_backends::{
    ModelEntry, ModelFormat, ModelRegistry, ModelSource, RegistryConfig, hf_cache_dir,
    hf_cache_dirs,
};

/// Writes `len` bytes to `path`, creating its folders.
fn write(path: &Path, len: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; len]).unwrap();
}

fn find<'a>(entries: &'a [ModelEntry], id: &str) -> &'a ModelEntry {
    entries.iter().find(|entry| entry.id == id).unwrap_or_else(|| panic!("no {id} in {entries:#?}"))
}

#[test]
fn scans_the_hub_cache_local_folder_and_bundled_files() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("hub");

    // A GGUF repo whose snapshot files link to blobs, as `huggingface-cli` writes them.
    let gguf_repo = cache.join("models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF");
    write(&gguf_repo.join("refs/main"), 0);
    fs::write(gguf_repo.join("refs/main"), "abc123\n").unwrap();
    write(&gguf_repo.join("blobs/deadbeef"), 100);
    fs::create_dir_all(gguf_repo.join("snapshots/abc123")).unwrap();
    std::os::unix::fs::symlink("../../blobs/deadbeef", gguf_repo.join("snapshots/abc123/x.gguf"))
        .unwrap();
    // An older snapshot that `refs/main` no longer names.
    write(&gguf_repo.join("snapshots/old000/old.gguf"), 10);

    // A repo name containing `--`, holding a Hugging Face model folder.
    let folder_repo = cache.join("models--some-org--my--model");
    fs::create_dir_all(folder_repo.join("refs")).unwrap();
    fs::write(folder_repo.join("refs/main"), "rev2").unwrap();
    write(&folder_repo.join("snapshots/rev2/config.json"), 20);
    write(&folder_repo.join("snapshots/rev2/model.safetensors"), 300);

    // Not models.
    write(&cache.join("datasets--x--y/snapshots/r/data.gguf"), 5);
    write(&cache.join("spaces--a--b/snapshots/r/app.gguf"), 5);

    let models = root.path().join("models");
    write(&models.join("top.gguf"), 7);
    write(&models.join("nested/inner.gguf"), 8);
    write(&models.join("notes.txt"), 3);
    write(&models.join("hf-model/config.json"), 2);
    write(&models.join("hf-model/model.safetensors"), 40);
    write(&models.join("config-only/config.json"), 2);

    let bundled = root.path().join("assets/bundled.gguf");
    write(&bundled, 9);

    let config = RegistryConfig {
        models_dir: Some(models.clone()),
        hf_cache_dir: Some(cache.clone()),
        other_hf_cache_dirs: Vec::new(),
        bundled: vec![bundled.clone(), root.path().join("assets/missing.gguf")],
    };
    let entries = ModelRegistry::scan(&config);
    let ids: Vec<&str> = entries.iter().map(|entry| entry.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "hf-model",
            "nested/inner.gguf",
            "top.gguf",
            "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/x.gguf",
            "some-org/my--model",
            "bundled.gguf",
        ],
        "{entries:#?}"
    );

    let hub_gguf = find(&entries, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/x.gguf");
    assert_eq!(hub_gguf.source, ModelSource::HfCache);
    assert_eq!(hub_gguf.format, ModelFormat::Gguf);
    assert_eq!(hub_gguf.revision.as_deref(), Some("abc123"));
    assert_eq!(hub_gguf.size_bytes, 100);
    assert_eq!(hub_gguf.path, gguf_repo.join("snapshots/abc123/x.gguf"));

    let hub_folder = find(&entries, "some-org/my--model");
    assert_eq!(hub_folder.source, ModelSource::HfCache);
    assert_eq!(hub_folder.format, ModelFormat::HfFolder);
    assert_eq!(hub_folder.revision.as_deref(), Some("rev2"));
    assert_eq!(hub_folder.size_bytes, 320);
    assert_eq!(hub_folder.path, folder_repo.join("snapshots/rev2"));

    let local_folder = find(&entries, "hf-model");
    assert_eq!(local_folder.source, ModelSource::Local);
    assert_eq!(local_folder.format, ModelFormat::HfFolder);
    assert_eq!(local_folder.size_bytes, 42);
    assert_eq!(local_folder.revision, None);

    let nested = find(&entries, "nested/inner.gguf");
    assert_eq!(
        (nested.source, nested.format, nested.size_bytes),
        (ModelSource::Local, ModelFormat::Gguf, 8)
    );
    assert_eq!(nested.path, models.join("nested/inner.gguf"));

    let bundled_entry = find(&entries, "bundled.gguf");
    assert_eq!(bundled_entry.source, ModelSource::Bundled);
    assert_eq!(bundled_entry.size_bytes, 9);
    assert_eq!(bundled_entry.path, bundled);
}

#[test]
fn missing_folders_scan_to_nothing() {
    let config = RegistryConfig {
        models_dir: Some(PathBuf::from("/nope/models")),
        hf_cache_dir: Some(PathBuf::from("/nope/hub")),
        other_hf_cache_dirs: vec![PathBuf::from("/nope/other")],
        bundled: Vec::new(),
    };
    assert!(ModelRegistry::scan(&config).is_empty());
    assert!(ModelRegistry::scan(&RegistryConfig::default()).is_empty());
}

#[test]
fn a_snapshot_without_refs_main_is_used_when_it_is_the_only_one() {
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("models--org--name/snapshots/only1/m.gguf"), 4);
    let config =
        RegistryConfig { hf_cache_dir: Some(root.path().to_path_buf()), ..Default::default() };
    let entries = ModelRegistry::scan(&config);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, "org/name/m.gguf");
    assert_eq!(entries[0].revision.as_deref(), Some("only1"));
}

#[test]
fn hf_cache_dir_follows_the_hub_precedence() {
    let hub = Path::new("/cache/hub");
    let hf_home = Path::new("/hf");
    let home = Path::new("/home/me");
    assert_eq!(hf_cache_dir(Some(hub), Some(hf_home), Some(home)), Some(hub.to_path_buf()));
    assert_eq!(hf_cache_dir(None, Some(hf_home), Some(home)), Some(PathBuf::from("/hf/hub")));
    assert_eq!(
        hf_cache_dir(None, None, Some(home)),
        Some(PathBuf::from("/home/me/.cache/huggingface/hub"))
    );
    assert_eq!(hf_cache_dir(None, None, None), None);
}

/// A hub cache snapshot of `repo` at `rev` holding `files` (name, contents).
fn snapshot(cache: &Path, repo: &str, rev: &str, files: &[(&str, &str)]) {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    fs::create_dir_all(dir.join("refs")).unwrap();
    fs::write(dir.join("refs/main"), rev).unwrap();
    for (name, contents) in files {
        write(&dir.join("snapshots").join(rev).join(name), 0);
        fs::write(dir.join("snapshots").join(rev).join(name), contents).unwrap();
    }
}

#[test]
fn every_cache_is_listed_and_folders_that_cannot_be_imported_say_why() {
    let root = tempfile::tempdir().unwrap();
    let (first, second) = (root.path().join("first"), root.path().join("second"));
    let llama = r#"{"architectures": ["LlamaForCausalLM"]}"#;
    snapshot(&first, "org/both", "rev-a", &[("config.json", llama), ("model.safetensors", "x")]);
    snapshot(&second, "org/both", "rev-b", &[("config.json", llama), ("model.safetensors", "x")]);
    snapshot(
        &second,
        "org/only-second",
        "rev-c",
        &[("config.json", llama), ("model.safetensors", "x")],
    );
    snapshot(
        &second,
        "org/pickles",
        "rev-d",
        &[("config.json", llama), ("pytorch_model.bin", "x")],
    );
    let mamba = r#"{"architectures": ["MambaForCausalLM"]}"#;
    snapshot(&second, "org/mamba", "rev-e", &[("config.json", mamba), ("model.safetensors", "x")]);
    let config = RegistryConfig {
        hf_cache_dir: Some(first),
        other_hf_cache_dirs: vec![second],
        ..RegistryConfig::default()
    };
    let entries = ModelRegistry::scan(&config);
    let both: Vec<_> = entries.iter().filter(|e| e.id == "org/both").collect();
    assert_eq!(both.len(), 1, "{entries:#?}");
    assert_eq!(both[0].revision.as_deref(), Some("rev-a"), "the download cache comes first");
    assert_eq!(find(&entries, "org/both").unsupported, None);
    assert_eq!(find(&entries, "org/only-second").revision.as_deref(), Some("rev-c"));
    let pickles = find(&entries, "org/pickles").unsupported.clone().unwrap();
    assert!(pickles.contains("PyTorch pickles"), "{pickles}");
    let mamba = find(&entries, "org/mamba").unsupported.clone().unwrap();
    assert!(mamba.contains("MambaForCausalLM is not supported"), "{mamba}");
}

#[test]
fn every_cache_location_is_found_once() {
    let home = Path::new("/home/me");
    let default = PathBuf::from("/home/me/.cache/huggingface/hub");
    assert_eq!(
        hf_cache_dirs(Some(Path::new("/cache/hub")), Some(Path::new("/hf")), Some(home)),
        [PathBuf::from("/cache/hub"), PathBuf::from("/hf/hub"), default.clone()]
    );
    assert_eq!(hf_cache_dirs(Some(&default), None, Some(home)), vec![default]);
    assert_eq!(hf_cache_dirs(None, None, None), Vec::<PathBuf>::new());
}
