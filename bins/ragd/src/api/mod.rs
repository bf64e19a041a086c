//! The HTTP API: the router, its OpenAPI document and the browsable docs page.
//!
//! Routes are registered through `utoipa_axum::OpenApiRouter`, so a handler and its OpenAPI
//! entry are added in the same line and cannot drift apart. `/openapi.json` serves the
//! OpenAPI 3.1 document and `/docs` a Swagger UI that is vendored into the binary (no CDN).
//!
//! Handlers are three steps: extract and validate the DTO, call one service function, map
//! the result (architecture invariant 6).

pub mod auth;
pub mod collections;
pub mod compat;
pub mod documents;
pub mod embeddings;
mod error;
pub mod index;
pub mod models;
pub mod ollama;
pub mod openai;
pub mod scope;
pub mod search;
pub mod sessions;
pub mod sync;
pub mod system;
pub mod ui;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{
    ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, ErrorDetail, OllamaErrorBody, OpenAiErrorBody,
    OpenAiErrorDetail, Protocol, status_for,
};

use crate::state::AppState;

/// The most items one page of a listing may hold.
pub const MAX_PAGE: u32 = 500;

/// The page size of a listing: `limit`, or 50, checked to be 1 to [`MAX_PAGE`].
///
/// # Errors
/// `InvalidInput` for 0 or more than [`MAX_PAGE`].
pub fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(50) {
        0 => Err(ApiError::new(ragd_core::ErrorKind::InvalidInput, "limit must be at least 1")),
        n if n > MAX_PAGE => Err(ApiError::new(
            ragd_core::ErrorKind::InvalidInput,
            format!("limit must be at most {MAX_PAGE}"),
        )),
        n => Ok(n),
    }
}

/// The one timestamp format on the wire: RFC 3339 in UTC with milliseconds and `Z`
/// (`2026-12-02T11:51:08.123Z`).
#[must_use]
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> String {
    ragd_core::time::to_wire(time)
}

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Path of the browsable API page.
pub const DOCS_PATH: &str = "/docs";
/// Path of the MCP endpoint (Streamable HTTP, [`crate::mcp`]).
pub const MCP_PATH: &str = "/mcp";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ragd",
        description = "Retrieval-augmented LLM server: documents, search, chat sessions, models and system status."
    ),
    tags(
        (name = "system", description = "Health, server information, system status, metrics"),
        (name = "documents", description = "Upload, list, read and delete documents and their chunks"),
        (name = "collections", description = "Named sets of documents, to upload into and to restrict search and chat to"),
        (name = "search", description = "Keyword, semantic and hybrid search over chunks"),
        (name = "index", description = "The vector index: its embedding model and re-embedding it with another"),
        (name = "models", description = "Chat models: available, load status, generation settings"),
        (name = "sessions", description = "Chat sessions with retrieval, long-term memory and tags"),
        (name = "embeddings", description = "Embeddings with ragd's embedding model"),
        (name = "openai", description = "OpenAI-compatible API (`/v1`): models, chat completions with citations, embeddings"),
        (name = "ollama", description = "Ollama-compatible API (`/api/...`): tags, show, chat, generate, embed, version")
    ),
    components(schemas(ErrorBody, ErrorDetail, OpenAiErrorBody, OpenAiErrorDetail, OllamaErrorBody))
)]
struct ApiDoc;

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ui::root))
        .routes(routes!(system::health))
        .routes(routes!(system::metrics))
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .routes(routes!(system::info))
                .routes(routes!(system::system_status))
                .routes(routes!(embeddings::embed))
                .nest("/documents", documents_router())
                .nest(
                    "/collections",
                    OpenApiRouter::new()
                        .routes(routes!(collections::create, collections::list))
                        .routes(routes!(collections::get, collections::update, collections::delete))
                        .routes(routes!(collections::add_documents))
                        .routes(routes!(collections::remove_document)),
                )
                .nest(
                    "/models",
                    OpenApiRouter::new()
                        .routes(routes!(models::available))
                        .routes(routes!(models::load))
                        .routes(routes!(models::status))
                        .routes(routes!(models::unload))
                        .routes(routes!(models::get_config, models::put_config)),
                )
                .nest(
                    "/sessions",
                    OpenApiRouter::new()
                        .routes(routes!(sessions::create, sessions::list))
                        .routes(routes!(sessions::get, sessions::update, sessions::delete))
                        .routes(routes!(sessions::send, sessions::messages))
                        .routes(routes!(sessions::memory_search)),
                )
                .nest(
                    "/index",
                    OpenApiRouter::new()
                        .routes(routes!(index::status))
                        .routes(routes!(index::reembed)),
                )
                .nest(
                    "/search",
                    OpenApiRouter::new()
                        .routes(routes!(search::keyword))
                        .routes(routes!(search::semantic))
                        .routes(routes!(search::hybrid)),
                ),
        )
        .nest(
            "/v1",
            OpenApiRouter::new()
                .routes(routes!(openai::models))
                .routes(routes!(openai::chat_completions))
                .routes(routes!(openai::embeddings)),
        )
        .nest(
            "/api",
            OpenApiRouter::new()
                .routes(routes!(ollama::version))
                .routes(routes!(ollama::tags))
                .routes(routes!(ollama::show))
                .routes(routes!(ollama::chat))
                .routes(routes!(ollama::generate))
                .routes(routes!(ollama::embed)),
        )
}

fn documents_router() -> OpenApiRouter<AppState> {
    // Uploads and replacements stream their files with their own per-file limit
    // (`ingest.max_upload_bytes`), so axum's default body limit is lifted for them only;
    // every other route here keeps the JSON limit of the layer around the API.
    let streamed = OpenApiRouter::new()
        .routes(routes!(documents::upload, documents::list))
        .routes(routes!(documents::replace))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(documents::get, documents::update, documents::delete))
        .routes(routes!(documents::text))
        .routes(routes!(documents::chunks))
        .routes(routes!(documents::reindex))
        .routes(routes!(documents::chunk))
        .routes(routes!(sync::sync))
        .merge(streamed)
}

/// The OpenAPI document of every route [`router`] serves.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = api_router().into_openapi();
    declare_auth(&mut openapi);
    openapi
}

/// Declares the bearer keys of `[auth]` and what every route but `/health` may answer
/// because of them: 401 without a valid key (when keys are configured), 429 past the key's
/// rate limit. Applied to the finished document, since routes join it after `ApiDoc`.
fn declare_auth(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{Ref, ResponseBuilder};

    const SCHEME: &str = "api_key";
    let components = openapi.components.get_or_insert_with(Default::default);
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.description = Some(
        "An API key, when `[auth]` configures any (`Authorization: Bearer <key>`); without keys \
         the API is open."
            .to_owned(),
    );
    components.add_security_scheme(SCHEME, SecurityScheme::Http(bearer));
    let error = |description: &str, schema: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build(),
            )
            .build()
    };
    for (path, item) in &mut openapi.paths.paths {
        // Open without a key (`auth::OPEN_PATHS`).
        if path == "/health" || path == "/" {
            continue;
        }
        // Each protocol answers errors in its own shape.
        let schema = match Protocol::of_path(path) {
            Protocol::Ragd => "ErrorBody",
            Protocol::OpenAi => "OpenAiErrorBody",
            Protocol::Ollama => "OllamaErrorBody",
        };
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete]
            .into_iter()
            .chain([&mut item.patch])
            .flatten();
        for operation in operations {
            operation.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
            let responses = &mut operation.responses.responses;
            responses
                .entry("401".to_owned())
                .or_insert_with(|| error("No valid API key (keys are configured)", schema).into());
            responses.entry("429".to_owned()).or_insert_with(|| {
                error(
                    "Past the key's requests per minute; `Retry-After` says when to retry",
                    schema,
                )
                .into()
            });
        }
    }
}

/// The whole HTTP application for `state`.
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = api_router().split_for_parts();
    declare_auth(&mut openapi);
    let auth = state.auth.clone();
    // Every JSON body is bounded by `server.max_json_body_bytes` (413 past it); the
    // documents routes lift this for streamed uploads, which have their own limits, and
    // their layer is the inner one, so it wins there.
    let api = api.layer(DefaultBodyLimit::max(state.config.server.max_json_body_bytes));
    api.merge(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, openapi))
        // The page's files: not API routes, so not in the OpenAPI document.
        .route(&format!("{}/{{*path}}", ui::UI_PATH), axum::routing::get(ui::asset))
        // The MCP endpoint (Streamable HTTP) is not part of the OpenAPI document; it is
        // nested before the layers below, so API keys, metrics and tracing cover it too.
        .nest_service(MCP_PATH, {
            let mut mcp = crate::mcp::http_config();
            mcp.cancellation_token = state.shutdown.child_token();
            crate::mcp::http_service_with_config(state.engine.clone(), mcp)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(auth, auth::require_key))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
        .into_response_for(Protocol::of_path(uri.path()))
}

/// 405 is a property of routing, not of the domain, so it has no `ErrorKind`; the body has
/// the same shape as every other error.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("method {method} is not allowed on {}", uri.path());
    match Protocol::of_path(uri.path()) {
        Protocol::Ragd => {}
        protocol @ (Protocol::OpenAi | Protocol::Ollama) => {
            let mut response = ApiError::new(ragd_core::ErrorKind::InvalidInput, message)
                .into_response_for(protocol);
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            return response;
        }
    }
    let error = ErrorDetail { code: "method_not_allowed", message };
    (StatusCode::METHOD_NOT_ALLOWED, Json(ErrorBody { error })).into_response()
}
