//! The importer on a real model: the bundled SmolLM2 as a Hugging Face folder (built by
//! `cargo xtask assets` from the bundled GGUF's weights) imported back into GGUF at F16,
//! Q8_0 and Q4_K_M, then run by llama.cpp next to the original file.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use futures::StreamExt;
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, GenerationSettings, LlmBackend,
};
use ragd_llm_backends::import::{
    ImportOptions, ImportStage, Quantization, import_folder, quantize_gguf,
};
use ragd_llm_backends::{LocalLlm, LocalLlmConfig};

use crate::local::assets_dir;

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

/// The folder's import at `quantization`, made once per test run, with the stages seen.
fn imported(quantization: Quantization) -> &'static Import {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static IMPORTS: [OnceLock<Import>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = Quantization::ALL.iter().position(|q| *q == quantization).unwrap();
    IMPORTS[slot].get_or_init(|| {
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let out = dir.path().join(format!("smollm2-{quantization}.gguf"));
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
        assert!(!PathBuf::from(format!("{}.f16.partial", path.display())).exists());

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
