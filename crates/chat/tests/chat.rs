//! The chat flow on a real SQLite catalog with the deterministic fakes (embedder, vector
//! store, scripted model). The same behaviours run on MiniMLM, LanceDB and SmolLM2 in
//! `bins/ragd/tests/it/chat.rs`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use ragd_catalog::{Catalog, NewDocument, SessionQuery};
use ragd_chat::{
    ChatConfig, ChatEvent, ChatParts, ChatService, CompleteRequest, CreateSession, Error,
    FixedModel, Retrieval, SendMessage, TaggingMode,
};
use ragd_core::{
    ChatMessage, ChatRole, Chunk, ChunkId, DocumentId, EmbeddedRecord, Embedder, ErrorKind,
    GenerationSettings, LlmBackend, SettingsPatch, TableName, VectorStore,
};
use ragd_search::{Searcher, SearcherParts};
use ragd_test_utils::{FakeEmbedder, InMemoryStore, Script, ScriptedLlm};

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: Catalog,
    store: Arc<InMemoryStore>,
    embedder: Arc<FakeEmbedder>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        Self {
            _dir: dir,
            catalog,
            store: Arc::new(InMemoryStore::new()),
            embedder: Arc::new(FakeEmbedder::new(64)),
        }
    }

    fn service(&self, llm: Option<ScriptedLlm>, config: ChatConfig) -> ChatService {
        let store: Arc<dyn VectorStore> = self.store.clone();
        let embedder: Arc<dyn Embedder> = self.embedder.clone();
        let vectors = ragd_core::FixedVectors::shared(embedder, store);
        let searcher = Searcher::new(SearcherParts {
            catalog: self.catalog.clone(),
            vectors: Some(vectors.clone()),
        });
        let backend = llm.map(|llm| Arc::new(llm) as Arc<dyn LlmBackend>);
        let settings = GenerationSettings { max_new_tokens: 32, ..GenerationSettings::default() };
        ChatService::new(
            ChatParts {
                catalog: self.catalog.clone(),
                searcher: Some(searcher),
                vectors: Some(vectors),
                models: Arc::new(FixedModel { backend, settings }),
            },
            config,
        )
        .unwrap()
    }

    /// Stores a one-chunk-per-paragraph document with its vectors.
    async fn add_document(&self, filename: &str, text: &str) -> DocumentId {
        let id = DocumentId::new();
        self.catalog
            .insert_document(NewDocument {
                id,
                filename: filename.into(),
                mime: "text/plain".into(),
                sha256: format!("{:064x}", id.as_uuid().as_u128()),
                bytes: text.len() as u64,
            })
            .unwrap();
        let mut chunks = Vec::new();
        let mut start = 0;
        for (ordinal, paragraph) in text.split("\n\n").enumerate() {
            let len = paragraph.chars().count() as u64;
            chunks.push(Chunk {
                id: ChunkId::new(),
                document_id: id,
                ordinal: ordinal as u32,
                text: paragraph.into(),
                char_start: start,
                char_end: start + len,
                token_count: 1,
                page: Some(1),
                heading: None,
            });
            start += len + 2;
        }
        self.catalog.replace_chunks(id, text, &chunks).unwrap();
        let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
        let vectors = self.embedder.embed_documents(texts).await.unwrap();
        let records = chunks
            .iter()
            .zip(vectors)
            .map(|(chunk, vector)| EmbeddedRecord {
                id: *chunk.id.as_uuid(),
                document_id: Some(id),
                session_id: None,
                vector,
            })
            .collect();
        self.store.upsert(TableName::Chunks, records).await.unwrap();
        id
    }
}

fn ask(text: &str) -> SendMessage {
    SendMessage::new(text)
}

#[tokio::test]
async fn a_reply_is_stored_with_citations_metadata_and_tags() {
    let fixture = Fixture::new();
    let volcano = fixture
        .add_document("volcanoes.txt", "Basaltic lava flows are fluid.\n\nPumice floats on water.")
        .await;
    fixture
        .add_document("baking.txt", "Sourdough needs a starter.\n\nRye flour ferments fast.")
        .await;
    let llm = ScriptedLlm::new(Script::Fixed("Pumice floats [1].".into()), 2048);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let session = chat
        .create_session(CreateSession { document_ids: vec![volcano], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(session.model.as_deref(), Some("scripted-model"));

    let reply = chat
        .send(session.id, ask("Does pumice float on water, like volcanic glass?"))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert_eq!(reply.assistant_message.content, "Pumice floats [1].");
    // Retrieval was restricted to the session's document, best chunk first.
    assert!(!reply.citations.is_empty());
    assert!(reply.citations.iter().all(|c| c.document_id == volcano));
    assert_eq!(reply.citations[0].filename, "volcanoes.txt");
    let prompt = &llm.requests()[0].messages;
    assert!(prompt[0].content.contains("[1] (volcanoes.txt, page 1)"));
    assert!(prompt[0].content.contains("Pumice floats on water."));

    let metadata = &reply.assistant_message.metadata;
    assert_eq!(metadata["reply_to"], reply.user_message.id.to_string());
    assert_eq!(metadata["usage"]["completion_tokens"], 3);
    assert_eq!(metadata["settings"]["max_new_tokens"], 32);
    assert!(metadata["timings"]["generation_ms"].is_u64());
    assert_eq!(metadata["citations"][0]["chunk_id"], reply.citations[0].chunk_id.to_string());
    assert_eq!(reply.assistant_message.model.as_deref(), Some("scripted-model"));

    let stored = chat.session(session.id).await.unwrap();
    assert!(stored.last_activity_at >= reply.assistant_message.created_at);
    assert!(stored.tags.iter().any(|t| t.contains("pumice")), "{:?}", stored.tags);
    let found = chat
        .sessions(SessionQuery { text: Some("pumice".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(chat.messages(session.id, 10, 0).await.unwrap().total, 2);
    // The exchange is in long-term memory.
    assert_eq!(fixture.store.len(TableName::Memory), 1);
}

#[tokio::test]
async fn without_a_model_the_user_message_is_kept_and_the_error_is_unavailable() {
    let fixture = Fixture::new();
    let chat = fixture.service(None, ChatConfig::default());
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    assert_eq!(session.name, "New session");
    let err = chat.send(session.id, ask("hello there")).await.unwrap_err();
    assert!(matches!(err, Error::NoModel));
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let messages = chat.messages(session.id, 10, 0).await.unwrap();
    assert_eq!(messages.total, 1);
    assert_eq!(messages.items[0].content, "hello there");

    let down =
        fixture.service(Some(ScriptedLlm::new(Script::Unavailable, 2048)), ChatConfig::default());
    let err = down.send(session.id, ask("again")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(chat.messages(session.id, 10, 0).await.unwrap().total, 2);

    let midway = fixture.service(
        Some(ScriptedLlm::new(Script::FailMidway("partial answer".into()), 2048)),
        ChatConfig::default(),
    );
    let err = midway.send(session.id, ask("third")).await.unwrap().finish().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    let history = chat.messages(session.id, 10, 0).await.unwrap();
    assert_eq!(history.total, 3);
    // Each question whose reply failed carries its error: no model, a backend down before
    // the first token, a backend failing midway.
    let codes: Vec<&serde_json::Value> =
        history.items.iter().map(|m| &m.metadata["error"]["code"]).collect();
    assert_eq!(codes, ["unavailable", "unavailable", "internal"], "{:?}", history.items);
    let during_generation = history.items[2].metadata["error"]["message"].as_str().unwrap();
    assert!(!during_generation.is_empty());

    let err = chat.send(session.id, ask("   ")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = chat.send(ragd_core::SessionId::new(), ask("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn an_exchange_ten_turns_ago_is_recalled_through_memory() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Echo, 4096);
    let config = ChatConfig { history_messages: 4, summarize: false, ..ChatConfig::default() };
    let chat = fixture.service(Some(llm.clone()), config);
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let fact = "My locker combination is seven three nine";
    chat.send(session.id, ask(fact)).await.unwrap().finish().await.unwrap();
    for n in 0..10 {
        let small_talk = format!("Tell me about weather pattern number {n}");
        chat.send(session.id, ask(&small_talk)).await.unwrap().finish().await.unwrap();
    }
    let reply = chat
        .send(session.id, ask("What was my locker combination?"))
        .await
        .unwrap()
        .finish()
        .await
        .unwrap();
    assert!(
        reply.recalled.iter().any(|r| r.user == fact),
        "recalled {:?}",
        reply.recalled.iter().map(|r| &r.user).collect::<Vec<_>>()
    );
    let requests = llm.requests();
    let prompt = &requests.last().unwrap().messages;
    assert!(prompt[0].content.contains(fact), "{}", prompt[0].content);
    // History holds only the last four messages; the fact is not among them.
    assert_eq!(prompt.len(), 1 + 4 + 1);
    assert!(prompt[1..5].iter().all(|m| !m.content.contains("locker")));

    // The question just asked is an exchange too now; both mention the locker.
    let hits = chat.search_memory(session.id, "locker combination", 2).await.unwrap();
    assert!(hits.iter().any(|hit| hit.exchange.user == fact));
    assert!(hits.iter().all(|hit| hit.session_id == session.id));
}

#[tokio::test]
async fn old_history_is_summarised_when_it_no_longer_fits() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Fixed("They discussed many long topics.".into()), 400);
    let config = ChatConfig { top_k: 0, memory_top_k: 0, ..ChatConfig::default() };
    let chat = fixture.service(Some(llm.clone()), config);
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let long = "word ".repeat(60);
    for _ in 0..6 {
        chat.send(session.id, ask(&long)).await.unwrap().finish().await.unwrap();
    }
    let stored = chat.session(session.id).await.unwrap();
    assert_eq!(stored.summary.as_deref(), Some("They discussed many long topics."));
    assert!(stored.summary_through.is_some());
    let requests = llm.requests();
    assert!(requests.iter().any(|r| r.messages[0].content.starts_with("Summarise")));
    let last = requests.last().unwrap();
    assert!(last.messages[0].content.contains("Summary of the earlier conversation"));
    for request in &requests {
        let words: usize =
            request.messages.iter().map(|m| m.content.split_whitespace().count()).sum();
        assert!(words + request.settings.max_new_tokens as usize <= 400);
    }
}

#[tokio::test]
async fn concurrent_messages_in_one_session_are_serialised_and_none_is_lost() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Echo, 4096).with_token_delay(Duration::from_millis(2));
    let config = ChatConfig { tagging: TaggingMode::Off, ..ChatConfig::default() };
    let chat = fixture.service(Some(llm), config);
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let chat = chat.clone();
            tokio::spawn(async move {
                chat.send(session.id, ask(&format!("question {n}"))).await?.finish().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let messages = chat.messages(session.id, 100, 0).await.unwrap().items;
    assert_eq!(messages.len(), 12);
    // Each answer directly follows its question.
    for pair in messages.chunks(2) {
        assert_eq!(pair[0].role, ragd_core::ChatRole::User);
        assert_eq!(pair[1].metadata["reply_to"], pair[0].id.to_string());
        assert_eq!(pair[1].content, format!("Echo: {}", pair[0].content));
    }
}

#[tokio::test]
async fn a_reader_going_away_keeps_the_partial_reply() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Fixed("one two three four five six".into()), 2048)
        .with_token_delay(Duration::from_millis(20));
    let chat = fixture.service(Some(llm), ChatConfig::default());
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let mut turn = chat.send(session.id, ask("count")).await.unwrap();
    assert_eq!(turn.next_event().await, Some(ChatEvent::Token("one ".into())));
    drop(turn);
    // The next message waits for the cancelled one to be stored.
    chat.send(session.id, ask("again")).await.unwrap().finish().await.unwrap();
    let messages = chat.messages(session.id, 10, 0).await.unwrap().items;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[1].metadata["cancelled"], true);
    assert!(messages[1].content.starts_with("one"));
}

#[tokio::test]
async fn deleting_a_session_removes_messages_memory_and_tags() {
    let fixture = Fixture::new();
    let chat = fixture.service(Some(ScriptedLlm::new(Script::Echo, 2048)), ChatConfig::default());
    let keep = chat.create_session(CreateSession::default()).await.unwrap();
    let gone = chat.create_session(CreateSession::default()).await.unwrap();
    // Distinct texts, so recall can tell whose exchange it found.
    let kept_fact = "remember the blue door";
    let gone_fact = "remember the red door";
    chat.send(keep.id, ask(kept_fact)).await.unwrap().finish().await.unwrap();
    chat.send(gone.id, ask(gone_fact)).await.unwrap().finish().await.unwrap();
    assert_eq!(fixture.store.len(TableName::Memory), 2);
    chat.delete_session(gone.id).await.unwrap();
    assert_eq!(fixture.store.len(TableName::Memory), 1);
    assert_eq!(chat.session(gone.id).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(chat.messages(gone.id, 10, 0).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(chat.delete_session(gone.id).await.unwrap_err().kind(), ErrorKind::NotFound);
    let found =
        chat.sessions(SessionQuery { text: Some("door".into()), ..Default::default() }).await;
    assert_eq!(found.unwrap().items.iter().map(|s| s.id).collect::<Vec<_>>(), [keep.id]);
    // Recall across sessions, from a third session (a session's own recent exchanges are
    // in its history, not recalled): the remaining session's exchange, not the deleted one.
    let probe = chat.create_session(CreateSession::default()).await.unwrap();
    let mut request = ask("which door should I remember?");
    request.memory_all_sessions = true;
    let reply = chat.send(probe.id, request).await.unwrap().finish().await.unwrap();
    let recalled: Vec<&str> = reply.recalled.iter().map(|r| r.user.as_str()).collect();
    assert!(recalled.contains(&kept_fact), "{recalled:?}");
    assert!(!recalled.contains(&gone_fact), "{recalled:?}");
}

#[tokio::test]
async fn memory_all_sessions_recalls_another_sessions_exchange_and_only_then() {
    let fixture = Fixture::new();
    let chat = fixture.service(Some(ScriptedLlm::new(Script::Echo, 4096)), ChatConfig::default());
    let first = chat.create_session(CreateSession::default()).await.unwrap();
    let fact = "the spare key hides under the green flowerpot";
    chat.send(first.id, ask(fact)).await.unwrap().finish().await.unwrap();

    let second = chat.create_session(CreateSession::default()).await.unwrap();
    let own = chat.send(second.id, ask("where is the spare key?")).await.unwrap();
    let own = own.finish().await.unwrap();
    assert!(
        own.recalled.iter().all(|r| r.user != fact),
        "recall is scoped to the session by default: {:?}",
        own.recalled
    );
    let mut request = ask("where does the spare key hide?");
    request.memory_all_sessions = true;
    let reply = chat.send(second.id, request).await.unwrap().finish().await.unwrap();
    let recalled: Vec<&str> = reply.recalled.iter().map(|r| r.user.as_str()).collect();
    assert!(recalled.contains(&fact), "{recalled:?}");
}

#[tokio::test]
async fn settings_out_of_range_refuse_the_message_before_it_is_stored() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Echo, 2048);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let mut request = ask("hello");
    request.settings = Some(SettingsPatch { temperature: Some(5.0), ..SettingsPatch::default() });
    let err = chat.send(session.id, request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("temperature"), "{err}");
    assert_eq!(chat.messages(session.id, 10, 0).await.unwrap().total, 0);
    assert!(llm.requests().is_empty());

    // A valid patch changes only its fields, for this reply.
    let mut request = ask("hello");
    request.settings = Some(SettingsPatch { max_new_tokens: Some(7), ..SettingsPatch::default() });
    chat.send(session.id, request).await.unwrap().finish().await.unwrap();
    let sent = &llm.requests()[0].settings;
    assert_eq!(sent.max_new_tokens, 7);
    assert!((sent.temperature - GenerationSettings::default().temperature).abs() < f32::EPSILON);
}

#[tokio::test]
async fn a_full_generation_queue_refuses_before_storing_anything() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Fixed("a b c d e f g h".into()), 2048)
        .with_token_delay(Duration::from_millis(50));
    let config = ChatConfig {
        max_concurrent_generations: 1,
        max_queued_generations: 0,
        tagging: TaggingMode::Off,
        ..ChatConfig::default()
    };
    let chat = fixture.service(Some(llm), config);
    let busy = chat.create_session(CreateSession::default()).await.unwrap();
    let other = chat.create_session(CreateSession::default()).await.unwrap();
    let turn = chat.send(busy.id, ask("long answer please")).await.unwrap();
    let err = chat.send(other.id, ask("me too")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
    assert_eq!(chat.messages(other.id, 10, 0).await.unwrap().total, 0);
    turn.finish().await.unwrap();
    // The slot is free again.
    chat.send(other.id, ask("now?")).await.unwrap().finish().await.unwrap();
}

fn conversation(messages: &[(ChatRole, &str)]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|(role, content)| ChatMessage { role: *role, content: (*content).into() })
        .collect()
}

#[tokio::test]
async fn a_completion_with_retrieval_cites_the_documents_and_stores_nothing() {
    let fixture = Fixture::new();
    let volcano = fixture
        .add_document("volcanoes.txt", "Basaltic lava flows are fluid.\n\nPumice floats on water.")
        .await;
    let baking = fixture
        .add_document("baking.txt", "Sourdough needs a starter.\n\nRye flour ferments fast.")
        .await;
    let llm = ScriptedLlm::new(Script::Fixed("Pumice floats [1].".into()), 2048);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let messages = conversation(&[
        (ChatRole::System, "Answer in one line."),
        (ChatRole::User, "Hello"),
        (ChatRole::Assistant, "Hi."),
        (ChatRole::User, "Does pumice float on water?"),
    ]);
    let request = CompleteRequest {
        messages,
        retrieval: Some(Retrieval {
            document_ids: vec![volcano],
            collection_ids: Vec::new(),
            filter: ragd_core::MetadataFilter::default(),
            top_k: Some(2),
        }),
        settings: None,
    };
    let reply = chat.complete(request).await.unwrap().finish().await.unwrap();
    assert_eq!(reply.text, "Pumice floats [1].");
    assert_eq!(reply.model, "scripted-model");
    assert!(!reply.citations.is_empty());
    assert!(reply.citations.iter().all(|c| c.document_id == volcano));
    assert_eq!(reply.citations[0].number, 1);
    let prompt = &llm.requests()[0].messages;
    // The configured system prompt, then the caller's, then the numbered chunks.
    assert_eq!(prompt[0].role, ChatRole::System);
    assert!(prompt[0].content.starts_with(ChatConfig::default().system_prompt.trim()));
    assert!(prompt[0].content.contains("Answer in one line."));
    assert!(prompt[0].content.contains("[1] (volcanoes.txt, page 1)"));
    assert!(!prompt[0].content.contains("Sourdough"), "restricted to the volcano document");
    // The conversation follows as given.
    let rest: Vec<&str> = prompt[1..].iter().map(|m| m.content.as_str()).collect();
    assert_eq!(rest, ["Hello", "Hi.", "Does pumice float on water?"]);
    // Nothing stored: no session, no memory.
    assert_eq!(chat.sessions(SessionQuery::default()).await.unwrap().total, 0);
    assert_eq!(fixture.store.len(TableName::Memory), 0);
    let _ = baking;
}

#[tokio::test]
async fn a_completion_without_retrieval_sends_the_conversation_as_given() {
    let fixture = Fixture::new();
    fixture.add_document("volcanoes.txt", "Pumice floats on water.").await;
    let llm = ScriptedLlm::new(Script::Fixed("ok".into()), 2048);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let messages = conversation(&[(ChatRole::System, "Be terse."), (ChatRole::User, "Pumice?")]);
    let request = CompleteRequest {
        messages: messages.clone(),
        retrieval: None,
        settings: Some(SettingsPatch { max_new_tokens: Some(5), ..SettingsPatch::default() }),
    };
    let reply = chat.complete(request).await.unwrap().finish().await.unwrap();
    assert!(reply.citations.is_empty());
    let sent = &llm.requests()[0];
    assert_eq!(sent.messages, messages);
    assert_eq!(sent.settings.max_new_tokens, 5);
}

#[tokio::test]
async fn a_completion_that_does_not_fit_is_refused_not_shortened() {
    let fixture = Fixture::new();
    fixture.add_document("volcanoes.txt", "Pumice floats on water.").await;
    let llm = ScriptedLlm::new(Script::Fixed("ok".into()), 200);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let long = "word ".repeat(400);
    let err = chat.complete(CompleteRequest::new(long.clone())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");
    // History that does not fit, with retrieval: refused too (documents give way first).
    let messages = conversation(&[
        (ChatRole::User, &long),
        (ChatRole::Assistant, "ok"),
        (ChatRole::User, "Pumice?"),
    ]);
    let request = CompleteRequest {
        messages,
        retrieval: Some(Retrieval::default()),
        settings: Some(SettingsPatch { max_new_tokens: Some(8), ..SettingsPatch::default() }),
    };
    let err = chat.complete(request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextTooLong, "{err}");
    assert!(llm.requests().is_empty(), "nothing was generated");
    // A conversation that ends with the assistant is refused.
    let request = CompleteRequest {
        messages: conversation(&[(ChatRole::User, "a"), (ChatRole::Assistant, "b")]),
        retrieval: None,
        settings: None,
    };
    assert_eq!(chat.complete(request).await.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn completions_share_the_generation_queue_with_sessions() {
    let fixture = Fixture::new();
    let llm = ScriptedLlm::new(Script::Fixed("a b c d e f g h".into()), 2048)
        .with_token_delay(Duration::from_millis(50));
    let config = ChatConfig {
        max_concurrent_generations: 1,
        max_queued_generations: 0,
        tagging: TaggingMode::Off,
        ..ChatConfig::default()
    };
    let chat = fixture.service(Some(llm), config);
    let running = chat.complete(CompleteRequest::new("long answer please")).await.unwrap();
    let err = chat.complete(CompleteRequest::new("me too")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
    let session = chat.create_session(CreateSession::default()).await.unwrap();
    let err = chat.send(session.id, ask("and me")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
    let reply = running.finish().await.unwrap();
    assert_eq!(reply.text, "a b c d e f g h");
    // The slot is free again; a reader that goes away frees it too.
    let dropped = chat.complete(CompleteRequest::new("again")).await.unwrap();
    drop(dropped);
    tokio::time::sleep(Duration::from_millis(200)).await;
    chat.complete(CompleteRequest::new("now")).await.unwrap().finish().await.unwrap();
}

#[tokio::test]
async fn summarised_context_condenses_each_chunk_once_per_question() {
    let fixture = Fixture::new();
    let volcano = fixture
        .add_document("volcanoes.txt", "Basaltic lava flows are fluid.\n\nPumice floats on water.")
        .await;
    // The scripted model answers every request, summaries included, with this text.
    let llm = ScriptedLlm::new(Script::Fixed("Pumice is light.".into()), 2048);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let session = chat
        .create_session(CreateSession { document_ids: vec![volcano], ..Default::default() })
        .await
        .unwrap();
    let question = "Does pumice float on water?";
    let summarised =
        SendMessage { context_mode: ragd_chat::ContextMode::Summaries, ..ask(question) };
    let reply = chat.send(session.id, summarised.clone()).await.unwrap().finish().await.unwrap();

    let requests = llm.requests();
    let chunks = reply.citations.len();
    assert!(chunks >= 1);
    // One summary request per retrieved chunk, each with the question and the chunk, then
    // the reply, whose prompt holds the summaries, not the chunks' text.
    let summaries: Vec<_> = requests
        .iter()
        .filter(|r| r.messages[0].content.starts_with("You condense a passage"))
        .collect();
    assert!(summaries.len() >= chunks, "{requests:#?}");
    assert!(summaries.iter().all(|r| r.messages[1].content.contains(question)));
    let answer = requests.last().unwrap();
    assert!(answer.messages[0].content.contains("Pumice is light."), "{answer:#?}");
    assert!(!answer.messages[0].content.contains("Pumice floats on water."), "{answer:#?}");
    let prompt = &reply.assistant_message.metadata["prompt"];
    assert_eq!(prompt["context_mode"], "summaries", "{prompt}");
    assert_eq!(prompt["context_summaries_cached"], 0);

    // The same question again: every summary comes from the cache.
    let before = llm.requests().len();
    let again = chat.send(session.id, summarised).await.unwrap().finish().await.unwrap();
    let asked = llm.requests().len() - before;
    let prompt = &again.assistant_message.metadata["prompt"];
    assert!(prompt["context_summaries_cached"].as_u64() >= Some(chunks as u64), "{prompt}");
    // Only the reply (and no summary) was asked of the model, besides upkeep.
    let new: Vec<_> = llm.requests()[before..].to_vec();
    assert!(
        !new.iter().any(|r| r.messages[0].content.starts_with("You condense a passage")),
        "{asked} requests: {new:#?}"
    );

    // The default mode sends the chunks' text and says so.
    let plain = chat.send(session.id, ask(question)).await.unwrap().finish().await.unwrap();
    assert_eq!(plain.assistant_message.metadata["prompt"]["context_mode"], "chunks");
    assert_eq!(plain.assistant_message.metadata["prompt"]["context_ms"], 0);
}

/// Every event of a turn, in order.
async fn all_events(mut turn: ragd_chat::ChatTurn) -> Vec<ChatEvent> {
    let mut events = Vec::new();
    while let Some(event) = turn.next_event().await {
        events.push(event);
    }
    events
}

#[tokio::test]
async fn document_context_puts_small_documents_whole_and_map_reduces_large_ones() {
    let fixture = Fixture::new();
    // Thirty paragraphs of twelve words: 360 tokens for the scripted model.
    let paragraphs: Vec<String> = (0..30)
        .map(|n| format!("Section {n} explains part {n} of the manual in plain simple words here."))
        .collect();
    let manual = fixture.add_document("manual.txt", &paragraphs.join("\n\n")).await;
    let document_mode =
        |text: &str| SendMessage { context_mode: ragd_chat::ContextMode::Document, ..ask(text) };

    // A window the whole manual fits: no summaries, every section in the prompt.
    let llm = ScriptedLlm::new(Script::Fixed("Thirty sections.".into()), 4096);
    let chat = fixture.service(Some(llm.clone()), ChatConfig::default());
    let session = chat
        .create_session(CreateSession { document_ids: vec![manual], ..Default::default() })
        .await
        .unwrap();
    let turn = chat.send(session.id, document_mode("How many sections are there?")).await.unwrap();
    let events = all_events(turn).await;
    let Some(ChatEvent::Done(reply)) = events.last() else { panic!("{events:?}") };
    let requests = llm.requests();
    assert_eq!(requests.len(), 1, "no summary requests: {requests:#?}");
    let prompt = &requests[0].messages[0].content;
    assert!(paragraphs.iter().all(|p| prompt.contains(p.as_str())), "{prompt}");
    assert_eq!(reply.assistant_message.metadata["prompt"]["context_mode"], "document");
    assert_eq!(reply.citations.len(), 1);
    assert!(
        events.iter().any(|e| matches!(e, ChatEvent::Progress { stage, .. } if stage == "reading"))
    );

    // A small window: the manual is cut into parts, each summarised, with progress.
    let small = ScriptedLlm::new(Script::Fixed("Part summary.".into()), 384);
    let chat = fixture.service(Some(small.clone()), ChatConfig::default());
    let turn = chat.send(session.id, document_mode("Summarise the manual.")).await.unwrap();
    let events = all_events(turn).await;
    let Some(ChatEvent::Done(reply)) = events.last() else { panic!("{events:?}") };
    let summarising: Vec<(usize, usize)> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Progress { stage, done, total } if stage == "summarising" => {
                Some((*done, *total))
            }
            ChatEvent::Progress { .. }
            | ChatEvent::Token(_)
            | ChatEvent::Done(_)
            | ChatEvent::Failed { .. } => None,
        })
        .collect();
    let parts = summarising.last().unwrap().1;
    assert!(parts >= 2, "{summarising:?}");
    assert_eq!(summarising.last(), Some(&(parts, parts)), "{summarising:?}");
    let requests = small.requests();
    let part_requests = requests
        .iter()
        .filter(|r| r.messages[0].content.starts_with("You summarise one part"))
        .count();
    assert_eq!(part_requests, parts);
    // The answer is generated over the part summaries, citing the parts it holds.
    let answer = requests.last().unwrap();
    assert!(answer.messages[0].content.contains("Part summary."), "{answer:#?}");
    assert!(!answer.messages[0].content.contains("Section 29 explains"), "{answer:#?}");
    assert!(!reply.citations.is_empty());
    assert_eq!(reply.assistant_message.metadata["prompt"]["context_mode"], "document");

    // A session without documents: the turn fails and the question records why.
    let empty = chat.create_session(CreateSession::default()).await.unwrap();
    let turn = chat.send(empty.id, document_mode("Summarise it.")).await.unwrap();
    let events = all_events(turn).await;
    assert!(
        matches!(events.last(), Some(ChatEvent::Failed { kind: ErrorKind::InvalidInput, .. })),
        "{events:?}"
    );
    let history = chat.messages(empty.id, 10, 0).await.unwrap();
    assert_eq!(history.items[0].metadata["error"]["code"], "invalid_input");
}
