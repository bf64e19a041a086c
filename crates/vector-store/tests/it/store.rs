//! Upsert, search, filter and delete behaviour.

use ragd_core::{
    DeleteRequest, DocumentId, ErrorKind, SearchRequest, SessionId, TableName, VectorFilter,
    VectorStore,
};

use crate::{Backend, chunk, memory, open_store};

/// A search of `table` for `vector` with no filter.
fn query(table: TableName, vector: Vec<f32>, top_k: usize) -> SearchRequest {
    SearchRequest { table, vector, top_k, filter: VectorFilter::default() }
}

async fn exact_vector_comes_first_and_ranking_is_cosine(backend: Backend) {
    let (_dir, store) = open_store(backend, 3).await;
    let doc = DocumentId::new();
    // Angles to the query [1, 0, 0]: 0, 45 and 90 degrees; lengths differ on purpose,
    // because cosine ignores them.
    let exact = chunk(doc, vec![2.0, 0.0, 0.0]);
    let diagonal = chunk(doc, vec![1.0, 1.0, 0.0]);
    let orthogonal = chunk(doc, vec![0.0, 0.0, 5.0]);
    let opposite = chunk(doc, vec![-1.0, 0.0, 0.0]);
    let report = store
        .upsert(
            TableName::Chunks,
            vec![orthogonal.clone(), exact.clone(), opposite.clone(), diagonal.clone()],
        )
        .await
        .unwrap();
    assert_eq!(report.written, 4);

    let hits = store.search(query(TableName::Chunks, vec![1.0, 0.0, 0.0], 10)).await.unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![exact.id, diagonal.id, orthogonal.id, opposite.id]);
    let expected = [1.0, std::f32::consts::FRAC_1_SQRT_2, 0.0, -1.0];
    for (hit, want) in hits.iter().zip(expected) {
        assert!((hit.score - want).abs() < 1e-4, "score {} != {want}", hit.score);
    }
    assert_eq!(hits[0].document_id, Some(doc));
    assert_eq!(hits[0].session_id, None);

    let top2 = store.search(query(TableName::Chunks, vec![1.0, 0.0, 0.0], 2)).await.unwrap();
    assert_eq!(top2.iter().map(|h| h.id).collect::<Vec<_>>(), vec![exact.id, diagonal.id]);
    assert!(
        store.search(query(TableName::Chunks, vec![1.0, 0.0, 0.0], 0)).await.unwrap().is_empty()
    );
}

async fn upserting_an_id_twice_keeps_one_row_with_the_new_vector(backend: Backend) {
    let (_dir, store) = open_store(backend, 2).await;
    let mut record = chunk(DocumentId::new(), vec![1.0, 0.0]);
    store.upsert(TableName::Chunks, vec![record.clone()]).await.unwrap();
    record.vector = vec![0.0, 1.0];
    store.upsert(TableName::Chunks, vec![record.clone()]).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);

    let hits = store.search(query(TableName::Chunks, vec![0.0, 1.0], 5)).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, record.id);
    assert!((hits[0].score - 1.0).abs() < 1e-5, "score {}", hits[0].score);

    // The same id twice in one call is one row too, holding the last vector.
    let mut twin = record.clone();
    twin.vector = vec![1.0, 1.0];
    store.upsert(TableName::Chunks, vec![record.clone(), twin]).await.unwrap();
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);
    let hits = store.search(query(TableName::Chunks, vec![1.0, 1.0], 5)).await.unwrap();
    assert!((hits[0].score - 1.0).abs() < 1e-5, "score {}", hits[0].score);
}

async fn filters_never_return_rows_of_other_documents_or_sessions(backend: Backend) {
    let (_dir, store) = open_store(backend, 2).await;
    let wanted = DocumentId::new();
    let other = DocumentId::new();
    let wanted_chunk = chunk(wanted, vec![0.0, 1.0]);
    // The other document's chunk is the closer one, so an unfiltered search ranks it first.
    store
        .upsert(TableName::Chunks, vec![wanted_chunk.clone(), chunk(other, vec![1.0, 0.0])])
        .await
        .unwrap();
    let mut request = query(TableName::Chunks, vec![1.0, 0.0], 10);
    request.filter.document_ids = vec![wanted];
    let hits = store.search(request).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![wanted_chunk.id]);

    let session = SessionId::new();
    let mine = memory(session, vec![0.0, 1.0]);
    store
        .upsert(TableName::Memory, vec![mine.clone(), memory(SessionId::new(), vec![1.0, 0.0])])
        .await
        .unwrap();
    let mut request = query(TableName::Memory, vec![1.0, 0.0], 10);
    request.filter.session_ids = vec![session];
    let hits = store.search(request).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, mine.id);
    assert_eq!(hits[0].session_id, Some(session));

    // The tables are separate: chunks never show up in memory searches.
    let all_memory = store.search(query(TableName::Memory, vec![1.0, 0.0], 10)).await.unwrap();
    assert_eq!(all_memory.len(), 2);
}

async fn delete_by_document_removes_exactly_its_rows(backend: Backend) {
    let (_dir, store) = open_store(backend, 2).await;
    let gone = DocumentId::new();
    let kept = DocumentId::new();
    let records =
        vec![chunk(gone, vec![1.0, 0.0]), chunk(gone, vec![0.0, 1.0]), chunk(kept, vec![1.0, 1.0])];
    store.upsert(TableName::Chunks, records).await.unwrap();

    let deleted = store
        .delete(DeleteRequest {
            table: TableName::Chunks,
            filter: VectorFilter {
                document_ids: vec![gone],
                session_ids: Vec::new(),
                ids: Vec::new(),
            },
        })
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);
    assert!(store.ids_for_document(gone).await.unwrap().is_empty());
    assert_eq!(store.ids_for_document(kept).await.unwrap().len(), 1);

    let err = store
        .delete(DeleteRequest { table: TableName::Chunks, filter: VectorFilter::default() })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 1);
}

async fn wrong_dimension_is_invalid_input(backend: Backend) {
    let (_dir, store) = open_store(backend, 3).await;
    let err = store
        .upsert(TableName::Chunks, vec![chunk(DocumentId::new(), vec![1.0, 0.0])])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("dimensions"), "{}", err.message());
    let err = store.search(query(TableName::Chunks, vec![1.0], 3)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.count(TableName::Chunks).await.unwrap(), 0);
}

async fn orphans_are_removed_and_health_is_ok(backend: Backend) {
    let (_dir, store) = open_store(backend, 2).await;
    let doc = DocumentId::new();
    let keep = chunk(doc, vec![1.0, 0.0]);
    let orphan = chunk(doc, vec![0.0, 1.0]);
    store.upsert(TableName::Chunks, vec![keep.clone(), orphan]).await.unwrap();
    let removed = store.retain(TableName::Chunks, &[keep.id].into_iter().collect()).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(store.ids_for_document(doc).await.unwrap(), vec![keep.id]);
    store.health().await.unwrap();
}

on_both_backends!(
    exact_vector_comes_first_and_ranking_is_cosine,
    upserting_an_id_twice_keeps_one_row_with_the_new_vector,
    filters_never_return_rows_of_other_documents_or_sessions,
    delete_by_document_removes_exactly_its_rows,
    wrong_dimension_is_invalid_input,
    orphans_are_removed_and_health_is_ok,
);
