//! API keys scoped to collections, on the real router, models and stores: a scoped key sees
//! only its collections' documents, sessions and search hits; everything else answers 404
//! worded exactly as for something missing; what every key shares answers 403. The MCP
//! tools, over Streamable HTTP with the same key, see the same.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::collections::hit_documents;
use crate::documents::App;

const ADMIN: &str = "admin-key-0123";
const TEAM: &str = "team-key-4567";
const BOUNDARY: &str = "ragd-scoped-boundary";

/// Requests with one key.
struct As<'a> {
    app: &'a App,
    key: &'a str,
}

impl As<'_> {
    async fn call(&self, method: &str, uri: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.key));
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.app.send(request).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call("GET", uri, None).await
    }

    async fn post(&self, uri: &str, body: &Value) -> (StatusCode, Value) {
        self.call("POST", uri, Some(body)).await
    }

    /// Uploads one text file to `uri`.
    async fn upload(&self, uri: &str, name: &str, text: &str) -> (StatusCode, Value) {
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
             Content-Type: text/markdown\r\n\r\n{text}\r\n--{BOUNDARY}--\r\n"
        );
        let request = Request::post(uri)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .unwrap();
        self.app.send(request).await
    }

    /// Uploads and waits until ready; returns the document id.
    async fn add(&self, uri: &str, name: &str, text: &str) -> String {
        let (status, body) = self.upload(uri, name, text).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["documents"][0]["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, doc) = self.get(&format!("/api/v1/documents/{id}")).await;
            if doc["status"] == "ready" {
                return id;
            }
            assert_ne!(doc["status"], "failed", "{doc}");
            assert!(Instant::now() < deadline, "{doc}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ids(items: &Value) -> Vec<String> {
    let mut ids: Vec<String> = items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_scoped_key_sees_only_its_collections_and_cannot_change_shared_state() {
    let app = App::with(|config| {
        config.auth.key_sha256 = vec![ragd::api::auth::hash_key(ADMIN)];
        config.auth.scoped_keys = vec![ragd::config::ScopedKey {
            key_sha256: ragd::api::auth::hash_key(TEAM),
            collections: vec!["Nature".to_owned(), "not-created-yet".to_owned()],
        }];
    })
    .await;
    let admin = As { app: &app, key: ADMIN };
    let team = As { app: &app, key: TEAM };

    for name in ["Nature", "Secret"] {
        let (status, body) = admin.post("/api/v1/collections", &json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let orchard = admin
        .add(
            "/api/v1/documents?collection=Nature",
            "orchard.md",
            "# Orchards\n\nApple trees in the quiet orchard bloom in April.\n",
        )
        .await;
    let bread = admin
        .add(
            "/api/v1/documents?collection=Secret",
            "bread.md",
            "# Bread\n\nSourdough bread needs a starter of flour and water.\n",
        )
        .await;
    let loose = admin
        .add("/api/v1/documents", "river.md", "# Rivers\n\nThe river Varn floods in spring.\n")
        .await;

    // Collections: only its own; another is as missing as a missing one.
    let (status, list) = team.get("/api/v1/collections").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Nature"]);
    assert_eq!(list["total"], 1);
    let (secret_status, secret) = team.get("/api/v1/collections/Secret").await;
    let (missing_status, missing) = team.get("/api/v1/collections/Nowhere").await;
    assert_eq!((secret_status, missing_status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(secret["error"]["code"], missing["error"]["code"]);
    assert_eq!(
        secret["error"]["message"].as_str().unwrap().replace("Secret", "Nowhere"),
        missing["error"]["message"].as_str().unwrap()
    );
    let (status, body) = team.post("/api/v1/collections", &json!({"name": "Mine"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");

    // Documents: only those in its collections.
    let (status, list) = team.get("/api/v1/documents").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list["items"]), [orchard]);
    let (status, list) = admin.get("/api/v1/documents").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 3, "the unlimited key sees everything");
    for hidden in [&bread, &loose] {
        for uri in [
            format!("/api/v1/documents/{hidden}"),
            format!("/api/v1/documents/{hidden}/text"),
            format!("/api/v1/documents/{hidden}/chunks"),
        ] {
            let (status, body) = team.get(&uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        }
        let (status, _) = team.call("DELETE", &format!("/api/v1/documents/{hidden}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = admin.get(&format!("/api/v1/documents/{bread}")).await;
    assert_eq!(status, StatusCode::OK, "the refused delete deleted nothing");
    let (status, chunks) = admin.get(&format!("/api/v1/documents/{bread}/chunks")).await;
    assert_eq!(status, StatusCode::OK);
    let chunk = chunks["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = team.get(&format!("/api/v1/documents/chunks/{chunk}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Adding another collection's document to its own is refused the same way.
    let (status, _) =
        team.post("/api/v1/collections/Nature/documents", &json!({"document_ids": [bread]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Uploads: into its collections only.
    let (status, body) = team.upload("/api/v1/documents", "mine.md", "# Mine\n\nMeadows.\n").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        team.upload("/api/v1/documents?collection=Secret", "mine.md", "# Mine\n\nMeadows.\n").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let meadow = team
        .add("/api/v1/documents?collection=Nature", "meadow.md", "# Meadow\n\nBread and meadows.\n")
        .await;

    // Search: hits from its collections only, whatever it asks for.
    let (status, hits) =
        team.post("/api/v1/search/keyword", &json!({"query": "bread", "top_k": 10})).await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(hit_documents(&hits), std::slice::from_ref(&meadow));
    let (status, hits) =
        admin.post("/api/v1/search/keyword", &json!({"query": "bread", "top_k": 10})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(hit_documents(&hits).contains(&bread));
    let secret_id = secret_collection_id(&admin).await;
    for body in [
        json!({"query": "bread", "collection_ids": [secret_id]}),
        json!({"query": "bread", "document_ids": [bread]}),
    ] {
        let (status, refused) = team.post("/api/v1/search/hybrid", &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}: {refused}");
    }

    // Sessions: its own are restricted to its collections; others are not there.
    let (status, mine) = team.post("/api/v1/sessions", &json!({"name": "team notes"})).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["collection_ids"].as_array().unwrap().len(), 1, "{mine}");
    let (status, theirs) = admin
        .post("/api/v1/sessions", &json!({"name": "secret", "collection_ids": [secret_id]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let (status, open) = admin.post("/api/v1/sessions", &json!({"name": "everything"})).await;
    assert_eq!(status, StatusCode::CREATED, "{open}");
    let (status, list) = team.get("/api/v1/sessions").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list["items"]), [mine["id"].as_str().unwrap().to_owned()]);
    for other in [&theirs, &open] {
        let id = other["id"].as_str().unwrap();
        let (status, _) = team.get(&format!("/api/v1/sessions/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = team.get(&format!("/api/v1/sessions/{id}/messages")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) =
        team.post("/api/v1/sessions", &json!({"name": "x", "collection_ids": [secret_id]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // What every key shares.
    for (uri, body) in [
        ("/api/v1/models/load", json!({"backend": "local", "model": "bundled"})),
        ("/api/v1/models/unload", json!({})),
        ("/api/v1/index/reembed", json!({})),
    ] {
        let (status, refused) = team.post(uri, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {refused}");
    }
    let (status, _) = team.call("PUT", "/api/v1/models/config", Some(&json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = team.call("DELETE", "/api/v1/collections/Nature", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The MCP tools see what the key sees.
    let session = team.mcp_session().await;
    let found =
        team.mcp_tool(&session, "search", json!({"query": "bread", "mode": "keyword"})).await;
    let documents: Vec<&str> = found["structuredContent"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .map(|hit| hit["document_id"].as_str().unwrap())
        .collect();
    assert_eq!(documents, [meadow.as_str()], "{found}");
    let listed = team.mcp_tool(&session, "list_documents", json!({})).await;
    assert_eq!(listed["structuredContent"]["total"], 2, "{listed}");
    let read = team.mcp_tool(&session, "get_document_text", json!({"document_id": bread})).await;
    assert_eq!(read["isError"], true, "{read}");
    assert!(read.to_string().contains("not found"), "{read}");
}

impl As<'_> {
    /// One MCP JSON-RPC message over Streamable HTTP; the answer's session id and its
    /// JSON-RPC reply (from the SSE stream), if any.
    async fn mcp(&self, session: Option<&str>, message: &Value) -> (Option<String>, Value) {
        let mut request = Request::post("/mcp")
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(session) = session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        let request = request.body(Body::from(message.to_string())).unwrap();
        let response = self.app.router().oneshot(request).await.unwrap();
        let status = response.status();
        let session = response
            .headers()
            .get("mcp-session-id")
            .map(|value| value.to_str().unwrap().to_owned());
        let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
            .await
            .expect("the MCP answer ends")
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(status.is_success(), "{status}: {text}");
        let reply = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|value| value.get("id").is_some())
            .unwrap_or(Value::Null);
        (session, reply)
    }

    async fn mcp_session(&self) -> String {
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "scoped-test", "version": "1"}
        }});
        let (session, reply) = self.mcp(None, &initialize).await;
        assert!(reply["result"]["serverInfo"].is_object(), "{reply}");
        let session = session.expect("a session id");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.mcp(Some(&session), &initialized).await;
        session
    }

    /// Calls an MCP tool; returns its result.
    async fn mcp_tool(&self, session: &str, tool: &str, arguments: Value) -> Value {
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": tool, "arguments": arguments}});
        let (_, reply) = self.mcp(Some(session), &call).await;
        reply["result"].clone()
    }
}

/// The id of the collection `Secret`, as the unlimited key sees it.
async fn secret_collection_id(admin: &As<'_>) -> String {
    let (status, body) = admin.get("/api/v1/collections/Secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["id"].as_str().unwrap().to_owned()
}
