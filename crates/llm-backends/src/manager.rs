//! [`ModelManager`]: which model is loaded, its load status, and the generation settings
//! in force.
//!
//! Loading runs in the background and never blocks callers: [`ModelManager::load`] records
//! `loading` and returns; a task resolves the model (a registry id, a path, a Hugging Face
//! hub file, or a remote server's model), loads it (GGUF on a blocking thread) and records
//! `loaded` or `failed` with the reason. A load while another load or an unload is running
//! is a `Conflict`.
//!
//! A Hugging Face model folder (safetensors, from the models folder, the hub cache or a
//! path) is imported into GGUF first ([`crate::import`]), reporting `converting` and
//! `quantizing` with percentages; the file is kept in [`ManagerConfig::import_dir`], named
//! by the folder (repo and revision for the hub cache) and the quantization, so a second
//! load reuses it.
//!
//! A local hub file that is not in the Hugging Face cache is downloaded first (with
//! [`ragd_hub`], into the cache `huggingface-cli` writes), reporting `downloading` with the
//! percentage; with [`ManagerConfig::hub`] in offline mode, or without it, the load fails
//! with a message saying so.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use ragd_core::{Error, ErrorKind, GenerationSettings, LlmBackend, SettingsPatch};
use ragd_hub::{HubClient, HubConfig, HubFile, Progress};

use crate::import::{ImportOptions, ImportStage, Quantization};
#[cfg(feature = "llama")]
use crate::local::{LocalLlm, LocalLlmConfig};
use crate::registry::{ModelEntry, ModelFormat, ModelRegistry, ModelSource, RegistryConfig};
use crate::remote::HttpSettings;
use crate::remote::ollama::{OllamaBackend, OllamaConfig};
use crate::remote::openai::{OpenAiBackend, OpenAiConfig};

/// Which kind of backend serves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// A GGUF file run in-process by llama.cpp.
    Local,
    /// An OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, TGI).
    Openai,
    /// An Ollama server.
    Ollama,
    /// vLLM's OpenAI-compatible server (`vllm serve MODEL`, port 8000).
    Vllm,
    /// llama.cpp's `llama-server` (port 8080).
    Llamacpp,
    /// LM Studio's local server (port 1234).
    Lmstudio,
    /// InstructLab's `ilab model serve` (port 8000).
    Instructlab,
    /// A backend a program installed itself ([`ModelManager::install`]); it cannot be
    /// loaded by request.
    Custom,
}

impl BackendKind {
    /// Every kind a load can name, in the order the API documents them.
    pub const LOADABLE: [Self; 7] = [
        Self::Local,
        Self::Openai,
        Self::Ollama,
        Self::Vllm,
        Self::Llamacpp,
        Self::Lmstudio,
        Self::Instructlab,
    ];

    /// The name requests and the status use (`local`, `llamacpp`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Openai => "openai",
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
            Self::Llamacpp => "llamacpp",
            Self::Lmstudio => "lmstudio",
            Self::Instructlab => "instructlab",
            Self::Custom => "custom",
        }
    }

    /// The kind named `name` among [`Self::LOADABLE`].
    ///
    /// # Errors
    /// `InvalidInput` naming the accepted values.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Self::LOADABLE.into_iter().find(|kind| kind.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::LOADABLE.iter().map(|k| k.as_str()).collect();
            Error::invalid_input(format!("backend {name:?} is not one of {}", names.join(", ")))
        })
    }

    /// Whether the model is served over the OpenAI-compatible API (`openai` and the
    /// presets of servers that speak it).
    #[must_use]
    pub const fn is_openai_compatible(self) -> bool {
        matches!(
            self,
            Self::Openai | Self::Vllm | Self::Llamacpp | Self::Lmstudio | Self::Instructlab
        )
    }

    /// The base URL each server listens on when started with its defaults (the presets);
    /// `None` for the kinds whose default is configuration (`openai`, `ollama`) or that
    /// have none.
    #[must_use]
    pub const fn preset_base_url(self) -> Option<&'static str> {
        match self {
            Self::Vllm | Self::Instructlab => Some("http://127.0.0.1:8000/v1"),
            Self::Llamacpp => Some("http://127.0.0.1:8080/v1"),
            Self::Lmstudio => Some("http://127.0.0.1:1234/v1"),
            Self::Local | Self::Openai | Self::Ollama | Self::Custom => None,
        }
    }
}

/// What to load.
#[derive(Clone, PartialEq)]
pub struct LoadRequest {
    /// The backend kind.
    pub backend: BackendKind,
    /// Local: a registry id (`GET /available`), a path to a GGUF file, or a hub reference
    /// `org/name/file.gguf` (downloaded when not cached). Remote: the server's model name.
    /// May be empty when `hub` is given; it then becomes the hub file's name.
    pub model: String,
    /// Local: a GGUF file of a Hugging Face hub repo at a revision, downloaded into the
    /// cache when missing. Takes precedence over `model`.
    pub hub: Option<HubFile>,
    /// Remote: the server's base URL (OpenAI: with `/v1`).
    pub base_url: Option<String>,
    /// OpenAI-compatible: the API key.
    pub api_key: Option<String>,
    /// The context window to use; default: the model's (local, Ollama) or 4096 (OpenAI).
    pub context_length: Option<u32>,
    /// Local: layers to offload to the GPU (0: CPU only).
    pub gpu_layers: u32,
    /// Local Hugging Face folders: the quantization of the import (GGUF files load as they
    /// are and refuse anything but `None`).
    pub quantization: Quantization,
    /// Generation settings to put in force with this model. They take effect only when
    /// the load is accepted (a refused load changes nothing), and may be partial.
    pub settings: Option<SettingsPatch>,
}

impl LoadRequest {
    /// The GPU layers a device name asks for: `cpu` (or none) runs on the CPU, `cuda`
    /// offloads every layer, `auto` offloads every layer when this build has llama.cpp's
    /// CUDA backend (which keeps the layers on the CPU when the machine has no GPU) and
    /// none otherwise.
    ///
    /// # Errors
    /// `InvalidInput` for another name.
    pub fn gpu_layers_for(device: Option<&str>) -> Result<u32, Error> {
        match device {
            None | Some("cpu") => Ok(0),
            Some("cuda") => Ok(u32::MAX),
            Some("auto") => Ok(if cfg!(feature = "cuda") { u32::MAX } else { 0 }),
            Some(other) => {
                Err(Error::invalid_input(format!("device {other:?} is not cpu, cuda or auto")))
            }
        }
    }
}

impl std::fmt::Debug for LoadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadRequest")
            .field("backend", &self.backend)
            .field("model", &self.model)
            .field("hub", &self.hub)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("context_length", &self.context_length)
            .field("gpu_layers", &self.gpu_layers)
            .field("quantization", &self.quantization)
            .field("settings", &self.settings)
            .finish()
    }
}

/// Where the manager is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LoadState {
    /// Nothing is loaded.
    NotLoaded,
    /// Model files are being downloaded from the Hugging Face hub.
    Downloading {
        /// Progress, 0 to 100.
        percent: u8,
        /// Bytes on disk so far.
        downloaded_bytes: u64,
        /// Bytes in all (0 when the hub did not say).
        total_bytes: u64,
    },
    /// A Hugging Face folder is being converted to GGUF.
    Converting {
        /// Progress, 0 to 100.
        percent: u8,
    },
    /// The converted model is being quantized by llama.cpp.
    Quantizing {
        /// Progress, 0 to 100 (estimated from the output's growth).
        percent: u8,
    },
    /// The model is being loaded.
    Loading,
    /// The model answers requests.
    Loaded,
    /// The last load failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// The model is being released.
    Unloading,
}

/// The loaded (or loading) model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// The backend kind.
    pub backend: BackendKind,
    /// The model as requested.
    pub model: String,
    /// The id the backend reports, once loaded.
    pub model_id: Option<String>,
    /// The context window of one request, once loaded.
    pub context_length: Option<usize>,
    /// How many requests a local model generates for at once (each with `context_length`
    /// tokens of KV cache), once loaded; `None` for remote servers, which schedule their
    /// own.
    pub parallel: Option<usize>,
    /// The model file (local models).
    pub path: Option<PathBuf>,
    /// The model file's size (local models), a lower bound of the memory it takes.
    pub size_bytes: Option<u64>,
    /// The server's base URL (remote backends; never the API key).
    pub base_url: Option<String>,
    /// Where a local model runs: `cpu`, or `cuda` when layers were offloaded.
    pub device: Option<String>,
    /// The quantization of an imported Hugging Face folder.
    pub quantization: Option<Quantization>,
    /// The Hugging Face folder an imported model came from.
    pub imported_from: Option<PathBuf>,
}

/// A snapshot of the manager's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelStatus {
    /// The load state.
    #[serde(flatten)]
    pub state: LoadState,
    /// The model concerned, if any.
    pub model: Option<ModelInfo>,
    /// When the state last changed (in ragd's wire format, [`ragd_core::time`]).
    #[serde(serialize_with = "ragd_core::time::serialize")]
    pub since: DateTime<Utc>,
}

/// Where models are found and how remote servers are reached.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Local models folder, Hugging Face cache, bundled files.
    pub registry: RegistryConfig,
    /// Timeouts and retries for remote backends.
    pub http: HttpSettings,
    /// Base URL used for `openai` loads that give none.
    pub default_openai_url: String,
    /// Base URL used for `ollama` loads that give none.
    pub default_ollama_url: String,
    /// Downloads of hub files that are not cached (endpoint, token, offline mode); its
    /// `cache_dir` should be `registry.hf_cache_dir`. `None`: only cached models load.
    pub hub: Option<HubConfig>,
    /// Local loads by path must name a file inside one of these folders (models found by
    /// the registry are always allowed). Empty: any readable path, as a library user
    /// embedding the manager may want; the `ragd` server always sets it, so an API client
    /// cannot make it open arbitrary files.
    pub allowed_dirs: Vec<PathBuf>,
    /// How many requests a local model generates for at once (`LocalLlmConfig::parallel`,
    /// default 4).
    pub parallel: usize,
    /// Where Hugging Face folders are imported to (one GGUF file per folder, revision and
    /// quantization). `None`: folders are not imported and their loads fail saying so.
    pub import_dir: Option<PathBuf>,
    /// Defaults of loads that leave fields out ([`LoadDefaults`]).
    pub defaults: LoadDefaults,
}

/// What a load that leaves a field out gets, and the generation settings in force before
/// any load changes them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadDefaults {
    /// The model of remote loads that name none; without it an OpenAI-compatible load
    /// takes the server's first model (`GET /v1/models`).
    pub model: Option<String>,
    /// The base URL of remote loads that give none, before the presets' and
    /// `default_openai_url`/`default_ollama_url`.
    pub base_url: Option<String>,
    /// The API key of OpenAI-compatible loads that give none.
    pub api_key: Option<String>,
    /// The generation settings at start.
    pub settings: GenerationSettings,
}

#[derive(Debug)]
struct Inner {
    config: ManagerConfig,
    status: RwLock<ModelStatus>,
    backend: RwLock<Option<Arc<dyn LlmBackend>>>,
    settings: RwLock<GenerationSettings>,
}

/// Receives the states of an import ([`ModelManager::import_model`]): `downloading`,
/// `converting`, `quantizing`.
pub type ImportReporter = Arc<dyn Fn(LoadState) + Send + Sync>;

/// The model service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ModelManager {
    inner: Arc<Inner>,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

impl ModelManager {
    /// A manager with nothing loaded and the configured default generation settings.
    #[must_use]
    pub fn new(config: ManagerConfig) -> Self {
        let settings = config.defaults.settings.clone();
        Self {
            inner: Arc::new(Inner {
                config,
                status: RwLock::new(ModelStatus {
                    state: LoadState::NotLoaded,
                    model: None,
                    since: Utc::now(),
                }),
                backend: RwLock::new(None),
                settings: RwLock::new(settings),
            }),
        }
    }

    /// Models found on disk (blocking: it walks folders).
    #[must_use]
    pub fn available(&self) -> Vec<ModelEntry> {
        ModelRegistry::scan(&self.inner.config.registry)
    }

    /// The current state.
    #[must_use]
    pub fn status(&self) -> ModelStatus {
        read(&self.inner.status)
    }

    /// The loaded backend, if one is loaded.
    #[must_use]
    pub fn backend(&self) -> Option<Arc<dyn LlmBackend>> {
        read(&self.inner.backend)
    }

    /// The generation settings in force.
    #[must_use]
    pub fn settings(&self) -> GenerationSettings {
        read(&self.inner.settings)
    }

    /// Applies `patch` to the settings in force, atomically: two concurrent updates never
    /// lose each other's fields, and a patch out of range changes nothing. Returns the
    /// settings now in force as the confirmation.
    ///
    /// # Errors
    /// `InvalidInput` naming the first setting out of range.
    pub fn update_settings(&self, patch: &SettingsPatch) -> Result<GenerationSettings, Error> {
        let mut settings =
            self.inner.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let updated = settings.apply(patch)?;
        settings.clone_from(&updated);
        drop(settings);
        tracing::info!(settings = ?updated, "generation settings changed");
        Ok(updated)
    }

    fn set_status(&self, state: LoadState, model: Option<ModelInfo>) {
        write(&self.inner.status, ModelStatus { state, model, since: Utc::now() });
    }

    /// Starts loading `request` in the background and returns the `loading` status. The
    /// previous model stays in use until the new one is loaded. Needs a Tokio runtime.
    ///
    /// # Errors
    /// `Conflict` while a load or unload is running; `InvalidInput` for a request that
    /// cannot work (a remote backend without a model name) or settings out of range. A
    /// refused load changes neither the model nor the settings.
    pub fn load(&self, mut request: LoadRequest) -> Result<ModelStatus, Error> {
        // A path outside the allowed folders is refused now, not as a failed load later.
        if request.backend == BackendKind::Local && request.hub.is_none() {
            let path = Path::new(&request.model);
            if path.is_file() && !self.available().iter().any(|e| e.id == request.model) {
                self.check_allowed(path)?;
            }
        }
        if let Some(file) = &request.hub {
            if request.backend != BackendKind::Local {
                return Err(Error::invalid_input(
                    "hub files load with the local backend; remote servers fetch their own models",
                ));
            }
            if !is_gguf(&file.path) {
                return Err(Error::invalid_input(format!(
                    "{file} is not a GGUF file; the local backend runs `.gguf` files"
                )));
            }
            if request.model.trim().is_empty() {
                request.model = file.to_string();
            }
        }
        let defaults = &self.inner.config.defaults;
        if request.backend != BackendKind::Local {
            if request.model.trim().is_empty() {
                request.model = defaults.model.clone().unwrap_or_default();
            }
            if request.base_url.is_none() {
                request.base_url.clone_from(&defaults.base_url);
            }
            if request.api_key.is_none() && request.backend.is_openai_compatible() {
                request.api_key.clone_from(&defaults.api_key);
            }
        }
        // OpenAI-compatible servers say which model they serve; the others need a name.
        if request.model.trim().is_empty() && !request.backend.is_openai_compatible() {
            return Err(Error::invalid_input("model must not be empty"));
        }
        if request.backend == BackendKind::Custom {
            return Err(Error::invalid_input(
                "custom backends are installed by the program that embeds ragd, not loaded",
            ));
        }
        // Settings out of range refuse the load before anything changes.
        if let Some(patch) = &request.settings {
            self.settings().apply(patch)?;
        }
        {
            let mut status = self.idle_status()?;
            let model = ModelInfo {
                backend: request.backend,
                model: request.model.clone(),
                model_id: None,
                context_length: None,
                parallel: None,
                path: None,
                size_bytes: None,
                base_url: None,
                device: None,
                quantization: None,
                imported_from: None,
            };
            *status =
                ModelStatus { state: LoadState::Loading, model: Some(model), since: Utc::now() };
            // Accepted: the request's settings take effect now, still under the status lock,
            // so a concurrent load that is refused cannot have put its settings in force.
            if let Some(patch) = &request.settings {
                self.update_settings(patch)?;
            }
        }
        tracing::info!(?request, "loading model");
        let this = self.clone();
        tokio::spawn(async move {
            match this.open(&request).await {
                Ok((backend, info)) => {
                    tracing::info!(
                        model = info.model_id.as_deref().unwrap_or(""),
                        backend = backend.name(),
                        "model loaded"
                    );
                    write(&this.inner.backend, Some(backend));
                    this.set_status(LoadState::Loaded, Some(info));
                }
                Err(err) => {
                    tracing::warn!(%err, model = %request.model, "model load failed");
                    let info = read(&this.inner.status).model;
                    this.set_status(LoadState::Failed { reason: err.to_string() }, info);
                }
            }
        });
        Ok(self.status())
    }

    /// Puts `backend` in use as the loaded model, as a program embedding ragd does with a
    /// backend of its own (any [`LlmBackend`]); the status becomes `loaded` with kind
    /// [`BackendKind::Custom`]. Replaces the loaded model.
    ///
    /// # Errors
    /// `Conflict` while a load or unload is running.
    pub fn install(&self, backend: Arc<dyn LlmBackend>) -> Result<ModelStatus, Error> {
        let mut status = self.idle_status()?;
        let info = ModelInfo {
            backend: BackendKind::Custom,
            model: backend.model_id().to_owned(),
            model_id: Some(backend.model_id().to_owned()),
            context_length: Some(backend.context_length()),
            parallel: None,
            path: None,
            size_bytes: None,
            base_url: None,
            device: None,
            quantization: None,
            imported_from: None,
        };
        tracing::info!(model = backend.model_id(), backend = backend.name(), "model installed");
        write(&self.inner.backend, Some(backend));
        *status = ModelStatus { state: LoadState::Loaded, model: Some(info), since: Utc::now() };
        Ok(status.clone())
    }

    /// The status, write-locked, when no load or unload is running: the caller changes it
    /// before anyone else can start one.
    fn idle_status(&self) -> Result<std::sync::RwLockWriteGuard<'_, ModelStatus>, Error> {
        let status = self.inner.status.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if status.state.is_loading() || status.state == LoadState::Unloading {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a model is already {}; wait for it to finish", status.state.as_str()),
            ));
        }
        Ok(status)
    }

    /// Releases the loaded model.
    ///
    /// # Errors
    /// `Conflict` while a load is running.
    pub fn unload(&self) -> Result<ModelStatus, Error> {
        let status = self.status();
        if status.state.is_loading() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "a model is loading; unload it once it has loaded",
            ));
        }
        self.set_status(LoadState::Unloading, status.model.clone());
        // Dropping the last handle stops the backend's worker once in-flight requests end.
        write(&self.inner.backend, None);
        self.set_status(LoadState::NotLoaded, None);
        tracing::info!("model unloaded");
        Ok(self.status())
    }

    async fn open(&self, request: &LoadRequest) -> Result<(Arc<dyn LlmBackend>, ModelInfo), Error> {
        let config = &self.inner.config;
        let mut info = ModelInfo {
            backend: request.backend,
            model: request.model.clone(),
            model_id: None,
            context_length: None,
            parallel: None,
            path: None,
            size_bytes: None,
            base_url: None,
            device: None,
            quantization: None,
            imported_from: None,
        };
        let backend: Arc<dyn LlmBackend> = match request.backend {
            #[cfg(not(feature = "llama"))]
            BackendKind::Local => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "this build runs no local models (feature `llama` is off); load an openai or \
                     ollama model",
                ));
            }
            #[cfg(feature = "llama")]
            BackendKind::Local => {
                let (path, imported_from) = self.local_path(request).await?;
                if imported_from.is_some() {
                    info.quantization = Some(request.quantization);
                }
                info.imported_from = imported_from;
                info.size_bytes = std::fs::metadata(&path).ok().map(|m| m.len());
                info.path = Some(path.clone());
                let mut local = LocalLlmConfig::new(path);
                local.context_length = request.context_length;
                local.gpu_layers = request.gpu_layers;
                info.device = Some(if request.gpu_layers > 0 { "cuda" } else { "cpu" }.to_owned());
                local.parallel = config.parallel;
                let loaded = tokio::task::spawn_blocking(move || LocalLlm::load(&local))
                    .await
                    .map_err(|err| Error::internal("the model loader panicked").with_source(err))?
                    .map_err(Error::from)?;
                info.parallel = Some(loaded.parallel());
                Arc::new(loaded)
            }
            BackendKind::Openai
            | BackendKind::Vllm
            | BackendKind::Llamacpp
            | BackendKind::Lmstudio
            | BackendKind::Instructlab => {
                let base_url = request.base_url.clone().unwrap_or_else(|| {
                    request
                        .backend
                        .preset_base_url()
                        .map_or_else(|| config.default_openai_url.clone(), str::to_owned)
                });
                info.base_url = Some(base_url.clone());
                let openai = |model: String| {
                    OpenAiBackend::new(OpenAiConfig {
                        base_url: base_url.clone(),
                        api_key: request.api_key.clone(),
                        model,
                        context_length: request.context_length.map_or(4096, |n| n as usize),
                        http: config.http.clone(),
                    })
                };
                let backend = openai(request.model.clone())?;
                let models = backend.list_models().await.map_err(|err| {
                    Error::new(
                        err.kind(),
                        format!(
                            "the {} server at {base_url} cannot be reached or listed its models: {}",
                            request.backend.as_str(),
                            err.message()
                        ),
                    )
                })?;
                let backend = if request.model.trim().is_empty() {
                    // Discovery: the model the server serves (vLLM, llama-server and
                    // InstructLab serve one).
                    let Some(first) = models.first() else {
                        return Err(Error::not_found(format!(
                            "the server at {base_url} lists no model"
                        )));
                    };
                    info.model.clone_from(first);
                    openai(first.clone())?
                } else if models.contains(&request.model) {
                    backend
                } else {
                    return Err(Error::not_found(format!(
                        "the server does not offer {:?}; it has {models:?}",
                        request.model
                    )));
                };
                Arc::new(backend)
            }
            BackendKind::Ollama => {
                let base_url =
                    request.base_url.clone().unwrap_or_else(|| config.default_ollama_url.clone());
                info.base_url = Some(base_url.clone());
                Arc::new(
                    OllamaBackend::connect(OllamaConfig {
                        base_url,
                        model: request.model.clone(),
                        context_length: request.context_length.map(|n| n as usize),
                        http: config.http.clone(),
                    })
                    .await?,
                )
            }
            BackendKind::Custom => {
                return Err(Error::invalid_input("custom backends are installed, not loaded"));
            }
        };
        info.model_id = Some(backend.model_id().to_owned());
        info.context_length = Some(backend.context_length());
        Ok((backend, info))
    }

    /// The GGUF file of a local load, and the Hugging Face folder it was imported from if
    /// it was: the hub file when one is named, else a registry id or a path (a folder is
    /// imported), else a hub reference `org/name/file.gguf`; hub files are downloaded when
    /// they are not cached.
    #[cfg_attr(not(feature = "llama"), allow(dead_code))] // Local loads need the feature.
    async fn local_path(&self, request: &LoadRequest) -> Result<(PathBuf, Option<PathBuf>), Error> {
        let source = if let Some(file) = &request.hub {
            Source::Gguf(self.hub_file(file).await?)
        } else {
            match self.resolve_local(&request.model) {
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    let hub = self.inner.config.hub.is_some();
                    match HubFile::parse(&request.model) {
                        Some(file) if is_gguf(&file.path) && hub => {
                            Source::Gguf(self.hub_file(&file).await?)
                        }
                        None if hub && is_repo_id(&request.model) => {
                            self.hub_folder(&request.model, &self.status_reporter()).await?
                        }
                        Some(_) | None => return Err(err),
                    }
                }
                resolved => resolved?,
            }
        };
        match source {
            Source::Gguf(path) if request.quantization == Quantization::None => Ok((path, None)),
            Source::Gguf(path) => Err(Error::invalid_input(format!(
                "{} is a GGUF file, which loads as it is; quantization {} applies to imports of \
                 Hugging Face safetensors folders",
                path.display(),
                request.quantization
            ))),
            Source::Folder { dir, key } => {
                let report = self.status_reporter();
                let path = self.import(&dir, &key, request.quantization, report).await?;
                self.set_status(LoadState::Loading, read(&self.inner.status).model);
                Ok((path, Some(dir)))
            }
        }
    }

    /// The GGUF import of the Hugging Face folder `dir` at `quantization`: the file from an
    /// earlier import when there is one, else a new import (`converting`, then `quantizing`,
    /// told to `report`).
    async fn import(
        &self,
        dir: &Path,
        key: &str,
        quantization: Quantization,
        report: ImportReporter,
    ) -> Result<PathBuf, Error> {
        let Some(import_dir) = &self.inner.config.import_dir else {
            return Err(Error::unavailable(format!(
                "{} is a Hugging Face folder, but no folder is configured to import models into",
                dir.display()
            )));
        };
        let output = import_dir.join(format!("{key}-{quantization}.gguf"));
        if output.is_file() {
            tracing::info!(path = %output.display(), "reusing the earlier import");
            return Ok(output);
        }
        std::fs::create_dir_all(import_dir).map_err(|err| {
            Error::unavailable(format!("cannot create {}: {err}", import_dir.display()))
                .with_source(err)
        })?;
        let options = ImportOptions {
            quantization,
            name: key.to_owned(),
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let (dir, out) = (dir.to_path_buf(), output.clone());
        tracing::info!(from = %dir.display(), to = %out.display(), %quantization, "importing a Hugging Face model");
        let started = std::time::Instant::now();
        let report = tokio::task::spawn_blocking(move || {
            let last = std::sync::Mutex::new(None);
            crate::import::import_folder(&dir, &out, &options, &|stage, percent| {
                let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if *last != Some((stage, percent)) {
                    *last = Some((stage, percent));
                    report(match stage {
                        ImportStage::Converting => LoadState::Converting { percent },
                        ImportStage::Quantizing => LoadState::Quantizing { percent },
                    });
                }
            })
        })
        .await
        .map_err(|err| Error::internal("the model importer panicked").with_source(err))?
        .map_err(Error::from)?;
        for warning in &report.warnings {
            tracing::warn!(%warning, "import");
        }
        tracing::info!(
            path = %report.path.display(),
            architecture = report.architecture,
            tensors = report.tensors,
            size_bytes = report.size_bytes,
            secs = started.elapsed().as_secs_f64(),
            "model imported"
        );
        Ok(output)
    }

    /// A reporter that shows each state in the status, with the model being loaded.
    fn status_reporter(&self) -> ImportReporter {
        let this = self.clone();
        let model = read(&self.inner.status).model;
        Arc::new(move |state| this.set_status(state, model.clone()))
    }

    /// Imports a Hugging Face model into GGUF without loading it, as a load would (the same
    /// file, reused by later loads): `model` is a registry id (`GET /available`), a folder
    /// path, or a hub repo id `org/name` (downloaded when not cached). `report` receives
    /// `downloading`, `converting` and `quantizing` with their percentages. Does not touch
    /// the load status.
    ///
    /// # Errors
    /// As a load of the same model: `NotFound`, `InvalidInput` (a folder that is not a whole
    /// model, a GGUF file, a path outside the allowed folders), `Unsupported` (an
    /// architecture, tokenizer or weight format), `Unavailable` (no import folder, the hub).
    pub async fn import_model(
        &self,
        model: &str,
        quantization: Quantization,
        report: ImportReporter,
    ) -> Result<PathBuf, Error> {
        let hub = self.inner.config.hub.is_some();
        let source = match self.resolve_local(model) {
            Err(err) if err.kind() == ErrorKind::NotFound && hub && is_repo_id(model) => {
                self.hub_folder(model, &report).await?
            }
            resolved => resolved?,
        };
        match source {
            Source::Folder { dir, key } => self.import(&dir, &key, quantization, report).await,
            Source::Gguf(path) => Err(Error::invalid_input(format!(
                "{} is a GGUF file already; import reads Hugging Face safetensors folders",
                path.display()
            ))),
        }
    }

    /// The model folder of hub repo `repo` at `main`: its config, tokenizer and safetensors
    /// files (top level only) downloaded into the Hugging Face cache when missing (status
    /// `downloading`), so the snapshot folder can be imported.
    #[cfg_attr(not(feature = "llama"), allow(dead_code))] // Local loads need the feature.
    async fn hub_folder(&self, repo: &str, report: &ImportReporter) -> Result<Source, Error> {
        let Some(config) = &self.inner.config.hub else {
            return Err(Error::unavailable(format!(
                "{repo} is a Hugging Face repo, but hub access is not configured"
            )));
        };
        let client = HubClient::new(config.clone())?;
        let listing = client.list_files(repo, ragd_hub::DEFAULT_REVISION).await?;
        let wanted: Vec<&String> = listing
            .files
            .iter()
            .filter(|f| !f.contains('/'))
            .filter(|f| MODEL_FOLDER_FILES.contains(&f.as_str()) || f.ends_with(".safetensors"))
            .collect();
        if !wanted.iter().any(|f| f.ends_with(".safetensors")) {
            let gguf: Vec<&String> = listing.files.iter().filter(|f| is_gguf(f)).collect();
            let hint = if gguf.is_empty() {
                String::new()
            } else {
                format!("; it has GGUF files, load one as {repo}/{}", gguf[0])
            };
            return Err(Error::unsupported(format!(
                "the hub repo {repo} has no .safetensors weights to import{hint}"
            )));
        }
        if !wanted.iter().any(|f| *f == "config.json") {
            return Err(Error::invalid_input(format!(
                "the hub repo {repo} has no config.json: not a Hugging Face model"
            )));
        }
        let files = wanted
            .iter()
            .map(|path| HubFile::at_revision(repo, path.as_str(), listing.commit.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let last_percent = AtomicU8::new(u8::MAX);
        let progress = |p: &Progress<'_>| report_download(report, &last_percent, p);
        let paths = client.download(&files, &progress).await?;
        let dir = paths
            .first()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::internal("the hub download returned no files"))?;
        let short: String = listing.commit.chars().take(12).collect();
        Ok(Source::Folder { dir, key: format!("{}-{short}", sanitize(repo)) })
    }

    /// The cached copy of a hub file, downloading it (status `downloading`) when missing.
    #[cfg_attr(not(feature = "llama"), allow(dead_code))] // Local loads need the feature.
    async fn hub_file(&self, file: &HubFile) -> Result<PathBuf, Error> {
        let Some(config) = &self.inner.config.hub else {
            return Err(Error::unavailable(format!(
                "{file} is a Hugging Face hub file, but hub access is not configured (no cache folder)"
            )));
        };
        let client = HubClient::new(config.clone())?;
        if let Some(path) = client.cache().get(file) {
            return Ok(path);
        }
        let report = self.status_reporter();
        let last_percent = AtomicU8::new(u8::MAX);
        let progress = |p: &Progress<'_>| report_download(&report, &last_percent, p);
        let path = client.download_file(file, &progress).await?;
        self.set_status(LoadState::Loading, read(&self.inner.status).model);
        Ok(path)
    }

    /// A registry id (`GET /available`), a path to a GGUF file, or a path to a Hugging
    /// Face model folder.
    fn resolve_local(&self, model: &str) -> Result<Source, Error> {
        let entries = self.available();
        if let Some(entry) = entries.iter().find(|e| e.id == model) {
            return Ok(match entry.format {
                ModelFormat::Gguf => Source::Gguf(entry.path.clone()),
                ModelFormat::HfFolder => {
                    Source::Folder { dir: entry.path.clone(), key: import_key(entry) }
                }
            });
        }
        let path = Path::new(model);
        if path.is_file() {
            self.check_allowed(path)?;
            return Ok(Source::Gguf(path.to_path_buf()));
        }
        if path.is_dir() {
            self.check_allowed(path)?;
            if !crate::import::is_model_folder(path) {
                return Err(Error::invalid_input(format!(
                    "{} is a folder without config.json: not a Hugging Face model folder",
                    path.display()
                )));
            }
            return Ok(Source::Folder { dir: path.to_path_buf(), key: folder_key(path) });
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        Err(Error::not_found(format!("no model {model:?}: not a file and not one of {ids:?}")))
    }
}

/// What a local load resolved to.
enum Source {
    /// A GGUF file, loaded as it is.
    Gguf(PathBuf),
    /// A Hugging Face folder to import; `key` names its imports.
    Folder { dir: PathBuf, key: String },
}

/// The name of a registry folder's imports: the repo and the revision's first 12
/// characters for the hub cache (`org--name-0123456789ab`), else as [`folder_key`].
fn import_key(entry: &ModelEntry) -> String {
    match (entry.source, &entry.revision) {
        (ModelSource::HfCache, Some(revision)) => {
            let short: String = revision.chars().take(12).collect();
            format!("{}-{short}", sanitize(&entry.id))
        }
        (ModelSource::HfCache | ModelSource::Local | ModelSource::Bundled, _) => {
            folder_key(&entry.path)
        }
    }
}

/// The name of a folder's imports: its name and a digest of its resolved path and of the
/// names, sizes and modification times of its files, so an edited folder is imported again.
fn folder_key(dir: &Path) -> String {
    let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut fingerprint = resolved.display().to_string();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                meta.len(),
                modified.as_nanos(),
            ))
        })
        .collect();
    files.sort();
    for (name, len, modified) in files {
        fingerprint.push_str(&format!("\n{name}\t{len}\t{modified}"));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, fingerprint.as_bytes());
    let short: String = digest.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = resolved.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy());
    format!("{}-{short}", sanitize(&name))
}

/// `name` with every character outside `[A-Za-z0-9._-]` as `-` (`/` included).
fn sanitize(name: &str) -> String {
    let replaced: String = name
        .replace('/', "--")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .collect();
    replaced
}

impl LoadState {
    /// Whether a load is under way (downloading, importing or loading).
    #[must_use]
    pub const fn is_loading(&self) -> bool {
        matches!(
            self,
            Self::Loading
                | Self::Downloading { .. }
                | Self::Converting { .. }
                | Self::Quantizing { .. }
        )
    }

    /// The state's name as the API reports it (`not_loaded`, `loading`, ...).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::NotLoaded => "not_loaded",
            Self::Downloading { .. } => "downloading",
            Self::Converting { .. } => "converting",
            Self::Quantizing { .. } => "quantizing",
            Self::Loading => "loading",
            Self::Loaded => "loaded",
            Self::Failed { .. } => "failed",
            Self::Unloading => "unloading",
        }
    }
}

impl ModelManager {
    /// Fails unless `path` (resolved, symlinks followed) lies inside an allowed folder.
    fn check_allowed(&self, path: &Path) -> Result<(), Error> {
        let allowed = &self.inner.config.allowed_dirs;
        if allowed.is_empty() {
            return Ok(());
        }
        let resolved = path.canonicalize().map_err(|err| {
            Error::invalid_input(format!("cannot resolve {}: {err}", path.display()))
        })?;
        let inside = allowed
            .iter()
            .filter_map(|dir| dir.canonicalize().ok())
            .any(|dir| resolved.starts_with(dir));
        if inside {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "{} is outside the folders models may be loaded from ({}); put it in models.dir or add its folder to models.allowed_dirs",
                path.display(),
                allowed.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )))
        }
    }
}

/// Reports a download's progress as `downloading`, once per percentage point.
fn report_download(report: &ImportReporter, last_percent: &AtomicU8, progress: &Progress<'_>) {
    let percent = progress.percent();
    if last_percent.swap(percent, Ordering::Relaxed) != percent {
        report(LoadState::Downloading {
            percent,
            downloaded_bytes: progress.bytes,
            total_bytes: progress.total,
        });
    }
}

/// The files of a Hugging Face model folder the importer reads, besides the
/// `*.safetensors` shards.
const MODEL_FOLDER_FILES: [&str; 9] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "model.safetensors.index.json",
];

/// Whether `model` has the form of a hub repo id, `org/name`.
fn is_repo_id(model: &str) -> bool {
    let valid = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    matches!(model.split_once('/'), Some((org, name)) if valid(org) && valid(name))
}

/// Whether `path` names a GGUF file.
fn is_gguf(path: &str) -> bool {
    Path::new(path).extension().is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
}
