//! [`Searcher`]: keyword, semantic and hybrid search over stored chunks.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use ragd_catalog::{Catalog, KeywordQuery};
use ragd_core::{
    Chunk, ChunkId, CollectionId, DocumentId, MetadataFilter, Reranker, SearchRequest, TableName,
    VectorFilter, VectorSpace, Vectors,
};

use crate::error::{Error, Result};
use crate::fusion::{RankedList, fuse};

/// The most hits one search may ask for.
pub const MAX_TOP_K: usize = 100;

/// The most fused candidates one search may hand to the reranker.
pub const MAX_RERANK_CANDIDATES: usize = 200;

/// Checks a rerank candidate count: 1 to [`MAX_RERANK_CANDIDATES`].
///
/// # Errors
/// `InvalidInput` naming `rerank_candidates` and the range.
pub fn check_rerank_candidates(candidates: usize) -> Result<()> {
    if (1..=MAX_RERANK_CANDIDATES).contains(&candidates) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "rerank_candidates must be between 1 and {MAX_RERANK_CANDIDATES}"
        )))
    }
}

/// What a search looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Free text.
    pub text: String,
    /// How many hits to return, 1 to [`MAX_TOP_K`].
    pub top_k: usize,
    /// Only search these documents and the documents of `collection_ids` (their union);
    /// both empty searches all. Collections that hold no document search nothing.
    pub document_ids: Vec<DocumentId>,
    /// Only search the documents of these collections (see `document_ids`).
    pub collection_ids: Vec<CollectionId>,
    /// Only search documents whose metadata satisfies this filter (within the scope of
    /// `document_ids` and `collection_ids`); resolved to documents before ranking.
    pub filter: MetadataFilter,
}

/// How hybrid search fuses its two lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridOptions {
    /// The RRF constant `k`; larger flattens the head of each list (default 60).
    pub rrf_k: f32,
    /// Weight of the keyword list (default 1).
    pub keyword_weight: f32,
    /// Weight of the semantic list (default 1).
    pub semantic_weight: f32,
    /// Each list is searched `top_k * candidates_factor` deep before fusing (default 4).
    pub candidates_factor: usize,
    /// Rerank: the best this many fused hits (at least `top_k`, at most
    /// [`MAX_RERANK_CANDIDATES`]) are scored by the searcher's reranker, and the top `top_k`
    /// of that order returned. `None` (the default) returns the fused order;
    /// [`Searcher::hybrid_options`] fills it in from the searcher's rerank stage.
    pub rerank_candidates: Option<usize>,
}

impl Default for HybridOptions {
    fn default() -> Self {
        Self {
            rrf_k: 60.0,
            keyword_weight: 1.0,
            semantic_weight: 1.0,
            candidates_factor: 4,
            rerank_candidates: None,
        }
    }
}

/// One chunk found, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The chunk (text, offsets, page, heading).
    pub chunk: Chunk,
    /// Its document's file name.
    pub filename: String,
    /// Higher is better: -BM25 for keyword, cosine similarity for semantic, the fused RRF
    /// score for hybrid, the reranker's score for reranked hybrid.
    pub score: f32,
    /// The chunk text around keyword matches, with `<mark>` tags (keyword and hybrid hits
    /// found by the keyword side).
    pub snippet: Option<String>,
    /// Rank in the keyword list (from 1), when it was there.
    pub keyword_rank: Option<usize>,
    /// Rank in the semantic list (from 1), when it was there.
    pub semantic_rank: Option<usize>,
    /// The fused RRF score (hybrid hits).
    pub fused_score: Option<f32>,
    /// The reranker's score (reranked hybrid hits); the hits are in its order.
    pub rerank_score: Option<f32>,
}

/// What a [`Searcher`] reads. Semantic search needs `vectors`.
#[derive(Debug, Clone)]
pub struct SearcherParts {
    /// Chunk text, documents and the FTS5 index.
    pub catalog: Catalog,
    /// Embeds queries and holds chunk vectors, one model at a time.
    pub vectors: Option<Arc<dyn Vectors>>,
}

/// The rerank stage of a [`Searcher`].
#[derive(Debug, Clone)]
pub struct RerankStage {
    /// Scores the candidates.
    pub reranker: Arc<dyn Reranker>,
    /// How many fused candidates it scores when a search asks for reranking.
    pub candidates: usize,
    /// Whether searches that do not say rerank (see [`Searcher::hybrid_options`]).
    pub by_default: bool,
}

/// The search service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Searcher {
    parts: SearcherParts,
    rerank: Option<RerankStage>,
}

impl Searcher {
    /// The rerank candidates asked for when reranking is requested and no stage says how
    /// many.
    pub const DEFAULT_RERANK_CANDIDATES: usize = 20;

    /// A searcher over `parts`, without a rerank stage.
    #[must_use]
    pub fn new(parts: SearcherParts) -> Self {
        Self { parts, rerank: None }
    }

    /// This searcher with a rerank stage (or without one, for `None`).
    #[must_use]
    pub fn with_rerank(mut self, rerank: Option<RerankStage>) -> Self {
        self.rerank = rerank;
        self
    }

    /// The reranker's model id, when there is one.
    #[must_use]
    pub fn reranker_model(&self) -> Option<&str> {
        self.rerank.as_ref().map(|stage| stage.reranker.model_id())
    }

    /// The default hybrid options with reranking as `rerank` asks: `Some(true)` reranks
    /// the stage's number of candidates (and fails in [`Searcher::hybrid`] without a
    /// stage), `Some(false)` does not rerank, `None` follows the stage's `by_default`.
    #[must_use]
    pub fn hybrid_options(&self, rerank: Option<bool>) -> HybridOptions {
        let candidates =
            self.rerank.as_ref().map_or(Self::DEFAULT_RERANK_CANDIDATES, |s| s.candidates);
        let wanted = rerank.unwrap_or_else(|| self.rerank.as_ref().is_some_and(|s| s.by_default));
        HybridOptions {
            rerank_candidates: wanted.then_some(candidates),
            ..HybridOptions::default()
        }
    }

    /// BM25-ranked chunks containing any of the query's words.
    ///
    /// # Errors
    /// `InvalidInput` for an empty query (no words) or `top_k` out of range.
    pub async fn keyword(&self, query: &SearchQuery) -> Result<Vec<Hit>> {
        validate(query)?;
        let Some(query) = self.scoped(query).await? else { return Ok(Vec::new()) };
        self.keyword_hits(&query, query.top_k).await
    }

    /// Chunks whose vectors are closest to the query's.
    ///
    /// # Errors
    /// `InvalidInput` as for keyword search; `Unavailable` without an embedder or store.
    pub async fn semantic(&self, query: &SearchQuery) -> Result<Vec<Hit>> {
        validate(query)?;
        let Some(query) = self.scoped(query).await? else { return Ok(Vec::new()) };
        self.semantic_hits(&query, query.top_k).await
    }

    /// Keyword and semantic lists fused by weighted reciprocal rank fusion, then reranked
    /// when `options.rerank_candidates` asks for it.
    ///
    /// # Errors
    /// As [`Searcher::semantic`]; `InvalidInput` for negative weights or `rrf_k`, or rerank
    /// candidates out of range; `Unavailable` for reranking without a reranker.
    pub async fn hybrid(&self, query: &SearchQuery, options: HybridOptions) -> Result<Vec<Hit>> {
        validate(query)?;
        if options.keyword_weight < 0.0 || options.semantic_weight < 0.0 || options.rrf_k < 0.0 {
            return Err(Error::InvalidInput("weights and rrf_k must not be negative".to_owned()));
        }
        let reranker = match options.rerank_candidates {
            None => None,
            Some(candidates) => {
                check_rerank_candidates(candidates)?;
                let stage = self.rerank.as_ref().ok_or(Error::NoReranker)?;
                Some((&stage.reranker, candidates.max(query.top_k)))
            }
        };
        let Some(query) = self.scoped(query).await? else { return Ok(Vec::new()) };
        let query = &query;
        let keep = reranker.map_or(query.top_k, |(_, candidates)| candidates);
        let depth = keep.saturating_mul(options.candidates_factor.max(1)).min(MAX_TOP_K * 4);
        let keyword = match self.keyword_hits(query, depth).await {
            Ok(hits) => hits,
            // A query with no searchable words can still match by meaning.
            Err(err) if err.kind() == ragd_core::ErrorKind::InvalidInput => Vec::new(),
            Err(err) => return Err(err),
        };
        let semantic = self.semantic_hits(query, depth).await?;

        let ids = |hits: &[Hit]| hits.iter().map(|h| h.chunk.id).collect::<Vec<ChunkId>>();
        let fused = fuse(
            &[
                RankedList { items: ids(&keyword), weight: options.keyword_weight },
                RankedList { items: ids(&semantic), weight: options.semantic_weight },
            ],
            options.rrf_k,
        );
        let mut by_id: HashMap<ChunkId, Hit> = HashMap::new();
        for (rank, hit) in keyword.into_iter().enumerate() {
            by_id.insert(hit.chunk.id, Hit { keyword_rank: Some(rank + 1), ..hit });
        }
        for (rank, hit) in semantic.into_iter().enumerate() {
            by_id
                .entry(hit.chunk.id)
                .and_modify(|h| h.semantic_rank = Some(rank + 1))
                .or_insert(Hit { semantic_rank: Some(rank + 1), ..hit });
        }
        let fused: Vec<Hit> = fused
            .into_iter()
            .take(keep)
            .filter_map(|(id, score)| {
                by_id.remove(&id).map(|hit| Hit { score, fused_score: Some(score), ..hit })
            })
            .collect();
        match reranker {
            None => Ok(fused),
            Some((reranker, _)) => rerank(reranker.as_ref(), &query.text, fused, query.top_k).await,
        }
    }

    /// The query with its collections and metadata filter resolved to documents: the union
    /// of `document_ids` and the collections' documents, narrowed to the documents the
    /// filter matches. `None` when that leaves no document: a scope that names something
    /// but holds nothing searches nothing, never everything.
    ///
    /// # Errors
    /// `NotFound` for an unknown collection.
    async fn scoped(&self, query: &SearchQuery) -> Result<Option<SearchQuery>> {
        if query.collection_ids.is_empty() && query.filter.is_empty() {
            return Ok(Some(query.clone()));
        }
        let (collections, filter) = (query.collection_ids.clone(), query.filter.clone());
        let (from_collections, matching) = self
            .db(move |c| {
                let from_collections = if collections.is_empty() {
                    None
                } else {
                    Some(c.collection_documents(&collections)?)
                };
                let matching =
                    if filter.is_empty() { None } else { Some(c.documents_matching(&filter)?) };
                Ok((from_collections, matching))
            })
            .await?;
        // The scope: named documents and collections; none named is every document.
        let scope: Option<Vec<DocumentId>> = match from_collections {
            Some(mut documents) => {
                documents.extend(query.document_ids.iter().copied());
                Some(documents)
            }
            None if query.document_ids.is_empty() => None,
            None => Some(query.document_ids.clone()),
        };
        let mut documents = match (scope, matching) {
            (Some(scope), Some(matching)) => {
                let matching: std::collections::HashSet<DocumentId> =
                    matching.into_iter().collect();
                scope.into_iter().filter(|id| matching.contains(id)).collect()
            }
            (Some(documents), None) | (None, Some(documents)) => documents,
            (None, None) => return Ok(Some(query.clone())),
        };
        documents.sort_unstable();
        documents.dedup();
        if documents.is_empty() {
            return Ok(None);
        }
        Ok(Some(SearchQuery {
            document_ids: documents,
            collection_ids: Vec::new(),
            filter: MetadataFilter::default(),
            ..query.clone()
        }))
    }

    async fn keyword_hits(&self, query: &SearchQuery, depth: usize) -> Result<Vec<Hit>> {
        let keyword = KeywordQuery {
            text: query.text.clone(),
            top_k: u32::try_from(depth).unwrap_or(u32::MAX),
            document_ids: query.document_ids.clone(),
        };
        let hits = self.db(move |c| c.keyword_search(&keyword)).await?;
        Ok(hits
            .into_iter()
            .enumerate()
            .map(|(rank, hit)| Hit {
                chunk: hit.chunk,
                filename: hit.filename,
                score: hit.score,
                snippet: Some(hit.snippet),
                keyword_rank: Some(rank + 1),
                semantic_rank: None,
                fused_score: None,
                rerank_score: None,
            })
            .collect())
    }

    async fn semantic_hits(&self, query: &SearchQuery, depth: usize) -> Result<Vec<Hit>> {
        let space = match &self.parts.vectors {
            Some(vectors) => vectors.query_space().await,
            None => None,
        };
        let Some(VectorSpace { embedder, store }) = space else {
            return Err(Error::Unavailable(
                "no embedding model or vector store is loaded".to_owned(),
            ));
        };
        // One space from the embedding to the search: the query vector and the stored
        // vectors come from the same model even if the index is swapped meanwhile.
        let vector = embedder.embed_query(query.text.clone()).await?;
        let filter = VectorFilter {
            document_ids: query.document_ids.clone(),
            session_ids: Vec::new(),
            ids: Vec::new(),
        };
        let scored = store
            .search(SearchRequest { table: TableName::Chunks, vector, top_k: depth, filter })
            .await?;

        let ids: Vec<ChunkId> = scored.iter().map(|s| ChunkId::from_uuid(s.id)).collect();
        let (chunks, filenames) = self
            .db(move |c| {
                let chunks = c.get_chunks(&ids)?;
                let mut filenames = HashMap::new();
                for chunk in &chunks {
                    if let Entry::Vacant(slot) = filenames.entry(chunk.document_id) {
                        slot.insert(c.get_document(chunk.document_id)?.filename);
                    }
                }
                Ok((chunks, filenames))
            })
            .await?;
        let mut chunks: HashMap<ChunkId, Chunk> = chunks.into_iter().map(|c| (c.id, c)).collect();
        // Vectors whose chunk is gone (deleted mid-search) are skipped, not errors.
        Ok(scored
            .into_iter()
            .filter_map(|s| chunks.remove(&ChunkId::from_uuid(s.id)).map(|chunk| (s.score, chunk)))
            .enumerate()
            .map(|(rank, (score, chunk))| Hit {
                filename: filenames.get(&chunk.document_id).cloned().unwrap_or_default(),
                chunk,
                score,
                snippet: None,
                keyword_rank: None,
                semantic_rank: Some(rank + 1),
                fused_score: None,
                rerank_score: None,
            })
            .collect())
    }

    async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        Ok(self.parts.catalog.run(f).await?)
    }
}

/// `hits` scored by `reranker` against `query`, best first (ties keep the fused order), cut
/// to `top_k`.
async fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    hits: Vec<Hit>,
    top_k: usize,
) -> Result<Vec<Hit>> {
    if hits.is_empty() {
        return Ok(hits);
    }
    let passages = hits.iter().map(|hit| hit.chunk.text.clone()).collect();
    let scores = reranker.score(query.to_owned(), passages).await?;
    if scores.len() != hits.len() {
        return Err(Error::Core(ragd_core::Error::new(
            ragd_core::ErrorKind::Internal,
            format!("the reranker gave {} scores for {} passages", scores.len(), hits.len()),
        )));
    }
    let mut reranked: Vec<Hit> = hits
        .into_iter()
        .zip(scores)
        .map(|(hit, score)| Hit { score, rerank_score: Some(score), ..hit })
        .collect();
    // A stable sort: equal scores keep the fused order.
    reranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    reranked.truncate(top_k);
    Ok(reranked)
}

fn validate(query: &SearchQuery) -> Result<()> {
    if query.text.trim().is_empty() {
        return Err(Error::InvalidInput("the query is empty".to_owned()));
    }
    if query.top_k == 0 || query.top_k > MAX_TOP_K {
        return Err(Error::InvalidInput(format!("top_k must be between 1 and {MAX_TOP_K}")));
    }
    Ok(())
}
