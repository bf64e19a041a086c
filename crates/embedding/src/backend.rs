//! The synchronous inference backend: the ONNX Runtime session and the tokenizer.
//!
//! A [`Backend`] lives on the embedder's dedicated thread and is never touched by async
//! code. Loading it also sets up the process-wide ONNX Runtime environment and picks the
//! execution provider.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{AutoDevicePolicy, SessionBuilder};
use ort::value::{Tensor, ValueType};
use ragd_core::Embedding;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::batch::{BatchLimits, mean_pool_normalized, plan_batches};
use crate::config::{Device, EmbedderConfig};
use crate::error::{Error, Result};

/// The execution provider name reported for the CPU.
pub(crate) const PROVIDER_CPU: &str = "cpu";
/// The execution provider name reported for CUDA.
#[cfg(feature = "cuda")]
pub(crate) const PROVIDER_CUDA: &str = "cuda";

/// The model inputs MiniLM-style BERT exports take.
const INPUT_IDS: &str = "input_ids";
const ATTENTION_MASK: &str = "attention_mask";
const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// The output that is pooled.
const LAST_HIDDEN_STATE: &str = "last_hidden_state";

/// ONNX Runtime allows one environment per process, so every embedder shares this one.
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// Returns the process-wide environment, loading ONNX Runtime from `dylib` the first time.
fn environment(dylib: &Path) -> Result<Environment> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = slot.as_ref() {
        return Ok(environment.clone());
    }
    require_file("ONNX Runtime library", dylib)?;
    let builder = ort::init_from(dylib)
        .map_err(|source| Error::Runtime { path: dylib.to_path_buf(), source })?;
    let environment = builder
        .with_name("ragd")
        .with_telemetry(false)
        .build()
        .map_err(|source| Error::Model { path: dylib.to_path_buf(), source })?;
    *slot = Some(environment.clone());
    Ok(environment)
}

/// Fails with [`Error::MissingFile`] unless `path` is a file.
fn require_file(what: &'static str, path: &Path) -> Result<()> {
    if path.is_file() { Ok(()) } else { Err(Error::MissingFile { what, path: path.to_path_buf() }) }
}

/// Drops the builder carried by a session-builder error, keeping code and message.
fn plain<R>(err: ort::Error<R>) -> ort::Error {
    ort::Error::new_with_code(err.code(), err.message())
}

/// Loads the tokenizer with truncation off and no padding, as `count_tokens` needs it.
pub(crate) fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    require_file("tokenizer", path)?;
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|source| Error::Tokenizer { path: path.to_path_buf(), source })?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|source| Error::Tokenizer { path: path.to_path_buf(), source })?;
    Ok(tokenizer)
}

/// The loaded session and tokenizer, plus what inference needs to know about them.
pub(crate) struct Backend {
    session: Session,
    /// Truncates at `max_tokens`; batches are padded by [`Backend::run_batch`] itself.
    tokenizer: Tokenizer,
    limits: BatchLimits,
    dimensions: usize,
    /// Whether the model takes `token_type_ids` (some exports drop it).
    takes_token_type_ids: bool,
    /// The output with one vector per token.
    hidden_output: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("limits", &self.limits)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

/// A loaded backend and the execution provider it runs on.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) backend: Backend,
    pub(crate) provider: &'static str,
}

impl Backend {
    /// Loads ONNX Runtime, the model and the tokenizer, and checks them against `config`.
    pub(crate) fn load(config: &EmbedderConfig, tokenizer: &Tokenizer) -> Result<Loaded> {
        require_file("embedding model", &config.model_path)?;
        let environment = environment(&config.ort_dylib_path)?;
        let (session, provider) = build_session(&environment, config)?;
        let interface = check_model(&session, config)?;

        let mut tokenizer = tokenizer.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|source| Error::Tokenizer { path: config.tokenizer_path.clone(), source })?;

        let backend = Self {
            session,
            tokenizer,
            limits: BatchLimits {
                max_batch_size: config.max_batch_size,
                token_budget: config.batch_token_budget,
            },
            dimensions: config.dimensions,
            takes_token_type_ids: interface.takes_token_type_ids,
            hidden_output: interface.hidden_output,
        };
        Ok(Loaded { backend, provider })
    }

    /// Embeds `texts`, batching by length, and returns the vectors in input order.
    pub(crate) fn embed(&mut self, texts: &[&str]) -> Result<Vec<Embedding>> {
        let encodings = texts
            .iter()
            .map(|&text| self.tokenizer.encode(text, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Tokenize)?;
        let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();

        let mut vectors: Vec<Embedding> = vec![Vec::new(); texts.len()];
        for batch in plan_batches(&lengths, self.limits) {
            let members: Vec<&Encoding> = batch.iter().map(|&index| &encodings[index]).collect();
            let pooled = self.run_batch(&members)?;
            for (index, vector) in batch.into_iter().zip(pooled) {
                vectors[index] = vector;
            }
        }
        Ok(vectors)
    }

    /// Runs one batch, padded to its longest member, and pools the hidden states.
    fn run_batch(&mut self, encodings: &[&Encoding]) -> Result<Vec<Embedding>> {
        let rows = encodings.len();
        let sequence = encodings.iter().map(|encoding| encoding.len()).max().unwrap_or(0);
        let cells = rows * sequence;
        // Padding positions carry id 0 and mask 0; the mask hides them from attention and
        // pooling, so their id does not matter.
        let mut ids = vec![0_i64; cells];
        let mut mask = vec![0_i64; cells];
        let mut type_ids = vec![0_i64; cells];
        for (row, encoding) in encodings.iter().enumerate() {
            let start = row * sequence;
            let fill = |target: &mut [i64], source: &[u32]| {
                for (slot, &value) in target.iter_mut().zip(source) {
                    *slot = i64::from(value);
                }
            };
            fill(&mut ids[start..start + sequence], encoding.get_ids());
            fill(&mut mask[start..start + sequence], encoding.get_attention_mask());
            fill(&mut type_ids[start..start + sequence], encoding.get_type_ids());
        }

        let shape = [rows, sequence];
        let mut inputs = ort::inputs![
            INPUT_IDS => Tensor::from_array((shape, ids))?,
            ATTENTION_MASK => Tensor::from_array((shape, mask.clone()))?,
        ];
        if self.takes_token_type_ids {
            inputs.push((TOKEN_TYPE_IDS.into(), Tensor::from_array((shape, type_ids))?.into()));
        }
        let outputs = self.session.run(inputs)?;
        let name = self.hidden_output.as_str();
        let hidden =
            outputs.get(name).ok_or_else(|| Error::Output(format!("no `{name}` output")))?;
        let (hidden_shape, hidden) = hidden.try_extract_tensor::<f32>()?;
        let expected = [rows, sequence, self.dimensions];
        let matches = hidden_shape.len() == 3
            && hidden_shape
                .iter()
                .zip(expected)
                .all(|(&got, want)| usize::try_from(got) == Ok(want));
        if !matches {
            return Err(Error::Output(format!(
                "`{name}` has shape {hidden_shape}, expected {expected:?}"
            )));
        }
        Ok(mean_pool_normalized(hidden, &mask, sequence, self.dimensions))
    }
}

/// A session builder with the CPU-side options of `config` applied.
fn session_builder(environment: &Environment, config: &EmbedderConfig) -> Result<SessionBuilder> {
    let model = || config.model_path.clone();
    let mut builder =
        Session::builder(environment).map_err(|source| Error::Model { path: model(), source })?;
    // ort asks ONNX Runtime for automatic device selection with a "max efficiency" policy;
    // ONNX Runtime's own default (and Python's) is no policy: explicit providers only.
    builder = builder
        .with_auto_device(AutoDevicePolicy::Default)
        .map_err(|err| Error::Model { path: model(), source: plain(err) })?
        // The session runs its graph sequentially (ONNX Runtime's default execution mode),
        // so an inter-op pool would only hold idle threads; one, as the Python peers set it.
        .with_inter_threads(1)
        .map_err(|err| Error::Model { path: model(), source: plain(err) })?;
    if let Some(threads) = config.intra_op_threads {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|err| Error::Model { path: model(), source: plain(err) })?;
    }
    Ok(builder)
}

/// Builds the session on the configured device, falling back to the CPU when CUDA is not
/// available; returns it with the name of the provider that runs it.
fn build_session(
    environment: &Environment,
    config: &EmbedderConfig,
) -> Result<(Session, &'static str)> {
    match config.device {
        Device::Cpu => {}
        Device::Cuda(ordinal) => match cuda_session(environment, config, ordinal) {
            Ok(session) => {
                tracing::info!(device = ordinal, "embedder runs on the CUDA execution provider");
                return Ok(session);
            }
            Err(reason) => {
                tracing::warn!(
                    device = ordinal,
                    %reason,
                    "CUDA was requested for the embedder but is not available; running on the CPU"
                );
            }
        },
    }
    let session = commit(session_builder(environment, config)?, &config.model_path)?;
    tracing::info!(model = %config.model_path.display(), "embedder runs on the CPU execution provider");
    Ok((session, PROVIDER_CPU))
}

/// Tries to build the session on the CUDA execution provider.
#[cfg(feature = "cuda")]
fn cuda_session(
    environment: &Environment,
    config: &EmbedderConfig,
    ordinal: u32,
) -> std::result::Result<(Session, &'static str), String> {
    let device_id =
        i32::try_from(ordinal).map_err(|_| format!("device {ordinal} is out of range"))?;
    let provider = ort::ep::CUDA::default().with_device_id(device_id).build().error_on_failure();
    let builder = session_builder(environment, config)
        .map_err(|err| err.to_string())?
        .with_execution_providers([provider])
        .map_err(|err| err.to_string())?;
    let session = commit(builder, &config.model_path).map_err(|err| err.to_string())?;
    Ok((session, PROVIDER_CUDA))
}

/// Without the `cuda` feature CUDA is never available.
#[cfg(not(feature = "cuda"))]
fn cuda_session(
    _environment: &Environment,
    _config: &EmbedderConfig,
    _ordinal: u32,
) -> std::result::Result<(Session, &'static str), String> {
    Err("ragd-embedding was built without the `cuda` feature".to_owned())
}

/// Loads the model file into a session.
fn commit(mut builder: SessionBuilder, model: &Path) -> Result<Session> {
    builder
        .commit_from_file(model)
        .map_err(|source| Error::Model { path: model.to_path_buf(), source })
}

/// What [`check_model`] learned about a model's interface.
struct ModelInterface {
    /// Whether it takes `token_type_ids`.
    takes_token_type_ids: bool,
    /// The output holding one vector per token, to be mean-pooled.
    hidden_output: String,
}

/// Checks the model's inputs and output size against `config` and finds the token-level
/// output: `last_hidden_state` when there is one (the usual export), else the only 3-D
/// output whose last dimension is the configured one (exports that also pool inside the
/// graph name their outputs after graph nodes, such as `onnx::Shape_422`).
fn check_model(session: &Session, config: &EmbedderConfig) -> Result<ModelInterface> {
    let mismatch =
        |message: String| Error::ModelMismatch { path: config.model_path.clone(), message };
    let has_input = |name: &str| session.inputs().iter().any(|input| input.name() == name);
    for required in [INPUT_IDS, ATTENTION_MASK] {
        if !has_input(required) {
            return Err(mismatch(format!("the model has no `{required}` input")));
        }
    }
    let dimensions_of = |output: &ort::value::Outlet| {
        if let ValueType::Tensor { shape, .. } = output.dtype() {
            Some(shape.to_vec())
        } else {
            None
        }
    };
    let output = if let Some(named) =
        session.outputs().iter().find(|output| output.name() == LAST_HIDDEN_STATE)
    {
        named
    } else {
        let token_level: Vec<_> = session
            .outputs()
            .iter()
            .filter(|output| {
                dimensions_of(output).is_some_and(|shape| {
                    shape.len() == 3
                        && shape.last().and_then(|&d| usize::try_from(d).ok())
                            == Some(config.dimensions)
                })
            })
            .collect();
        match token_level.as_slice() {
            [only] => *only,
            [] => {
                return Err(mismatch(format!(
                    "the model has no `{LAST_HIDDEN_STATE}` output and no other [batch, tokens, {}] output",
                    config.dimensions
                )));
            }
            [..] => {
                return Err(mismatch(format!(
                    "the model has no `{LAST_HIDDEN_STATE}` output and several [batch, tokens, {}] outputs",
                    config.dimensions
                )));
            }
        }
    };
    if let Some(shape) = dimensions_of(output) {
        // A dynamic last dimension (-1) is checked on every batch instead.
        if let Some(&last) = shape.last()
            && last >= 0
            && usize::try_from(last) != Ok(config.dimensions)
        {
            return Err(mismatch(format!(
                "the model outputs {last} dimensions but the configuration says {}",
                config.dimensions
            )));
        }
    }
    Ok(ModelInterface {
        takes_token_type_ids: has_input(TOKEN_TYPE_IDS),
        hidden_output: output.name().to_owned(),
    })
}
