//! A replicated deployment: several built `ragd serve` processes, each with its own data
//! directory, share one Postgres catalog (`catalog.url`, `ragd_test_utils::PgDatabase`) and
//! one S3 bucket (moto on loopback, `ragd_test_utils::S3Bucket`) for the vectors
//! (`vector_store.uri`) and the uploaded files (`ingest.uploads_uri`). Whichever replica a
//! client reaches must give the same answers:
//!
//! - a document uploaded through one replica becomes `ready`, readable (text, chunks) and
//!   found by keyword and semantic search through the other;
//! - a chat session started on one replica continues on the other, with its messages as
//!   history and its long-term memory (the `memory` vectors) recalled on both;
//! - a replica killed with SIGKILL while it processes a batch loses no acknowledged (202)
//!   document: once its leases (`ingest.lease_secs`) expire, the other replica claims the
//!   documents (`ingest.claim_poll_ms`) and finishes them, with one vector per chunk and
//!   no document twice.
//!
//! Dropping a [`Server`] kills it with SIGKILL (`Child::kill`): no shutdown code runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ragd_test_utils::{PgDatabase, S3Bucket};
use serde_json::{Value, json};

use crate::served::{Api, BREAD, LIGHTHOUSE, LogTail, Server};

const KEY: &str = "replicas-test-key-5d2a";

/// Held by each test while its replicas run: each test starts two servers, and three such
/// pairs at once beside the rest of the suite starve the other tests' servers on a 2-core
/// machine.
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`ONE_CLUSTER_AT_A_TIME`], whatever an earlier test's panic left.
fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The environment of one replica: the shared catalog, the bucket's vectors and uploads,
/// the lease and claim settings, an API key, no hub; then `extra`.
fn replica_env(
    catalog: &PgDatabase,
    bucket: &S3Bucket,
    lease_secs: u64,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = bucket.env();
    env.extend([
        ("RAGD_CATALOG__URL".to_owned(), catalog.url.clone()),
        ("RAGD_VECTOR_STORE__URI".to_owned(), bucket.uri("ragd/lance")),
        ("RAGD_INGEST__UPLOADS_URI".to_owned(), bucket.uri("ragd/uploads")),
        ("RAGD_INGEST__LEASE_SECS".to_owned(), lease_secs.to_string()),
        ("RAGD_INGEST__CLAIM_POLL_MS".to_owned(), "200".to_owned()),
        ("RAGD_AUTH__KEYS".to_owned(), KEY.to_owned()),
        ("RAGD_HUB__OFFLINE".to_owned(), "true".to_owned()),
        // As docs/DEPLOY.md tells replicas sharing a bucket: one embedding file for all,
        // chosen in the configuration, not by each replica's start-up probe.
        ("RAGD_EMBEDDING__PRECISION".to_owned(), "fp32".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `POST path` with a JSON body: the status and the answer.
fn post(api: &Api<'_>, server: &Server, path: &str, body: &Value) -> (u16, Value) {
    api.send(api.client.post(server.url(path)).json(body))
}

/// A search of `mode` (`semantic` or `keyword`) for `query`: its hits, checked to be a 200.
fn search(api: &Api<'_>, server: &Server, mode: &str, query: &str) -> Vec<Value> {
    let path = format!("/api/v1/search/{mode}");
    let (status, body) = post(api, server, &path, &json!({"query": query, "top_k": 5}));
    assert_eq!(status, 200, "{mode} search {query:?}: {body}\n{}", server.log.text());
    body["hits"].as_array().unwrap_or_else(|| panic!("no hits array: {body}")).clone()
}

/// Checks a ready document through `api`: one vector per chunk, at least one chunk, and the
/// chunks endpoint lists exactly `chunk_count` chunks with the ordinals 0..n (no chunk
/// stored twice). Returns the document and its chunks' text joined.
fn assert_complete(api: &Api<'_>, id: &str) -> (Value, String) {
    let doc = api.get(&format!("/api/v1/documents/{id}"));
    assert_eq!(doc["status"], "ready", "{doc}");
    let chunk_count = doc["chunk_count"].as_u64().unwrap_or_else(|| panic!("{doc}"));
    assert!(chunk_count > 0, "no chunks: {doc}");
    assert_eq!(doc["vector_count"].as_u64(), Some(chunk_count), "one vector per chunk: {doc}");
    let chunks = api.get(&format!("/api/v1/documents/{id}/chunks?limit=500"));
    assert_eq!(chunks["total"].as_u64(), Some(chunk_count), "{chunks}");
    let items = chunks["items"].as_array().unwrap();
    let ordinals: Vec<u64> = items.iter().map(|c| c["ordinal"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (0..chunk_count).collect();
    assert_eq!(ordinals, expected, "{}: chunks missing or stored twice", doc["filename"]);
    assert!(items.iter().all(|c| c["document_id"] == id), "{chunks}");
    let text: Vec<&str> = items.iter().map(|c| c["text"].as_str().unwrap()).collect();
    (doc, text.join("\n"))
}

/// Every document through `api` (one page of at most 500): the listing's `total` and the
/// documents by id.
fn all_documents(api: &Api<'_>) -> (u64, BTreeMap<String, Value>) {
    let list = api.get("/api/v1/documents?limit=500");
    let total = list["total"].as_u64().unwrap_or_else(|| panic!("{list}"));
    let items = list["items"].as_array().unwrap();
    let by_id = items.iter().map(|doc| (doc["id"].as_str().unwrap().to_owned(), doc.clone()));
    (total, by_id.collect())
}

/// `filename:status@progress` of each document, for failure messages.
fn states(documents: &BTreeMap<String, Value>) -> Vec<String> {
    documents
        .values()
        .map(|doc| format!("{}:{}@{}", doc["filename"], doc["status"], doc["progress"]))
        .collect()
}

/// Waits for the bundled chat model of the server `api` talks to to load.
fn wait_for_model(api: &Api<'_>) {
    api.wait_for(
        "/api/v1/models/status",
        Duration::from_secs(180),
        |status| status["state"] == "loaded",
        |status| status["state"] == "failed",
    );
}

/// A short, reproducible reply.
fn say(content: &str) -> Value {
    json!({"content": content, "settings": {"max_new_tokens": 8, "seed": 7, "temperature": 0.0}})
}

fn start_replica(data: &Path, cwd: &Path, env: &[(&str, &str)]) -> Server {
    let server = Server::start(data, cwd, env);
    assert!(!data.join("ragd.sqlite3").exists(), "the catalog is Postgres, not a local SQLite");
    server
}

#[test]
fn a_document_uploaded_through_one_replica_is_ready_searchable_and_readable_through_the_other() {
    let _cluster = one_cluster();
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let catalog = PgDatabase::create();
    let bucket = S3Bucket::create();
    let env = replica_env(&catalog, &bucket, 5, &[("RAGD_MODELS__AUTOLOAD", "none")]);
    let env = borrowed(&env);

    let a = start_replica(&data_a, dir.path(), &env);
    let b = start_replica(&data_b, dir.path(), &env);
    let api_a = Api::new(&a, KEY);
    let api_b = Api::new(&b, KEY);

    let ids = api_a.upload(&[("lighthouse.md", LIGHTHOUSE), ("bread.md", BREAD)]);
    let (lighthouse, bread) = (ids["lighthouse.md"].clone(), ids["bread.md"].clone());
    for id in ids.values() {
        api_b.wait_for(
            &format!("/api/v1/documents/{id}"),
            Duration::from_secs(120),
            |body| body["status"] == "ready",
            |body| body["status"] == "failed",
        );
    }

    // Through B: both documents, complete, with their text and chunks.
    let (total, listed) = all_documents(&api_b);
    assert_eq!(total, 2, "{:?}", states(&listed));
    let expected: BTreeSet<String> = ids.values().cloned().collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), expected);
    let (doc, chunks) = assert_complete(&api_b, &lighthouse);
    assert_eq!(doc["filename"], "lighthouse.md", "{doc}");
    assert!(chunks.contains("brass lens"), "{chunks}");
    let (doc, chunks) = assert_complete(&api_b, &bread);
    assert_eq!(doc["filename"], "bread.md", "{doc}");
    assert!(chunks.contains("wild yeast"), "{chunks}");
    let text = api_b.get(&format!("/api/v1/documents/{lighthouse}/text"));
    let text = text["text"].as_str().unwrap_or_else(|| panic!("no text: {text}"));
    assert!(text.contains("Varnholm lighthouse") && text.contains("paraffin"), "{text}");
    let text = api_b.get(&format!("/api/v1/documents/{bread}/text"));
    assert!(text["text"].as_str().unwrap().contains("sourdough starter"), "{text}");

    // Semantic search through B reads the vectors A's side wrote to the bucket.
    let hits = search(&api_b, &b, "semantic", "who cleans the lamp lens");
    assert_eq!(hits[0]["document_id"], lighthouse.as_str(), "{hits:?}");
    assert_eq!(hits[0]["filename"], "lighthouse.md", "{hits:?}");
    let hits = search(&api_b, &b, "semantic", "feeding a sourdough starter");
    assert_eq!(hits[0]["document_id"], bread.as_str(), "{hits:?}");

    // Keyword search through B reads the shared catalog's text index.
    let hits = search(&api_b, &b, "keyword", "paraffin");
    assert!(!hits.is_empty(), "no keyword hit for paraffin\n{}", b.log.text());
    assert!(hits.iter().all(|hit| hit["document_id"] == lighthouse.as_str()), "{hits:?}");
    let hits = search(&api_b, &b, "keyword", "yeast");
    assert!(!hits.is_empty(), "no keyword hit for yeast\n{}", b.log.text());
    assert!(hits.iter().all(|hit| hit["document_id"] == bread.as_str()), "{hits:?}");

    // Neither replica keeps vectors on its own disk.
    assert!(!data_a.join("lance").exists(), "replica A wrote a local vector table");
    assert!(!data_b.join("lance").exists(), "replica B wrote a local vector table");
}

#[test]
fn a_chat_session_created_on_one_replica_continues_on_the_other() {
    let _cluster = one_cluster();
    let dir = tempfile::tempdir().unwrap();
    let catalog = PgDatabase::create();
    let bucket = S3Bucket::create();
    // The bundled chat model autoloads on both replicas.
    let env = replica_env(&catalog, &bucket, 5, &[]);
    let env = borrowed(&env);

    let a = start_replica(&dir.path().join("a"), dir.path(), &env);
    let b = start_replica(&dir.path().join("b"), dir.path(), &env);
    let api_a = Api::new(&a, KEY);
    let api_b = Api::new(&b, KEY);
    wait_for_model(&api_a);
    wait_for_model(&api_b);

    // The first exchange on A.
    let (status, session) =
        post(&api_a, &a, "/api/v1/sessions", &json!({"name": "Replicated chat"}));
    assert_eq!(status, 201, "{session}\n{}", a.log.text());
    let id = session["id"].as_str().unwrap().to_owned();
    let messages = format!("/api/v1/sessions/{id}/messages");
    let fact = "My cat is called Bartholomew and he loves tuna.";
    let (status, first) = post(&api_a, &a, &messages, &say(fact));
    assert_eq!(status, 201, "{first}\n{}", a.log.text());
    let first_user = first["user_message"]["id"].as_str().unwrap().to_owned();
    let first_answer = first["assistant_message"]["id"].as_str().unwrap().to_owned();
    let on_a = api_a.get(&format!("/api/v1/sessions/{id}"));

    // B lists the session, finds it by its content, and reads it as A left it.
    let listed = api_b.get("/api/v1/sessions");
    let items = listed["items"].as_array().unwrap();
    assert!(items.iter().any(|s| s["id"] == id.as_str()), "B does not list {id}: {listed}");
    let found = api_b.get("/api/v1/sessions?q=Bartholomew");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    let on_b = api_b.get(&format!("/api/v1/sessions/{id}"));
    assert_eq!(on_b["name"], "Replicated chat", "{on_b}");
    assert_eq!(on_b["tags"], on_a["tags"], "A: {on_a}\nB: {on_b}");
    let stored = api_b.get(&format!("{messages}?limit=10"));
    assert_eq!(stored["total"], 2, "{stored}");
    assert_eq!(stored["items"][0]["id"], first_user.as_str(), "{stored}");
    assert_eq!(stored["items"][0]["role"], "user", "{stored}");
    assert_eq!(stored["items"][0]["content"], fact, "{stored}");
    assert_eq!(stored["items"][1]["id"], first_answer.as_str(), "{stored}");
    assert_eq!(stored["items"][1]["role"], "assistant", "{stored}");
    assert_eq!(stored["items"][1]["content"], first["assistant_message"]["content"], "{stored}");

    // A's exchange is in the long-term memory B recalls from.
    let recalled = api_b.get(&format!("/api/v1/sessions/{id}/memory/search?q=cat%20name&top_k=3"));
    let hits = recalled["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "B recalls nothing of A's exchange: {recalled}\n{}", b.log.text());
    assert_eq!(hits[0]["assistant_message_id"], first_answer.as_str(), "{recalled}");
    assert_eq!(hits[0]["user"], fact, "{recalled}");

    // The next message goes to B, which answers with A's exchange as history.
    let question = "What is my cat called?";
    let (status, second) = post(&api_b, &b, &messages, &say(question));
    assert_eq!(status, 201, "{second}\n{}", b.log.text());
    let second_user = second["user_message"]["id"].as_str().unwrap().to_owned();
    let second_answer = second["assistant_message"]["id"].as_str().unwrap().to_owned();
    let prompt = &second["assistant_message"]["metadata"]["prompt"];
    assert_eq!(prompt["history_messages"], 2, "B's prompt lacks A's exchange: {prompt}");

    // A shows both exchanges, in order, each reply answering its question.
    let stored = api_a.get(&format!("{messages}?limit=10"));
    assert_eq!(stored["total"], 4, "{stored}");
    let items = stored["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let expected = [&first_user, &first_answer, &second_user, &second_answer];
    assert_eq!(ids, expected.map(String::as_str), "{stored}");
    assert_eq!(items[2]["content"], question, "{stored}");
    assert_eq!(items[3]["content"], second["assistant_message"]["content"], "{stored}");
    assert_eq!(items[1]["metadata"]["reply_to"], first_user.as_str(), "{stored}");
    assert_eq!(items[3]["metadata"]["reply_to"], second_user.as_str(), "{stored}");

    // And A recalls the exchange B remembered.
    let path =
        format!("/api/v1/sessions/{id}/memory/search?q=What%20is%20my%20cat%20called&top_k=5");
    let recalled = api_a.get(&path);
    let hits = recalled["hits"].as_array().unwrap();
    assert!(
        hits.iter().any(|hit| hit["assistant_message_id"] == second_answer.as_str()),
        "A does not recall B's exchange: {recalled}\n{}",
        a.log.text()
    );
}

/// Twelve distinct topics, each with a paraphrase that semantic search must match to it.
const TOPICS: [(&str, &str); 12] = [
    (
        "The keeper of the lighthouse climbs the spiral stairs at dusk and polishes the brass \
         lens until the lamp shines far over the stormy sea.",
        "who polishes the lighthouse lens",
    ),
    (
        "A sourdough starter is flour and water fermented by wild yeast; the baker feeds it \
         every morning and keeps the jar warm beside the oven.",
        "feeding a sourdough starter",
    ),
    (
        "Honeybees perform a waggle dance inside the hive to tell the other bees in which \
         direction and how far away the flowers are blooming.",
        "how bees tell each other where the flowers are",
    ),
    (
        "Glaciers carve deep U-shaped valleys as the slow river of ice grinds over the bedrock \
         and drags boulders down the mountain side.",
        "how glaciers shape mountain valleys",
    ),
    (
        "The violin maker carves the spruce top and the maple back by hand, then brushes on \
         thin coats of amber varnish to finish the instrument.",
        "crafting a violin from wood",
    ),
    (
        "A comet grows a bright tail of gas and dust when it passes close to the sun, and the \
         solar wind pushes the tail away from the sun.",
        "why comets have tails",
    ),
    (
        "Marathon runners eat large plates of pasta the night before the race so that their \
         muscles store enough energy for the long run.",
        "what runners eat before a marathon",
    ),
    (
        "An origami crane is folded from a single square sheet of paper without any cuts or \
         glue, one careful crease after another.",
        "folding a paper crane",
    ),
    (
        "The volcano erupted with a deafening roar, throwing ash and glowing lava high into \
         the sky while the villagers fled down the slopes.",
        "lava and ash from an erupting volcano",
    ),
    (
        "Chess players often open the game by moving a pawn to the centre of the board and \
         developing the knights and bishops early.",
        "good opening moves in chess",
    ),
    (
        "Tomato seedlings need warm soil, regular watering and plenty of sunlight before they \
         are planted out in the vegetable garden.",
        "growing tomato plants in the garden",
    ),
    (
        "A submarine dives by flooding its ballast tanks with sea water and surfaces again by \
         blowing the water out with compressed air.",
        "how a submarine dives and surfaces",
    ),
];

/// A made-up word found in only one document of the batch.
const CODEWORDS: [&str; 12] = [
    "zanfrique",
    "brolleth",
    "quimbara",
    "trevastine",
    "mulgorrow",
    "fenwhistle",
    "gorbantic",
    "plinkerel",
    "swazzlume",
    "dromblick",
    "yarnelope",
    "kestrovane",
];

/// Document `n` of the batch: its topic, then a register that makes a few dozen chunks,
/// every line naming the document's own code word.
fn batch_document(n: usize) -> String {
    let (topic, _) = TOPICS[n];
    let word = CODEWORDS[n];
    let register: String = (0..50)
        .map(|i| {
            format!(
                "Entry {i} of the {word} register lists crate {} on shelf {} in row {n}. ",
                (i * 7 + n) % 31,
                i % 9
            )
        })
        .collect();
    format!("# Note {n}\n\n{topic}\n\n{register}\n")
}

#[test]
fn killing_a_replica_mid_batch_loses_no_acknowledged_document() {
    let _cluster = one_cluster();
    let dir = tempfile::tempdir().unwrap();
    let catalog = PgDatabase::create();
    let bucket = S3Bucket::create();
    // Small chunks embedded a few at a time: the batch takes a while, so the kill comes
    // while documents are mid-way.
    let extra = [
        ("RAGD_MODELS__AUTOLOAD", "none"),
        ("RAGD_INGEST__CHUNK_MAX_TOKENS", "48"),
        ("RAGD_INGEST__CHUNK_OVERLAP_TOKENS", "8"),
        ("RAGD_INGEST__EMBED_BATCH_SIZE", "4"),
    ];
    let env = replica_env(&catalog, &bucket, 3, &extra);
    let env = borrowed(&env);

    let a = start_replica(&dir.path().join("a"), dir.path(), &env);
    let b = start_replica(&dir.path().join("b"), dir.path(), &env);
    let log_a: LogTail = a.log.clone();
    let api_a = Api::new(&a, KEY);
    let api_b = Api::new(&b, KEY);

    let files: Vec<(String, String)> =
        (0..TOPICS.len()).map(|n| (format!("batch-{n:02}.md"), batch_document(n))).collect();
    let borrowed_files: Vec<(&str, &str)> =
        files.iter().map(|(name, text)| (name.as_str(), text.as_str())).collect();
    // `upload` asserts the 202: every id it returns is acknowledged.
    let acknowledged = api_a.upload(&borrowed_files);
    assert_eq!(acknowledged.len(), files.len());
    let acknowledged_ids: BTreeSet<String> = acknowledged.values().cloned().collect();
    assert_eq!(acknowledged_ids.len(), files.len(), "one id per file: {acknowledged:?}");

    // Kill A as soon as a document is embedding with some progress made.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, documents) = all_documents(&api_a);
        let embedding = documents
            .values()
            .any(|doc| doc["status"] == "embedding" && doc["progress"].as_u64().unwrap_or(0) > 0);
        if embedding {
            break;
        }
        assert!(
            documents.values().any(|doc| doc["status"] != "ready"),
            "every document was ready before the kill; make the documents longer"
        );
        assert!(
            Instant::now() < deadline,
            "no document reached embedding: {:?}\n{}",
            states(&documents),
            a.log.text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(api_a);
    drop(a); // SIGKILL
    let (_, at_kill) = all_documents(&api_b);
    let unfinished = at_kill.values().filter(|doc| doc["status"] != "ready").count();
    eprintln!("killed replica A with SIGKILL while documents were {:?}", states(&at_kill));
    assert!(unfinished > 0, "the batch was done before the kill: {:?}", states(&at_kill));

    // B finishes every acknowledged document, A's leased ones once their leases expire.
    let deadline = Instant::now() + Duration::from_secs(180);
    let documents = loop {
        let (_, documents) = all_documents(&api_b);
        let failed: Vec<&Value> =
            documents.values().filter(|doc| doc["status"] == "failed").collect();
        assert!(failed.is_empty(), "{failed:?}\n{}", b.log.text());
        let ready = acknowledged_ids
            .iter()
            .filter(|id| documents.get(*id).is_some_and(|doc| doc["status"] == "ready"))
            .count();
        if ready == acknowledged_ids.len() {
            break documents;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {} documents ready after 180 s: {:?}\n--- replica B ---\n{}\n--- replica A \
             (killed) ---\n{}",
            acknowledged_ids.len(),
            states(&documents),
            b.log.text(),
            log_a.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Exactly the acknowledged documents, once each.
    let (total, _) = all_documents(&api_b);
    assert_eq!(total, files.len() as u64, "{:?}", states(&documents));
    assert_eq!(documents.keys().cloned().collect::<BTreeSet<_>>(), acknowledged_ids);
    let shas: BTreeSet<&str> = documents.values().map(|d| d["sha256"].as_str().unwrap()).collect();
    assert_eq!(shas.len(), files.len(), "{:?}", states(&documents));

    // Each complete: one vector per chunk, every chunk once, the document's own text.
    for (n, (name, _)) in files.iter().enumerate() {
        let id = &acknowledged[name];
        let (doc, chunks) = assert_complete(&api_b, id);
        assert_eq!(doc["filename"], name.as_str(), "{doc}");
        let last_entry = format!("Entry 49 of the {} register", CODEWORDS[n]);
        assert!(chunks.contains(CODEWORDS[n]), "{name}: {chunks}");
        let stored = api_b.get(&format!("/api/v1/documents/{id}/text"));
        let stored = stored["text"].as_str().unwrap();
        let (topic, _) = TOPICS[n];
        assert!(stored.contains(&topic[..40]) && stored.contains(&last_entry), "{name}: {stored}");
    }

    // Search through B finds each document by its topic and by its code word.
    for (n, (name, _)) in files.iter().enumerate() {
        let id = acknowledged[name].as_str();
        let (_, query) = TOPICS[n];
        let hits = search(&api_b, &b, "semantic", query);
        assert_eq!(hits[0]["document_id"], id, "{query:?} should find {name}: {hits:?}");
        let hits = search(&api_b, &b, "keyword", CODEWORDS[n]);
        assert!(!hits.is_empty(), "no keyword hit for {}", CODEWORDS[n]);
        assert!(hits.iter().all(|hit| hit["document_id"] == id), "{name}: {hits:?}");
    }
}
