//! Several stores on one database, as several ragd replicas open one bucket: tables created
//! at once, writes committed at once, each store reading what the others wrote.

use std::sync::Arc;

use ragd_core::{DeleteRequest, DocumentId, SearchRequest, TableName, VectorFilter, VectorStore};
use ragd_vector_store::LanceStore;

use crate::{Backend, MODEL, Place, Vectors, chunk, config};

const DIMENSIONS: usize = 8;

/// Stores opening one new database at once all open it; none sees a half-made table.
async fn stores_opening_a_new_database_at_once_all_open_it(backend: Backend) {
    let place = Place::new(backend);
    let opened = futures::future::join_all(
        (0..8).map(|_| LanceStore::open(config(&place, MODEL, DIMENSIONS))),
    )
    .await;
    let stores: Vec<LanceStore> = opened.into_iter().map(Result::unwrap).collect();
    let record = chunk(DocumentId::new(), Vectors::seeded(3).next(DIMENSIONS));
    stores[0].upsert(TableName::Chunks, vec![record.clone()]).await.unwrap();
    for store in &stores {
        assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);
    }
}

/// Two stores writing the same table at once lose no write, and each finds the other's rows.
async fn concurrent_writers_lose_nothing_and_read_each_other(backend: Backend) {
    const WRITERS: usize = 6;
    const ROWS: usize = 10;
    let place = Place::new(backend);
    let a = Arc::new(LanceStore::open(config(&place, MODEL, DIMENSIONS)).await.unwrap());
    let b = Arc::new(LanceStore::open(config(&place, MODEL, DIMENSIONS)).await.unwrap());
    let mut vectors = Vectors::seeded(11);
    let documents: Vec<DocumentId> = (0..WRITERS).map(|_| DocumentId::new()).collect();
    let batches: Vec<_> = documents
        .iter()
        .map(|&doc| (0..ROWS).map(|_| chunk(doc, vectors.next(DIMENSIONS))).collect::<Vec<_>>())
        .collect();

    let writes = batches.iter().enumerate().map(|(writer, batch)| {
        let store = Arc::clone(if writer % 2 == 0 { &a } else { &b });
        let batch = batch.clone();
        async move { store.upsert(TableName::Chunks, batch).await }
    });
    for report in futures::future::join_all(writes).await {
        assert_eq!(report.unwrap().written, ROWS as u64);
    }

    for store in [&a, &b] {
        assert_eq!(store.count(TableName::Chunks).await.unwrap(), (WRITERS * ROWS) as u64);
    }
    // Each store finds a row only the other one wrote, at the top.
    for (reader, written) in [(&a, &batches[1][4]), (&b, &batches[0][7])] {
        let hits = reader
            .search(SearchRequest {
                table: TableName::Chunks,
                vector: written.vector.clone(),
                top_k: 3,
                filter: VectorFilter::default(),
            })
            .await
            .unwrap();
        assert_eq!(hits[0].id, written.id);
    }

    // A delete through one store is seen by the other.
    let gone = documents[2];
    let filter =
        VectorFilter { document_ids: vec![gone], session_ids: Vec::new(), ids: Vec::new() };
    a.delete(DeleteRequest { table: TableName::Chunks, filter }).await.unwrap();
    assert!(b.ids_for_document(gone).await.unwrap().is_empty());
    assert_eq!(b.count(TableName::Chunks).await.unwrap(), ((WRITERS - 1) * ROWS) as u64);
}

on_both_backends!(
    stores_opening_a_new_database_at_once_all_open_it,
    concurrent_writers_lose_nothing_and_read_each_other,
);
