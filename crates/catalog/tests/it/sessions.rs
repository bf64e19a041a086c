//! Sessions, tags and messages on a real SQLite file.

use ragd_catalog::{Catalog, MAX_TAGS, NewMessage, NewSession, SessionQuery, SessionUpdate};
use ragd_core::{ChatRole, DocumentId, ErrorKind, MessageId, SessionId};
use serde_json::json;

use crate::{Backend, Fixture, add_document, count_rows, raw, temp_catalog};

fn new_session(catalog: &Catalog, name: &str) -> SessionId {
    catalog
        .create_session(NewSession {
            id: SessionId::new(),
            name: name.to_owned(),
            model: None,
            document_ids: Vec::new(),
            collection_ids: Vec::new(),
            tags: Vec::new(),
        })
        .unwrap()
        .id
}

fn say(catalog: &Catalog, session: SessionId, role: ChatRole, text: &str) -> MessageId {
    catalog
        .append_message(NewMessage {
            id: MessageId::new(),
            session_id: session,
            role,
            content: text.to_owned(),
            model: (role == ChatRole::Assistant).then(|| "smollm2".to_owned()),
            metadata: json!({"n": text.len()}),
        })
        .unwrap()
        .id
}

fn create_get_update_and_delete_a_session(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let doc = add_document(&catalog, "a.md", "text/markdown", 1);
    let other = add_document(&catalog, "b.md", "text/markdown", 2);
    let created = catalog
        .create_session(NewSession {
            id: SessionId::new(),
            name: "  Trip planning ".into(),
            model: Some("m".into()),
            document_ids: vec![doc.id, doc.id],
            collection_ids: Vec::new(),
            tags: vec!["Travel".into(), "travel".into()],
        })
        .unwrap();
    assert_eq!(created.name, "Trip planning");
    assert_eq!(created.document_ids, vec![doc.id]);
    assert_eq!(created.tags, ["travel"]);
    assert_eq!(created.created_at, created.last_activity_at);
    assert_eq!(catalog.get_session(created.id).unwrap(), created);

    let updated = catalog
        .update_session(
            created.id,
            &SessionUpdate {
                name: Some("Japan".into()),
                document_ids: Some(vec![other.id]),
                collection_ids: None,
                add_tags: vec!["Food".into()],
                remove_tags: vec!["travel".into()],
            },
        )
        .unwrap();
    assert_eq!(updated.name, "Japan");
    assert_eq!(updated.document_ids, vec![other.id]);
    assert_eq!(updated.tags, ["food"]);

    assert!(catalog.delete_session(created.id).unwrap());
    assert!(!catalog.delete_session(created.id).unwrap());
    let err = catalog.get_session(created.id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn bad_input_is_refused_with_clear_errors(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let make = |name: &str, documents: Vec<DocumentId>, tags: Vec<String>| {
        catalog.create_session(NewSession {
            id: SessionId::new(),
            name: name.into(),
            model: None,
            document_ids: documents,
            collection_ids: Vec::new(),
            tags,
        })
    };
    assert_eq!(make(" ", vec![], vec![]).unwrap_err().kind(), ErrorKind::InvalidInput);
    let missing = DocumentId::new();
    let err = make("x", vec![missing], vec![]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&missing.to_string()));
    let many: Vec<String> = (0..=MAX_TAGS).map(|n| format!("t{n}")).collect();
    assert_eq!(make("x", vec![], many).unwrap_err().kind(), ErrorKind::InvalidInput);
    // Nothing was stored by the refused calls.
    assert_eq!(catalog.list_sessions(&SessionQuery::default()).unwrap().total, 0);

    let id = SessionId::new();
    let err = catalog.update_session(id, &SessionUpdate::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = catalog
        .append_message(NewMessage {
            id: MessageId::new(),
            session_id: id,
            role: ChatRole::User,
            content: "hi".into(),
            model: None,
            metadata: json!({}),
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn messages_page_in_order_and_mark_the_session_active(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let session = new_session(&catalog, "s");
    let before = catalog.get_session(session).unwrap();
    let ids: Vec<MessageId> = (0..5)
        .map(|n| {
            let role = if n % 2 == 0 { ChatRole::User } else { ChatRole::Assistant };
            say(&catalog, session, role, &format!("message {n}"))
        })
        .collect();
    let after = catalog.get_session(session).unwrap();
    assert!(after.last_activity_at > before.last_activity_at);
    assert_eq!(after.model.as_deref(), Some("smollm2"));

    let page = catalog.list_messages(session, 2, 1).unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), ids[1..3]);
    assert_eq!(page.items[0].metadata, json!({"n": 9}));

    let recent = catalog.recent_messages(session, 2).unwrap();
    assert_eq!(recent.iter().map(|m| m.id).collect::<Vec<_>>(), ids[3..]);
    let between = catalog.messages_between(session, Some(ids[0]), ids[4], 10).unwrap();
    assert_eq!(between.iter().map(|m| m.id).collect::<Vec<_>>(), ids[1..4]);
    let from_start = catalog.messages_between(session, None, ids[2], 10).unwrap();
    assert_eq!(from_start.len(), 2);
    let picked = catalog.get_messages(&[ids[3], MessageId::new(), ids[0]]).unwrap();
    assert_eq!(picked.iter().map(|m| m.id).collect::<Vec<_>>(), [ids[3], ids[0]]);
    assert_eq!(catalog.count_messages(session).unwrap(), 5);
}

fn sessions_list_by_activity_and_search_names_tags_and_messages(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let cooking = new_session(&catalog, "Cooking ideas");
    let garden = new_session(&catalog, "Garden");
    let work = new_session(&catalog, "Work notes");
    say(&catalog, garden, ChatRole::User, "When should I plant tomatoes?");
    catalog.set_auto_tags(work, &["kubernetes".into(), "deployments".into()]).unwrap();
    // Activity: garden had a message after creation; it comes first.
    let all = catalog.list_sessions(&SessionQuery::default()).unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0].id, garden);

    let find = |query: SessionQuery| {
        catalog.list_sessions(&query).unwrap().items.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(find(SessionQuery { text: Some("tomato".into()), ..Default::default() }), [garden]);
    assert_eq!(
        find(SessionQuery { text: Some("cooking".into()), ..Default::default() }),
        [cooking]
    );
    assert_eq!(
        find(SessionQuery { text: Some("Kubernetes".into()), ..Default::default() }),
        [work]
    );
    assert_eq!(find(SessionQuery { tag: Some("KUBERNETES".into()), ..Default::default() }), [work]);
    assert_eq!(
        find(SessionQuery { name_contains: Some("NOTES".into()), ..Default::default() }),
        [work]
    );
    // FTS syntax in the text is never an error.
    assert!(
        find(SessionQuery { text: Some("\"NEAR( AND *".into()), ..Default::default() }).is_empty()
    );
    let err = catalog
        .list_sessions(&SessionQuery { text: Some("?!".into()), ..Default::default() })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let page = catalog.list_sessions(&SessionQuery { limit: 1, offset: 1, ..Default::default() });
    assert_eq!(page.unwrap().items.len(), 1);

    // After deletion the session is not found by any of its texts.
    assert!(catalog.delete_session(garden).unwrap());
    assert!(find(SessionQuery { text: Some("tomato".into()), ..Default::default() }).is_empty());
    assert!(catalog.delete_session(work).unwrap());
    assert!(
        find(SessionQuery { text: Some("kubernetes".into()), ..Default::default() }).is_empty()
    );
}

fn auto_tags_replace_auto_tags_and_keep_user_tags(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let session = new_session(&catalog, "s");
    catalog
        .update_session(
            session,
            &SessionUpdate { add_tags: vec!["mine".into()], ..Default::default() },
        )
        .unwrap();
    catalog.set_auto_tags(session, &["alpha".into(), "beta".into()]).unwrap();
    let tagged =
        catalog.set_auto_tags(session, &["gamma".into(), "mine".into(), " ".into()]).unwrap();
    assert_eq!(tagged.tags, ["gamma", "mine"]);
    let many: Vec<String> = (0..100).map(|n| format!("t{n:03}")).collect();
    let capped = catalog.set_auto_tags(session, &many).unwrap();
    assert_eq!(capped.tags.len(), MAX_TAGS);
    assert!(capped.tags.contains(&"mine".to_owned()));
}

fn summary_is_stored_and_deleting_a_document_unlinks_it(backend: Backend) {
    let (_dir, catalog) = temp_catalog(backend);
    let doc = add_document(&catalog, "a.md", "text/markdown", 1);
    let session = catalog
        .create_session(NewSession {
            id: SessionId::new(),
            name: "s".into(),
            model: None,
            document_ids: vec![doc.id],
            collection_ids: Vec::new(),
            tags: vec![],
        })
        .unwrap()
        .id;
    let first = say(&catalog, session, ChatRole::User, "hello");
    catalog.set_session_summary(session, "they said hello", first).unwrap();
    let stored = catalog.get_session(session).unwrap();
    assert_eq!(stored.summary.as_deref(), Some("they said hello"));
    assert_eq!(stored.summary_through, Some(first));

    assert!(catalog.delete_document(doc.id).unwrap());
    assert!(catalog.get_session(session).unwrap().document_ids.is_empty());
}

fn deleting_a_session_leaves_no_rows_behind(backend: Backend) {
    let (dir, catalog) = temp_catalog(backend);
    let session = new_session(&catalog, "s");
    say(&catalog, session, ChatRole::User, "remember the blue door");
    catalog.set_auto_tags(session, &["door".into()]).unwrap();
    assert!(catalog.delete_session(session).unwrap());
    for table in ["sessions", "session_tags", "session_documents", "messages"] {
        assert_eq!(count_rows(&dir, table), 0, "{table}");
    }
    // SQLite's full-text indexes are tables of their own, kept by triggers; Postgres keeps
    // its `tsvector`s in the rows just counted.
    if let Fixture::Sqlite(dir) = &dir {
        let raw = raw(dir);
        let rows: i64 =
            raw.query_row("SELECT count(*) FROM sessions_fts", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0);
        let hits: i64 = raw
            .query_row(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'door'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hits, 0);
        raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')", [])
            .unwrap();
    }
}

on_both_backends!(
    create_get_update_and_delete_a_session,
    bad_input_is_refused_with_clear_errors,
    messages_page_in_order_and_mark_the_session_active,
    sessions_list_by_activity_and_search_names_tags_and_messages,
    auto_tags_replace_auto_tags_and_keep_user_tags,
    summary_is_stored_and_deleting_a_document_unlinks_it,
    deleting_a_session_leaves_no_rows_behind,
);
