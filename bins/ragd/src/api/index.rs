//! `/api/v1/index`: the vector index's state and re-embedding it with the configured
//! embedding model.
//!
//! The index re-embeds by itself when ragd starts with another `embedding.model_id` than the
//! one it was built with; `POST /api/v1/index/reembed` starts the same rebuild by hand
//! (after a model file changed under the same id, say). Search and chat keep answering from
//! the old index until the new one is complete.

use axum::extract::State;
use axum::http::StatusCode;
use ragd_engine::{BuildPhase, BuildProgress, BuildReport, GenerationInfo, IndexStatus};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ErrorBody, timestamp};
use crate::state::AppState;

/// One generation of the index: the tables of one embedding model.
#[derive(Debug, Serialize, ToSchema)]
pub struct GenerationBody {
    /// Its number.
    pub generation: u32,
    /// The embedding model whose vectors it holds.
    pub model_id: String,
    /// Their length.
    pub dimensions: usize,
}

impl From<GenerationInfo> for GenerationBody {
    fn from(info: GenerationInfo) -> Self {
        Self { generation: info.generation, model_id: info.model_id, dimensions: info.dimensions }
    }
}

/// A re-embed in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildProgressBody {
    /// The generation being built.
    pub target: GenerationBody,
    /// `chunks`, `memory` (remembered exchanges) or `swapping`.
    pub phase: String,
    /// Chunks and exchanges already in the new index.
    pub done: u64,
    /// Chunks and exchanges it will hold.
    pub total: u64,
    /// `done` of `total`, 0 to 100.
    pub percent: u8,
    /// Seconds since it started.
    pub elapsed_secs: f64,
}

impl From<BuildProgress> for BuildProgressBody {
    fn from(p: BuildProgress) -> Self {
        let phase = match p.phase {
            BuildPhase::Chunks => "chunks",
            BuildPhase::Memory => "memory",
            BuildPhase::Swapping => "swapping",
        };
        Self {
            target: p.target.into(),
            phase: phase.to_owned(),
            done: p.done,
            total: p.total,
            percent: p.percent,
            elapsed_secs: p.elapsed_secs,
        }
    }
}

/// A finished re-embed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildReportBody {
    /// The generation built, now in use.
    pub target: GenerationBody,
    /// Chunks embedded.
    pub chunks: u64,
    /// Remembered exchanges embedded.
    pub memories: u64,
    /// How long it took.
    pub seconds: f64,
    /// Chunks embedded per second.
    pub chunks_per_second: f64,
}

impl From<BuildReport> for BuildReportBody {
    fn from(r: BuildReport) -> Self {
        Self {
            target: r.target.into(),
            chunks: r.chunks,
            memories: r.memories,
            seconds: r.seconds,
            chunks_per_second: r.chunks_per_second,
        }
    }
}

/// The vector index.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexStatusBody {
    /// `ready`, `building` while a re-embed runs, or `unavailable` when no generation can
    /// answer queries and none is being built (see `error`).
    pub state: String,
    /// The generation search and chat use; `null` when none can answer (its model cannot
    /// be loaded) until a re-embed finishes.
    pub active: Option<GenerationBody>,
    /// The configured embedding model, which the index is built with.
    pub configured_model: Option<String>,
    /// The re-embed in progress.
    pub building: Option<BuildProgressBody>,
    /// The last re-embed this server finished.
    pub last_build: Option<BuildReportBody>,
    /// Why the last re-embed stopped, when it failed; it resumes at the next start or
    /// re-embed.
    pub error: Option<String>,
    /// Whether a re-embed runs, from its start until the old tables are dropped (a little
    /// after the swap); another one is refused with 409 meanwhile.
    pub running: bool,
    /// When this status was read.
    pub checked_at: String,
}

impl From<IndexStatus> for IndexStatusBody {
    fn from(status: IndexStatus) -> Self {
        let state = match (&status.building, &status.active) {
            (Some(_), _) => "building",
            (None, Some(_)) => "ready",
            (None, None) => "unavailable",
        };
        Self {
            state: state.to_owned(),
            active: status.active.map(Into::into),
            configured_model: status.configured_model,
            building: status.building.map(Into::into),
            last_build: status.last_build.map(Into::into),
            error: status.error,
            running: status.running,
            checked_at: timestamp(chrono::Utc::now()),
        }
    }
}

/// The vector index: the generation in use, the re-embed in progress with its percentage,
/// the last one finished.
#[utoipa::path(
    get,
    path = "/status",
    tag = "index",
    responses(
        (status = 200, description = "The index", body = IndexStatusBody),
        (status = 503, description = "No embedding model or vector store is loaded", body = ErrorBody)
    )
)]
pub async fn status(State(state): State<AppState>) -> Result<ApiJson<IndexStatusBody>, ApiError> {
    Ok(ApiJson(state.engine.index_status()?.into()))
}

/// Re-embeds every chunk and remembered exchange with the configured embedding model in the
/// background; search and chat use the current index until the new one is complete.
#[utoipa::path(
    post,
    path = "/reembed",
    tag = "index",
    responses(
        (status = 202, description = "Started; follow it in /api/v1/index/status", body = IndexStatusBody),
        (status = 409, description = "A re-embed is already running", body = ErrorBody),
        (status = 503, description = "No embedding model or vector store is loaded, or the store cannot be rebuilt", body = ErrorBody)
    )
)]
pub async fn reembed(
    State(state): State<AppState>,
    scope: KeyScope,
) -> Result<(StatusCode, ApiJson<IndexStatusBody>), ApiError> {
    scope.resolve(&state.engine).await?.require_unlimited("re-embed the index")?;
    let status = state.engine.reembed().await?;
    Ok((StatusCode::ACCEPTED, ApiJson(status.into())))
}
