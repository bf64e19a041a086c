//! [`EmbedderConfig`]: everything [`crate::OrtEmbedder::load`] needs, as typed values.

use std::path::{Path, PathBuf};

use ragd_core::assets;

use crate::error::{Error, Result};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU execution provider (always available).
    #[default]
    Cpu,
    /// The CUDA execution provider on the GPU with this ordinal.
    ///
    /// It needs the `cuda` cargo feature and a CUDA-enabled ONNX Runtime; without either the
    /// embedder falls back to the CPU and says so in a warning and in
    /// [`crate::OrtEmbedder::provider`].
    Cuda(u32),
}

/// How the inference thread competes for the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// The operating system's default.
    #[default]
    Normal,
    /// The lowest scheduling priority (nice 19 on Linux): the thread runs at full speed on
    /// an idle machine and yields the cores to every normal thread that wants them. For bulk
    /// work such as re-embedding an index while the same process serves queries.
    Background,
}

/// The configuration of one [`crate::OrtEmbedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// The ONNX model file.
    pub model_path: PathBuf,
    /// The Hugging Face `tokenizer.json` of the model.
    pub tokenizer_path: PathBuf,
    /// The ONNX Runtime shared library, loaded at run time.
    ///
    /// ONNX Runtime allows one environment per process: the first embedder loaded decides
    /// which library is used, and later embedders reuse it.
    pub ort_dylib_path: PathBuf,
    /// The model's id, stored with every vector table.
    pub model_id: String,
    /// Length of every output vector; checked against the model at load.
    pub dimensions: usize,
    /// The longest input in tokens (special tokens included); longer texts are truncated.
    pub max_tokens: usize,
    /// The most texts one inference batch carries.
    pub max_batch_size: usize,
    /// The most padded tokens (longest text in the batch × batch size) one batch carries.
    pub batch_token_budget: usize,
    /// Threads ONNX Runtime uses inside one operator; `None` lets it choose.
    pub intra_op_threads: Option<usize>,
    /// Where inference runs.
    pub device: Device,
    /// How many requests may wait for the inference thread before callers get
    /// `Overloaded`.
    pub queue_capacity: usize,
    /// The inference thread's CPU priority. With `Background`, keep `intra_op_threads` at 1:
    /// ONNX Runtime's own pool threads keep the normal priority.
    pub priority: Priority,
}

impl EmbedderConfig {
    /// The model id of the bundled default model.
    pub const MINILM_MODEL_ID: &'static str = "sentence-transformers/all-MiniLM-L6-v2";

    /// The model id of the second bundled model.
    pub const PARAPHRASE_MODEL_ID: &'static str = "sentence-transformers/paraphrase-MiniLM-L3-v2";

    /// The configuration for the second bundled model, paraphrase-MiniLM-L3-v2 (fp32 ONNX,
    /// 384 dimensions, the same tokenizer as all-MiniLM-L6-v2), in `assets_dir`.
    #[must_use]
    pub fn paraphrase_minilm(assets_dir: &Path, ort_dylib: &Path) -> Self {
        Self {
            model_path: assets_dir.join(assets::PARAPHRASE_EMBEDDING_MODEL.path),
            model_id: Self::PARAPHRASE_MODEL_ID.to_owned(),
            ..Self::minilm(assets_dir, ort_dylib)
        }
    }

    /// The bundled configuration for `model_id`, if it is a bundled model's.
    #[must_use]
    pub fn bundled(model_id: &str, assets_dir: &Path, ort_dylib: &Path) -> Option<Self> {
        match model_id {
            Self::MINILM_MODEL_ID => Some(Self::minilm(assets_dir, ort_dylib)),
            Self::PARAPHRASE_MODEL_ID => Some(Self::paraphrase_minilm(assets_dir, ort_dylib)),
            _ => None,
        }
    }

    /// The default configuration for the bundled all-MiniLM-L6-v2 (int8 ONNX, 384
    /// dimensions), with the model and tokenizer at their places in `assets_dir` (see
    /// [`ragd_core::assets`]) and ONNX Runtime loaded from `ort_dylib`.
    #[must_use]
    pub fn minilm(assets_dir: &Path, ort_dylib: &Path) -> Self {
        Self {
            model_path: assets_dir.join(assets::EMBEDDING_MODEL.path),
            tokenizer_path: assets_dir.join(assets::EMBEDDING_TOKENIZER.path),
            ort_dylib_path: ort_dylib.to_path_buf(),
            model_id: Self::MINILM_MODEL_ID.to_owned(),
            dimensions: 384,
            max_tokens: 256,
            max_batch_size: 32,
            batch_token_budget: 8192,
            intra_op_threads: None,
            device: Device::Cpu,
            queue_capacity: 64,
            priority: Priority::Normal,
        }
    }

    /// Checks the limits that would make the embedder unusable.
    pub(crate) fn validate(&self) -> Result<()> {
        let check = |ok: bool, message: &str| {
            if ok { Ok(()) } else { Err(Error::InvalidConfig(message.to_owned())) }
        };
        check(self.dimensions > 0, "dimensions must be positive")?;
        // Two tokens are always taken by [CLS] and [SEP].
        check(self.max_tokens >= 2, "max_tokens must be at least 2")?;
        check(self.max_batch_size > 0, "max_batch_size must be positive")?;
        check(
            self.batch_token_budget >= self.max_tokens,
            "batch_token_budget must hold at least one text of max_tokens",
        )?;
        check(self.queue_capacity > 0, "queue_capacity must be positive")?;
        check(self.intra_op_threads != Some(0), "intra_op_threads must be positive")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minilm_uses_the_asset_layout() {
        let config = EmbedderConfig::minilm(Path::new("/assets"), Path::new("/lib/ort.so"));
        assert_eq!(config.model_path, Path::new("/assets/all-minilm-l6-v2/model.onnx"));
        assert_eq!(config.tokenizer_path, Path::new("/assets/all-minilm-l6-v2/tokenizer.json"));
        assert_eq!(config.dimensions, 384);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rejects_unusable_limits() {
        let mut config = EmbedderConfig::minilm(Path::new("/a"), Path::new("/b"));
        config.max_batch_size = 0;
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
        config.max_batch_size = 1;
        config.batch_token_budget = 10;
        assert!(matches!(config.validate(), Err(Error::InvalidConfig(_))));
    }
}
