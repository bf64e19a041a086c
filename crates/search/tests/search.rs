//! Search modes on a real SQLite catalog, with the deterministic fake embedder and the
//! in-memory vector store (the real model and LanceDB are exercised in `bins/ragd`).

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::sync::Arc;

use ragd_catalog::{Catalog, NewDocument};
use ragd_core::{
    Chunk, ChunkId, DocumentId, EmbeddedRecord, Embedder, ErrorKind, TableName, VectorStore,
};
use ragd_search::{HybridOptions, SearchQuery, Searcher, SearcherParts};
use ragd_test_utils::{FakeEmbedder, InMemoryStore};

struct Corpus {
    searcher: Searcher,
    catalog: Catalog,
    docs: Vec<DocumentId>,
}

/// Two documents; each text becomes one chunk with its vector.
async fn corpus(texts: &[&[&str]]) -> Corpus {
    let catalog = Catalog::open_in_memory().unwrap();
    let embedder = Arc::new(FakeEmbedder::new(64));
    let store = Arc::new(InMemoryStore::new());
    let mut docs = Vec::new();
    for (d, chunks) in texts.iter().enumerate() {
        let id = DocumentId::new();
        let sha = format!("{d:064x}");
        let new = NewDocument {
            id,
            filename: format!("doc{d}.txt"),
            mime: "text/plain".into(),
            sha256: sha,
            bytes: 1,
        };
        catalog.insert_document(new).unwrap();
        let text = chunks.join("\n");
        let mut offset = 0;
        let mut rows = Vec::new();
        for (ordinal, chunk) in chunks.iter().enumerate() {
            let len = chunk.chars().count() as u64;
            rows.push(Chunk {
                id: ChunkId::new(),
                document_id: id,
                ordinal: ordinal as u32,
                text: (*chunk).to_owned(),
                char_start: offset,
                char_end: offset + len,
                token_count: 1,
                page: None,
                heading: None,
            });
            offset += len + 1;
        }
        catalog.replace_chunks(id, &text, &rows).unwrap();
        let vectors =
            embedder.embed_documents(rows.iter().map(|c| c.text.clone()).collect()).await.unwrap();
        let records = rows
            .iter()
            .zip(vectors)
            .map(|(c, vector)| EmbeddedRecord {
                id: *c.id.as_uuid(),
                document_id: Some(id),
                session_id: None,
                vector,
            })
            .collect();
        store.upsert(TableName::Chunks, records).await.unwrap();
        docs.push(id);
    }
    let searcher = Searcher::new(SearcherParts {
        catalog: catalog.clone(),
        vectors: Some(ragd_core::FixedVectors::shared(embedder, store)),
    });
    Corpus { searcher, catalog, docs }
}

fn query(text: &str, top_k: usize) -> SearchQuery {
    SearchQuery {
        text: text.to_owned(),
        top_k,
        document_ids: Vec::new(),
        collection_ids: Vec::new(),
        filter: ragd_core::MetadataFilter::default(),
    }
}

const TEXTS: &[&[&str]] = &[
    &["the zebra crossing is near the station", "apples and pears grow in the orchard"],
    &["a zebra grazes on the savanna grass", "trains leave the station every hour"],
];

#[tokio::test]
async fn keyword_ranks_exact_terms_and_highlights() {
    let c = corpus(TEXTS).await;
    let hits = c.searcher.keyword(&query("orchard", 5)).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].chunk.text.contains("orchard"));
    assert!(hits[0].snippet.as_deref().unwrap().contains("<mark>orchard</mark>"));
    assert_eq!(hits[0].filename, "doc0.txt");
}

#[tokio::test]
async fn semantic_finds_by_vector_and_reads_chunks_back() {
    let c = corpus(TEXTS).await;
    let hits = c.searcher.semantic(&query("zebra savanna", 2)).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].chunk.text, "a zebra grazes on the savanna grass");
    assert!(hits[0].score >= hits[1].score);
    assert_eq!(hits[0].semantic_rank, Some(1));
}

#[tokio::test]
async fn document_filters_hold_in_every_mode() {
    let c = corpus(TEXTS).await;
    let only = SearchQuery { document_ids: vec![c.docs[1]], ..query("zebra station", 10) };
    for hits in [
        c.searcher.keyword(&only).await.unwrap(),
        c.searcher.semantic(&only).await.unwrap(),
        c.searcher.hybrid(&only, HybridOptions::default()).await.unwrap(),
    ] {
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|h| h.chunk.document_id == c.docs[1]));
    }
}

#[tokio::test]
async fn hybrid_ranks_chunks_found_by_both_first() {
    let c = corpus(TEXTS).await;
    let hits =
        c.searcher.hybrid(&query("zebra station", 4), HybridOptions::default()).await.unwrap();
    let top = &hits[0];
    assert!(top.keyword_rank.is_some() && top.semantic_rank.is_some(), "{hits:#?}");
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(hits.len() <= 4);
}

#[tokio::test]
async fn bad_queries_are_invalid_input() {
    let c = corpus(TEXTS).await;
    for bad in [query("", 5), query("   ", 5), query("zebra", 0), query("zebra", 101)] {
        assert_eq!(c.searcher.keyword(&bad).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(
            c.searcher.hybrid(&bad, HybridOptions::default()).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    let negative = HybridOptions { keyword_weight: -1.0, ..HybridOptions::default() };
    assert_eq!(
        c.searcher.hybrid(&query("zebra", 5), negative).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // Punctuation only: no keyword terms, but hybrid still answers by meaning.
    assert_eq!(
        c.searcher.keyword(&query("?!", 5)).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(c.searcher.hybrid(&query("?!", 5), HybridOptions::default()).await.is_ok());
}

#[tokio::test]
async fn semantic_without_a_model_is_unavailable_and_deleted_chunks_are_skipped() {
    let c = corpus(TEXTS).await;
    let keyword_only = Searcher::new(SearcherParts { catalog: c.catalog.clone(), vectors: None });
    assert_eq!(
        keyword_only.semantic(&query("zebra", 3)).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert!(keyword_only.keyword(&query("zebra", 3)).await.is_ok());

    // The catalog is the source of truth: vectors of a deleted document are not returned.
    c.catalog.delete_document(c.docs[0]).unwrap();
    let hits = c.searcher.semantic(&query("zebra crossing", 4)).await.unwrap();
    assert!(hits.iter().all(|h| h.chunk.document_id == c.docs[1]));
}

/// Scores a passage by whether it contains a fixed word: enough to check the rerank stage's
/// orchestration (the real reranker is tested in `ragd-llm-backends` and `bins/ragd`).
#[derive(Debug)]
struct WordReranker(&'static str);

#[async_trait::async_trait]
impl ragd_core::Reranker for WordReranker {
    fn model_id(&self) -> &str {
        "word"
    }

    async fn score(&self, _query: String, passages: Vec<String>) -> ragd_core::Result<Vec<f32>> {
        Ok(passages.iter().map(|p| if p.contains(self.0) { 1.0 } else { 0.0 }).collect())
    }
}

#[tokio::test]
async fn reranking_reorders_the_fused_candidates_and_keeps_both_scores() {
    let c = corpus(TEXTS).await;
    let plain = c.searcher.hybrid(&query("zebra station", 4), HybridOptions::default()).await;
    let plain = plain.unwrap();
    assert!(plain.iter().all(|h| h.rerank_score.is_none() && h.fused_score == Some(h.score)));

    let stage = ragd_search::RerankStage {
        reranker: Arc::new(WordReranker("savanna")),
        candidates: 10,
        by_default: true,
    };
    let searcher = c.searcher.clone().with_rerank(Some(stage));
    assert_eq!(searcher.reranker_model(), Some("word"));
    assert_eq!(searcher.hybrid_options(None).rerank_candidates, Some(10), "on by default");
    assert_eq!(searcher.hybrid_options(Some(false)).rerank_candidates, None);
    assert_eq!(c.searcher.hybrid_options(None).rerank_candidates, None, "no stage");
    let options = searcher.hybrid_options(None);
    let hits = searcher.hybrid(&query("zebra station", 2), options).await.unwrap();
    assert_eq!(hits.len(), 2, "cut to top_k after reranking");
    assert_eq!(hits[0].chunk.text, "a zebra grazes on the savanna grass");
    assert_eq!(hits[0].rerank_score, Some(1.0));
    assert_eq!(hits[0].score, 1.0);
    assert!(hits[0].fused_score.is_some_and(|s| s > 0.0));
    let fused_first = &plain[0];
    assert_ne!(fused_first.chunk.text, hits[0].chunk.text, "the reranker changed the order");

    for bad in [0, ragd_search::MAX_RERANK_CANDIDATES + 1] {
        let options = HybridOptions { rerank_candidates: Some(bad), ..HybridOptions::default() };
        let err = searcher.hybrid(&query("zebra", 2), options).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let err = c.searcher.hybrid(&query("zebra", 2), c.searcher.hybrid_options(Some(true))).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("no reranker"), "{err}");
}
