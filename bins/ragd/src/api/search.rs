//! `/api/v1/search`: keyword (FTS5 BM25), semantic (vectors) and hybrid (RRF) search.
//!
//! Every hit carries its chunk id and document id, so a client (or a prompt) can refer to
//! the text by id and fetch it again from `/api/v1/documents`.

use axum::extract::State;
use ragd_core::{ChunkId, CollectionId, DocumentId, ErrorKind, MetadataFilter};
use ragd_search::{Hit, HybridOptions, SearchQuery};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// A metadata filter of a request body (`filter`), checked.
///
/// # Errors
/// `InvalidInput` naming an unknown operator or a bad value, with `param` `filter`.
pub fn metadata_filter(value: Option<&serde_json::Value>) -> Result<MetadataFilter, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(MetadataFilter::default()),
        Some(value) => MetadataFilter::from_json(value).map_err(|message| {
            ApiError::new(ErrorKind::InvalidInput, message).with_param("filter")
        }),
    }
}

fn default_top_k() -> usize {
    10
}

/// A keyword or semantic search.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Free text. Keyword search matches any of its words (FTS5 syntax is treated as text).
    pub query: String,
    /// How many hits, 1 to 100 (default 10).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Only search these documents (with `collection_ids`: their union; neither: all).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
    /// Only search the documents of these collections; collections that hold no document
    /// search nothing.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub collection_ids: Vec<CollectionId>,
    /// Only search documents whose metadata satisfies this filter: `{key: value}` (equals),
    /// `{key: {"in": [values]}}`, `{key: {"gte": n, "lt": n}}` (also `gt`, `lte`); all must
    /// hold. Applied before ranking.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
}

/// Weights of the two lists in hybrid search.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Weight of the keyword list (default 1).
    #[serde(default = "one")]
    pub keyword: f32,
    /// Weight of the semantic list (default 1).
    #[serde(default = "one")]
    pub semantic: f32,
}

fn one() -> f32 {
    1.0
}

impl Default for Weights {
    fn default() -> Self {
        Self { keyword: 1.0, semantic: 1.0 }
    }
}

/// A hybrid search: keyword and semantic lists fused by weighted reciprocal rank fusion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridRequest {
    /// Free text.
    pub query: String,
    /// How many hits, 1 to 100 (default 10).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Only search these documents (with `collection_ids`: their union; neither: all).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
    /// Only search the documents of these collections; collections that hold no document
    /// search nothing.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub collection_ids: Vec<CollectionId>,
    /// Only search documents whose metadata satisfies this filter: `{key: value}` (equals),
    /// `{key: {"in": [values]}}`, `{key: {"gte": n, "lt": n}}` (also `gt`, `lte`); all must
    /// hold. Applied before ranking.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// The RRF constant k (default 60); larger flattens the head of each list.
    #[serde(default)]
    pub rrf_k: Option<f32>,
    /// List weights.
    #[serde(default)]
    pub weights: Weights,
    /// Rerank the best fused candidates with the configured reranker (`true` without one
    /// is 503); default: the server's `rerank.by_default`.
    #[serde(default)]
    pub rerank: Option<bool>,
    /// How many fused candidates the reranker scores, 1 to 200 (at least `top_k` are);
    /// default the server's `rerank.candidates`. Giving it asks for reranking unless
    /// `rerank` is `false`.
    #[serde(default)]
    pub rerank_candidates: Option<usize>,
}

/// One chunk found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// The chunk's id (`GET /api/v1/documents/chunks/{chunk_id}`).
    #[schema(value_type = String, format = Uuid)]
    pub chunk_id: ChunkId,
    /// Its document's id.
    #[schema(value_type = String, format = Uuid)]
    pub document_id: DocumentId,
    /// Its document's file name.
    pub filename: String,
    /// Higher is better: -BM25 (keyword), cosine similarity (semantic), fused RRF score
    /// (hybrid), the reranker's score (reranked hybrid).
    pub score: f32,
    /// The chunk's text.
    pub text: String,
    /// The text around keyword matches with `<mark>` tags (chunk text is not HTML-escaped).
    pub snippet: Option<String>,
    /// First char in the document's extracted text.
    pub char_start: u64,
    /// One past the last char.
    pub char_end: u64,
    /// Page number, for paged formats.
    pub page: Option<u32>,
    /// Heading path, where the format has headings.
    pub heading: Option<String>,
    /// Rank in the keyword list (from 1), if it was there.
    pub keyword_rank: Option<usize>,
    /// Rank in the semantic list (from 1), if it was there.
    pub semantic_rank: Option<usize>,
    /// The fused RRF score (hybrid).
    pub fused_score: Option<f32>,
    /// The reranker's score (reranked hybrid), higher is better: the query's mean
    /// log-probability after the passage (`query_likelihood`) or the log-odds of "yes"
    /// (`judge`); the hits are in its order.
    pub rerank_score: Option<f32>,
}

impl From<Hit> for SearchHit {
    fn from(hit: Hit) -> Self {
        Self {
            chunk_id: hit.chunk.id,
            document_id: hit.chunk.document_id,
            filename: hit.filename,
            score: hit.score,
            text: hit.chunk.text,
            snippet: hit.snippet,
            char_start: hit.chunk.char_start,
            char_end: hit.chunk.char_end,
            page: hit.chunk.page,
            heading: hit.chunk.heading,
            keyword_rank: hit.keyword_rank,
            semantic_rank: hit.semantic_rank,
            fused_score: hit.fused_score,
            rerank_score: hit.rerank_score,
        }
    }
}

/// Search results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// `keyword`, `semantic` or `hybrid`.
    pub mode: &'static str,
    /// The hits.
    pub hits: Vec<SearchHit>,
}

fn respond(mode: &'static str, hits: Vec<Hit>) -> ApiJson<SearchResponse> {
    ApiJson(SearchResponse { mode, hits: hits.into_iter().map(Into::into).collect() })
}

/// Keyword search: SQLite FTS5 with BM25 ranking and highlighted snippets.
#[utoipa::path(
    post,
    path = "/keyword",
    tag = "search",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Hits, best first", body = SearchResponse),
        (status = 400, description = "Empty query or top_k out of range", body = ErrorBody),
        (status = 404, description = "A collection does not exist", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn keyword(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<ApiJson<SearchResponse>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let collection_ids =
        allowed.restrict_search(&state.engine, &req.document_ids, req.collection_ids).await?;
    let query = SearchQuery {
        text: req.query,
        top_k: req.top_k,
        document_ids: req.document_ids,
        collection_ids,
        filter: metadata_filter(req.filter.as_ref())?,
    };
    Ok(respond("keyword", state.engine.search().keyword(&query).await?))
}

/// Semantic search: the query's embedding against chunk vectors (cosine similarity).
#[utoipa::path(
    post,
    path = "/semantic",
    tag = "search",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Hits, best first", body = SearchResponse),
        (status = 400, description = "Empty query or top_k out of range", body = ErrorBody),
        (status = 404, description = "A collection does not exist", body = ErrorBody),
        (status = 503, description = "No embedding model or vector store", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn semantic(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<ApiJson<SearchResponse>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let collection_ids =
        allowed.restrict_search(&state.engine, &req.document_ids, req.collection_ids).await?;
    let query = SearchQuery {
        text: req.query,
        top_k: req.top_k,
        document_ids: req.document_ids,
        collection_ids,
        filter: metadata_filter(req.filter.as_ref())?,
    };
    Ok(respond("semantic", state.engine.search().semantic(&query).await?))
}

/// Hybrid search: keyword and semantic lists fused by weighted reciprocal rank fusion.
#[utoipa::path(
    post,
    path = "/hybrid",
    tag = "search",
    request_body = HybridRequest,
    responses(
        (status = 200, description = "Hits, best first", body = SearchResponse),
        (status = 400, description = "Empty query, top_k or rerank_candidates out of range, negative weights", body = ErrorBody),
        (status = 404, description = "A collection does not exist", body = ErrorBody),
        (status = 503, description = "No embedding model or vector store, or reranking asked for without a reranker", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn hybrid(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(req): ApiJson<HybridRequest>,
) -> Result<ApiJson<SearchResponse>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let collection_ids =
        allowed.restrict_search(&state.engine, &req.document_ids, req.collection_ids).await?;
    let query = SearchQuery {
        text: req.query,
        top_k: req.top_k,
        document_ids: req.document_ids,
        collection_ids,
        filter: metadata_filter(req.filter.as_ref())?,
    };
    // Checked even when it does not rerank: a bad count is a bad request either way.
    if let Some(asked) = req.rerank_candidates {
        ragd_search::check_rerank_candidates(asked)
            .map_err(|err| ApiError::from(err).with_param("rerank_candidates"))?;
    }
    let search = state.engine.search();
    // Naming a candidate count asks for reranking unless `rerank` says no.
    let defaults = search.hybrid_options(req.rerank.or(req.rerank_candidates.map(|_| true)));
    let options = HybridOptions {
        rrf_k: req.rrf_k.unwrap_or(defaults.rrf_k),
        keyword_weight: req.weights.keyword,
        semantic_weight: req.weights.semantic,
        rerank_candidates: match (defaults.rerank_candidates, req.rerank_candidates) {
            (Some(_), Some(asked)) => Some(asked),
            (reranking, _) => reranking,
        },
        ..defaults
    };
    Ok(respond("hybrid", search.hybrid(&query, options).await?))
}
