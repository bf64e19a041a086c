//! The ANN index built once a table passes the configured threshold.

use ragd_core::{DocumentId, SearchRequest, TableName, VectorFilter, VectorStore};
use ragd_vector_store::LanceStore;

use crate::{Backend, MODEL, Place, Vectors, chunk, config};

async fn index_is_built_past_the_threshold_and_search_stays_exact(backend: Backend) {
    const DIMENSIONS: usize = 32;
    let place = Place::new(backend);
    let mut settings = config(&place, MODEL, DIMENSIONS);
    settings.index_threshold_rows = 300;
    let store = LanceStore::open(settings).await.unwrap();
    let mut vectors = Vectors::seeded(42);
    let doc = DocumentId::new();

    let first: Vec<_> = (0..200).map(|_| chunk(doc, vectors.next(DIMENSIONS))).collect();
    store.upsert(TableName::Chunks, first.clone()).await.unwrap();
    assert!(!store.has_vector_index(TableName::Chunks).await.unwrap());

    let second: Vec<_> = (0..200).map(|_| chunk(doc, vectors.next(DIMENSIONS))).collect();
    store.upsert(TableName::Chunks, second.clone()).await.unwrap();
    assert!(store.has_vector_index(TableName::Chunks).await.unwrap());

    for target in [&first[7], &first[150], &second[3], &second[199]] {
        let hits = store
            .search(SearchRequest {
                table: TableName::Chunks,
                vector: target.vector.clone(),
                top_k: 5,
                filter: VectorFilter::default(),
            })
            .await
            .unwrap();
        assert_eq!(hits.len(), 5);
        assert_eq!(hits[0].id, target.id);
        assert!((hits[0].score - 1.0).abs() < 1e-4, "score {}", hits[0].score);
        // Every score is the exact cosine, not the index's internal (quantized, squared
        // L2) distance.
        for hit in &hits {
            let row = first.iter().chain(&second).find(|row| row.id == hit.id).unwrap();
            let want = cosine(&target.vector, &row.vector);
            assert!((hit.score - want).abs() < 1e-4, "score {} != cosine {want}", hit.score);
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

async fn rows_added_after_the_index_are_still_found(backend: Backend) {
    const DIMENSIONS: usize = 16;
    let place = Place::new(backend);
    let mut settings = config(&place, MODEL, DIMENSIONS);
    settings.index_threshold_rows = 300;
    let store = LanceStore::open(settings).await.unwrap();
    let mut vectors = Vectors::seeded(7);
    let doc = DocumentId::new();
    let rows: Vec<_> = (0..320).map(|_| chunk(doc, vectors.next(DIMENSIONS))).collect();
    store.upsert(TableName::Chunks, rows).await.unwrap();
    assert!(store.has_vector_index(TableName::Chunks).await.unwrap());

    let late = chunk(doc, vectors.next(DIMENSIONS));
    store.upsert(TableName::Chunks, vec![late.clone()]).await.unwrap();
    let hits = store
        .search(SearchRequest {
            table: TableName::Chunks,
            vector: late.vector.clone(),
            top_k: 3,
            filter: VectorFilter {
                document_ids: vec![doc],
                session_ids: Vec::new(),
                ids: Vec::new(),
            },
        })
        .await
        .unwrap();
    assert_eq!(hits[0].id, late.id);
}

on_both_backends!(
    index_is_built_past_the_threshold_and_search_stays_exact,
    rows_added_after_the_index_are_still_found,
);
