//! Health and server information: `GET /health`, `GET /api/v1/info`.

use std::path::PathBuf;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::ApiJson;
use crate::state::AppState;

/// `GET /health` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the server answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: answers `200 {"status":"ok"}` while the server runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub async fn health() -> ApiJson<Health> {
    ApiJson(Health { status: "ok" })
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
    let assets = ragd_core::assets::ALL
        .iter()
        .map(|asset| {
            let path = if asset.name == ragd_core::assets::ONNX_RUNTIME.name {
                config.ort_dylib()
            } else {
                config.assets_dir.join(asset.path)
            };
            AssetStatus { name: asset.name, purpose: asset.purpose, present: path.is_file(), path }
        })
        .collect();
    ApiJson(Info {
        name: "ragd",
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started_at.elapsed().as_secs(),
        config: ConfigSummary {
            data_dir: config.data_dir.clone(),
            assets_dir: config.assets_dir.clone(),
            ort_dylib_path: config.ort_dylib(),
            host: config.server.host.clone(),
            port: config.server.port,
            log_filter: config.log.filter.clone(),
            hf_token_present: config.hf_token.is_some(),
            hf_token_source: config.hf_token.as_ref().map(|t| t.source.clone()),
        },
        assets,
    })
}
