//! The vectors in an S3 bucket (`vector_store.uri = "s3://..."`), as a deployment whose
//! storage is not one disk configures it: a built `ragd serve` with the bucket's endpoint
//! and credentials in the usual `AWS_*` variables indexes, searches, deletes, and after a
//! restart on the same data directory finds the vectors in the bucket again. The bucket is
//! on moto's S3-compatible server on loopback (`ragd_test_utils::S3Bucket`).

use std::time::Duration;

use ragd_test_utils::S3Bucket;
use serde_json::{Value, json};

use crate::served::{Api, BREAD, LIGHTHOUSE, Server};

const KEY: &str = "object-store-test-key-8c1e";

/// The file name of the first hit of a semantic search for `query`.
fn first_semantic_hit(api: &Api<'_>, server: &Server, query: &str) -> String {
    let request =
        api.client.post(server.url("/api/v1/search/semantic")).json(&json!({"query": query}));
    let (status, body) = api.send(request);
    assert_eq!(status, 200, "{body}\n{}", server.log.text());
    body["hits"][0]["filename"].as_str().unwrap_or_else(|| panic!("no hit: {body}")).to_owned()
}

#[test]
fn vectors_in_an_s3_bucket_are_written_searched_deleted_and_found_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = S3Bucket::create();
    let uri = bucket.uri("ragd/lance");
    let mut env: Vec<(String, String)> = bucket.env();
    env.extend([
        ("RAGD_VECTOR_STORE__URI".to_owned(), uri.clone()),
        ("RAGD_AUTH__KEYS".to_owned(), KEY.to_owned()),
        ("RAGD_HUB__OFFLINE".to_owned(), "true".to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let mut server = Server::start(&data, dir.path(), &env);
    let api = Api::new(&server, KEY);
    let ids = api.upload(&[("lighthouse.md", LIGHTHOUSE), ("bread.md", BREAD)]);
    for id in ids.values() {
        api.wait_for(
            &format!("/api/v1/documents/{id}"),
            Duration::from_secs(120),
            |body| body["status"] == "ready",
            |body| body["status"] == "failed",
        );
    }
    let lighthouse: Value = api.get(&format!("/api/v1/documents/{}", ids["lighthouse.md"]));
    assert_eq!(lighthouse["vector_count"], lighthouse["chunk_count"], "{lighthouse}");
    assert!(lighthouse["vector_count"].as_u64().unwrap() > 0, "{lighthouse}");
    assert_eq!(first_semantic_hit(&api, &server, "who cleans the lamp lens"), "lighthouse.md");
    assert!(!data.join("lance").exists(), "no vector table on the local disk");

    // A delete removes the document's vectors from the bucket.
    let (status, body) =
        api.send(api.client.delete(server.url(&format!("/api/v1/documents/{}", ids["bread.md"]))));
    assert!(status == 204 || status == 200, "{status} {body}");
    drop(api);
    server.stop();

    // A restart on the same data directory reads the vectors from the bucket again.
    let server = Server::start(&data, dir.path(), &env);
    let api = Api::new(&server, KEY);
    assert_eq!(first_semantic_hit(&api, &server, "feeding a sourdough starter"), "lighthouse.md");
    let lighthouse: Value = api.get(&format!("/api/v1/documents/{}", ids["lighthouse.md"]));
    assert_eq!(lighthouse["vector_count"], lighthouse["chunk_count"], "{lighthouse}");
    assert!(!data.join("lance").exists(), "no vector table on the local disk");
}
