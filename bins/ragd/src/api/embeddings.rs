//! `POST /api/v1/embeddings`: text to vectors with ragd's embedding model, in ragd's own
//! shape. The vectors are the ones ragd stores for chunks (the document side of the
//! model); the OpenAI- and Ollama-compatible routes answer the same vectors.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::compat;
use crate::api::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// Texts to embed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedBody {
    /// The texts (1 to 2048, none empty); longer than the model's window is truncated.
    pub input: Vec<String>,
}

/// The vectors.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResult {
    /// The embedding model.
    pub model: String,
    /// Length of every vector.
    pub dimension: usize,
    /// One vector per input, in order (L2-normalised).
    pub embeddings: Vec<Vec<f32>>,
}

/// Embeds texts with the embedding model.
#[utoipa::path(
    post,
    path = "/embeddings",
    tag = "embeddings",
    request_body = EmbedBody,
    responses(
        (status = 200, description = "The vectors", body = EmbedResult),
        (status = 400, description = "No input, too many inputs, or an empty one", body = ErrorBody),
        (status = 413, description = "The body is larger than `server.max_json_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 429, description = "The embedding queue is full", body = ErrorBody),
        (status = 503, description = "No embedding model is loaded", body = ErrorBody)
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EmbedBody>,
) -> Result<ApiJson<EmbedResult>, ApiError> {
    let (embedder, embeddings, _tokens) = compat::embed(&state, None, None, body.input).await?;
    Ok(ApiJson(EmbedResult {
        model: embedder.model_id().to_owned(),
        dimension: embedder.dimensions(),
        embeddings,
    }))
}
