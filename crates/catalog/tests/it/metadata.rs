//! Document metadata on a real SQLite file: typed values, patches, the key limit, and
//! filters (equals, in, ranges) in the document list and resolved to documents.

use ragd_catalog::DocumentQuery;
use ragd_core::{
    DocumentId, ErrorKind, MAX_METADATA_KEYS, Metadata, MetadataFilter, MetadataValue,
};
use serde_json::json;

use crate::{Backend, add_document, temp_catalog};

fn metadata(value: serde_json::Value) -> Metadata {
    ragd_core::metadata_from_json(&value).unwrap()
}

fn filter(value: serde_json::Value) -> MetadataFilter {
    MetadataFilter::from_json(&value).unwrap()
}

fn metadata_keeps_its_types_and_is_patched_key_by_key(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let doc = add_document(&catalog, "a.md", "text/markdown", 1);
    assert!(catalog.get_document(doc.id).unwrap().metadata.is_empty());
    let set = metadata(json!({"lang": "en", "year": 2021, "draft": true, "score": 0.5}));
    let updated = catalog.update_document_metadata(doc.id, &set, &[]).unwrap();
    assert_eq!(updated.metadata, set);
    assert_eq!(catalog.get_document(doc.id).unwrap().metadata, set);

    // Set one key, replace one with another type, remove one; the rest stay.
    let patch = metadata(json!({"year": "2021", "team": "hr"}));
    let updated = catalog.update_document_metadata(doc.id, &patch, &["draft".to_owned()]).unwrap();
    assert_eq!(
        updated.metadata,
        metadata(json!({"lang": "en", "year": "2021", "score": 0.5, "team": "hr"}))
    );
    // The list carries it too.
    let listed = catalog.list_documents(&DocumentQuery::default()).unwrap();
    assert_eq!(listed.items[0].metadata, updated.metadata);

    // Past the key limit nothing changes.
    let many: Metadata =
        (0..MAX_METADATA_KEYS).map(|i| (format!("k{i}"), MetadataValue::Number(1.0))).collect();
    let err = catalog.update_document_metadata(doc.id, &many, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(catalog.get_document(doc.id).unwrap().metadata, updated.metadata);
    let err = catalog.update_document_metadata(DocumentId::new(), &patch, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn filters_match_values_lists_and_ranges_of_the_right_type(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let mut ids = Vec::new();
    for (n, meta) in [
        json!({"lang": "en", "year": 2019, "draft": false}),
        json!({"lang": "de", "year": 2021, "draft": true}),
        json!({"lang": "en", "year": 2023}),
        json!({"lang": "fr", "year": "2023"}),
    ]
    .into_iter()
    .enumerate()
    {
        let doc = add_document(
            &catalog,
            &format!("{n}.md"),
            "text/markdown",
            u32::try_from(n).unwrap() + 1,
        );
        catalog.update_document_metadata(doc.id, &metadata(meta), &[]).unwrap();
        ids.push(doc.id);
    }
    let matching = |value| catalog.documents_matching(&filter(value)).unwrap();
    assert_eq!(matching(json!({"lang": "en"})), vec![ids[0], ids[2]]);
    assert_eq!(matching(json!({"lang": {"in": ["de", "fr"]}})), vec![ids[1], ids[3]]);
    // Ranges match numbers only: "2023" (a string) is not in them.
    assert_eq!(matching(json!({"year": {"gte": 2021}})), vec![ids[1], ids[2]]);
    assert_eq!(matching(json!({"year": {"gt": 2019, "lt": 2023}})), vec![ids[1]]);
    assert_eq!(matching(json!({"year": 2023})), vec![ids[2]]);
    assert_eq!(matching(json!({"year": "2023"})), vec![ids[3]]);
    assert_eq!(matching(json!({"draft": true})), vec![ids[1]]);
    assert_eq!(matching(json!({"lang": "en", "year": {"lte": 2020}})), vec![ids[0]]);
    assert_eq!(matching(json!({"missing": "x"})), Vec::<DocumentId>::new());
    assert_eq!(matching(json!({})).len(), 4);

    let query = DocumentQuery {
        metadata: filter(json!({"lang": "en"})),
        limit: 1,
        ..DocumentQuery::default()
    };
    let page = catalog.list_documents(&query).unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items.len(), 1);

    // Deleting a document deletes its metadata.
    assert!(catalog.delete_document(ids[0]).unwrap());
    assert_eq!(matching(json!({"lang": "en"})), vec![ids[2]]);
}

on_both_backends!(
    metadata_keeps_its_types_and_is_patched_key_by_key,
    filters_match_values_lists_and_ranges_of_the_right_type,
);
