//! `/api/v1/models`: what models exist, loading and unloading one (in the background, with
//! status, downloading GGUF files from the Hugging Face hub first when they are not cached),
//! and the generation settings in force.

use axum::extract::State;
use axum::http::StatusCode;
use ragd_core::{ErrorKind, GenerationSettings};
use ragd_hub::{DEFAULT_REVISION, HubFile};
use ragd_llm_backends::import::Quantization;
use ragd_llm_backends::manager::{BackendKind, LoadRequest, ModelStatus};
use ragd_llm_backends::registry::{ModelEntry, ModelFormat, ModelSource};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// A model found on disk.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableModel {
    /// The id to pass to `POST /load`.
    pub id: String,
    /// `local` (models folder), `hf_cache` (Hugging Face cache) or `bundled`.
    pub source: String,
    /// `gguf` or `hf_folder`.
    pub format: String,
    /// The file or folder.
    pub path: String,
    /// Size on disk.
    pub size_bytes: u64,
    /// Hugging Face snapshot revision, for cached models.
    pub revision: Option<String>,
    /// Why the local backend cannot load it (a Hugging Face folder ragd cannot import);
    /// absent when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupported: Option<String>,
}

impl From<ModelEntry> for AvailableModel {
    fn from(e: ModelEntry) -> Self {
        Self {
            id: e.id,
            source: match e.source {
                ModelSource::Local => "local",
                ModelSource::HfCache => "hf_cache",
                ModelSource::Bundled => "bundled",
            }
            .to_owned(),
            format: match e.format {
                ModelFormat::Gguf => "gguf",
                ModelFormat::HfFolder => "hf_folder",
            }
            .to_owned(),
            path: e.path.display().to_string(),
            size_bytes: e.size_bytes,
            revision: e.revision,
            unsupported: e.unsupported,
        }
    }
}

/// `GET /api/v1/models/available` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableModels {
    /// Models found in the models folder, the Hugging Face cache and the bundled assets.
    pub models: Vec<AvailableModel>,
}

/// Lists local, cached and bundled models.
#[utoipa::path(
    get,
    path = "/available",
    tag = "models",
    responses((status = 200, description = "Models on disk", body = AvailableModels))
)]
pub async fn available(
    State(state): State<AppState>,
) -> Result<ApiJson<AvailableModels>, ApiError> {
    let models = state.engine.models().clone();
    let entries = tokio::task::spawn_blocking(move || models.available())
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, err.to_string()))?;
    Ok(ApiJson(AvailableModels { models: entries.into_iter().map(Into::into).collect() }))
}

/// `POST /api/v1/models/load` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBody {
    /// `local` (GGUF in-process), `openai` (OpenAI-compatible server), `ollama`, or a preset
    /// of an OpenAI-compatible server with its usual address: `vllm` and `instructlab`
    /// (`http://127.0.0.1:8000/v1`), `llamacpp` (`:8080/v1`), `lmstudio` (`:1234/v1`).
    /// Default: `models.default_backend`.
    #[schema(value_type = Option<String>, example = "local")]
    pub backend: Option<BackendKind>,
    /// Local: an id from `/available`, a GGUF path, a Hugging Face model folder (imported
    /// into GGUF once, see `quantization`), or a hub file `org/name/file.gguf` (downloaded
    /// into the Hugging Face cache when missing). Remote: the server's model name (default
    /// `models.default_model`; OpenAI-compatible servers: else the first model they list).
    /// Local loads give this or `hub`.
    #[schema(example = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf")]
    pub model: Option<String>,
    /// Local: a GGUF file of a Hugging Face hub repo, downloaded when missing (status
    /// `downloading` with `percent`). Give this or `model`.
    pub hub: Option<HubBody>,
    /// Remote: the server's base URL (default: `models.base_url`, else the preset's, else
    /// `models.openai_url` / `models.ollama_url`).
    pub base_url: Option<String>,
    /// OpenAI-compatible: the API key (default: `models.api_key`, from `RAGD_MODELS__API_KEY`
    /// or `OPENAI_API_KEY`). Never shown in the status.
    pub api_key: Option<String>,
    /// `cpu` (default), `cuda` (local models: offload all layers) or `auto` (`cuda` when
    /// this build has the CUDA backend).
    pub device: Option<String>,
    /// Hugging Face folders: `none` (F16, default), `q8_0` (8-bit) or `q4_k_m` (4-bit),
    /// made by llama.cpp's quantizer at import (status `converting`, then `quantizing`).
    #[schema(value_type = Option<String>, example = "q4_k_m")]
    pub quantization: Option<Quantization>,
    /// The context window in tokens (default: the model's).
    pub context_length: Option<u32>,
    /// Generation settings to put in force with this model, complete or partial (fields
    /// left out keep their value). They take effect only when the load is accepted.
    pub settings: Option<SettingsPatch>,
}

/// A file of a Hugging Face hub repo.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HubBody {
    /// The repo id, `org/name`.
    #[schema(example = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")]
    pub repo: String,
    /// The GGUF file's path in the repo.
    #[schema(example = "smollm2-135m-instruct-q8_0.gguf")]
    pub file: String,
    /// A branch, tag or commit hash (default `main`).
    pub revision: Option<String>,
}

impl TryFrom<HubBody> for HubFile {
    type Error = ApiError;

    fn try_from(body: HubBody) -> Result<Self, ApiError> {
        let revision = body.revision.unwrap_or_else(|| DEFAULT_REVISION.to_owned());
        Self::at_revision(body.repo, body.file, revision)
            .map_err(|err| ApiError::from(ragd_core::Error::from(err)))
    }
}

/// `GET /api/v1/models/status` body, also the answer of load and unload.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// `not_loaded`, `downloading`, `converting`, `quantizing`, `loading`, `loaded`,
    /// `failed` or `unloading`, with `percent` (downloading, converting, quantizing),
    /// `downloaded_bytes` and `total_bytes` (downloading) or `reason` (failed) beside it.
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub status: ModelStatus,
    /// The generation settings in force.
    pub settings: SettingsBody,
}

/// Starts loading a model in the background; poll `GET /status`.
#[utoipa::path(
    post,
    path = "/load",
    tag = "models",
    request_body = LoadBody,
    responses(
        (status = 202, description = "Loading started", body = StatusBody),
        (status = 400, description = "Bad request or settings", body = ErrorBody),
        (status = 409, description = "A load or unload is running", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn load(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(body): ApiJson<LoadBody>,
) -> Result<(StatusCode, ApiJson<StatusBody>), ApiError> {
    scope.resolve(&state.engine).await?.require_unlimited("load models")?;
    let gpu_layers = LoadRequest::gpu_layers_for(body.device.as_deref())?;
    let backend = match body.backend {
        Some(backend) => backend,
        None => BackendKind::parse(&state.config.models.default_backend)?,
    };
    let hub = body.hub.map(HubFile::try_from).transpose()?;
    let model = match (body.model, &hub) {
        (Some(model), None) => model,
        (None, Some(_)) => String::new(),
        // Remote loads fall back to the configured model, or discover one.
        (None, None) if backend != BackendKind::Local => String::new(),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(ErrorKind::InvalidInput, "give `model` or `hub`, not both"));
        }
        (None, None) => {
            return Err(ApiError::new(ErrorKind::InvalidInput, "`model` (or `hub`) is required"));
        }
    };
    let request = LoadRequest {
        backend,
        model,
        hub,
        base_url: body.base_url,
        api_key: body.api_key,
        context_length: body.context_length,
        gpu_layers,
        quantization: body.quantization.unwrap_or_default(),
        settings: body.settings.map(Into::into),
    };
    let status = state.engine.models().load(request)?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(StatusBody { settings: state.engine.models().settings().into(), status }),
    ))
}

/// The load status and the model concerned.
#[utoipa::path(
    get,
    path = "/status",
    tag = "models",
    responses((status = 200, description = "Load status", body = StatusBody))
)]
pub async fn status(State(state): State<AppState>) -> ApiJson<StatusBody> {
    ApiJson(StatusBody {
        status: state.engine.models().status(),
        settings: state.engine.models().settings().into(),
    })
}

/// Releases the loaded model.
#[utoipa::path(
    post,
    path = "/unload",
    tag = "models",
    responses(
        (status = 200, description = "Unloaded", body = StatusBody),
        (status = 409, description = "A load is running", body = ErrorBody)
    )
)]
pub async fn unload(
    State(state): State<AppState>,
    scope: KeyScope,
) -> Result<ApiJson<StatusBody>, ApiError> {
    scope.resolve(&state.engine).await?.require_unlimited("unload the chat model")?;
    Ok(ApiJson(StatusBody {
        status: state.engine.models().unload()?,
        settings: state.engine.models().settings().into(),
    }))
}

/// The generation settings in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsBody {
    /// Softmax temperature, 0 (greedy) to 2.
    pub temperature: f32,
    /// Nucleus sampling mass, (0, 1].
    pub top_p: f32,
    /// Keep the k most likely tokens (0: off), at most 1000.
    pub top_k: u32,
    /// Penalty for repeated tokens, 0.5 to 2 (1: off).
    pub repetition_penalty: f32,
    /// Most tokens to generate, 1 to 32768.
    pub max_new_tokens: u32,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Up to 8 stop sequences.
    pub stop: Vec<String>,
}

impl From<GenerationSettings> for SettingsBody {
    fn from(s: GenerationSettings) -> Self {
        Self {
            temperature: s.temperature,
            top_p: s.top_p,
            top_k: s.top_k,
            repetition_penalty: s.repetition_penalty,
            max_new_tokens: s.max_new_tokens,
            seed: s.seed,
            stop: s.stop,
        }
    }
}

/// The generation settings in force.
#[utoipa::path(
    get,
    path = "/config",
    tag = "models",
    responses((status = 200, description = "Settings in force", body = SettingsBody))
)]
pub async fn get_config(State(state): State<AppState>) -> ApiJson<SettingsBody> {
    ApiJson(state.engine.models().settings().into())
}

/// Partial settings: fields left out keep their current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Softmax temperature, 0 (greedy) to 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, (0, 1].
    pub top_p: Option<f32>,
    /// Keep the k most likely tokens (0: off), at most 1000.
    pub top_k: Option<u32>,
    /// Penalty for repeated tokens, 0.5 to 2.
    pub repetition_penalty: Option<f32>,
    /// Most tokens to generate, 1 to 32768.
    pub max_new_tokens: Option<u32>,
    /// Seed; `null` clears it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub seed: Option<Option<u64>>,
    /// Stop sequences (replaces the list).
    pub stop: Option<Vec<String>>,
}

impl From<SettingsPatch> for ragd_core::SettingsPatch {
    fn from(p: SettingsPatch) -> Self {
        Self {
            temperature: p.temperature,
            top_p: p.top_p,
            top_k: p.top_k,
            repetition_penalty: p.repetition_penalty,
            max_new_tokens: p.max_new_tokens,
            seed: p.seed,
            stop: p.stop,
        }
    }
}

/// Distinguishes a missing field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<u64>>, D::Error> {
        Option::<u64>::deserialize(d).map(Some)
    }
}

/// Changes generation settings; answers the settings now in force as the confirmation.
/// Unknown fields and values out of range are refused (400) and nothing changes.
#[utoipa::path(
    put,
    path = "/config",
    tag = "models",
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The settings now in force", body = SettingsBody),
        (status = 400, description = "Unknown field or value out of range", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn put_config(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(patch): ApiJson<SettingsPatch>,
) -> Result<ApiJson<SettingsBody>, ApiError> {
    scope.resolve(&state.engine).await?.require_unlimited("change the generation settings")?;
    Ok(ApiJson(state.engine.models().update_settings(&patch.into())?.into()))
}
