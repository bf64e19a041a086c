//! Keyword search.

use ragd_catalog::{Catalog, HIGHLIGHT_END, HIGHLIGHT_START, KeywordQuery};
use ragd_core::{DocumentId, ErrorKind};

use crate::{Backend, Fixture, add_document, line_chunks, temp_catalog};

/// Two documents with chunks of everyday words and one rare term.
fn seeded(backend: Backend) -> (Fixture, Catalog, DocumentId, DocumentId) {
    let (dir, catalog) = temp_catalog(backend);
    let a = add_document(&catalog, "manual.txt", "text/plain", 1);
    let b = add_document(&catalog, "story.txt", "text/plain", 2);
    let a_text = "the server starts the worker\n\
                  the worker reads the queue and the server waits\n\
                  configure the quokkaplex adapter before the server starts\n\
                  the queue is stored on disk";
    let b_text = "the worker went home\nthe server room was cold\nthe café was naïve";
    catalog.replace_chunks(a.id, a_text, &line_chunks(a.id, a_text)).unwrap();
    catalog.replace_chunks(b.id, b_text, &line_chunks(b.id, b_text)).unwrap();
    (dir, catalog, a.id, b.id)
}

fn query(text: &str) -> KeywordQuery {
    KeywordQuery { text: text.to_owned(), top_k: 10, document_ids: Vec::new() }
}

fn rare_term_ranks_first_with_highlight(backend: Backend) {
    let (_dir, catalog, a, _b) = seeded(backend);
    let hits = catalog.keyword_search(&query("server quokkaplex")).unwrap();
    assert!(hits.len() >= 3, "{hits:?}");
    let best = &hits[0];
    assert_eq!(best.chunk.document_id, a);
    assert_eq!(best.chunk.ordinal, 2);
    assert_eq!(best.filename, "manual.txt");
    assert!(
        best.snippet.contains(&format!("{HIGHLIGHT_START}quokkaplex{HIGHLIGHT_END}")),
        "{}",
        best.snippet
    );
    assert!(best.score > 0.0);
    for pair in hits.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
}

fn search_matches_stems_case_and_diacritics(backend: Backend) {
    let (_dir, catalog, _a, b) = seeded(backend);
    let hits = catalog.keyword_search(&query("STARTING")).unwrap();
    assert_eq!(hits.len(), 2);
    let hits = catalog.keyword_search(&query("cafe naive")).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk.document_id, b);
}

fn document_filter_and_top_k_are_respected(backend: Backend) {
    let (_dir, catalog, a, b) = seeded(backend);
    let mut only_b = query("worker server");
    only_b.document_ids = vec![b];
    let hits = catalog.keyword_search(&only_b).unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|hit| hit.chunk.document_id == b));

    let mut both = query("worker server");
    both.document_ids = vec![a, b];
    assert_eq!(catalog.keyword_search(&both).unwrap().len(), 5);

    let mut unknown = query("worker");
    unknown.document_ids = vec![DocumentId::new()];
    assert!(catalog.keyword_search(&unknown).unwrap().is_empty());

    let mut top_one = query("the");
    top_one.top_k = 1;
    assert_eq!(catalog.keyword_search(&top_one).unwrap().len(), 1);
    top_one.top_k = 0;
    assert!(catalog.keyword_search(&top_one).unwrap().is_empty());
}

fn hostile_queries_never_error(backend: Backend) {
    let (_dir, catalog, _a, _b) = seeded(backend);
    let hostile = [
        "\"server",
        "NEAR(server worker",
        "serv*",
        "server OR",
        "a OR",
        "^server",
        "col:x",
        "text:server",
        ")(server",
        "AND OR NOT",
        "\"\"\"\"\" queue",
        "'; DROP TABLE chunks; --",
        "日本語のテキスト",
        "emoji 🚀🔥 queue",
        "z\u{0301}algo\u{0308}",
        "NEAR/3",
        "{text} : server",
        "\u{0000}server",
    ];
    for text in hostile {
        let result = catalog.keyword_search(&query(text));
        assert!(result.is_ok(), "{text:?}: {result:?}");
    }
    assert!(!catalog.keyword_search(&query("serv* queue")).unwrap().is_empty());
    assert_eq!(catalog.count_chunks(None).unwrap(), 7);
}

fn queries_without_words_are_invalid_input(backend: Backend) {
    let (_dir, catalog, _a, _b) = seeded(backend);
    for text in ["", "   ", "\"", "*", "^", ")(", "()\"*^:-+", "🚀🔥"] {
        let err = catalog.keyword_search(&query(text)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text:?}");
    }
}

on_both_backends!(
    rare_term_ranks_first_with_highlight,
    search_matches_stems_case_and_diacritics,
    document_filter_and_top_k_are_respected,
    hostile_queries_never_error,
    queries_without_words_are_invalid_input,
);
