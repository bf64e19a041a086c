//! The model id and dimension stored with each table, persistence across reopening, and
//! what a location that cannot work says.

use ragd_core::{DocumentId, ErrorKind, SearchRequest, TableName, VectorFilter, VectorStore};
use ragd_vector_store::{LanceStore, LanceStoreConfig, StoreLocation};

use crate::{Backend, MODEL, Place, chunk, config};

async fn reopening_checks_model_and_dimension_and_keeps_rows(backend: Backend) {
    let place = Place::new(backend);
    let record = chunk(DocumentId::new(), vec![0.0, 1.0, 0.0]);
    {
        let store = LanceStore::open(config(&place, MODEL, 3)).await.unwrap();
        store.upsert(TableName::Chunks, vec![record.clone()]).await.unwrap();
    }

    for (model, dimensions) in [("another-model", 3), (MODEL, 4)] {
        let err = LanceStore::open(config(&place, model, dimensions)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        let message = err.to_string();
        assert!(message.contains(model), "{message}");
        assert!(message.contains("re-embed"), "{message}");
        let core: ragd_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Conflict);
    }

    // Another generation is another set of tables: it opens with another model, and what
    // it records is readable without opening it.
    let other = config(&place, "another-model", 4).with_generation(2);
    let store = LanceStore::open(other).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 0);
    drop(store);
    let at = &place.location;
    let recorded = LanceStore::recorded_model(at, 2).await.unwrap();
    assert_eq!(recorded, Some(("another-model".to_owned(), 4)));
    assert_eq!(LanceStore::recorded_model(at, 7).await.unwrap(), None);
    assert_eq!(LanceStore::drop_generation(at, 2).await.unwrap(), 2);
    assert_eq!(LanceStore::recorded_model(at, 2).await.unwrap(), None);

    let store = LanceStore::open(config(&place, MODEL, 3)).await.unwrap();
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

async fn zero_dimensions_are_refused(backend: Backend) {
    let place = Place::new(backend);
    let err = LanceStore::open(config(&place, MODEL, 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

on_both_backends!(reopening_checks_model_and_dimension_and_keeps_rows, zero_dimensions_are_refused,);

#[tokio::test]
async fn a_store_this_build_cannot_reach_is_refused_with_the_feature_to_build() {
    for (uri, feature) in [("gs://bucket/ragd", "gcs"), ("az://container/ragd", "azure")] {
        let config = LanceStoreConfig::new(uri, MODEL, 3);
        let err = LanceStore::open(config).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(&format!("`{feature}` feature")), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_bucket_that_does_not_exist_fails_with_a_storage_error() {
    let bucket = ragd_test_utils::S3Bucket::create();
    let location = StoreLocation {
        uri: format!("s3://{}-missing/ragd", bucket.name),
        storage_options: bucket.storage_options(),
        read_consistency: None,
    };
    let config = LanceStoreConfig::new("", MODEL, 3).with_location(location);
    let err = LanceStore::open(config).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // The store's own answer, not just the URI (whose bucket name says "missing").
    let message = err.to_string();
    assert!(message.contains("connect to the LanceDB database at s3://"), "{message}");
    assert!(message.contains("NoSuchBucket"), "{message}");
}
