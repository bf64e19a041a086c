//! The importer on a real model: the bundled SmolLM2 as a Hugging Face folder (built by
//! `cargo xtask assets` from the bundled GGUF's weights) imported back into GGUF at F16,
//! Q8_0 and Q4_K_M, then run by llama.cpp next to the original file.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use futures::StreamExt;
use ragd_core::{CompletionDelta, LlmBackend};
use ragd_llm_backends::import::{
    ImportOptions, ImportStage, Quantization, import_folder, quantize_gguf,
};
use ragd_llm_backends::{LocalLlm, LocalLlmConfig};

use crate::local::{ask, assets_dir, greedy};

/// The Hugging Face folder of the bundled model.
fn hf_folder() -> PathBuf {
    let dir = assets_dir().join(ragd_core::assets::CHAT_MODEL_HF.path);
    assert!(
        dir.join("config.json").is_file(),
        "{} is missing; run `cargo xtask assets`",
        dir.display()
    );
    dir
}

/// An imported file and the progress reported while it was made.
type Import = (PathBuf, Vec<(ImportStage, u8)>);

/// Where the imports of this test process go: `llm-backends-import-PID` in cargo's target
/// directory. Not a `TempDir` in a `static`: statics are never dropped, so each run left its
/// half a gigabyte of GGUF files in `/tmp`. Instead each process removes the folders of
/// processes that are gone (on Linux, whose `/proc` tells), its own earlier runs' included;
/// a folder per process keeps runs from clones sharing the target directory apart.
fn imports_dir() -> &'static Path {
    const PREFIX: &str = "llm-backends-import-";
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let procfs = Path::new("/proc/self").exists();
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|name| name.strip_prefix(PREFIX)) else {
                continue;
            };
            if procfs && !Path::new("/proc").join(pid).exists() {
                // Another process may be removing it too.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(format!("{PREFIX}{}", std::process::id()));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("cannot empty {}: {err}", dir.display()),
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The folder's import at `quantization`, made once per test run, with the stages seen.
fn imported(quantization: Quantization) -> &'static Import {
    static IMPORTS: [OnceLock<Import>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = Quantization::ALL.iter().position(|q| *q == quantization).unwrap();
    IMPORTS[slot].get_or_init(|| {
        let out = imports_dir().join(format!("smollm2-{quantization}.gguf"));
        let stages = Mutex::new(Vec::new());
        let options =
            ImportOptions { quantization, name: "SmolLM2-135M-Instruct".to_owned(), threads: 2 };
        let report = import_folder(&hf_folder(), &out, &options, &|stage, percent| {
            stages.lock().unwrap().push((stage, percent));
        })
        .unwrap();
        assert_eq!(report.architecture, "llama");
        assert_eq!(report.path, out);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        (out, stages.into_inner().unwrap())
    })
}

fn load(path: &Path) -> LocalLlm {
    LocalLlm::load(&LocalLlmConfig::new(path)).unwrap()
}

const PROMPTS: [&str; 3] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
];

/// The F16 import answers exactly as llama.cpp's own F16 conversion of the original GGUF
/// (the same weights, so any wrong name, permutation, norm or token would show). The
/// original Q4_1 file itself is not the reference for exact text: llama.cpp multiplies it
/// with 8-bit activations, which changes the first greedy token of some prompts against any
/// F16 copy of the same weights.
#[tokio::test]
async fn the_f16_import_answers_exactly_as_the_original_weights_at_f16() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("original-f16.gguf");
    let source = assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
    quantize_gguf(&source, &reference, Quantization::None, 2).unwrap();
    let original = load(&reference);
    let (path, stages) = imported(Quantization::None);
    let import = load(path);
    assert_eq!(import.chat_template(), original.chat_template(), "the chat template is kept");
    for text in [
        "Hello, world! 12345 tokens.",
        "def add(a, b):\n    return a + b  # 2 + 2 == 4\n",
        "<|im_start|>user\nHi there<|im_end|>\n",
        "Ünïcödé — ½ 東京",
    ] {
        assert_eq!(
            import.count_tokens(text).unwrap(),
            original.count_tokens(text).unwrap(),
            "{text:?}"
        );
    }
    for prompt in PROMPTS {
        let want = original.complete(ask(prompt, greedy(16))).await.unwrap();
        let got = import.complete(ask(prompt, greedy(16))).await.unwrap();
        assert_eq!(got.text, want.text, "{prompt}");
        assert_eq!(got.usage, want.usage, "{prompt}");
    }
    assert_eq!(stages.first(), Some(&(ImportStage::Converting, 0)));
    assert_eq!(stages.last(), Some(&(ImportStage::Converting, 100)));
    assert!(stages.windows(2).all(|w| w[0].1 <= w[1].1), "progress only grows: {stages:?}");
    assert!(stages.len() > 10, "{stages:?}");
}

#[tokio::test]
async fn quantized_imports_are_smaller_and_answer_streaming_and_stopping() {
    let f16 = std::fs::metadata(&imported(Quantization::None).0).unwrap().len();
    let mut previous = f16;
    for quantization in [Quantization::Q8_0, Quantization::Q4KM] {
        let (path, stages) = imported(quantization);
        let size = std::fs::metadata(path).unwrap().len();
        assert!(size < previous, "{quantization}: {size} bytes, not below {previous}");
        previous = size;
        assert!(stages.contains(&(ImportStage::Converting, 100)), "{stages:?}");
        assert_eq!(stages.last(), Some(&(ImportStage::Quantizing, 100)), "{stages:?}");
        let partial = format!("{}.{}.f16.partial", path.display(), std::process::id());
        assert!(!PathBuf::from(partial).exists());

        let llm = load(path);
        let whole = llm.complete(ask(PROMPTS[0], greedy(24))).await.unwrap();
        assert!(whole.text.contains("Paris"), "{quantization}: {:?}", whole.text);
        let deltas: Vec<_> = llm.stream(ask(PROMPTS[0], greedy(24))).await.unwrap().collect().await;
        let streamed: String = deltas
            .iter()
            .filter_map(|d| match d.as_ref().unwrap() {
                CompletionDelta::Text(text) => Some(text.as_str()),
                CompletionDelta::Done { .. } => None,
            })
            .collect();
        assert_eq!(streamed, whole.text, "{quantization}");
        let mut settings = greedy(24);
        settings.stop = vec!["Paris".to_owned()];
        let stopped = llm.complete(ask(PROMPTS[0], settings)).await.unwrap();
        assert!(!stopped.text.contains("Paris"), "{quantization}: {:?}", stopped.text);
        assert!(whole.text.starts_with(&stopped.text), "{quantization}");
    }
}

mod through_the_manager {
    //! Loads of Hugging Face folders through `ModelManager`: the stages in the status, the
    //! import kept and reused, and bad folders as `failed` with the reason.

    use std::path::Path;
    use std::time::{Duration, Instant};

    use ragd_llm_backends::import::Quantization;
    use ragd_llm_backends::manager::{
        BackendKind, LoadRequest, LoadState, ManagerConfig, ModelManager,
    };
    use ragd_llm_backends::registry::RegistryConfig;
    use ragd_llm_backends::remote::HttpSettings;

    use super::{assets_dir, hf_folder};

    fn manager(models_dir: &Path) -> ModelManager {
        ModelManager::new(ManagerConfig {
            registry: RegistryConfig {
                models_dir: Some(models_dir.to_path_buf()),
                ..RegistryConfig::default()
            },
            http: HttpSettings::default(),
            default_openai_url: "http://127.0.0.1:9/v1".to_owned(),
            default_ollama_url: "http://127.0.0.1:9".to_owned(),
            hub: None,
            allowed_dirs: Vec::new(),
            parallel: 1,
            import_dir: Some(models_dir.join("imported")),
            defaults: ragd_llm_backends::manager::LoadDefaults::default(),
        })
    }

    fn request(model: &Path, quantization: Quantization) -> LoadRequest {
        LoadRequest {
            backend: BackendKind::Local,
            model: model.display().to_string(),
            hub: None,
            base_url: None,
            api_key: None,
            context_length: Some(512),
            gpu_layers: 0,
            quantization,
            settings: None,
        }
    }

    /// Every state until the load ends, without repeats.
    async fn states(manager: &ModelManager) -> Vec<LoadState> {
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut seen: Vec<LoadState> = Vec::new();
        loop {
            let state = manager.status().state;
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if matches!(state, LoadState::Loaded | LoadState::Failed { .. }) {
                return seen;
            }
            assert!(Instant::now() < deadline, "the load did not end: {seen:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn failure(states: &[LoadState]) -> String {
        match states.last() {
            Some(LoadState::Failed { reason }) => reason.clone(),
            other => panic!("expected a failed load, got {other:?} after {states:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_folder_is_imported_with_progress_then_loaded_and_reused() {
        let models = tempfile::tempdir().unwrap();
        let manager = manager(models.path());
        manager.load(request(&hf_folder(), Quantization::Q8_0)).unwrap();
        let seen = states(&manager).await;
        assert_eq!(seen.last(), Some(&LoadState::Loaded), "{seen:?}");
        let converting: Vec<u8> = seen
            .iter()
            .filter_map(|s| {
                if let LoadState::Converting { percent } = s { Some(*percent) } else { None }
            })
            .collect();
        assert!(converting.len() > 3 && converting.last() == Some(&100), "{seen:?}");
        let quantizing = seen.iter().position(|s| matches!(s, LoadState::Quantizing { .. }));
        let last_converting = seen.iter().rposition(|s| matches!(s, LoadState::Converting { .. }));
        assert!(quantizing > last_converting, "converting, then quantizing: {seen:?}");
        let info = manager.status().model.unwrap();
        assert_eq!(info.quantization, Some(Quantization::Q8_0));
        assert_eq!(info.imported_from.as_deref(), Some(hf_folder().as_path()));
        let path = info.path.unwrap();
        assert!(path.starts_with(models.path().join("imported")), "{}", path.display());
        assert!(path.display().to_string().ends_with("-q8_0.gguf"), "{}", path.display());

        // The registry lists the import; a second load of the folder reuses it.
        let ids: Vec<String> = manager.available().into_iter().map(|e| e.id).collect();
        let listed = format!("imported/{}", path.file_name().unwrap().to_string_lossy());
        assert!(ids.contains(&listed), "{ids:?}");
        manager.unload().unwrap();
        manager.load(request(&hf_folder(), Quantization::Q8_0)).unwrap();
        let again = states(&manager).await;
        assert_eq!(again.last(), Some(&LoadState::Loaded), "{again:?}");
        assert!(
            !again
                .iter()
                .any(|s| matches!(s, LoadState::Converting { .. } | LoadState::Quantizing { .. })),
            "{again:?}"
        );
        assert_eq!(manager.status().model.unwrap().path.unwrap(), path);
    }

    /// A copy of the bundled folder's small files, the weights linked, for editing.
    fn copy_of_folder(dir: &Path) {
        for entry in std::fs::read_dir(hf_folder()).unwrap() {
            let entry = entry.unwrap();
            let to = dir.join(entry.file_name());
            if entry.file_name() == "model.safetensors" {
                std::os::unix::fs::symlink(entry.path(), to).unwrap();
            } else {
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_folders_fail_with_their_reason() {
        let models = tempfile::tempdir().unwrap();
        let manager = manager(models.path());
        type Case = (&'static str, Box<dyn Fn(&Path)>, Quantization, &'static str);
        let mut cases: Vec<Case> = vec![
            (
                "no config",
                Box::new(|dir: &Path| {
                    copy_of_folder(dir);
                    std::fs::remove_file(dir.join("config.json")).unwrap();
                }),
                Quantization::None,
                "without config.json",
            ),
            (
                "unsupported architecture",
                Box::new(|dir: &Path| {
                    copy_of_folder(dir);
                    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
                    let config = config.replace("LlamaForCausalLM", "MambaForCausalLM");
                    std::fs::write(dir.join("config.json"), config).unwrap();
                }),
                Quantization::None,
                "architecture MambaForCausalLM is not supported",
            ),
            (
                "missing shard",
                Box::new(|dir: &Path| {
                    copy_of_folder(dir);
                    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
                    std::fs::write(
                        dir.join("model.safetensors.index.json"),
                        r#"{"weight_map":{"model.embed_tokens.weight":"model-00001-of-00002.safetensors","lm_head.weight":"model-00002-of-00002.safetensors"}}"#,
                    )
                    .unwrap();
                }),
                Quantization::None,
                "shard model-00001-of-00002.safetensors listed in model.safetensors.index.json is missing",
            ),
            (
                "pytorch weights",
                Box::new(|dir: &Path| {
                    copy_of_folder(dir);
                    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
                    std::fs::write(dir.join("pytorch_model.bin"), b"not read").unwrap();
                }),
                Quantization::None,
                "PyTorch pickles (.bin)",
            ),
        ];
        for (name, make, quantization, expected) in cases.drain(..) {
            let dir = tempfile::tempdir().unwrap();
            make(dir.path());
            manager.load(request(dir.path(), quantization)).unwrap();
            let seen = states(&manager).await;
            let reason = failure(&seen);
            assert!(reason.contains(expected), "{name}: {reason}");
        }
        // A GGUF file has no import to quantize.
        let gguf = assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
        manager.load(request(&gguf, Quantization::Q4KM)).unwrap();
        let reason = failure(&states(&manager).await);
        assert!(reason.contains("loads as it is"), "{reason}");
        // Nothing half-written is left behind.
        let imported = models.path().join("imported");
        let left: Vec<_> = std::fs::read_dir(&imported)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }

    const REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hub_repo_is_downloaded_imported_and_then_found_in_the_cache() {
        let hub = ragd_test_utils::FakeHub::start().await;
        for entry in std::fs::read_dir(hf_folder()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let lfs = name.ends_with(".safetensors");
            hub.add_file(REPO, &name, std::fs::read(entry.path()).unwrap(), lfs);
        }
        // Files the importer does not read stay on the hub.
        hub.add_file(REPO, "README.md", "# SmolLM2", false);
        hub.add_file(REPO, "onnx/model.onnx", vec![0u8; 1024], true);
        let cache = tempfile::tempdir().unwrap();
        let models = tempfile::tempdir().unwrap();
        let manager = ModelManager::new(ManagerConfig {
            registry: RegistryConfig {
                models_dir: Some(models.path().to_path_buf()),
                hf_cache_dir: Some(cache.path().to_path_buf()),
                ..RegistryConfig::default()
            },
            http: HttpSettings::default(),
            default_openai_url: "http://127.0.0.1:9/v1".to_owned(),
            default_ollama_url: "http://127.0.0.1:9".to_owned(),
            hub: Some(ragd_hub::HubConfig {
                endpoint: hub.endpoint().to_owned(),
                ..ragd_hub::HubConfig::new(cache.path())
            }),
            allowed_dirs: Vec::new(),
            parallel: 1,
            import_dir: Some(models.path().join("imported")),
            defaults: ragd_llm_backends::manager::LoadDefaults::default(),
        });
        let mut load = request(Path::new(REPO), Quantization::Q4KM);
        load.model = REPO.to_owned();
        manager.load(load.clone()).unwrap();
        let seen = states(&manager).await;
        assert_eq!(seen.last(), Some(&LoadState::Loaded), "{seen:?}");
        let order: Vec<&str> = seen.iter().map(LoadState::as_str).collect();
        let first = |name: &str| order.iter().position(|s| *s == name).unwrap_or(usize::MAX);
        assert!(first("downloading") < first("converting"), "{order:?}");
        assert!(first("converting") < first("quantizing"), "{order:?}");
        let requested = hub.requests();
        assert!(
            requested.iter().all(|r| !r.contains("README") && !r.contains("onnx")),
            "{requested:?}"
        );
        let info = manager.status().model.unwrap();
        let commit = hub.commit(REPO);
        let name = info.path.unwrap().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            name,
            format!("HuggingFaceTB--SmolLM2-135M-Instruct-{}-q4_k_m.gguf", &commit[..12])
        );

        // Now in the cache: listed, and loaded again without a request.
        let listed = manager.available().into_iter().find(|e| e.id == REPO).unwrap();
        assert_eq!(listed.unsupported, None);
        hub.clear_requests();
        manager.unload().unwrap();
        manager.load(load).unwrap();
        let again = states(&manager).await;
        assert_eq!(again.last(), Some(&LoadState::Loaded), "{again:?}");
        assert_eq!(hub.requests(), Vec::<String>::new());

        // A repo with PyTorch weights only fails and says so.
        hub.add_file(
            "org/bin-only",
            "config.json",
            std::fs::read(hf_folder().join("config.json")).unwrap(),
            false,
        );
        hub.add_file("org/bin-only", "pytorch_model.bin", vec![0u8; 64], true);
        manager.unload().unwrap();
        let mut bin_only = request(Path::new("org/bin-only"), Quantization::None);
        bin_only.model = "org/bin-only".to_owned();
        manager.load(bin_only).unwrap();
        let reason = failure(&states(&manager).await);
        assert!(reason.contains("no .safetensors weights"), "{reason}");
    }
}

mod every_architecture {
    //! A tiny model of each supported architecture, with random weights and the bundled
    //! model's tokenizer, imported and run by llama.cpp: its loader checks every tensor's
    //! name and shape and the metadata each architecture needs, so a wrong map fails here.

    use std::path::Path;

    use ragd_core::LlmBackend;
    use ragd_llm_backends::import::{ImportOptions, Quantization, import_folder};
    use ragd_llm_backends::{LocalLlm, LocalLlmConfig};

    use super::{ask, greedy, hf_folder};

    const HIDDEN: u64 = 64;
    const HEADS: u64 = 4;
    const KV_HEADS: u64 = 2;
    const HEAD_DIM: u64 = 16;
    const FFN: u64 = 128;
    const LAYERS: u64 = 2;

    /// Deterministic small weights.
    struct Weights(u64);

    impl Weights {
        fn take(&mut self, n: u64) -> Vec<f32> {
            (0..n)
                .map(|_| {
                    self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
                })
                .collect()
        }
    }

    /// Writes `tensors` (name, shape, values) as one F32 safetensors file.
    fn write_safetensors(path: &Path, tensors: &[(String, Vec<u64>, Vec<f32>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in tensors {
            let start = data.len();
            data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&data);
        std::fs::write(path, bytes).unwrap();
    }

    /// A tiny model folder of `architecture` in `dir`.
    fn tiny_model(dir: &Path, architecture: &str, vocab: u64) {
        let mut w = Weights(architecture.len() as u64);
        let norm = |w: &mut Weights, n: u64| -> Vec<f32> {
            // Gemma stores norms as offsets from 1.
            if architecture == "GemmaForCausalLM" { w.take(n) } else { vec![1.0; n as usize] }
        };
        let mut tensors: Vec<(String, Vec<u64>, Vec<f32>)> = Vec::new();
        let mut add =
            |name: String, shape: Vec<u64>, values: Vec<f32>| tensors.push((name, shape, values));
        add("model.embed_tokens.weight".into(), vec![vocab, HIDDEN], w.take(vocab * HIDDEN));
        add("model.norm.weight".into(), vec![HIDDEN], norm(&mut w, HIDDEN));
        if architecture == "Phi3ForCausalLM" {
            add("lm_head.weight".into(), vec![vocab, HIDDEN], w.take(vocab * HIDDEN));
        }
        let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
        for layer in 0..LAYERS {
            let p = |name: &str| format!("model.layers.{layer}.{name}");
            add(p("input_layernorm.weight"), vec![HIDDEN], norm(&mut w, HIDDEN));
            add(p("post_attention_layernorm.weight"), vec![HIDDEN], norm(&mut w, HIDDEN));
            add(p("self_attn.o_proj.weight"), vec![HIDDEN, q], w.take(HIDDEN * q));
            add(p("mlp.down_proj.weight"), vec![HIDDEN, FFN], w.take(HIDDEN * FFN));
            if architecture == "Phi3ForCausalLM" {
                let rows = q + 2 * kv;
                add(p("self_attn.qkv_proj.weight"), vec![rows, HIDDEN], w.take(rows * HIDDEN));
                add(p("mlp.gate_up_proj.weight"), vec![2 * FFN, HIDDEN], w.take(2 * FFN * HIDDEN));
                continue;
            }
            add(p("self_attn.q_proj.weight"), vec![q, HIDDEN], w.take(q * HIDDEN));
            add(p("self_attn.k_proj.weight"), vec![kv, HIDDEN], w.take(kv * HIDDEN));
            add(p("self_attn.v_proj.weight"), vec![kv, HIDDEN], w.take(kv * HIDDEN));
            add(p("mlp.gate_proj.weight"), vec![FFN, HIDDEN], w.take(FFN * HIDDEN));
            add(p("mlp.up_proj.weight"), vec![FFN, HIDDEN], w.take(FFN * HIDDEN));
            if architecture == "Qwen2ForCausalLM" {
                add(p("self_attn.q_proj.bias"), vec![q], w.take(q));
                add(p("self_attn.k_proj.bias"), vec![kv], w.take(kv));
                add(p("self_attn.v_proj.bias"), vec![kv], w.take(kv));
            }
            if architecture == "Qwen3ForCausalLM" {
                add(p("self_attn.q_norm.weight"), vec![HEAD_DIM], vec![1.0; HEAD_DIM as usize]);
                add(p("self_attn.k_norm.weight"), vec![HEAD_DIM], vec![1.0; HEAD_DIM as usize]);
            }
        }
        write_safetensors(&dir.join("model.safetensors"), &tensors);
        let config = serde_json::json!({
            "architectures": [architecture],
            "hidden_size": HIDDEN,
            "intermediate_size": FFN,
            "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS,
            "num_key_value_heads": KV_HEADS,
            "head_dim": HEAD_DIM,
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "vocab_size": vocab,
            "tie_word_embeddings": architecture != "Phi3ForCausalLM",
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(hf_folder().join(file), dir.join(file)).unwrap();
        }
    }

    #[tokio::test]
    async fn a_tiny_model_of_each_architecture_imports_loads_and_generates() {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(hf_folder().join("config.json")).unwrap())
                .unwrap();
        let vocab = config["vocab_size"].as_u64().unwrap();
        for (architecture, gguf_name) in [
            ("LlamaForCausalLM", "llama"),
            ("MistralForCausalLM", "llama"),
            ("Qwen2ForCausalLM", "qwen2"),
            ("Qwen3ForCausalLM", "qwen3"),
            ("Phi3ForCausalLM", "phi3"),
            ("GemmaForCausalLM", "gemma"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("model");
            std::fs::create_dir(&folder).unwrap();
            tiny_model(&folder, architecture, vocab);
            let out = dir.path().join("model.gguf");
            // Not the architecture's name: llama.cpp looks up Phi-3's own special tokens
            // (`</s>`) when the model's name says phi3, and this one has SmolLM2's vocabulary.
            let options = ImportOptions {
                quantization: Quantization::Q8_0,
                name: "tiny random model".to_owned(),
                threads: 2,
            };
            let report = import_folder(&folder, &out, &options, &|_, _| {})
                .unwrap_or_else(|err| panic!("{architecture}: {err}"));
            assert_eq!(report.architecture, gguf_name, "{architecture}");
            let mut config = LocalLlmConfig::new(&out);
            config.context_length = Some(256);
            config.parallel = 1;
            let llm = LocalLlm::load(&config).unwrap_or_else(|err| panic!("{architecture}: {err}"));
            let completion = llm
                .complete(ask("Hello", greedy(4)))
                .await
                .unwrap_or_else(|err| panic!("{architecture}: {err}"));
            assert!(completion.usage.prompt_tokens > 0, "{architecture}: {completion:?}");
        }
    }

    #[test]
    fn a_quantization_the_model_cannot_take_is_refused_with_the_reason() {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(hf_folder().join("config.json")).unwrap())
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("model");
        std::fs::create_dir(&folder).unwrap();
        tiny_model(&folder, "LlamaForCausalLM", config["vocab_size"].as_u64().unwrap());
        // Rows of 64 and 128 values: q8_0's blocks of 32 fit, q4_k_m's of 256 do not.
        let out = dir.path().join("model.gguf");
        let options = ImportOptions {
            quantization: Quantization::Q4KM,
            name: "tiny random model".to_owned(),
            threads: 2,
        };
        let err = import_folder(&folder, &out, &options, &|_, _| {}).unwrap_err();
        assert!(matches!(err, ragd_llm_backends::Error::UnsupportedModel { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("blocks of 256") && message.contains("[64, 128]"), "{message}");
        assert!(!out.exists());
    }
}
