//! The MCP server: ragd's documents, search and answers for assistants that speak the
//! [Model Context Protocol](https://modelcontextprotocol.io) (Claude Desktop, IDE agents,
//! ...), built with the official Rust SDK `rmcp`.
//!
//! [`RagdMcp`] is one MCP server over an [`Engine`]:
//!
//! - tools `search`, `get_chunk`, `get_document_text`, `list_documents` and `ask`; each
//!   answers JSON (as text content and as structured content), and each failure (an unknown
//!   or malformed id, an empty query, no chat model, ...) comes back as a tool error carrying
//!   the reason, which the assistant can read and act on;
//! - resources: every ready document is `ragd://documents/{id}`, whose contents are its
//!   extracted text (`text/plain`), with the matching resource template.
//!
//! It is served two ways: over Streamable HTTP at `/mcp` by the `ragd` server
//! ([`http_service`], mounted by [`crate::api::router`] behind the same API-key check as the
//! REST API), and over stdin/stdout by `ragd mcp` ([`serve_stdio`]), for clients that start
//! the server themselves.
//!
//! Handlers are thin, as in the REST API (architecture invariant 6): they parse and check
//! the arguments, make one service call and shape the answer; the JSON is the REST API's
//! (`GET /api/v1/documents`, `POST /api/v1/search/*`, ...).

use std::sync::Arc;

use ragd_catalog::DocumentQuery;
use ragd_core::{ChunkId, CollectionId, DocumentId, DocumentStatus, ErrorKind};
use ragd_engine::Engine;
use ragd_llm_backends::manager::LoadState;
use ragd_search::{MAX_TOP_K, SearchQuery};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, IntoContents, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities,
    ServerConfig,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

use crate::api::documents::{ChunkDto, DocumentDto, DocumentList, DocumentText, Status};
use crate::api::scope::KeyScope;
use crate::api::search::SearchResponse;
use crate::api::{ApiError, MAX_PAGE};

/// What the server tells a client it is for (sent in the `initialize` answer).
const INSTRUCTIONS: &str = "ragd searches and answers over the user's own documents \
(PDF, office documents, spreadsheets, slides, e-books, e-mail, HTML, Markdown, text) that were \
uploaded to it. Use `search` to find passages \
(hybrid keyword + semantic by default); every hit carries a chunk_id and a document_id. Read \
around a hit with `get_chunk` or `get_document_text` (a char range; hits give char_start and \
char_end). `list_documents` shows what is stored. `ask` has ragd's own chat model answer a \
question from the documents, with numbered citations; it needs a chat model to be loaded. The \
extracted text of every ready document is also a resource, ragd://documents/{id}.";

/// The URI prefix of document resources.
const DOCUMENT_URI_PREFIX: &str = "ragd://documents/";

/// Hits a `search` returns when `top_k` is not given.
const DEFAULT_TOP_K: usize = 5;

/// Documents on one page of `list_documents` when `limit` is not given.
const DEFAULT_PAGE: u32 = 50;

/// The `ragd://documents/{id}` URI of a document.
#[must_use]
pub fn document_uri(id: DocumentId) -> String {
    format!("{DOCUMENT_URI_PREFIX}{id}")
}

/// The document a `ragd://documents/{id}` URI names.
///
/// # Errors
/// The reason, for another scheme or path, or an id that is not a UUID.
pub fn parse_document_uri(uri: &str) -> Result<DocumentId, String> {
    let Some(id) = uri.strip_prefix(DOCUMENT_URI_PREFIX) else {
        return Err(format!(
            "no resource {uri:?}: ragd's resources are {DOCUMENT_URI_PREFIX}{{id}}"
        ));
    };
    id.parse().map_err(|err| format!("no resource {uri:?}: {err}"))
}

/// The MCP server over one [`Engine`]. Cheap to clone; the HTTP transport makes one per
/// session.
#[derive(Debug, Clone)]
pub struct RagdMcp {
    engine: Engine,
    tool_router: ToolRouter<Self>,
}

/// An id argument: a UUID as a string (a JSON-schema `string` with `format: uuid`). Parsed
/// by the handler, so a malformed id is a tool error that says which argument it was.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct IdArg(pub String);

impl JsonSchema for IdArg {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Uuid".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "uuid" })
    }
}

impl IdArg {
    /// The id, or why it is not one (`argument` names it in the message).
    fn parse<T>(&self, argument: &str) -> Result<T, ToolError>
    where
        T: std::str::FromStr<Err = ragd_core::IdParseError>,
    {
        self.0.trim().parse().map_err(|err| ToolError(format!("{argument}: {err}")))
    }
}

/// Parses a list of document ids (`None`: no restriction).
fn parse_document_ids(ids: Option<&[IdArg]>) -> Result<Vec<DocumentId>, ToolError> {
    ids.unwrap_or_default().iter().map(|id| id.parse("document_ids")).collect()
}

/// A metadata filter argument, checked.
fn metadata_filter(
    value: Option<&serde_json::Value>,
) -> Result<ragd_core::MetadataFilter, ToolError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(ragd_core::MetadataFilter::default()),
        Some(value) => ragd_core::MetadataFilter::from_json(value).map_err(ToolError),
    }
}

/// `top_k`, checked to be 1 to [`MAX_TOP_K`].
fn check_top_k(top_k: usize) -> Result<usize, ToolError> {
    match top_k {
        1..=MAX_TOP_K => Ok(top_k),
        _ => Err(ToolError(format!("top_k must be between 1 and {MAX_TOP_K}"))),
    }
}

/// The page size of `list_documents`: `limit`, or 50; 1 to [`MAX_PAGE`], as in the REST
/// API.
fn page_limit(limit: Option<u32>) -> Result<u32, ToolError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        0 => Err(ToolError("limit must be at least 1".to_owned())),
        n if n > MAX_PAGE => Err(ToolError(format!("limit must be at most {MAX_PAGE}"))),
        n => Ok(n),
    }
}

/// Which search `search` runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum SearchMode {
    // BM25 over the chunks' words.
    Keyword,
    // Nearest chunks by meaning (embeddings).
    Semantic,
    // Both lists fused by reciprocal rank fusion.
    #[default]
    Hybrid,
}

impl SearchMode {
    const fn name(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Semantic => "semantic",
            Self::Hybrid => "hybrid",
        }
    }
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for: a question or keywords.
    pub query: String,
    /// `keyword` (BM25 over words), `semantic` (by meaning) or `hybrid` (both; default).
    pub mode: Option<SearchMode>,
    /// How many hits, 1 to 100 (default 5).
    #[schemars(range(min = 1, max = MAX_TOP_K))]
    pub top_k: Option<usize>,
    /// Only search these documents (ids from `list_documents`); omit to search all.
    pub document_ids: Option<Vec<IdArg>>,
    /// Only search the documents of these collections (names or ids; with
    /// `document_ids`, their union).
    pub collections: Option<Vec<String>>,
    /// Only search documents whose metadata matches, e.g. `{"lang": "en", "year":
    /// {"gte": 2020}, "team": {"in": ["hr", "it"]}}`.
    pub filter: Option<serde_json::Value>,
}

/// Arguments of `get_chunk`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetChunkArgs {
    /// The chunk's id (`chunk_id` of a search hit or citation).
    pub chunk_id: IdArg,
}

/// Arguments of `get_document_text`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDocumentTextArgs {
    /// The document's id.
    pub document_id: IdArg,
    /// First char to return, counted in Unicode chars from 0 (default 0).
    pub start: Option<usize>,
    /// One past the last char to return (default: the end of the text).
    pub end: Option<usize>,
}

/// Arguments of `list_documents`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDocumentsArgs {
    /// Page size, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<u32>,
    /// Documents to skip (default 0).
    pub offset: Option<u32>,
    /// Only documents in this state (`ready` ones are searchable).
    pub status: Option<Status>,
    /// Only documents whose file name contains this text (case-insensitive).
    pub filename: Option<String>,
}

/// Arguments of `ask`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AskArgs {
    /// The question, in natural language.
    pub question: String,
    /// Only use these documents (ids from `list_documents`); omit to use all.
    pub document_ids: Option<Vec<IdArg>>,
    /// Only use the documents of these collections (names or ids).
    pub collections: Option<Vec<String>>,
    /// Only use documents whose metadata matches (the form of `search`'s `filter`).
    pub filter: Option<serde_json::Value>,
    /// How many chunks to retrieve as context, 1 to 100 (default: the server's setting).
    #[schemars(range(min = 1, max = MAX_TOP_K))]
    pub top_k: Option<usize>,
}

/// The answer of `ask`.
#[derive(Debug, Serialize)]
pub struct AskAnswer {
    /// The model's answer; `[n]` refers to `citations[n-1]`.
    pub answer: String,
    /// The model that answered.
    pub model: String,
    /// The chunks the model was given, numbered as it was told to cite them.
    pub citations: Vec<ragd_chat::Citation>,
    /// Why generation stopped (`length`: the answer was cut at `max_new_tokens`).
    pub finish_reason: ragd_core::FinishReason,
}

/// Why a tool call failed, as the caller reads it: the text of an MCP tool error
/// (`isError: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolError(String);

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        vec![ContentBlock::text(self.0)]
    }
}

impl From<ragd_ingest::Error> for ToolError {
    fn from(err: ragd_ingest::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<ragd_search::Error> for ToolError {
    fn from(err: ragd_search::Error) -> Self {
        Self(err.to_string())
    }
}

impl From<ApiError> for ToolError {
    fn from(err: ApiError) -> Self {
        Self(err.message().to_owned())
    }
}

/// The scope of the API key the request came with: the key middleware puts it into the
/// HTTP request, which rmcp hands to the handler; over stdio there is no key and no limit.
fn key_scope(context: &RequestContext<RoleServer>) -> KeyScope {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<KeyScope>())
        .cloned()
        .unwrap_or_default()
}

/// A tool's answer: `value` as JSON text content and as structured content.
fn json_result(value: &impl Serialize) -> Result<CallToolResult, ToolError> {
    serde_json::to_value(value)
        .map(CallToolResult::structured)
        .map_err(|err| ToolError(format!("cannot encode the result: {err}")))
}

/// An engine error of a resource request as an MCP error, by its kind.
fn resource_error(err: &ragd_ingest::Error) -> ErrorData {
    match err.kind() {
        ErrorKind::NotFound => ErrorData::resource_not_found(err.to_string(), None),
        ErrorKind::InvalidInput => ErrorData::invalid_params(err.to_string(), None),
        ErrorKind::Conflict
        | ErrorKind::PayloadTooLarge
        | ErrorKind::UnsupportedMediaType
        | ErrorKind::ContextTooLong
        | ErrorKind::Overloaded
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::Unavailable
        | ErrorKind::Timeout
        | ErrorKind::Unsupported
        | ErrorKind::Internal => ErrorData::internal_error(err.to_string(), None),
    }
}

#[tool_router]
impl RagdMcp {
    /// An MCP server over `engine`.
    #[must_use]
    pub fn new(engine: Engine) -> Self {
        Self { engine, tool_router: Self::tool_router() }
    }

    /// The engine it serves.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The ids of collections named by name or id; an unknown one is an error naming it.
    async fn collection_ids(
        &self,
        keys: Option<&[String]>,
    ) -> Result<Vec<CollectionId>, ToolError> {
        let mut ids = Vec::new();
        for key in keys.unwrap_or_default() {
            ids.push(self.engine.documents().collection(key).await?.id);
        }
        Ok(ids)
    }

    #[tool(
        name = "search",
        description = "Search the stored documents for passages relevant to a query. Modes: \
                       `hybrid` (default: keyword and semantic results fused), `keyword` \
                       (BM25 over words) or `semantic` (by meaning). Answers {mode, hits}, \
                       best first; each hit has chunk_id, document_id, filename, page, \
                       heading, score, text and its char_start/char_end in the document's \
                       text (read around it with `get_document_text`).",
        annotations(title = "Search documents", read_only_hint = true, open_world_hint = false)
    )]
    async fn search(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let mode = args.mode.unwrap_or_default();
        let allowed = key_scope(&context).resolve(&self.engine).await?;
        let document_ids = parse_document_ids(args.document_ids.as_deref())?;
        let collection_ids = self.collection_ids(args.collections.as_deref()).await?;
        let collection_ids =
            allowed.restrict_search(&self.engine, &document_ids, collection_ids).await?;
        let query = SearchQuery {
            text: args.query,
            top_k: check_top_k(args.top_k.unwrap_or(DEFAULT_TOP_K))?,
            document_ids,
            collection_ids,
            filter: metadata_filter(args.filter.as_ref())?,
        };
        let search = self.engine.search();
        let hits = match mode {
            SearchMode::Keyword => search.keyword(&query).await?,
            SearchMode::Semantic => search.semantic(&query).await?,
            SearchMode::Hybrid => search.hybrid(&query, search.hybrid_options(None)).await?,
        };
        json_result(&SearchResponse {
            mode: mode.name(),
            hits: hits.into_iter().map(Into::into).collect(),
        })
    }

    #[tool(
        name = "get_chunk",
        description = "One chunk of a document by its id (the chunk_id of a search hit or \
                       an `ask` citation): its text, document_id, ordinal (position in the \
                       document), char_start/char_end, page and heading.",
        annotations(title = "Get a chunk", read_only_hint = true, open_world_hint = false)
    )]
    async fn get_chunk(
        &self,
        Parameters(args): Parameters<GetChunkArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let id: ChunkId = args.chunk_id.parse("chunk_id")?;
        let chunk = self.engine.documents().chunk(id).await?;
        let allowed = key_scope(&context).resolve(&self.engine).await?;
        if allowed.check_document(&self.engine, chunk.document_id).await.is_err() {
            return Err(ToolError(format!("chunk {id} not found")));
        }
        json_result(&ChunkDto::from(chunk))
    }

    #[tool(
        name = "get_document_text",
        description = "The extracted text of a document, whole or the chars start..end \
                       (Unicode chars from 0; search hits give char_start and char_end). \
                       Answers {document_id, start, text}. Whole documents can be long: \
                       prefer a range around a hit.",
        annotations(title = "Read document text", read_only_hint = true, open_world_hint = false)
    )]
    async fn get_document_text(
        &self,
        Parameters(args): Parameters<GetDocumentTextArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let id: DocumentId = args.document_id.parse("document_id")?;
        let allowed = key_scope(&context).resolve(&self.engine).await?;
        allowed.check_document(&self.engine, id).await?;
        let text = self.engine.documents().text(id, args.start, args.end).await?;
        json_result(&DocumentText { document_id: id, start: args.start.unwrap_or(0), text })
    }

    #[tool(
        name = "list_documents",
        description = "The stored documents, newest first, a page at a time: {items, total, \
                       limit, offset}. Each item has id, filename, mime, bytes, status \
                       (`ready` ones are searchable; `failed` ones carry an error) and \
                       timestamps.",
        annotations(title = "List documents", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_documents(
        &self,
        Parameters(args): Parameters<ListDocumentsArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let allowed = key_scope(&context).resolve(&self.engine).await?;
        let limit = page_limit(args.limit)?;
        let offset = args.offset.unwrap_or(0);
        let query = DocumentQuery {
            status: args.status.map(Into::into),
            mime: None,
            filename_contains: args.filename,
            collection: None,
            in_any_collection: allowed.collections(),
            metadata: ragd_core::MetadataFilter::default(),
            limit,
            offset,
        };
        let page = self.engine.documents().documents(query).await?;
        json_result(&DocumentList {
            items: page.items.into_iter().map(DocumentDto::from).collect(),
            total: page.total,
            limit,
            offset,
        })
    }

    #[tool(
        name = "ask",
        description = "Answer a question from the stored documents with ragd's loaded chat \
                       model (retrieval-augmented generation). Answers {answer, model, \
                       citations, finish_reason}: `[n]` in the answer refers to citations[n-1] \
                       (chunk_id, document_id, filename, page). Needs a chat model loaded on \
                       the server; to read the sources yourself, use `search` instead.",
        annotations(title = "Ask the documents", read_only_hint = true, open_world_hint = false)
    )]
    async fn ask(
        &self,
        Parameters(args): Parameters<AskArgs>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let allowed = key_scope(&context).resolve(&self.engine).await?;
        let document_ids = parse_document_ids(args.document_ids.as_deref())?;
        let collection_ids = self.collection_ids(args.collections.as_deref()).await?;
        let collection_ids =
            allowed.restrict_search(&self.engine, &document_ids, collection_ids).await?;
        let retrieval = ragd_chat::Retrieval {
            document_ids,
            collection_ids,
            filter: metadata_filter(args.filter.as_ref())?,
            top_k: args.top_k.map(check_top_k).transpose()?,
        };
        let request = ragd_chat::CompleteRequest::new(args.question).with_retrieval(retrieval);
        let reply = match self.engine.chat().complete(request).await {
            Ok(stream) => stream.finish().await,
            Err(err) => Err(err),
        }
        .map_err(|err| self.chat_error(err))?;
        json_result(&AskAnswer {
            answer: reply.text,
            model: reply.model,
            citations: reply.citations,
            finish_reason: reply.finish_reason,
        })
    }

    /// A chat error as the caller reads it; without a model, says whether one is on its way.
    fn chat_error(&self, err: ragd_chat::Error) -> ToolError {
        if !matches!(err, ragd_chat::Error::NoModel) {
            return ToolError(err.to_string());
        }
        let status = self.engine.models().status();
        let message = match status.state {
            LoadState::Downloading { percent, .. } => format!(
                "no chat model is loaded yet: the model is downloading ({percent} %); try `ask` \
                 again later, or use `search` meanwhile"
            ),
            LoadState::Converting { percent } | LoadState::Quantizing { percent } => format!(
                "no chat model is loaded yet: the model is being imported ({percent} %); try \
                 `ask` again later, or use `search` meanwhile"
            ),
            LoadState::Loading => "no chat model is loaded yet: the model is loading; try `ask` \
                                   again shortly, or use `search` meanwhile"
                .to_owned(),
            LoadState::Failed { reason } => format!(
                "no chat model is loaded (the last load failed: {reason}); load one with POST \
                 /api/v1/models/load, or use `search` instead"
            ),
            LoadState::NotLoaded | LoadState::Loaded | LoadState::Unloading => {
                "no chat model is loaded, so `ask` cannot answer; load one with POST \
                 /api/v1/models/load, or use `search` instead"
                    .to_owned()
            }
        };
        ToolError(message)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for RagdMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_resources().enable_tools().build())
            .with_server_info(
                Implementation::new("ragd", env!("CARGO_PKG_VERSION"))
                    .with_title("ragd")
                    .with_description("Retrieval over the user's documents, and answers from them"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    /// Ready documents, a page of up to [`MAX_PAGE`] at a time (the cursor is the offset of
    /// the next page).
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let allowed = key_scope(&context)
            .resolve(&self.engine)
            .await
            .map_err(|err| ErrorData::internal_error(err.message().to_owned(), None))?;
        let offset = match request.and_then(|r| r.cursor) {
            Some(cursor) => cursor.parse::<u32>().map_err(|_| {
                ErrorData::invalid_params(format!("invalid cursor {cursor:?}"), None)
            })?,
            None => 0,
        };
        let query = DocumentQuery {
            status: Some(DocumentStatus::Ready),
            in_any_collection: allowed.collections(),
            limit: MAX_PAGE,
            offset,
            ..DocumentQuery::default()
        };
        let page =
            self.engine.documents().documents(query).await.map_err(|err| resource_error(&err))?;
        let next = u64::from(offset) + page.items.len() as u64;
        let resources = page
            .items
            .into_iter()
            .map(|document| {
                Resource::new(document_uri(document.id), document.filename.clone())
                    .with_title(document.filename.clone())
                    .with_description(format!(
                        "Extracted text of {} ({}, {} bytes)",
                        document.filename, document.mime, document.bytes
                    ))
                    .with_mime_type("text/plain")
            })
            .collect();
        let mut result = ListResourcesResult::with_all_items(resources);
        if next < page.total && !result.resources.is_empty() {
            result.next_cursor = Some(next.to_string());
        }
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = ResourceTemplate::new(format!("{DOCUMENT_URI_PREFIX}{{id}}"), "document")
            .with_title("Document text")
            .with_description(
                "The extracted text of a document, by its id (from `list_documents` or a \
                 search hit)",
            )
            .with_mime_type("text/plain");
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    /// The extracted text of `ragd://documents/{id}`.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let id = parse_document_uri(&request.uri)
            .map_err(|reason| ErrorData::resource_not_found(reason, None))?;
        let visible = match key_scope(&context).resolve(&self.engine).await {
            Ok(allowed) => allowed.check_document(&self.engine, id).await,
            Err(err) => Err(err),
        };
        if let Err(err) = visible {
            return Err(ErrorData::resource_not_found(err.message().to_owned(), None));
        }
        let text = self
            .engine
            .documents()
            .text(id, None, None)
            .await
            .map_err(|err| resource_error(&err))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// The Streamable HTTP service [`http_service`] builds.
pub type HttpService = StreamableHttpService<RagdMcp, LocalSessionManager>;

/// The Streamable HTTP settings [`http_service`] uses: rmcp's defaults (sessions, SSE
/// keep-alive every 15 s, 4 MiB request bodies) without its `Host` allow-list.
///
/// rmcp accepts only loopback `Host` headers by default, against DNS rebinding of servers
/// without authentication; ragd serves `/mcp` on the configured address next to the REST
/// API, which accepts any `Host`, and both are guarded by the same API keys (`[auth]`).
///
/// The returned config's `cancellation_token` ends every MCP session and stream when it
/// is cancelled; cancel it when shutdown starts so that open SSE streams do not hold the
/// graceful shutdown until its grace period ends.
#[must_use]
pub fn http_config() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default().disable_allowed_hosts()
}

/// The MCP endpoint over Streamable HTTP (stateful sessions kept in memory), for
/// `Router::nest_service("/mcp", ...)`; see [`http_config`].
#[must_use]
pub fn http_service(engine: Engine) -> HttpService {
    http_service_with_config(engine, http_config())
}

/// [`http_service`] with other settings, for example a cancellation token tied to the
/// server's shutdown.
#[must_use]
pub fn http_service_with_config(engine: Engine, config: StreamableHttpServerConfig) -> HttpService {
    StreamableHttpService::new(
        move || Ok(RagdMcp::new(engine.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Why [`serve_stdio`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The client went away or misbehaved before the MCP handshake completed.
    #[error("the MCP session did not start: {0}")]
    Initialize(Box<rmcp::service::ServerInitializeError>),
    /// The session task panicked or was cancelled.
    #[error("the MCP session failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<rmcp::service::ServerInitializeError> for StdioError {
    fn from(err: rmcp::service::ServerInitializeError) -> Self {
        Self::Initialize(Box::new(err))
    }
}

/// Serves [`RagdMcp`] over stdin/stdout (newline-delimited JSON-RPC) until the client
/// closes its end. Nothing else may write to stdout meanwhile: logs go to stderr.
///
/// # Errors
/// When the handshake fails (the client closed stdin first, or sent something other than
/// `initialize`), or the session task fails.
pub async fn serve_stdio(engine: Engine) -> Result<(), StdioError> {
    let running = RagdMcp::new(engine).serve(rmcp::transport::stdio()).await?;
    let reason = running.waiting().await?;
    tracing::info!(?reason, "MCP client disconnected");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(json).map_err(|err| err.to_string())
    }

    #[test]
    fn document_uris_round_trip() {
        let id = DocumentId::new();
        let uri = document_uri(id);
        assert_eq!(uri, format!("ragd://documents/{id}"));
        assert_eq!(parse_document_uri(&uri), Ok(id));
    }

    #[test]
    fn foreign_or_malformed_uris_are_refused_with_the_reason() {
        let other = parse_document_uri("file:///etc/passwd").unwrap_err();
        assert!(other.contains("ragd://documents/{id}"), "{other}");
        let malformed = parse_document_uri("ragd://documents/not-a-uuid").unwrap_err();
        assert!(malformed.contains("expected a UUID"), "{malformed}");
        assert!(parse_document_uri("ragd://documents/").is_err());
    }

    #[test]
    fn ids_are_parsed_with_the_argument_named() {
        let id = ChunkId::new();
        let parsed: ChunkId = IdArg(format!(" {id} ")).parse("chunk_id").unwrap();
        assert_eq!(parsed, id);
        let err = IdArg("42".to_owned()).parse::<ChunkId>("chunk_id").unwrap_err();
        assert!(err.0.starts_with("chunk_id: "), "{}", err.0);
        assert!(err.0.contains("\"42\""), "{}", err.0);
    }

    #[test]
    fn document_id_lists_fail_on_the_first_bad_entry() {
        assert_eq!(parse_document_ids(None), Ok(Vec::new()));
        let id = DocumentId::new();
        let good = [IdArg(id.to_string())];
        assert_eq!(parse_document_ids(Some(&good)), Ok(vec![id]));
        let bad = [IdArg(id.to_string()), IdArg("nope".to_owned())];
        let err = parse_document_ids(Some(&bad)).unwrap_err();
        assert!(err.0.contains("document_ids") && err.0.contains("nope"), "{}", err.0);
    }

    #[test]
    fn top_k_bounds() {
        assert_eq!(check_top_k(1), Ok(1));
        assert_eq!(check_top_k(MAX_TOP_K), Ok(MAX_TOP_K));
        assert!(check_top_k(0).is_err());
        let err = check_top_k(MAX_TOP_K + 1).unwrap_err();
        assert_eq!(err.0, format!("top_k must be between 1 and {MAX_TOP_K}"));
    }

    #[test]
    fn page_limit_matches_the_rest_api() {
        assert_eq!(page_limit(None), Ok(50));
        assert_eq!(page_limit(Some(MAX_PAGE)), Ok(MAX_PAGE));
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(MAX_PAGE + 1)).is_err());
    }

    #[test]
    fn search_arguments_default_and_refuse_unknown_fields() {
        let parsed: SearchArgs = args(serde_json::json!({ "query": "tea" })).unwrap();
        assert_eq!(parsed.mode.unwrap_or_default(), SearchMode::Hybrid);
        assert_eq!(parsed.top_k, None);
        let keyword: SearchArgs =
            args(serde_json::json!({ "query": "tea", "mode": "keyword", "top_k": 3 })).unwrap();
        assert_eq!(keyword.mode, Some(SearchMode::Keyword));
        let bad_mode = args::<SearchArgs>(serde_json::json!({ "query": "tea", "mode": "fuzzy" }));
        assert!(bad_mode.unwrap_err().contains("unknown variant"));
        let unknown = args::<SearchArgs>(serde_json::json!({ "query": "tea", "k": 3 }));
        assert!(unknown.unwrap_err().contains("unknown field"));
        assert!(args::<SearchArgs>(serde_json::json!({})).unwrap_err().contains("query"));
    }

    #[test]
    fn list_arguments_map_the_status_filter() {
        let parsed: ListDocumentsArgs =
            args(serde_json::json!({ "status": "failed", "limit": 10 })).unwrap();
        assert_eq!(parsed.status.map(DocumentStatus::from), Some(DocumentStatus::Failed));
        assert_eq!(parsed.limit, Some(10));
        assert!(args::<ListDocumentsArgs>(serde_json::json!({ "status": "gone" })).is_err());
    }

    #[test]
    fn input_schemas_are_objects_with_uuid_ids_and_enums() {
        let schema = rmcp::handler::server::common::schema_for_input::<SearchArgs>().unwrap();
        let schema = serde_json::Value::Object(schema.as_ref().clone());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], serde_json::json!(["query"]));
        let text = schema.to_string();
        assert!(text.contains("\"format\":\"uuid\""), "{text}");
        assert!(text.contains("\"semantic\""), "{text}");
        let chunk = rmcp::handler::server::common::schema_for_input::<GetChunkArgs>().unwrap();
        assert_eq!(chunk["properties"]["chunk_id"]["format"], "uuid");
    }

    #[test]
    fn tools_are_listed_with_descriptions() {
        let router = RagdMcp::tool_router();
        let names: Vec<String> = router.list_all().iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, ["ask", "get_chunk", "get_document_text", "list_documents", "search"]);
        assert!(router.list_all().iter().all(|t| t.description.is_some()));
    }
}
