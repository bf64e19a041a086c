//! The HTTP API in process: status codes, bodies and the OpenAPI document.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use ragd::AppState;
use serde_json::Value;
use tower::ServiceExt;

use crate::test_config;

/// Every route `docs/API.md` lists in its route tables, as (method, path): rows of the form
/// ``| METHOD | `/path` | ... |``. Read from the page itself, so the page and the OpenAPI
/// document cannot drift apart. `/openapi.json` and `/docs` serve the document itself and
/// are not in it.
fn routes_in_api_md() -> BTreeSet<(String, String)> {
    // Relative to the package root, the working directory of `cargo test`.
    let page = std::fs::read_to_string("../../docs/API.md").unwrap();
    let routes: BTreeSet<(String, String)> = page
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let method = cells.next()?;
            let path = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let known = ["GET", "POST", "PUT", "PATCH", "DELETE"];
            known.contains(&method).then(|| (method.to_lowercase(), path.to_owned()))
        })
        .filter(|(_, path)| path != "/openapi.json" && path != "/docs")
        .collect();
    assert!(routes.len() > 20, "docs/API.md lists its routes in tables: {routes:?}");
    routes
}

pub(crate) async fn call(method: Method, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let app = ragd::api::router(AppState::open(test_config(dir.path())).await.unwrap());
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, content_type, body)
}

pub(crate) async fn get_json(uri: &str) -> (StatusCode, Value) {
    let (status, content_type, body) = call(Method::GET, uri).await;
    assert!(content_type.starts_with("application/json"), "{uri}: {content_type}");
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn health_answers_200_and_names_what_is_unavailable() {
    // `test_config` has no assets: the server is up, without the embedder.
    let (status, body) = get_json("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "degraded", "{body}");
    let components = body["components"].as_array().unwrap();
    let available =
        |name: &str| components.iter().find(|c| c["name"] == name).map(|c| c["available"].clone());
    assert_eq!(available("catalog"), Some(serde_json::json!(true)), "{body}");
    assert_eq!(available("embedder"), Some(serde_json::json!(false)), "{body}");
    // The reason is left to the authenticated /api/v1/info.
    assert!(components.iter().all(|c| c.get("detail").is_none()), "{body}");
    let (status, info) = get_json("/api/v1/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["health"], "degraded");
    let embedder = info["components"].as_array().unwrap().iter().find(|c| c["name"] == "embedder");
    let detail = embedder.unwrap()["detail"].as_str().unwrap();
    assert!(detail.contains("cargo xtask assets"), "{info}");
}

#[tokio::test]
async fn info_reports_version_config_and_assets_without_secrets() {
    let (status, body) = get_json("/api/v1/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "ragd");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["config"]["port"], 0);
    assert_eq!(body["config"]["hf_token_present"], false);
    assert_eq!(body["config"]["hub_endpoint"], "https://huggingface.co");
    assert_eq!(body["config"]["hub_offline"], false);
    assert_eq!(body["config"]["hf_cache_dir"], "/nonexistent/.cache/huggingface/hub");
    let assets = body["assets"].as_array().unwrap();
    assert_eq!(assets.len(), ragd_core_asset_count());
    assert!(assets.iter().all(|a| a["present"] == false), "HOME=/nonexistent has no assets");
}

fn ragd_core_asset_count() -> usize {
    // The binary crate re-exports nothing of ragd-core's asset list on purpose; the count
    // is part of the API contract: ONNX Runtime, PDFium, five model files (the embedding
    // model's three, its tokenizer, the paraphrase model), the chat model and its Hugging
    // Face folder.
    9
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let (status, body) = get_json("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("/api/v1/nope"));
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let (status, content_type, body) = call(Method::DELETE, "/health").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(content_type.starts_with("application/json"));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn openapi_is_3_1_and_lists_every_route() {
    let (status, spec) = get_json("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"), "{}", spec["openapi"]);

    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let in_api_md = routes_in_api_md();
    let missing: Vec<_> = documented.difference(&in_api_md).collect();
    let extra: Vec<_> = in_api_md.difference(&documented).collect();
    assert!(missing.is_empty(), "routes served but not in docs/API.md: {missing:?}");
    assert!(extra.is_empty(), "routes in docs/API.md but not served: {extra:?}");

    // Every documented route is really served (not a 404 from the fallback; a handler's
    // own 404 for the `{collection}` named literally is fine).
    for (method, path) in &documented {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, _, body) = call(method.clone(), path).await;
        let unrouted = String::from_utf8_lossy(&body).contains("no route for");
        assert!(!(status == StatusCode::NOT_FOUND && unrouted), "{method} {path}");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }

    // The error body shape is part of the document.
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    // API keys: a bearer scheme, required (and answered with 401/429) everywhere but /health
    // and the page.
    assert_eq!(spec["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    assert!(spec["paths"]["/health"]["get"]["security"].is_null());
    assert!(spec["paths"]["/"]["get"]["security"].is_null());
    let send = &spec["paths"]["/api/v1/sessions/{id}/messages"]["post"];
    assert_eq!(send["security"][0]["api_key"], serde_json::json!([]), "{send}");
    for status in ["401", "429"] {
        assert!(send["responses"][status].is_object(), "{status}: {send}");
    }
}

#[tokio::test]
async fn docs_page_is_served_without_external_assets() {
    let (status, content_type, body) = call(Method::GET, "/docs/").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = String::from_utf8(body).unwrap();
    assert!(!html.contains("https://"), "the docs page must not load assets from the web");

    let (status, _, body) = call(Method::GET, "/docs/swagger-initializer.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("/openapi.json"));
}

/// `GET path` with `accept`, through `app`: status, headers and body.
async fn fetch(
    app: &crate::documents::App,
    path: &str,
    accept: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let request = Request::get(path).header("accept", accept).body(Body::empty()).unwrap();
    let response = app.router().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn the_page_goes_to_browsers_and_json_to_clients_without_a_key() {
    use crate::documents::App;

    let app = App::with(|config| {
        config.auth.key_sha256 = vec![ragd::api::auth::hash_key("s3cret")];
        config.models.autoload = "none".to_owned();
    })
    .await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (status, headers, body) = fetch(&app, "/", browser).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("object-src 'none'"), "{csp}");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/app.js">"#), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "no outside assets");

    let (status, headers, body) = fetch(&app, "/", "application/json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    let root: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(root["name"], "ragd");
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(root["status"] == "ok" || root["status"] == "degraded", "{root}");

    // Every file the page loads is served without a key, with its type; the API is not.
    for (path, mime) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let (status, headers, body) = fetch(&app, path, "*/*").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(mime), "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(!body.is_empty());
    }
    let (status, _, body) = fetch(&app, "/ui/../api/v1/info", "*/*").await;
    assert_ne!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = fetch(&app, "/ui/secrets.js", "*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    let (status, _, _) = fetch(&app, "/api/v1/info", "application/json").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ui_dir_serves_the_pages_files_from_disk() {
    use crate::documents::App;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.js"), "// edited on disk\n").unwrap();
    let ui_dir = dir.path().to_path_buf();
    let app = App::with(move |config| {
        config.server.ui_dir = Some(ui_dir);
        config.models.autoload = "none".to_owned();
    })
    .await;
    let (status, _, body) = fetch(&app, "/ui/app.js", "*/*").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"// edited on disk\n");
    // A name the page does not have is not read from the directory either.
    std::fs::write(dir.path().join("other.js"), "secret").unwrap();
    let (status, _, _) = fetch(&app, "/ui/other.js", "*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A file missing from the directory is a clear 503, not an empty page.
    let (status, _, body) = fetch(&app, "/ui/style.css", "*/*").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&body).contains("style.css"));
}

#[tokio::test]
async fn api_keys_are_required_except_for_health_and_rate_limited() {
    use crate::documents::App;

    let app = App::with(|config| {
        config.auth.key_sha256 = vec![ragd::api::auth::hash_key("s3cret")];
        config.auth.requests_per_minute = 3;
        config.models.autoload = "none".to_owned();
    })
    .await;
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let response = app.router().oneshot(Request::get("/api/v1/info").body(Body::empty()).unwrap());
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let with_key = |key: &str| {
        Request::get("/api/v1/info")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _) = app.send(with_key("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for _ in 0..3 {
        let (status, body) = app.send(with_key("s3cret")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body.to_string().contains("s3cret"));
    }
    let response = app.router().oneshot(with_key("s3cret")).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
}

#[tokio::test]
async fn model_paths_outside_the_allowed_folders_are_refused() {
    use crate::documents::App;

    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), b"GGUF not really").unwrap();
    for model in [outside.path().to_str().unwrap(), "/etc/passwd"] {
        let (status, body) = app
            .post("/api/v1/models/load", &serde_json::json!({"backend": "local", "model": model}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("outside"), "{body}");
    }
    let (_, status) = app.get("/api/v1/models/status").await;
    assert_eq!(status["state"], "not_loaded");
}

#[tokio::test]
async fn a_loads_settings_may_be_partial_and_a_refused_load_changes_none() {
    use crate::documents::App;

    let app = App::with(|config| config.models.autoload = "none".to_owned()).await;
    let bundled = crate::documents::assets_dir().join(ragd_core::assets::CHAT_MODEL.path);
    let load = |temperature: f64| {
        serde_json::json!({
            "backend": "local",
            "model": bundled.to_str().unwrap(),
            "settings": {"temperature": temperature},
        })
    };
    let (status, body) = app.post("/api/v1/models/load", &load(0.25)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "a partial `settings` is accepted: {body}");
    // The bundled model takes a while to load: a second load meets the first and is refused,
    // and its settings do not take effect.
    let (status, body) = app.post("/api/v1/models/load", &load(1.9)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, settings) = app.get("/api/v1/models/config").await;
    assert_eq!(settings["temperature"], 0.25, "{settings}");
    assert_eq!(settings["top_p"], 0.95, "untouched fields keep their value: {settings}");

    let (status, body) = app
        .post(
            "/api/v1/models/load",
            &serde_json::json!({"backend": "local", "model": "x", "settings": {"top_p": 7}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("top_p"), "{body}");
}

/// The router over an engine built from the fakes of `ragd-test-utils`: handler tests that
/// need no model files (the real-stack tests above and in the other modules stay).
#[tokio::test]
async fn the_router_serves_an_engine_built_over_fakes() {
    use std::sync::Arc;

    use ragd_test_utils::{FakeEmbedder, InMemoryStore, Script, ScriptedLlm};

    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let llm = ScriptedLlm::new(Script::Fixed("Forty-two.".to_owned()), 2048);
    let store = Arc::new(InMemoryStore::new());
    let engine = ragd_engine::Engine::builder(config.engine_config())
        .embedder(Arc::new(FakeEmbedder::new(8)))
        .vector_store(store.clone())
        .llm(Arc::new(llm.clone()))
        .system_monitor(false)
        .build()
        .await
        .unwrap();
    let app = ragd::api::router(AppState::new(config, engine));
    let request = |method: Method, uri: &str, body: Value| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let json = |response: axum::response::Response| async move {
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<Value>(&bytes).unwrap())
    };

    let (status, health) =
        json(app.clone().oneshot(request(Method::GET, "/health", Value::Null)).await.unwrap())
            .await;
    assert_eq!((status, &health["status"]), (StatusCode::OK, &Value::from("ok")), "{health}");
    let (status, model) = json(
        app.clone()
            .oneshot(request(Method::GET, "/api/v1/models/status", Value::Null))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&model["state"], &model["model"]["backend"]),
        (&Value::from("loaded"), &Value::from("custom")),
        "{model}"
    );
    let since = model["since"].as_str().unwrap();
    assert!(since.len() == 24 && since.ends_with('Z'), "one timestamp format: {since}");

    let (status, session) = json(
        app.clone()
            .oneshot(request(Method::POST, "/api/v1/sessions", serde_json::json!({})))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let uri = format!("/api/v1/sessions/{}/messages", session["id"].as_str().unwrap());
    let (status, reply) = json(
        app.clone()
            .oneshot(request(
                Method::POST,
                &uri,
                serde_json::json!({"content": "What is the answer?"}),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["assistant_message"]["content"], "Forty-two.");
    assert_eq!(reply["assistant_message"]["metadata"]["backend"], llm_name(&llm));
    assert_eq!(store.len(ragd_core::TableName::Memory), 1, "the exchange went to memory");

    // Sessions and messages page like documents, with the same timestamps.
    let (status, page) = json(
        app.clone()
            .oneshot(request(Method::GET, "/api/v1/sessions?limit=5", Value::Null))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&page["total"], &page["limit"], &page["offset"]),
        (&Value::from(1), &Value::from(5), &Value::from(0)),
        "{page}"
    );
    let created = page["items"][0]["created_at"].as_str().unwrap();
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    let (_, messages) =
        json(app.clone().oneshot(request(Method::GET, &uri, Value::Null)).await.unwrap()).await;
    assert_eq!(
        (&messages["total"], &messages["limit"]),
        (&Value::from(2), &Value::from(50)),
        "{messages}"
    );
}

fn llm_name(llm: &ragd_test_utils::ScriptedLlm) -> String {
    ragd_core::LlmBackend::name(llm).to_owned()
}
