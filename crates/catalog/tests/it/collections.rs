//! Collections on a real SQLite file: names, membership, the document filter, resolving
//! collections to documents, and what deleting a document, a collection or a session does.

use ragd_catalog::{CollectionUpdate, DocumentQuery, NewCollection, NewSession, SessionUpdate};
use ragd_core::{CollectionId, DocumentId, ErrorKind, SessionId};

use crate::{Backend, add_document, temp_catalog};

fn new_collection(name: &str) -> NewCollection {
    NewCollection { id: CollectionId::new(), name: name.to_owned(), description: None }
}

fn names_are_unique_ignoring_case_and_never_uuids(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let handbooks = catalog
        .create_collection(NewCollection {
            description: Some("  HR and IT handbooks ".into()),
            ..new_collection("  Handbooks ")
        })
        .unwrap();
    assert_eq!(handbooks.name, "Handbooks");
    assert_eq!(handbooks.description.as_deref(), Some("HR and IT handbooks"));
    assert_eq!(handbooks.document_count, 0);

    let taken = catalog.create_collection(new_collection("HANDBOOKS")).unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Conflict, "{taken}");
    assert!(taken.to_string().contains("HANDBOOKS"), "{taken}");
    for bad in ["", "   ", "tab\there"] {
        let err = catalog.create_collection(new_collection(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    let uuid = CollectionId::new().to_string();
    let err = catalog.create_collection(new_collection(&uuid)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // Found by id and by name in any case; unknown ones are NotFound.
    assert_eq!(catalog.find_collection(&handbooks.id.to_string()).unwrap(), handbooks);
    assert_eq!(catalog.find_collection("handbooks").unwrap(), handbooks);
    assert_eq!(catalog.find_collection("nope").unwrap_err().kind(), ErrorKind::NotFound);
    let unknown = CollectionId::new().to_string();
    assert_eq!(catalog.find_collection(&unknown).unwrap_err().kind(), ErrorKind::NotFound);

    // Renaming to another collection's name is refused; to its own (other case) is not.
    let other = catalog.create_collection(new_collection("Reports")).unwrap();
    let rename = |id, name: &str| {
        catalog
            .update_collection(id, CollectionUpdate { name: Some(name.into()), description: None })
    };
    assert_eq!(rename(other.id, "handbooks").unwrap_err().kind(), ErrorKind::Conflict);
    assert_eq!(rename(handbooks.id, "HANDBOOKS").unwrap().name, "HANDBOOKS");
    let cleared = catalog
        .update_collection(handbooks.id, CollectionUpdate { name: None, description: Some(None) })
        .unwrap();
    assert_eq!(cleared.description, None);

    let page = catalog.list_collections(10, 0).unwrap();
    assert_eq!(page.total, 2);
    let names: Vec<&str> = page.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["HANDBOOKS", "Reports"]);
    assert_eq!(catalog.list_collections(1, 1).unwrap().items[0].name, "Reports");
}

fn membership_filters_documents_and_resolves_scopes(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "a.md", "text/markdown", 1);
    let b = add_document(&catalog, "b.md", "text/markdown", 2);
    let c = add_document(&catalog, "c.md", "text/markdown", 3);
    let first = catalog.create_collection(new_collection("first")).unwrap();
    let second = catalog.create_collection(new_collection("second")).unwrap();
    let empty = catalog.create_collection(new_collection("empty")).unwrap();

    let added = catalog.add_to_collection(first.id, &[a.id, b.id, a.id]).unwrap();
    assert_eq!(added.document_count, 2);
    // Adding again changes nothing; a document may be in several collections.
    assert_eq!(catalog.add_to_collection(first.id, &[b.id]).unwrap().document_count, 2);
    assert_eq!(catalog.add_to_collection(second.id, &[b.id, c.id]).unwrap().document_count, 2);
    // One unknown document: nothing is added.
    let err = catalog.add_to_collection(second.id, &[a.id, DocumentId::new()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(catalog.get_collection(second.id).unwrap().document_count, 2);
    let err = catalog.add_to_collection(CollectionId::new(), &[a.id]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let in_collection = |id| {
        let query = DocumentQuery { collection: Some(id), ..DocumentQuery::default() };
        let mut ids: Vec<DocumentId> =
            catalog.list_documents(&query).unwrap().items.into_iter().map(|d| d.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(in_collection(first.id), vec![a.id, b.id]);
    assert_eq!(in_collection(second.id), vec![b.id, c.id]);
    assert_eq!(in_collection(empty.id), Vec::<DocumentId>::new());

    // The union, each once; an empty collection resolves to nothing, not to everything.
    assert_eq!(
        catalog.collection_documents(&[first.id, second.id]).unwrap(),
        vec![a.id, b.id, c.id]
    );
    assert_eq!(catalog.collection_documents(&[empty.id]).unwrap(), Vec::<DocumentId>::new());
    let err = catalog.collection_documents(&[first.id, CollectionId::new()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // Taking a document out, and deleting one, leave the rest.
    assert_eq!(catalog.remove_from_collection(first.id, &[a.id]).unwrap().document_count, 1);
    assert!(catalog.delete_document(b.id).unwrap());
    assert_eq!(in_collection(first.id), Vec::<DocumentId>::new());
    assert_eq!(in_collection(second.id), vec![c.id]);
    assert_eq!(catalog.collections_of_document(c.id).unwrap(), vec![second.id]);

    // Deleting a collection keeps its documents.
    catalog.delete_collection(second.id).unwrap();
    assert!(catalog.get_document(c.id).is_ok());
    assert_eq!(catalog.get_collection(second.id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(catalog.delete_collection(second.id).unwrap_err().kind(), ErrorKind::NotFound);
}

fn a_collection_a_session_uses_cannot_be_deleted(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let doc = add_document(&catalog, "a.md", "text/markdown", 1);
    let used = catalog.create_collection(new_collection("used")).unwrap();
    let session = catalog
        .create_session(NewSession {
            id: SessionId::new(),
            name: "s".into(),
            model: None,
            document_ids: vec![doc.id],
            collection_ids: vec![used.id, used.id],
            tags: Vec::new(),
        })
        .unwrap();
    assert_eq!(session.collection_ids, vec![used.id]);
    assert_eq!(session.document_ids, vec![doc.id]);
    let err = catalog.delete_collection(used.id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("session"), "{err}");

    // An unknown collection is refused, and the session keeps its scope.
    let update =
        SessionUpdate { collection_ids: Some(vec![CollectionId::new()]), ..Default::default() };
    assert_eq!(
        catalog.update_session(session.id, &update).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(catalog.get_session(session.id).unwrap().collection_ids, vec![used.id]);

    // Out of the session, it can go; so can the session with its scope.
    let update = SessionUpdate { collection_ids: Some(Vec::new()), ..Default::default() };
    assert!(catalog.update_session(session.id, &update).unwrap().collection_ids.is_empty());
    catalog.delete_collection(used.id).unwrap();
    let again = catalog.create_collection(new_collection("again")).unwrap();
    let update = SessionUpdate { collection_ids: Some(vec![again.id]), ..Default::default() };
    assert_eq!(catalog.update_session(session.id, &update).unwrap().collection_ids, vec![again.id]);
    assert!(catalog.delete_session(session.id).unwrap());
    catalog.delete_collection(again.id).unwrap();
}

on_both_backends!(
    names_are_unique_ignoring_case_and_never_uuids,
    membership_filters_documents_and_resolves_scopes,
    a_collection_a_session_uses_cannot_be_deleted,
);
