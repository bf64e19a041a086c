//! Inserting, listing, updating and deleting documents.

use ragd_catalog::{DocumentQuery, Error, InsertOutcome, NewDocument};
use ragd_core::{DocumentId, DocumentStatus, ErrorKind};

use crate::{
    Backend, add_document, check_fts_integrity, count_rows, keyword_hits, line_chunks, sha,
    temp_catalog,
};

fn new_documents_start_queued(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let id = DocumentId::new();
    let outcome = catalog
        .insert_document(NewDocument {
            id,
            filename: "a.pdf".into(),
            mime: "application/pdf".into(),
            sha256: sha(1).to_uppercase(),
            bytes: 1234,
        })
        .unwrap();
    assert!(outcome.is_created());
    let document = outcome.into_document();
    assert_eq!(document.id, id);
    assert_eq!(document.status, DocumentStatus::Queued);
    assert_eq!(document.progress, 0);
    assert_eq!(document.error, None);
    assert_eq!(document.bytes, 1234);
    assert_eq!(document.sha256, sha(1), "sha256 is stored lowercase");
    assert_eq!(document.created_at, document.updated_at);
    assert_eq!(catalog.get_document(id).unwrap(), document);
}

fn same_sha256_returns_the_existing_document_untouched(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let first = add_document(&catalog, "first.txt", "text/plain", 7);
    catalog.set_status(first.id, DocumentStatus::Ready, 100, None).unwrap();
    let before = catalog.get_document(first.id).unwrap();

    let outcome = catalog
        .insert_document(NewDocument {
            id: DocumentId::new(),
            filename: "second.txt".into(),
            mime: "text/markdown".into(),
            sha256: sha(7),
            bytes: 1,
        })
        .unwrap();
    let InsertOutcome::Existing(existing) = outcome else { panic!("expected Existing") };
    assert_eq!(existing, before);
    assert_eq!(catalog.count_documents().unwrap(), 1);
}

fn a_new_document_gets_its_metadata_in_the_same_transaction(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let new = |n: u32| NewDocument {
        id: DocumentId::new(),
        filename: format!("{n}.txt"),
        mime: "text/plain".into(),
        sha256: sha(n),
        bytes: 1,
    };
    let tags: ragd_core::Metadata =
        [("source_path".to_owned(), ragd_core::MetadataValue::String("a/1.txt".into()))].into();
    let created = catalog.insert_document_with_metadata(new(1), &tags).unwrap().into_document();
    assert_eq!(created.metadata, tags);
    assert_eq!(catalog.get_document(created.id).unwrap().metadata, tags);
    // A duplicate keeps what it had.
    let other: ragd_core::Metadata =
        [("source_path".to_owned(), ragd_core::MetadataValue::String("b/1.txt".into()))].into();
    let existing = catalog.insert_document_with_metadata(new(1), &other).unwrap();
    assert!(!existing.is_created());
    assert_eq!(catalog.get_document(created.id).unwrap().metadata, tags);
    // Too many keys: nothing is stored.
    let many: ragd_core::Metadata = (0..=ragd_core::MAX_METADATA_KEYS)
        .map(|i| (format!("k{i}"), ragd_core::MetadataValue::Bool(true)))
        .collect();
    let err = catalog.insert_document_with_metadata(new(2), &many).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(catalog.count_documents().unwrap(), 1);
}

fn warnings_are_kept_until_replaced(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "scan.pdf", "application/pdf", 3);
    assert_eq!(document.warnings, Vec::<String>::new());
    let warnings = vec!["page 2 was left empty: OCR failed (\"quoted\")".to_owned()];
    catalog.set_warnings(document.id, &warnings).unwrap();
    assert_eq!(catalog.get_document(document.id).unwrap().warnings, warnings);
    catalog.set_warnings(document.id, &[]).unwrap();
    assert_eq!(catalog.get_document(document.id).unwrap().warnings, Vec::<String>::new());
    let err = catalog.set_warnings(DocumentId::new(), &warnings).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn reused_id_or_bad_input_is_refused(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let first = add_document(&catalog, "a.txt", "text/plain", 1);
    let reused = catalog.insert_document(NewDocument {
        id: first.id,
        filename: "b.txt".into(),
        mime: "text/plain".into(),
        sha256: sha(2),
        bytes: 1,
    });
    assert_eq!(reused.unwrap_err().kind(), ErrorKind::Conflict);

    let bad_sha = catalog.insert_document(NewDocument {
        id: DocumentId::new(),
        filename: "c.txt".into(),
        mime: "text/plain".into(),
        sha256: "not-a-hash".into(),
        bytes: 1,
    });
    assert_eq!(bad_sha.unwrap_err().kind(), ErrorKind::InvalidInput);

    let too_big = catalog.insert_document(NewDocument {
        id: DocumentId::new(),
        filename: "d.txt".into(),
        mime: "text/plain".into(),
        sha256: sha(3),
        bytes: u64::MAX,
    });
    assert_eq!(too_big.unwrap_err().kind(), ErrorKind::InvalidInput);
}

fn unknown_document_is_not_found(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let err = catalog.get_document(DocumentId::new()).unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "document", .. }), "{err:?}");
    let err = catalog.set_status(DocumentId::new(), DocumentStatus::Ready, 100, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!catalog.delete_document(DocumentId::new()).unwrap());
}

fn set_status_updates_state_and_time(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    catalog.set_status(document.id, DocumentStatus::Failed, 40, Some("bad pdf")).unwrap();
    let failed = catalog.get_document(document.id).unwrap();
    assert_eq!(failed.status, DocumentStatus::Failed);
    assert_eq!(failed.progress, 40);
    assert_eq!(failed.error.as_deref(), Some("bad pdf"));
    assert!(failed.updated_at > document.updated_at);
    assert_eq!(failed.created_at, document.created_at);

    catalog.set_status(document.id, DocumentStatus::Queued, 0, None).unwrap();
    assert_eq!(catalog.get_document(document.id).unwrap().error, None);

    let err = catalog.set_status(document.id, DocumentStatus::Ready, 101, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

fn list_filters_and_pages_newest_first(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "report_2024.pdf", "application/pdf", 1);
    let b = add_document(&catalog, "report-2024.pdf", "application/pdf", 2);
    let c = add_document(&catalog, "100% done.txt", "text/plain", 3);
    let d = add_document(&catalog, "1000 done.txt", "text/plain", 4);
    let e = add_document(&catalog, "notes.md", "text/markdown", 5);
    catalog.set_status(b.id, DocumentStatus::Ready, 100, None).unwrap();
    catalog.set_status(d.id, DocumentStatus::Ready, 100, None).unwrap();

    let ids = |query: DocumentQuery| -> (Vec<DocumentId>, u64) {
        let page = catalog.list_documents(&query).unwrap();
        (page.items.iter().map(|doc| doc.id).collect(), page.total)
    };

    assert_eq!(ids(DocumentQuery::default()), (vec![e.id, d.id, c.id, b.id, a.id], 5));
    assert_eq!(
        ids(DocumentQuery { status: Some(DocumentStatus::Ready), ..DocumentQuery::default() }),
        (vec![d.id, b.id], 2)
    );
    assert_eq!(
        ids(DocumentQuery { mime: Some("text/plain".into()), ..DocumentQuery::default() }),
        (vec![d.id, c.id], 2)
    );
    // `%` and `_` are literal, and ASCII case does not matter.
    assert_eq!(
        ids(DocumentQuery { filename_contains: Some("0% D".into()), ..DocumentQuery::default() }),
        (vec![c.id], 1)
    );
    assert_eq!(
        ids(DocumentQuery { filename_contains: Some("t_2".into()), ..DocumentQuery::default() }),
        (vec![a.id], 1)
    );
    assert_eq!(
        ids(DocumentQuery { filename_contains: Some("%".into()), ..DocumentQuery::default() }),
        (vec![c.id], 1)
    );
    assert_eq!(
        ids(DocumentQuery {
            status: Some(DocumentStatus::Queued),
            mime: Some("application/pdf".into()),
            filename_contains: Some("report".into()),
            ..DocumentQuery::default()
        }),
        (vec![a.id], 1)
    );

    // Paging keeps the total of all matches.
    assert_eq!(
        ids(DocumentQuery { limit: 2, offset: 0, ..DocumentQuery::default() }),
        (vec![e.id, d.id], 5)
    );
    assert_eq!(
        ids(DocumentQuery { limit: 2, offset: 2, ..DocumentQuery::default() }),
        (vec![c.id, b.id], 5)
    );
    assert_eq!(
        ids(DocumentQuery { limit: 2, offset: 4, ..DocumentQuery::default() }),
        (vec![a.id], 5)
    );
    assert_eq!(
        ids(DocumentQuery { limit: 2, offset: 10, ..DocumentQuery::default() }),
        (vec![], 5)
    );
}

fn documents_with_status_finds_unfinished_work(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "a", "text/plain", 1);
    let b = add_document(&catalog, "b", "text/plain", 2);
    let c = add_document(&catalog, "c", "text/plain", 3);
    catalog.set_status(b.id, DocumentStatus::Embedding, 50, None).unwrap();
    catalog.set_status(c.id, DocumentStatus::Ready, 100, None).unwrap();
    let found: Vec<DocumentId> = catalog
        .documents_with_status(&[DocumentStatus::Queued, DocumentStatus::Embedding])
        .unwrap()
        .iter()
        .map(|doc| doc.id)
        .collect();
    assert_eq!(found, vec![a.id, b.id]);
    assert!(catalog.documents_with_status(&[]).unwrap().is_empty());
}

fn delete_removes_every_trace(backend: Backend) {
    let (dir, catalog) = temp_catalog(backend);
    let keep = add_document(&catalog, "keep.txt", "text/plain", 1);
    let gone = add_document(&catalog, "gone.txt", "text/plain", 2);
    let keep_text = "kept alpha\nkept beta";
    let gone_text = "zanzibar alpha\nzanzibar gamma";
    catalog.replace_chunks(keep.id, keep_text, &line_chunks(keep.id, keep_text)).unwrap();
    catalog.replace_chunks(gone.id, gone_text, &line_chunks(gone.id, gone_text)).unwrap();

    assert!(catalog.delete_document(gone.id).unwrap());
    assert!(!catalog.delete_document(gone.id).unwrap());

    assert_eq!(count_rows(&dir, "documents"), 1);
    assert_eq!(count_rows(&dir, "document_texts"), 1);
    assert_eq!(count_rows(&dir, "chunks"), 2);
    assert!(keyword_hits(&catalog, "zanzibar").is_empty());
    assert_eq!(keyword_hits(&catalog, "alpha").len(), 1);
    check_fts_integrity(&dir);

    assert_eq!(catalog.get_document(gone.id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(catalog.count_chunks(Some(gone.id)).unwrap(), 0);
    assert_eq!(catalog.count_chunks(None).unwrap(), 2);
}

fn clones_share_one_database_across_threads(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let catalog = catalog.clone();
            std::thread::spawn(move || add_document(&catalog, &format!("{n}.txt"), "text/plain", n))
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(catalog.count_documents().unwrap(), 4);
}

on_both_backends!(
    new_documents_start_queued,
    same_sha256_returns_the_existing_document_untouched,
    a_new_document_gets_its_metadata_in_the_same_transaction,
    warnings_are_kept_until_replaced,
    reused_id_or_bad_input_is_refused,
    unknown_document_is_not_found,
    set_status_updates_state_and_time,
    list_filters_and_pages_newest_first,
    documents_with_status_finds_unfinished_work,
    delete_removes_every_trace,
    clones_share_one_database_across_threads,
);
