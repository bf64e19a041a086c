//! Document text and chunks.

use ragd_catalog::Error;
use ragd_core::{ChunkId, DocumentId, ErrorKind};

use crate::{
    Backend, add_document, check_fts_integrity, count_rows, keyword_hits, line_chunks, temp_catalog,
};

fn replace_chunks_round_trips(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let text = "first line\nsecond line\nthird line";
    let chunks = line_chunks(document.id, text);
    catalog.replace_chunks(document.id, text, &chunks).unwrap();

    assert_eq!(catalog.document_text(document.id, None).unwrap(), text);
    let page = catalog.list_chunks(document.id, 10, 0).unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items, chunks);
    let page = catalog.list_chunks(document.id, 1, 1).unwrap();
    assert_eq!((page.items, page.total), (vec![chunks[1].clone()], 3));
    assert_eq!(catalog.get_chunk(chunks[2].id).unwrap(), chunks[2]);
    assert!(catalog.get_document(document.id).unwrap().updated_at > document.updated_at);
}

fn replacing_again_removes_old_chunks(backend: Backend) {
    let (dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let old_text = "obsolete words\nmore obsolete words\neven more";
    let old = line_chunks(document.id, old_text);
    catalog.replace_chunks(document.id, old_text, &old).unwrap();
    let new_text = "fresh content";
    let new = line_chunks(document.id, new_text);
    catalog.replace_chunks(document.id, new_text, &new).unwrap();

    assert_eq!(catalog.document_text(document.id, None).unwrap(), new_text);
    assert_eq!(catalog.list_chunks(document.id, 10, 0).unwrap().items, new);
    assert_eq!(catalog.get_chunk(old[0].id).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(count_rows(&dir, "chunks"), 1);
    assert_eq!(count_rows(&dir, "document_texts"), 1);
    assert!(keyword_hits(&catalog, "obsolete").is_empty());
    assert_eq!(keyword_hits(&catalog, "fresh").len(), 1);
    check_fts_integrity(&dir);
}

fn bad_chunks_change_nothing(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let text = "one\ntwo";
    let good = line_chunks(document.id, text);
    catalog.replace_chunks(document.id, text, &good).unwrap();

    let mut foreign = line_chunks(document.id, text);
    foreign[0].document_id = DocumentId::new();
    let mut repeated = line_chunks(document.id, text);
    repeated[1].ordinal = 0;
    let mut too_long = line_chunks(document.id, text);
    too_long[1].char_end = 99;
    for bad in [foreign, repeated, too_long] {
        let err = catalog.replace_chunks(document.id, text, &bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert_eq!(catalog.list_chunks(document.id, 10, 0).unwrap().items, good);

    let unknown = DocumentId::new();
    let err = catalog.replace_chunks(unknown, "x", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(catalog.list_chunks(unknown, 10, 0).unwrap_err().kind(), ErrorKind::NotFound);
}

fn chunk_ids_of_another_document_conflict(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "a.txt", "text/plain", 1);
    let b = add_document(&catalog, "b.txt", "text/plain", 2);
    let chunks = line_chunks(a.id, "shared");
    catalog.replace_chunks(a.id, "shared", &chunks).unwrap();
    let mut stolen = chunks.clone();
    stolen[0].document_id = b.id;
    let err = catalog.replace_chunks(b.id, "shared", &stolen).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(catalog.get_chunk(chunks[0].id).unwrap(), chunks[0]);
}

fn document_text_ranges_count_chars(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let text = "Grüße aus Köln 🚀 — naïve café";
    catalog.replace_chunks(document.id, text, &[]).unwrap();
    let chars = text.chars().count();

    assert_eq!(catalog.document_text(document.id, Some(0..5)).unwrap(), "Grüße");
    assert_eq!(catalog.document_text(document.id, Some(10..14)).unwrap(), "Köln");
    assert_eq!(catalog.document_text(document.id, Some(15..16)).unwrap(), "🚀");
    assert_eq!(catalog.document_text(document.id, Some(chars - 4..chars)).unwrap(), "café");
    assert_eq!(catalog.document_text(document.id, Some(chars..chars)).unwrap(), "");
    assert_eq!(catalog.document_text(document.id, Some(0..chars)).unwrap(), text);
    #[allow(clippy::reversed_empty_ranges)] // A backwards range is one of the bad inputs.
    let backwards = 5..3;
    for bad in [0..chars + 1, chars + 1..chars + 2, backwards] {
        let err = catalog.document_text(document.id, Some(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

fn document_text_distinguishes_unknown_document_and_missing_text(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let document = add_document(&catalog, "a.txt", "text/plain", 1);
    let err = catalog.document_text(document.id, None).unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "document text", .. }), "{err:?}");
    let err = catalog.document_text(DocumentId::new(), None).unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "document", .. }), "{err:?}");
}

fn get_chunks_preserves_order_and_skips_missing(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "a.txt", "text/plain", 1);
    let b = add_document(&catalog, "b.txt", "text/plain", 2);
    let a_chunks = line_chunks(a.id, "a0\na1\na2");
    let b_chunks = line_chunks(b.id, "b0\nb1");
    catalog.replace_chunks(a.id, "a0\na1\na2", &a_chunks).unwrap();
    catalog.replace_chunks(b.id, "b0\nb1", &b_chunks).unwrap();

    let wanted = [b_chunks[1].id, ChunkId::new(), a_chunks[2].id, a_chunks[0].id, b_chunks[0].id];
    let found = catalog.get_chunks(&wanted).unwrap();
    let texts: Vec<&str> = found.iter().map(|chunk| chunk.text.as_str()).collect();
    assert_eq!(texts, ["b1", "a2", "a0", "b0"]);
    assert!(catalog.get_chunks(&[]).unwrap().is_empty());
    assert_eq!(catalog.get_chunk(ChunkId::new()).unwrap_err().kind(), ErrorKind::NotFound);
}

on_both_backends!(
    replace_chunks_round_trips,
    replacing_again_removes_old_chunks,
    bad_chunks_change_nothing,
    chunk_ids_of_another_document_conflict,
    document_text_ranges_count_chars,
    document_text_distinguishes_unknown_document_and_missing_text,
    get_chunks_preserves_order_and_skips_missing,
);
