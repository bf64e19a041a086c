//! Importing Hugging Face models into GGUF for the local backend, as Ollama's `convert`
//! does: one inference engine (llama.cpp) for every model, whatever form it came in.
//!
//! [`import_folder`] reads a model folder (`config.json`, `tokenizer.json` and/or
//! `tokenizer.model`, `tokenizer_config.json`, one `model.safetensors` or shards listed by
//! `model.safetensors.index.json`) and writes one GGUF file:
//!
//! 1. `converting`: the architecture's hyperparameters and the tokenizer become GGUF
//!    metadata ([`arch`], [`tokenizer`]); each tensor is read from its shard, renamed,
//!    permuted where llama.cpp's layout differs, and written as F16 (norms and biases as
//!    F32), one tensor in memory at a time ([`safetensors`], [`gguf`]);
//! 2. `quantizing` (for `q8_0` and `q4_k_m`): llama.cpp's own quantizer turns that file into
//!    the smaller one and the F16 file is removed.
//!
//! The output is written beside its destination and renamed when complete, so a file at
//! the destination is always a whole import.

mod arch;
mod gguf;
#[cfg(feature = "llama")]
mod quantize;
mod safetensors;
mod tokenizer;

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use half::f16;

use crate::error::{Error, Result};
use arch::{Arch, Config, Params, Transform};
use gguf::{GgufWriter, TensorInfo, TensorType, Value};
use safetensors::StoredTensor;
use tokenizer::Vocab;

/// How an imported model's weights are stored.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Quantization {
    /// 16-bit floats, as the model was published (BF16 and F32 weights become F16).
    #[default]
    #[serde(rename = "none")]
    None,
    /// 8-bit (llama.cpp's Q8_0): half the size, nearly the same outputs.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// 4-bit (llama.cpp's Q4_K_M): about a third of the size.
    #[serde(rename = "q4_k_m")]
    Q4KM,
}

impl Quantization {
    /// Every value, in order of size.
    pub const ALL: [Self; 3] = [Self::None, Self::Q8_0, Self::Q4KM];

    /// The name used in requests and file names (`none`, `q8_0`, `q4_k_m`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Q8_0 => "q8_0",
            Self::Q4KM => "q4_k_m",
        }
    }

    /// The value named `name`.
    ///
    /// # Errors
    /// `InvalidInput` naming the accepted values.
    pub fn parse(name: &str) -> Result<Self, ragd_core::Error> {
        Self::ALL.into_iter().find(|q| q.as_str() == name).ok_or_else(|| {
            ragd_core::Error::invalid_input(format!(
                "quantization {name:?} is not one of none, q8_0, q4_k_m"
            ))
        })
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage an import is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStage {
    /// Tensors are being converted to GGUF.
    Converting,
    /// llama.cpp is quantizing the converted file.
    Quantizing,
}

/// How to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The quantization of the result.
    pub quantization: Quantization,
    /// The model's name in the GGUF metadata (`general.name`).
    pub name: String,
    /// Threads for the quantizer.
    pub threads: usize,
}

/// What an import produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The GGUF file.
    pub path: PathBuf,
    /// llama.cpp's architecture name (`llama`, `qwen2`, ...).
    pub architecture: &'static str,
    /// The tensors written.
    pub tensors: usize,
    /// The size of the GGUF file.
    pub size_bytes: u64,
    /// What could not be carried over exactly.
    pub warnings: Vec<String>,
}

/// Whether `dir` looks like a Hugging Face model folder ragd can import (it has
/// `config.json`); the import itself says what else is missing.
#[must_use]
pub fn is_model_folder(dir: &Path) -> bool {
    dir.join("config.json").is_file()
}

/// Why the model folder `dir` cannot be imported, judged from `config.json` and the file
/// names alone (cheap enough for listings): `None` when it looks importable; the import
/// itself checks the rest.
#[must_use]
pub fn unsupported_reason(dir: &Path) -> Option<String> {
    let config: Config = match std::fs::read(dir.join("config.json")) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(config) => config,
            Err(err) => return Some(format!("config.json is not valid: {err}")),
        },
        Err(err) => return Some(format!("no readable config.json: {err}")),
    };
    if let Err(reason) = Arch::of(&config) {
        return Some(reason);
    }
    match read_tensors_list(dir) {
        Ok(_) => None,
        Err(ReadError::Invalid(reason) | ReadError::Unsupported(reason)) => Some(reason),
    }
}

/// Imports the model folder `dir` into the GGUF file `output`, reporting each stage's
/// progress (0 to 100) to `progress`.
///
/// # Errors
/// [`Error::InvalidModel`] for a folder that is not a whole model (no `config.json`, a
/// shard missing or damaged, a tokenizer that does not match the embedding);
/// [`Error::UnsupportedModel`] for an architecture, tokenizer or weight type the importer
/// does not convert; [`Error::WriteModel`] and [`Error::Quantize`] when the output cannot be
/// produced.
pub fn import_folder(
    dir: &Path,
    output: &Path,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportStage, u8) + Sync),
) -> Result<ImportReport> {
    let invalid = |reason: String| Error::InvalidModel { dir: dir.to_path_buf(), reason };
    let unsupported = |reason: String| Error::UnsupportedModel { dir: dir.to_path_buf(), reason };
    let config_bytes = std::fs::read(dir.join("config.json")).map_err(|e| {
        invalid(format!("no readable config.json ({e}); a Hugging Face model folder has one"))
    })?;
    let config: Config = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(format!("config.json is not valid: {e}")))?;
    let arch = Arch::of(&config).map_err(unsupported)?;
    let params = Params::of(&config).map_err(invalid)?;
    let tensors = read_tensors(dir).map_err(|e| match e {
        ReadError::Invalid(reason) => invalid(reason),
        ReadError::Unsupported(reason) => unsupported(reason),
    })?;

    // The GGUF table: every tensor renamed, in llama.cpp's usual order.
    let mut plan: Vec<(TensorInfo, &StoredTensor, Transform)> = Vec::new();
    for (name, stored) in &tensors {
        let Some((gguf_name, transform)) = arch.tensor(name, &params).map_err(unsupported)? else {
            continue;
        };
        let ty = if stored.shape.len() >= 2 { TensorType::F16 } else { TensorType::F32 };
        let dims = stored.shape.iter().rev().copied().collect();
        if let Transform::Permute { heads } = transform {
            let rows = stored.shape.first().copied().unwrap_or(0);
            if stored.shape.len() != 2 || rows % (heads * 2) != 0 {
                return Err(invalid(format!(
                    "{name} has shape {:?}, which {heads} heads cannot divide",
                    stored.shape
                )));
            }
        }
        plan.push((TensorInfo { name: gguf_name, dims, ty }, stored, transform));
    }
    plan.sort_by_key(|(info, _, _)| order_key(&info.name));
    check_quantization(options.quantization, &plan).map_err(unsupported)?;
    let rows = plan
        .iter()
        .find(|(info, _, _)| info.name == "token_embd.weight")
        .and_then(|(_, stored, _)| stored.shape.first().copied())
        .ok_or_else(|| invalid("the weights have no model.embed_tokens.weight".to_owned()))?;
    let vocab = Vocab::read(dir, &config, rows).map_err(unsupported)?;

    let mut metadata = vec![
        ("general.architecture".to_owned(), Value::Str(arch.gguf_name().to_owned())),
        ("general.name".to_owned(), Value::Str(options.name.clone())),
        ("general.file_type".to_owned(), Value::U32(1)),
    ];
    metadata.extend(arch.metadata(&config, &params).map_err(unsupported)?);
    metadata.extend(vocab.metadata());

    // The process id keeps two processes importing the same model (a server and `ragd
    // models import`) from writing one file.
    let pid = std::process::id();
    let converted = if options.quantization == Quantization::None {
        partial_path(output, &format!("{pid}.partial"))
    } else {
        partial_path(output, &format!("{pid}.f16.partial"))
    };
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::WriteModel { path: path.clone(), source }
    };
    let total: u64 = plan.iter().map(|(_, stored, _)| stored.len).sum::<u64>().max(1);
    let result = (|| {
        let file = std::fs::File::create(&converted).map_err(write_err(&converted))?;
        let infos = plan.iter().map(|(info, _, _)| info.clone()).collect();
        let mut writer = GgufWriter::new(BufWriter::with_capacity(1 << 20, file), &metadata, infos)
            .map_err(write_err(&converted))?;
        let mut done = 0u64;
        progress(ImportStage::Converting, 0);
        for (info, stored, transform) in &plan {
            let values = stored.read_f32().map_err(invalid)?;
            let values = apply(values, &stored.shape, *transform);
            writer.write_tensor(&encode(&values, info.ty)).map_err(write_err(&converted))?;
            done += stored.len;
            progress(ImportStage::Converting, percent(done, total));
        }
        let file = writer.finish().map_err(write_err(&converted))?;
        file.into_inner()
            .map_err(|e| Error::WriteModel { path: converted.clone(), source: e.into_error() })?
            .sync_all()
            .map_err(write_err(&converted))?;
        if options.quantization != Quantization::None {
            quantize_file(&converted, output, options, progress)?;
            std::fs::remove_file(&converted).map_err(write_err(&converted))?;
        } else {
            std::fs::rename(&converted, output).map_err(write_err(output))?;
        }
        Ok(())
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_file(&converted);
        return Err(err);
    }
    let size_bytes = std::fs::metadata(output).map_err(write_err(output))?.len();
    Ok(ImportReport {
        path: output.to_path_buf(),
        architecture: arch.gguf_name(),
        tensors: plan.len(),
        size_bytes,
        warnings: vocab.warnings,
    })
}

/// Converts the GGUF file `input` to `quantization` with llama.cpp's quantizer (`None`:
/// F16), as `llama-quantize` does, writing `output` through a partial file.
///
/// # Errors
/// [`Error::Quantize`] when llama.cpp fails (an input that is not GGUF), [`Error::WriteModel`]
/// when the output cannot be moved into place.
#[cfg(feature = "llama")]
pub fn quantize_gguf(
    input: &Path,
    output: &Path,
    quantization: Quantization,
    threads: usize,
) -> Result<()> {
    let options = ImportOptions { quantization, name: String::new(), threads };
    quantize_file(input, output, &options, &|_, _| {})
}

/// Quantizes `converted` into `output` (through a partial file), reporting progress by
/// the output's growth against its expected size.
#[cfg(feature = "llama")]
fn quantize_file(
    converted: &Path,
    output: &Path,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportStage, u8) + Sync),
) -> Result<()> {
    let partial = partial_path(output, &format!("{}.partial", std::process::id()));
    let input_len = std::fs::metadata(converted).map_or(0, |m| m.len());
    // Bits per weight against F16's 16.
    let expected = match options.quantization {
        Quantization::None | Quantization::Q8_0 => input_len * 17 / 32,
        Quantization::Q4KM => input_len * 5 / 16,
    }
    .max(1);
    progress(ImportStage::Quantizing, 0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(250));
                let len = std::fs::metadata(&partial).map_or(0, |m| m.len());
                progress(ImportStage::Quantizing, percent(len, expected).min(99));
            }
        });
        let result = quantize::quantize(converted, &partial, options.quantization, options.threads);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    });
    if let Err(reason) = result {
        tracing::warn!(%reason, "quantization failed");
        let _ = std::fs::remove_file(&partial);
        return Err(Error::Quantize {
            path: converted.to_path_buf(),
            quantization: options.quantization.as_str(),
        });
    }
    progress(ImportStage::Quantizing, 100);
    std::fs::rename(&partial, output)
        .map_err(|source| Error::WriteModel { path: output.to_path_buf(), source })
}

#[cfg(not(feature = "llama"))]
fn quantize_file(
    converted: &Path,
    _output: &Path,
    options: &ImportOptions,
    _progress: &(dyn Fn(ImportStage, u8) + Sync),
) -> Result<()> {
    Err(Error::Quantize {
        path: converted.to_path_buf(),
        quantization: options.quantization.as_str(),
    })
}

impl Quantization {
    /// The values one block of the type holds: a weight row must be a multiple of it to be
    /// stored in the type (llama.cpp falls back to another type for rows that are not).
    const fn block(self) -> u64 {
        match self {
            Self::None => 1,
            Self::Q8_0 => 32,
            Self::Q4KM => 256,
        }
    }
}

/// Refuses a quantization none of the model's weight matrices can take: llama.cpp would
/// fall back to another type for every one of them, so the file would not be what was asked.
fn check_quantization(
    quantization: Quantization,
    plan: &[(TensorInfo, &StoredTensor, Transform)],
) -> std::result::Result<(), String> {
    let block = quantization.block();
    let matrices = || plan.iter().filter(|(info, _, _)| info.dims.len() >= 2);
    if block == 1 || matrices().any(|(info, _, _)| info.dims[0] % block == 0) {
        return Ok(());
    }
    let mut widths: Vec<u64> = matrices().map(|(info, _, _)| info.dims[0]).collect();
    widths.sort_unstable();
    widths.dedup();
    Err(format!(
        "quantization {quantization} stores rows in blocks of {block} values, and none of this \
         model's weight rows ({widths:?} values wide) is a multiple of {block}; import it with \
         a smaller block (q8_0) or none"
    ))
}

/// `output` with `.{suffix}` appended.
fn partial_path(output: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}.{suffix}", output.display()))
}

fn percent(done: u64, total: u64) -> u8 {
    u8::try_from((done.saturating_mul(100) / total.max(1)).min(100)).unwrap_or(100)
}

/// Sorts embeddings first, then blocks by number, then the output tensors.
fn order_key(name: &str) -> (u8, u64, String) {
    if name.starts_with("token_embd") {
        return (0, 0, name.to_owned());
    }
    if let Some(rest) = name.strip_prefix("blk.") {
        let layer = rest.split('.').next().and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
        return (1, layer, name.to_owned());
    }
    (2, 0, name.to_owned())
}

/// Why the shards could not be read.
enum ReadError {
    Invalid(String),
    Unsupported(String),
}

/// Every tensor of the folder's shards.
fn read_tensors(dir: &Path) -> std::result::Result<BTreeMap<String, StoredTensor>, ReadError> {
    let shards = read_tensors_list(dir)?;
    let mut tensors = BTreeMap::new();
    for shard in &shards {
        safetensors::read_header(shard, &mut tensors).map_err(|e| {
            if e.contains("ragd imports F32, F16 and BF16") {
                ReadError::Unsupported(e)
            } else {
                ReadError::Invalid(e)
            }
        })?;
    }
    Ok(tensors)
}

/// The folder's shards: those `model.safetensors.index.json` lists, else every
/// `*.safetensors` file.
fn read_tensors_list(dir: &Path) -> std::result::Result<Vec<PathBuf>, ReadError> {
    let index = dir.join("model.safetensors.index.json");
    let shards: Vec<PathBuf> = if index.is_file() {
        let text = std::fs::read(&index)
            .map_err(|e| ReadError::Invalid(format!("cannot read {}: {e}", index.display())))?;
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            ReadError::Invalid(format!("model.safetensors.index.json is not valid: {e}"))
        })?;
        let map =
            json.get("weight_map").and_then(serde_json::Value::as_object).ok_or_else(|| {
                ReadError::Invalid("model.safetensors.index.json has no weight_map".to_owned())
            })?;
        let mut names: Vec<&str> = map.values().filter_map(serde_json::Value::as_str).collect();
        names.sort_unstable();
        names.dedup();
        let mut shards = Vec::new();
        for name in names {
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(ReadError::Invalid(format!(
                    "the index names a shard outside the folder: {name}"
                )));
            }
            let shard = dir.join(name);
            if !shard.is_file() {
                return Err(ReadError::Invalid(format!(
                    "shard {name} listed in model.safetensors.index.json is missing"
                )));
            }
            shards.push(shard);
        }
        shards
    } else {
        let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| ReadError::Invalid(format!("cannot list the folder: {e}")))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "safetensors"))
            .collect();
        shards.sort();
        shards
    };
    if shards.is_empty() {
        let has_bin = std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            e.path().extension().is_some_and(|ext| ext == "bin" || ext == "pt" || ext == "pth")
        });
        return Err(if has_bin {
            ReadError::Unsupported(
                "the weights are PyTorch pickles (.bin); ragd imports .safetensors only, which \
                 cannot run code when read"
                    .to_owned(),
            )
        } else {
            ReadError::Invalid("the folder has no .safetensors weights".to_owned())
        });
    }
    Ok(shards)
}

/// Applies `transform` to a tensor of `shape`.
fn apply(mut values: Vec<f32>, shape: &[u64], transform: Transform) -> Vec<f32> {
    match transform {
        Transform::None => values,
        Transform::AddOne => {
            values.iter_mut().for_each(|v| *v += 1.0);
            values
        }
        Transform::Permute { heads } => {
            let rows = shape.first().copied().unwrap_or(0) as usize;
            let cols = shape.get(1).copied().unwrap_or(1) as usize;
            arch::permute(&values, rows, cols, heads as usize)
        }
    }
}

/// The little-endian bytes of `values` as `ty`.
fn encode(values: &[f32], ty: TensorType) -> Vec<u8> {
    match ty {
        TensorType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        TensorType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizations_parse_and_print() {
        for q in Quantization::ALL {
            assert_eq!(Quantization::parse(q.as_str()).unwrap(), q);
        }
        let err = Quantization::parse("q3_x").unwrap_err();
        assert!(err.message().contains("none, q8_0, q4_k_m"));
    }

    #[test]
    fn a_folder_without_config_or_weights_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let options =
            ImportOptions { quantization: Quantization::None, name: "x".into(), threads: 1 };
        let out = dir.path().join("out.gguf");
        let err = import_folder(dir.path(), &out, &options, &|_, _| {}).unwrap_err();
        assert!(err.to_string().contains("no readable config.json"), "{err}");

        std::fs::write(
            dir.path().join("config.json"),
            r#"{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":16,
                "num_hidden_layers":1,"num_attention_heads":2}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("pytorch_model.bin"), b"pickle").unwrap();
        let err = import_folder(dir.path(), &out, &options, &|_, _| {}).unwrap_err();
        assert!(matches!(err, Error::UnsupportedModel { .. }), "{err}");
        assert!(err.to_string().contains("PyTorch pickles"), "{err}");

        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"weight_map":{"model.embed_tokens.weight":"model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        let err = import_folder(dir.path(), &out, &options, &|_, _| {}).unwrap_err();
        assert!(err.to_string().contains("model-00001-of-00002.safetensors"), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(!out.exists());
    }

    #[test]
    fn an_unsupported_architecture_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"architectures":["MambaForCausalLM"]}"#)
            .unwrap();
        let options =
            ImportOptions { quantization: Quantization::None, name: "x".into(), threads: 1 };
        let err = import_folder(dir.path(), &dir.path().join("o.gguf"), &options, &|_, _| {})
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedModel { .. }));
        assert!(err.to_string().contains("MambaForCausalLM"), "{err}");
    }
}
