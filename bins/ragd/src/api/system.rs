//! Health, server information, system status and metrics: `GET /health`, `GET /metrics`,
//! `GET /api/v1/info`, `GET /api/v1/system/status`.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use ragd_core::ErrorKind;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// `GET /health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every component works, `degraded` when the server answers but a component
    /// is unavailable (`GET /api/v1/info` says why).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Each component and whether it works.
    pub components: Vec<ComponentHealth>,
}

/// One component in `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentHealth {
    /// `catalog`, `embedder`, `vector_store` or `documents`.
    #[schema(example = "embedder")]
    pub name: &'static str,
    /// Whether it works.
    pub available: bool,
}

/// Liveness and component health from the engine's health watch: always `200` while the
/// server answers. Reasons are left to the authenticated `GET /api/v1/info`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> ApiJson<Health> {
    let health = state.engine.health().borrow().clone();
    ApiJson(Health {
        status: health_status(health.status),
        components: health
            .components
            .iter()
            .map(|c| ComponentHealth { name: c.name, available: c.available })
            .collect(),
    })
}

pub(crate) fn health_status(status: ragd_engine::HealthStatus) -> &'static str {
    match status {
        ragd_engine::HealthStatus::Ok => "ok",
        ragd_engine::HealthStatus::Degraded => "degraded",
    }
}

/// `GET /api/v1/info` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    /// Always `ragd`.
    pub name: &'static str,
    /// The server's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// The configuration in force, without secrets.
    pub config: ConfigSummary,
    /// The bundled assets and whether each is present.
    pub assets: Vec<AssetStatus>,
    /// The engine's health: `ok` or `degraded`.
    #[schema(example = "ok")]
    pub health: &'static str,
    /// Each component, what it is, or why it is unavailable.
    pub components: Vec<ComponentDetail>,
}

/// One component in `GET /api/v1/info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentDetail {
    /// `catalog`, `embedder`, `vector_store` or `documents`.
    pub name: &'static str,
    /// Whether it works.
    pub available: bool,
    /// What it is (available) or why it is not.
    pub detail: String,
}

/// The configuration in force, without secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigSummary {
    /// Where ragd keeps its state.
    #[schema(value_type = String)]
    pub data_dir: PathBuf,
    /// Where the bundled models and runtime are looked for.
    #[schema(value_type = String)]
    pub assets_dir: PathBuf,
    /// The ONNX Runtime library that will be loaded.
    #[schema(value_type = String)]
    pub ort_dylib_path: PathBuf,
    /// The bound host.
    pub host: String,
    /// The configured port (0: picked at start).
    pub port: u16,
    /// The log filter.
    pub log_filter: String,
    /// Whether a Hugging Face token was found (its value is never shown).
    pub hf_token_present: bool,
    /// Where the token was found, if it was.
    pub hf_token_source: Option<String>,
    /// The Hugging Face hub cache, where hub downloads go.
    #[schema(value_type = Option<String>)]
    pub hf_cache_dir: Option<PathBuf>,
    /// The Hugging Face hub endpoint.
    pub hub_endpoint: String,
    /// Whether hub downloads are off.
    pub hub_offline: bool,
}

/// One bundled asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetStatus {
    /// Short name.
    pub name: &'static str,
    /// What it is for.
    pub purpose: &'static str,
    /// Where it is looked for.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Whether the file exists.
    pub present: bool,
}

/// Version, uptime, the configuration in force (without secrets) and asset status.
#[utoipa::path(
    get,
    path = "/info",
    tag = "system",
    responses((status = 200, description = "Server information", body = Info))
)]
pub async fn info(State(state): State<AppState>) -> ApiJson<Info> {
    let config = &state.config;
    let ort_dylib = state.engine.config().ort_dylib();
    let health = state.engine.health().borrow().clone();
    let assets = ragd_core::assets::ALL
        .iter()
        .map(|asset| {
            let path = if asset.name == ragd_core::assets::ONNX_RUNTIME.name {
                ort_dylib.clone()
            } else {
                config.assets_dir.join(asset.path)
            };
            AssetStatus { name: asset.name, purpose: asset.purpose, present: path.exists(), path }
        })
        .collect();
    ApiJson(Info {
        name: "ragd",
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.engine.started_at().elapsed().as_secs(),
        config: ConfigSummary {
            data_dir: config.data_dir.clone(),
            assets_dir: config.assets_dir.clone(),
            ort_dylib_path: ort_dylib,
            host: config.server.host.clone(),
            port: config.server.port,
            log_filter: config.log.filter.clone(),
            hf_token_present: config.hf_token.is_some(),
            hf_token_source: config.hf_token.as_ref().map(|t| t.source.clone()),
            hf_cache_dir: config.models.hf_cache_dir.clone(),
            hub_endpoint: config.hub.endpoint.clone(),
            hub_offline: config.hub.offline,
        },
        assets,
        health: health_status(health.status),
        components: health
            .components
            .into_iter()
            .map(|c| ComponentDetail { name: c.name, available: c.available, detail: c.detail })
            .collect(),
    })
}

/// `GET /api/v1/system/status` body: the latest system snapshot and ragd's components.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStatusResponse {
    /// Host, CPU, memory, disks, network, temperatures, GPUs and the ragd process.
    #[serde(flatten)]
    pub system: ragd_telemetry::SystemStatus,
    /// ragd's own components.
    pub components: ComponentsStatus,
}

/// ragd's components. A field is `null` while that component is not part of this server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentsStatus {
    /// Documents queued or in processing.
    pub document_queue_depth: Option<u64>,
    /// The embedding model and the execution provider it runs on (`cpu`, `cuda`).
    pub embedder: Option<String>,
    /// The loaded (or loading) chat model.
    pub loaded_model: Option<String>,
    /// The chat model's load state (`not_loaded`, `loading`, `loaded`, `failed`, ...).
    pub model_state: String,
    /// Size of the chat model's file, a lower bound of the memory it takes.
    pub model_size_bytes: Option<u64>,
}

/// The latest system snapshot: CPU, memory, disks, temperatures, GPUs, the ragd process.
///
/// Sampling runs on its own thread every `telemetry.sample_interval_secs`; this returns the
/// latest snapshot without waiting for a new one.
#[utoipa::path(
    get,
    path = "/system/status",
    tag = "system",
    responses(
        (status = 200, description = "The latest snapshot", body = SystemStatusResponse),
        (status = 503, description = "The platform reports no system information", body = ErrorBody)
    )
)]
pub async fn system_status(
    State(state): State<AppState>,
) -> Result<ApiJson<SystemStatusResponse>, ApiError> {
    let monitor = state.engine.monitor().ok_or_else(|| {
        ApiError::new(ErrorKind::Unavailable, "system status is not available on this platform")
    })?;
    let snapshot = monitor.latest().await?;
    let model_status = state.engine.models().status();
    Ok(ApiJson(SystemStatusResponse {
        system: (*snapshot).clone(),
        components: ComponentsStatus {
            document_queue_depth: Some(state.engine.documents().queue_depth()),
            embedder: state.engine.embedder_description().map(str::to_owned),
            model_state: model_status.state.as_str().to_owned(),
            model_size_bytes: model_status.model.as_ref().and_then(|m| m.size_bytes),
            loaded_model: model_status.model.and_then(|m| m.model_id.or(Some(m.model))),
        },
    }))
}

/// Metrics in the Prometheus text format: HTTP requests and latencies per route, system
/// gauges, and (as those parts land) ingest, embedding and generation counters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
