//! `/api/v1/documents`: upload, list, read, chunks, delete, reindex.
//!
//! Clients keep ids, not text: an upload answers ids at once (202) while the pipeline runs,
//! and every document and chunk can be fetched again by id.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ragd_core::{Chunk, ChunkId, Document, DocumentId, DocumentStatus, ErrorKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, ErrorDetail, page_size};
use crate::state::AppState;

/// Where a document is in its lifecycle (also the `status` filter of the MCP tool
/// `list_documents`, hence the JSON Schema for `rmcp`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, rmcp::schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "rmcp::schemars", inline)]
pub enum Status {
    /// Accepted, waiting for a worker.
    Queued,
    /// Text is being extracted.
    Extracting,
    /// Text is being split into chunks.
    Chunking,
    /// Chunks are being embedded; `progress` counts them.
    Embedding,
    /// Searchable.
    Ready,
    /// Processing stopped; `error` says why.
    Failed,
}

impl From<DocumentStatus> for Status {
    fn from(status: DocumentStatus) -> Self {
        match status {
            DocumentStatus::Queued => Self::Queued,
            DocumentStatus::Extracting => Self::Extracting,
            DocumentStatus::Chunking => Self::Chunking,
            DocumentStatus::Embedding => Self::Embedding,
            DocumentStatus::Ready => Self::Ready,
            DocumentStatus::Failed => Self::Failed,
        }
    }
}

impl From<Status> for DocumentStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Queued => Self::Queued,
            Status::Extracting => Self::Extracting,
            Status::Chunking => Self::Chunking,
            Status::Embedding => Self::Embedding,
            Status::Ready => Self::Ready,
            Status::Failed => Self::Failed,
        }
    }
}

/// A stored document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentDto {
    /// Stable id.
    #[schema(value_type = String, format = Uuid)]
    pub id: DocumentId,
    /// The file name given at upload (without directories).
    pub filename: String,
    /// Detected media type.
    pub mime: String,
    /// Hex sha256 of the bytes; equal uploads are one document.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// Lifecycle state.
    pub status: Status,
    /// Progress of the current stage, 0 to 100.
    pub progress: u8,
    /// Why processing failed.
    pub error: Option<String>,
    /// What the last extraction left out without failing the document (a scanned page OCR
    /// could not read), one sentence each.
    pub warnings: Vec<String>,
    /// Chunks stored for it (0 until chunking has finished).
    pub chunk_count: u64,
    /// Vectors the index holds for it (equal to `chunk_count` once `ready`). Reported by
    /// `GET /documents/{id}`; `null` in lists, where counting would read the vector table
    /// once per document, and without a vector index.
    pub vector_count: Option<u64>,
    /// Upload time (RFC 3339, UTC).
    pub created_at: String,
    /// Last change (RFC 3339, UTC).
    pub updated_at: String,
    /// User metadata: string keys to string, number or bool values.
    #[schema(value_type = Object)]
    pub metadata: ragd_core::Metadata,
}

impl From<Document> for DocumentDto {
    fn from(d: Document) -> Self {
        Self {
            id: d.id,
            filename: d.filename,
            mime: d.mime,
            sha256: d.sha256,
            bytes: d.bytes,
            status: d.status.into(),
            progress: d.progress,
            error: d.error,
            warnings: d.warnings,
            chunk_count: d.chunk_count,
            vector_count: None,
            created_at: crate::api::timestamp(d.created_at),
            updated_at: crate::api::timestamp(d.updated_at),
            metadata: d.metadata,
        }
    }
}

/// How long `PUT .../content` waits for the new content to be processed before it answers
/// 202 with the document still processing.
const REPLACE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What happened to a replaced document's chunks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChanges {
    /// Chunks whose text was unchanged: their vectors were kept.
    pub kept: usize,
    /// New or changed chunks, embedded.
    pub added: usize,
    /// Old chunks that are gone, with their vectors.
    pub removed: usize,
}

/// The answer of `PUT /api/v1/documents/{id}/content`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplaceResponse {
    /// The document now.
    pub document: DocumentDto,
    /// `false` when the bytes were the stored ones (nothing was done).
    pub changed: bool,
    /// Chunks kept, added and removed, when the document was ready before and is done now
    /// (`null` otherwise: it was failed before, or is still processing).
    pub chunks: Option<ChunkChanges>,
}

/// The multipart form of a replacement (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Describes the form for OpenAPI; the handler reads the stream itself.
pub struct ReplaceForm {
    /// The new file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Replaces a document's file, keeping its id, collections and metadata.
///
/// The new content is processed again; chunks whose text did not change keep their vectors
/// (when the document was `ready`), only changed ones are embedded. The answer waits up to
/// 60 s for that: `200` with the counts of chunks kept, added and removed, or `202` with the
/// document still processing. Identical bytes answer `200` with `changed: false`.
#[utoipa::path(
    put,
    path = "/{id}/content",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id")),
    request_body(content = ReplaceForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Replaced and processed (or unchanged)", body = ReplaceResponse),
        (status = 202, description = "Replaced; still processing", body = ReplaceResponse),
        (status = 400, description = "No file, an empty file, or another form field", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 409, description = "Still processing, or another document holds the same bytes", body = ErrorBody),
        (status = 413, description = "Larger than ingest.max_upload_bytes", body = ErrorBody),
        (status = 415, description = "Unsupported document type", body = ErrorBody),
        (status = 503, description = "Ingestion is unavailable (tokenizer asset missing)", body = ErrorBody)
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    let mut multipart = multipart?;
    let Some(field) = multipart.next_field().await? else {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            "send the new file in the field `file`",
        ));
    };
    if field.name() != Some("file") {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "unexpected form field {:?}; send the new file in the field `file`",
                field.name().unwrap_or("")
            ),
        ));
    }
    let filename = field.file_name().unwrap_or("upload").to_owned();
    let replaced = state
        .engine
        .documents()
        .replace_stream(id, &filename, Box::pin(field), REPLACE_WAIT)
        .await?;
    let status =
        if replaced.document.status.is_terminal() { StatusCode::OK } else { StatusCode::ACCEPTED };
    let body = ReplaceResponse {
        chunks: replaced.chunks.map(|c| ChunkChanges {
            kept: c.kept,
            added: c.added,
            removed: c.removed,
        }),
        changed: replaced.changed,
        document: replaced.document.into(),
    };
    Ok((status, ApiJson(body)))
}

/// Changes to a document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDocumentBody {
    /// Metadata keys to set (string, number or bool values) or, with `null`, to remove;
    /// keys not named are left as they are.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Sets or removes metadata keys of a document.
#[utoipa::path(
    patch,
    path = "/{id}",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id")),
    request_body = UpdateDocumentBody,
    responses(
        (status = 200, description = "The document now", body = DocumentDto),
        (status = 400, description = "Malformed id, key or value, or more than 64 keys", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
    ApiJson(body): ApiJson<UpdateDocumentBody>,
) -> Result<ApiJson<DocumentDto>, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    let (set, remove) = metadata_changes(&body.metadata)?;
    Ok(ApiJson(state.engine.documents().update_metadata(id, set, remove).await?.into()))
}

/// Splits a metadata patch into keys to set and keys to remove (`null`), checked.
fn metadata_changes(
    patch: &serde_json::Map<String, serde_json::Value>,
) -> Result<(ragd_core::Metadata, Vec<String>), ApiError> {
    let invalid =
        |message: String| ApiError::new(ErrorKind::InvalidInput, message).with_param("metadata");
    let (removed, kept): (Vec<_>, Vec<_>) = patch.iter().partition(|(_, value)| value.is_null());
    let kept: serde_json::Map<String, serde_json::Value> =
        kept.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let set = ragd_core::metadata_from_json(&serde_json::Value::Object(kept)).map_err(invalid)?;
    let remove = removed
        .into_iter()
        .map(|(key, _)| ragd_core::check_key(key).map(|()| key.clone()).map_err(invalid))
        .collect::<Result<_, _>>()?;
    Ok((set, remove))
}

/// One file of an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedDocument {
    /// The document's id (the existing one for a duplicate); absent when the file was
    /// refused.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub id: Option<DocumentId>,
    /// The file name.
    pub filename: String,
    /// Lifecycle state; absent when refused.
    pub status: Option<Status>,
    /// Where to poll the document's status.
    pub status_url: Option<String>,
    /// `true` when the same bytes were uploaded before.
    pub duplicate: bool,
    /// `true` when the file replaced the content of the collection's document of the same
    /// name (`on_conflict=replace`); its id is that document's.
    pub replaced: bool,
    /// Why the file was refused.
    pub error: Option<ErrorDetail>,
}

/// `POST /api/v1/documents` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadResponse {
    /// One entry per uploaded file, in order.
    pub documents: Vec<UploadedDocument>,
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Describes the form for OpenAPI; the handler reads the stream itself.
pub struct UploadForm {
    /// One or more files; repeat the field for several.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
}

/// The largest `metadata` form field of an upload.
const METADATA_FIELD_BYTES: usize = 64 * 1024;

/// A text form field, refused past `limit` bytes before more is read.
async fn bounded_text(
    mut field: axum::extract::multipart::Field<'_>,
    limit: usize,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("the `metadata` field may hold at most {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::new(ErrorKind::InvalidInput, "the `metadata` field is not UTF-8"))
}

/// Where an upload goes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// A collection (id or name) to put every stored file of the upload in, new ones and
    /// duplicates alike.
    pub collection: Option<String>,
    /// What a file named like a document of `collection` does: `new` (default) becomes a
    /// new document, `replace` replaces that document's content (same id).
    pub on_conflict: Option<OnConflict>,
}

/// What an upload does with a file named like a document of the target collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Store it as a new document.
    New,
    /// Replace the existing document's content.
    Replace,
}

/// Uploads one or more files (multipart field `files`, repeated).
///
/// Files are streamed to disk and queued; the answer comes at once with each document's
/// id. `202` when something new was queued, `200` when every file was a duplicate of an
/// existing document. When every file is refused, the first refusal is the answer (`413`
/// too large, `415` unsupported type, `400` empty); otherwise refused files carry their
/// own `error`. A file larger than `ingest.max_upload_bytes`, or more than
/// `ingest.max_files_per_upload` files, refuse the whole request with `413` as soon as the
/// limit is passed (the rest of the body is not read), and the files it had already queued
/// are removed.
#[utoipa::path(
    post,
    path = "/",
    tag = "documents",
    params(UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Queued", body = UploadResponse),
        (status = 200, description = "Every file was already stored", body = UploadResponse),
        (status = 400, description = "No files or an empty file", body = ErrorBody),
        (status = 404, description = "The collection does not exist (nothing was read)", body = ErrorBody),
        (status = 413, description = "A file is larger than ingest.max_upload_bytes, or more than ingest.max_files_per_upload files", body = ErrorBody),
        (status = 415, description = "Unsupported document type", body = ErrorBody),
        (status = 503, description = "Ingestion is unavailable (tokenizer asset missing)", body = ErrorBody)
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiQuery(target): ApiQuery<UploadQuery>,
    headers: axum::http::HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    // A declared length beyond every file at its limit (plus form overhead) is refused
    // before a byte of the body is read; without a length, the per-file limits apply as
    // the body streams.
    let config = state.engine.documents().config();
    let cap = config
        .max_upload_bytes
        .saturating_mul(u64::try_from(config.max_files_per_upload).unwrap_or(u64::MAX))
        .saturating_add(1 << 20);
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared
        && length > cap
    {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("the request declares {length} bytes; an upload may carry at most {cap}"),
        ));
    }
    // An unknown collection is refused before a byte of the body is read.
    let collection = match &target.collection {
        Some(key) => {
            let id = state.engine.documents().collection(key).await?.id;
            allowed.check_collection(id, key)?;
            Some(id)
        }
        None => None,
    };
    // A document outside every collection would be visible to every unlimited key only.
    if collection.is_none() {
        allowed.require_unlimited("upload documents outside its collections (add ?collection=)")?;
    }
    let mut multipart = multipart?;
    // Any refusal or early return drops the batch, which removes what it queued.
    let mut batch = match (target.on_conflict, collection) {
        (Some(OnConflict::Replace), Some(collection)) => {
            state.engine.documents().batch_replacing(collection)
        }
        (Some(OnConflict::Replace), None) => {
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                "on_conflict=replace needs a collection to look for the older document in",
            )
            .with_param("on_conflict"));
        }
        (Some(OnConflict::New) | None, _) => state.engine.documents().batch(),
    };
    let mut metadata = ragd_core::Metadata::new();
    while let Some(field) = multipart.next_field().await? {
        if field.name() == Some("metadata") {
            let text = bounded_text(field, METADATA_FIELD_BYTES).await?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
                ApiError::new(
                    ErrorKind::InvalidInput,
                    format!("the `metadata` field is not JSON: {err}"),
                )
            })?;
            metadata = ragd_core::metadata_from_json(&value)
                .map_err(|message| ApiError::new(ErrorKind::InvalidInput, message))?;
            continue;
        }
        if field.name() != Some("files") {
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                format!(
                    "unexpected form field {:?}; send files in the field `files` (and \
                     optionally a JSON object in `metadata`)",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let filename = field.file_name().unwrap_or("upload").to_owned();
        batch.add(&filename, Box::pin(field)).await?;
    }
    let files = batch.complete(collection, metadata).await?;
    let entries: Vec<UploadedDocument> = files.into_iter().map(UploadedDocument::from).collect();
    let status =
        if entries.iter().all(|e| e.duplicate) { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, ApiJson(UploadResponse { documents: entries })))
}

impl From<ragd_ingest::BatchFile> for UploadedDocument {
    fn from(file: ragd_ingest::BatchFile) -> Self {
        match file.outcome {
            Ok(ingested) => {
                let document = ingested.document;
                Self {
                    id: Some(document.id),
                    status_url: Some(format!("/api/v1/documents/{}", document.id)),
                    filename: document.filename,
                    status: Some(document.status.into()),
                    duplicate: ingested.duplicate,
                    replaced: file.replaced,
                    error: None,
                }
            }
            Err(err) => Self {
                id: None,
                filename: file.filename,
                status: None,
                status_url: None,
                duplicate: false,
                replaced: file.replaced,
                error: Some(ApiError::from(err).detail()),
            },
        }
    }
}

/// Filters and paging of the document list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only documents in this state.
    pub status: Option<Status>,
    /// Only documents of this media type.
    pub mime: Option<String>,
    /// Only documents whose file name contains this (case-insensitive).
    pub filename: Option<String>,
    /// Only documents in this collection (id or name).
    pub collection: Option<String>,
    /// Only documents whose metadata satisfies this filter: JSON, the form of the search
    /// routes' `filter` (`{"lang":"en","year":{"gte":2020}}`).
    pub filter: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// The `filter` query parameter of the list, parsed.
fn list_filter(text: Option<&str>) -> Result<ragd_core::MetadataFilter, ApiError> {
    let Some(text) = text else { return Ok(ragd_core::MetadataFilter::default()) };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| {
        ApiError::new(ErrorKind::InvalidInput, format!("`filter` is not JSON: {err}"))
            .with_param("filter")
    })?;
    crate::api::search::metadata_filter(Some(&value))
}

/// A page of documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    /// The documents, newest first.
    pub items: Vec<DocumentDto>,
    /// How many match the filters in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// Lists documents, newest first, with filters and paging.
#[utoipa::path(
    get,
    path = "/",
    tag = "documents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of documents", body = DocumentList),
        (status = 400, description = "Bad filter or paging", body = ErrorBody),
        (status = 404, description = "The collection does not exist", body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<DocumentList>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let limit = page_size(query.limit)?;
    let offset = query.offset.unwrap_or(0);
    let collection = match &query.collection {
        Some(key) => {
            let id = state.engine.documents().collection(key).await?.id;
            allowed.check_collection(id, key)?;
            Some(id)
        }
        None => None,
    };
    let filter = ragd_catalog::DocumentQuery {
        status: query.status.map(Into::into),
        mime: query.mime,
        filename_contains: query.filename,
        collection,
        in_any_collection: allowed.collections(),
        metadata: list_filter(query.filter.as_deref())?,
        limit,
        offset,
    };
    let page = state.engine.documents().documents(filter).await?;
    Ok(ApiJson(DocumentList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// One document: metadata, status and progress.
#[utoipa::path(
    get,
    path = "/{id}",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document", body = DocumentDto),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
) -> Result<ApiJson<DocumentDto>, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    let mut document: DocumentDto = state.engine.documents().document(id).await?.into();
    document.vector_count = state.engine.documents().vector_count(id).await?;
    Ok(ApiJson(document))
}

/// A char range of the extracted text.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TextQuery {
    /// First char (default 0).
    pub start: Option<usize>,
    /// One past the last char (default: the end); past the end of the text it stops there.
    pub end: Option<usize>,
}

/// Extracted text, whole or a char range of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentText {
    /// The document.
    #[schema(value_type = String, format = Uuid)]
    pub document_id: DocumentId,
    /// The first char returned.
    pub start: usize,
    /// The text.
    pub text: String,
}

/// The document's extracted text, optionally only chars `start..end`.
#[utoipa::path(
    get,
    path = "/{id}/text",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id"), TextQuery),
    responses(
        (status = 200, description = "The text", body = DocumentText),
        (status = 400, description = "Range outside the text", body = ErrorBody),
        (status = 404, description = "No such document, or no text yet", body = ErrorBody)
    )
)]
pub async fn text(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
    ApiQuery(query): ApiQuery<TextQuery>,
) -> Result<ApiJson<DocumentText>, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    let text = state.engine.documents().text(id, query.start, query.end).await?;
    let start = query.start.unwrap_or(0);
    Ok(ApiJson(DocumentText { document_id: id, start, text }))
}

/// One chunk of a document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkDto {
    /// Stable id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ChunkId,
    /// Its document.
    #[schema(value_type = String, format = Uuid)]
    pub document_id: DocumentId,
    /// Position in the document, from 0.
    pub ordinal: u32,
    /// The chunk's text.
    pub text: String,
    /// First char in the document's extracted text.
    pub char_start: u64,
    /// One past the last char.
    pub char_end: u64,
    /// Tokens, as the embedder's tokenizer counts them.
    pub token_count: u32,
    /// Page number for paged formats.
    pub page: Option<u32>,
    /// Heading path (`Intro > Setup`) where the format has headings.
    pub heading: Option<String>,
}

impl From<Chunk> for ChunkDto {
    fn from(c: Chunk) -> Self {
        Self {
            id: c.id,
            document_id: c.document_id,
            ordinal: c.ordinal,
            text: c.text,
            char_start: c.char_start,
            char_end: c.char_end,
            token_count: c.token_count,
            page: c.page,
            heading: c.heading,
        }
    }
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Items to skip.
    pub offset: Option<u32>,
}

/// A page of chunks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkList {
    /// The chunks, in document order.
    pub items: Vec<ChunkDto>,
    /// How many chunks the document has.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// The document's chunks in order, paged.
#[utoipa::path(
    get,
    path = "/{id}/chunks",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id"), PageQuery),
    responses(
        (status = 200, description = "A page of chunks", body = ChunkList),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn chunks(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<ChunkList>, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    let limit = page_size(query.limit)?;
    let offset = query.offset.unwrap_or(0);
    let page = state.engine.documents().chunks(id, limit, offset).await?;
    Ok(ApiJson(ChunkList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// One chunk by id.
#[utoipa::path(
    get,
    path = "/chunks/{chunk_id}",
    tag = "documents",
    params(("chunk_id" = uuid::Uuid, Path, description = "Chunk id")),
    responses(
        (status = 200, description = "The chunk", body = ChunkDto),
        (status = 404, description = "No such chunk", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn chunk(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<ChunkId>,
) -> Result<ApiJson<ChunkDto>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let chunk = state.engine.documents().chunk(id).await?;
    if allowed.check_document(&state.engine, chunk.document_id).await.is_err() {
        return Err(ApiError::new(ErrorKind::NotFound, format!("chunk {id} not found")));
    }
    Ok(ApiJson(chunk.into()))
}

/// Deletes a document with its text, chunks, search entries, vectors and stored file.
#[utoipa::path(
    delete,
    path = "/{id}",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
) -> Result<StatusCode, ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    state.engine.documents().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Processes a document again from its stored file (new chunks and vectors).
#[utoipa::path(
    post,
    path = "/{id}/reindex",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "Document id")),
    responses(
        (status = 202, description = "Queued again", body = DocumentDto),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 409, description = "Still processing", body = ErrorBody),
        (status = 400, description = "Malformed id or parameters", body = ErrorBody)
    )
)]
pub async fn reindex(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(id): ApiPath<DocumentId>,
) -> Result<(StatusCode, ApiJson<DocumentDto>), ApiError> {
    scope.resolve(&state.engine).await?.check_document(&state.engine, id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(state.engine.documents().reindex(id).await?.into())))
}
