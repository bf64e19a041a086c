//! The model id and dimension stored with each table, and persistence across reopening.

use ragd_core::{DocumentId, ErrorKind, SearchRequest, TableName, VectorFilter, VectorStore};
use ragd_vector_store::LanceStore;
use tempfile::TempDir;

use crate::{MODEL, chunk, config};

#[tokio::test]
async fn reopening_checks_model_and_dimension_and_keeps_rows() {
    let dir = TempDir::new().unwrap();
    let record = chunk(DocumentId::new(), vec![0.0, 1.0, 0.0]);
    {
        let store = LanceStore::open(config(&dir, MODEL, 3)).await.unwrap();
        store.upsert(TableName::Chunks, vec![record.clone()]).await.unwrap();
    }

    for (model, dimensions) in [("another-model", 3), (MODEL, 4)] {
        let err = LanceStore::open(config(&dir, model, dimensions)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        let message = err.to_string();
        assert!(message.contains(model), "{message}");
        assert!(message.contains("re-embed"), "{message}");
        let core: ragd_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Conflict);
    }

    // Another generation is another set of tables: it opens with another model, and what
    // it records is readable without opening it.
    let other = config(&dir, "another-model", 4).with_generation(2);
    let store = LanceStore::open(other).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 0);
    drop(store);
    let uri = dir.path().join("lance").to_string_lossy().into_owned();
    let recorded = LanceStore::recorded_model(&uri, 2).await.unwrap();
    assert_eq!(recorded, Some(("another-model".to_owned(), 4)));
    assert_eq!(LanceStore::recorded_model(&uri, 7).await.unwrap(), None);
    assert_eq!(LanceStore::drop_generation(&uri, 2).await.unwrap(), 2);
    assert_eq!(LanceStore::recorded_model(&uri, 2).await.unwrap(), None);

    let store = LanceStore::open(config(&dir, MODEL, 3)).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);
    assert_eq!(store.ids(TableName::Chunks).await.unwrap().len(), 1);
    let hits = store
        .search(SearchRequest {
            table: TableName::Chunks,
            vector: vec![0.0, 1.0, 0.0],
            top_k: 1,
            filter: VectorFilter::default(),
        })
        .await
        .unwrap();
    assert_eq!(hits[0].id, record.id);
}

#[tokio::test]
async fn zero_dimensions_are_refused() {
    let dir = TempDir::new().unwrap();
    let err = LanceStore::open(config(&dir, MODEL, 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
