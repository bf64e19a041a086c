//! Collections over the API on the real models and stores: uploads into a collection, the
//! document filter, search and chat sessions restricted to collections (an empty one finds
//! nothing, never everything), names and ids in paths, and the refusals (404, 409, 400).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::chat::wait_for_model;
use crate::documents::App;

const ORCHARD: &str = "# Orchards\n\nApple trees in the quiet orchard bloom in April.\n";
const RIVER: &str = "# Rivers\n\nThe river Varn floods the meadows every spring.\n";
const BREAD: &str = "# Bread\n\nSourdough needs a starter of flour and water.\n";

/// The document ids of a search's hits.
pub(crate) fn hit_documents(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits: {body}"))
        .iter()
        .map(|hit| hit["document_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn uploads_search_and_sessions_are_scoped_by_collection() {
    let app = App::new().await;
    let (status, nature) = app
        .post("/api/v1/collections", &json!({"name": "Nature", "description": "outdoors"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{nature}");
    let nature_id = nature["id"].as_str().unwrap().to_owned();
    let (status, empty) = app.post("/api/v1/collections", &json!({"name": "Empty"})).await;
    assert_eq!(status, StatusCode::CREATED, "{empty}");
    let empty_id = empty["id"].as_str().unwrap().to_owned();

    // Two documents uploaded into the collection by name, one outside it.
    let (status, upload) = app
        .upload_to(
            "/api/v1/documents?collection=nature",
            &[("orchard.md", ORCHARD.as_bytes()), ("river.md", RIVER.as_bytes())],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{upload}");
    let bread = app.add("bread.md", BREAD).await;
    let mut inside = Vec::new();
    for index in 0..2 {
        let id = upload["documents"][index]["id"].as_str().unwrap().to_owned();
        assert_eq!(app.wait(&id).await["status"], "ready");
        inside.push(id);
    }
    inside.sort();

    let (status, got) = app.get(&format!("/api/v1/collections/{nature_id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["document_count"], 2);
    assert_eq!(got["description"], "outdoors");
    let (status, listed) = app.get("/api/v1/documents?collection=Nature").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut ids: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, inside);
    assert_eq!(listed["total"], 2);

    // Search restricted to the collection finds only its documents, in every mode.
    for mode in ["keyword", "semantic", "hybrid"] {
        let body = json!({"query": "sourdough starter flour", "collection_ids": [nature_id]});
        let (status, hits) = app.post(&format!("/api/v1/search/{mode}"), &body).await;
        assert_eq!(status, StatusCode::OK, "{mode}: {hits}");
        let found = hit_documents(&hits);
        assert!(found.iter().all(|id| inside.contains(id)), "{mode}: {hits}");
        assert!(!found.contains(&bread), "{mode} leaked the document outside: {hits}");
        // Unrestricted, the bread document is found.
        let (_, all) = app
            .post(&format!("/api/v1/search/{mode}"), &json!({"query": "sourdough starter flour"}))
            .await;
        assert!(hit_documents(&all).contains(&bread), "{mode}: {all}");
        // An empty collection searches nothing, never everything.
        let body = json!({"query": "sourdough starter flour", "collection_ids": [empty_id]});
        let (status, none) = app.post(&format!("/api/v1/search/{mode}"), &body).await;
        assert_eq!(status, StatusCode::OK, "{none}");
        assert!(hit_documents(&none).is_empty(), "{mode}: {none}");
        // With documents too, the scope is their union.
        let body = json!({"query": "sourdough starter flour", "collection_ids": [empty_id], "document_ids": [bread]});
        let (_, union) = app.post(&format!("/api/v1/search/{mode}"), &body).await;
        assert_eq!(hit_documents(&union), vec![bread.clone()], "{mode}: {union}");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let (status, body) = app
        .post("/api/v1/search/hybrid", &json!({"query": "apple", "collection_ids": [unknown]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");

    // A session restricted to the collection cites only its documents.
    wait_for_model(&app).await;
    let (status, session) = app
        .post("/api/v1/sessions", &json!({"name": "outdoors", "collection_ids": [nature_id]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["collection_ids"], json!([nature_id]));
    let sid = session["id"].as_str().unwrap().to_owned();
    let ask =
        json!({"content": "How do I make a sourdough starter?", "settings": {"max_new_tokens": 8}});
    let (status, reply) = app.post(&format!("/api/v1/sessions/{sid}/messages"), &ask).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let cited: Vec<&str> = reply["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["document_id"].as_str().unwrap())
        .collect();
    assert!(!cited.is_empty(), "the collection's documents are retrieved: {reply}");
    assert!(cited.iter().all(|id| inside.iter().any(|i| i == id)), "{reply}");

    // So does a completion of the OpenAI-compatible API that names the collection.
    let body = json!({
        "model": "ragd",
        "messages": [{"role": "user", "content": "How do I make a sourdough starter?"}],
        "max_tokens": 4,
        "ragd": {"collection_ids": [nature_id]},
    });
    let (status, answer) = app.post("/v1/chat/completions", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let cited: Vec<&str> = answer["ragd"]["citations"]
        .as_array()
        .unwrap_or_else(|| panic!("no citations: {answer}"))
        .iter()
        .map(|c| c["document_id"].as_str().unwrap())
        .collect();
    assert!(!cited.is_empty(), "{answer}");
    assert!(cited.iter().all(|id| inside.iter().any(|i| i == id)), "{answer}");

    let mut unknown_scope = body.clone();
    unknown_scope["ragd"] = json!({"collection_ids": [uuid::Uuid::now_v7().to_string()]});
    let (status, refused) = app.post("/v1/chat/completions", &unknown_scope).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");

    // The collection is in use: deleting it is refused; out of the session, it can go.
    let (status, body) = app.delete(&format!("/api/v1/collections/{nature_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) =
        app.patch(&format!("/api/v1/sessions/{sid}"), &json!({"collection_ids": []})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.delete("/api/v1/collections/Nature").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/v1/documents/{}", inside[0])).await;
    assert_eq!(status, StatusCode::OK, "the documents stay stored");
}

#[tokio::test]
async fn collections_are_managed_by_id_or_name_with_clear_errors() {
    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let doc = app.add("bread.md", BREAD).await;
    let (_, a) = app.post("/api/v1/collections", &json!({"name": "Alpha"})).await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let (status, body) = app.post("/api/v1/collections", &json!({"name": "alpha"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let uuid = uuid::Uuid::now_v7().to_string();
    for bad in [json!({"name": ""}), json!({"name": uuid}), json!({"name": "x", "extra": 1})] {
        let (status, body) = app.post("/api/v1/collections", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Adding documents: all or none; a duplicate upload into another collection joins it.
    let (status, body) = app
        .post(
            &format!("/api/v1/collections/{a_id}/documents"),
            &json!({"document_ids": [doc, uuid]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        app.post("/api/v1/collections/alpha/documents", &json!({"document_ids": [doc]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["document_count"], 1);
    let (_, beta) = app.post("/api/v1/collections", &json!({"name": "Beta"})).await;
    let (status, again) =
        app.upload_to("/api/v1/documents?collection=Beta", &[("bread.md", BREAD.as_bytes())]).await;
    assert_eq!(status, StatusCode::OK, "a duplicate: {again}");
    assert_eq!(again["documents"][0]["id"], doc.as_str());
    let (_, beta) = app.get(&format!("/api/v1/collections/{}", beta["id"].as_str().unwrap())).await;
    assert_eq!(beta["document_count"], 1);

    // An upload into an unknown collection is refused before anything is stored.
    let (status, body) = app
        .upload_to("/api/v1/documents?collection=nope", &[("new.md", b"# New\n\nfresh text\n")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, all) = app.get("/api/v1/documents").await;
    assert_eq!(all["total"], 1, "{all}");

    // Rename, describe, list, take out, delete.
    let (status, renamed) =
        app.patch("/api/v1/collections/Alpha", &json!({"name": "Gamma", "description": "g"})).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Gamma");
    let (status, cleared) =
        app.patch("/api/v1/collections/gamma", &json!({"description": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["description"], Value::Null);
    let (_, list) = app.get("/api/v1/collections?limit=1").await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["name"], "Beta");
    let (status, _) = app.delete(&format!("/api/v1/collections/gamma/documents/{doc}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, gamma) = app.get("/api/v1/collections/gamma").await;
    assert_eq!(gamma["document_count"], 0);
    let (status, _) = app.delete("/api/v1/collections/gamma").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/collections/gamma").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app.get("/api/v1/documents?collection=gamma").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_upload_can_replace_the_document_of_the_same_name_in_a_collection() {
    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let (status, _) = app.post("/api/v1/collections", &json!({"name": "Docs"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, first) = app
        .upload_to(
            "/api/v1/documents?collection=Docs",
            &[("notes.md", b"# Notes\n\nHerons nest in reeds.\n")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = first["documents"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait(&id).await["status"], "ready");

    // Same name, same collection, asked to replace: same id, new content.
    let (status, second) = app
        .upload_to(
            "/api/v1/documents?collection=Docs&on_conflict=replace",
            &[("notes.md", b"# Notes\n\nCranes dance in winter fields.\n")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(second["documents"][0]["id"], id.as_str(), "{second}");
    assert_eq!(second["documents"][0]["replaced"], true, "{second}");
    assert_eq!(app.wait(&id).await["status"], "ready");
    let (_, text) = app.get(&format!("/api/v1/documents/{id}/text")).await;
    assert!(text["text"].as_str().unwrap().contains("Cranes"), "{text}");
    let (_, all) = app.get("/api/v1/documents").await;
    assert_eq!(all["total"], 1, "{all}");

    // Without the option the same name is a new document.
    let (status, third) = app
        .upload_to(
            "/api/v1/documents?collection=Docs",
            &[("notes.md", b"# Notes\n\nStorks return in spring.\n")],
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{third}");
    assert_ne!(third["documents"][0]["id"], id.as_str());
    assert_eq!(third["documents"][0]["replaced"], false);

    for uri in [
        "/api/v1/documents?on_conflict=replace",
        "/api/v1/documents?collection=Docs&on_conflict=merge",
    ] {
        let (status, body) = app.upload_to(uri, &[("x.md", b"# X\n\nx text\n")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
}
