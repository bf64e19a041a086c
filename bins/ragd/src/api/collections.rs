//! `/api/v1/collections`: named sets of documents. A document may be in several; uploads
//! can go straight into one (`POST /api/v1/documents?collection=`), the document list,
//! search and chat sessions can be restricted to collections.
//!
//! Paths take a collection's id or its name.

use axum::extract::State;
use axum::http::StatusCode;
use ragd_catalog::CollectionUpdate;
use ragd_core::{Collection, CollectionId, DocumentId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::api::scope::KeyScope;
use crate::api::sessions::PageParams;
use crate::api::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, page_size};
use crate::state::AppState;

/// A new collection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionBody {
    /// Its name: unique (ignoring ASCII case), 1 to 100 chars, not a UUID.
    pub name: String,
    /// What it holds, for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// Changes to a collection; absent fields are left as they are, a `null` description
/// removes it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionBody {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new description (`null` removes it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// A field that is present, `null` included, becomes `Some`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Documents to add to a collection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionDocumentsBody {
    /// The documents (1 to 1000); all are added or, when one does not exist, none.
    #[schema(value_type = Vec<String>)]
    pub document_ids: Vec<DocumentId>,
}

/// A collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionBody {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: CollectionId,
    /// Its name.
    pub name: String,
    /// What it holds.
    pub description: Option<String>,
    /// How many documents it holds.
    pub document_count: u64,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its name, description or documents last changed (RFC 3339).
    pub updated_at: String,
}

impl From<Collection> for CollectionBody {
    fn from(c: Collection) -> Self {
        Self {
            id: c.id,
            name: c.name,
            description: c.description,
            document_count: c.document_count,
            created_at: crate::api::timestamp(c.created_at),
            updated_at: crate::api::timestamp(c.updated_at),
        }
    }
}

/// A page of collections, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    /// The collections.
    pub items: Vec<CollectionBody>,
    /// How many there are in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u32,
}

/// Creates an empty collection.
#[utoipa::path(
    post,
    path = "/",
    tag = "collections",
    request_body = CreateCollectionBody,
    responses(
        (status = 201, description = "Created", body = CollectionBody),
        (status = 400, description = "Bad name or description", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(body): ApiJson<CreateCollectionBody>,
) -> Result<(StatusCode, ApiJson<CollectionBody>), ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.require_unlimited("create collections")?;
    let collection =
        state.engine.documents().create_collection(body.name, body.description).await?;
    Ok((StatusCode::CREATED, ApiJson(collection.into())))
}

/// Lists collections by name.
#[utoipa::path(
    get,
    path = "/",
    tag = "collections",
    params(PageParams),
    responses(
        (status = 200, description = "A page of collections", body = CollectionList),
        (status = 400, description = "Bad paging", body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<ApiJson<CollectionList>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let (limit, offset) = (page_size(params.limit)?, params.offset);
    let page = if let Some(ids) = allowed.collections() {
        // A scoped key's few collections, by name like the full list.
        let mut items = Vec::new();
        for id in ids {
            items.push(state.engine.documents().collection(&id.to_string()).await?);
        }
        items.sort_by_key(|c| c.name.to_lowercase());
        let total = items.len() as u64;
        let items = items.into_iter().skip(offset as usize).take(limit as usize).collect();
        ragd_catalog::Page { items, total }
    } else {
        state.engine.documents().collections(limit, offset).await?
    };
    Ok(ApiJson(CollectionList {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    }))
}

/// One collection, by id or name.
#[utoipa::path(
    get,
    path = "/{collection}",
    tag = "collections",
    params(("collection" = String, Path, description = "Collection id or name")),
    responses(
        (status = 200, description = "The collection", body = CollectionBody),
        (status = 404, description = "No such collection", body = ErrorBody)
    )
)]
pub async fn get(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<CollectionBody>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let collection = state.engine.documents().collection(&key).await?;
    allowed.check_collection(collection.id, &key)?;
    Ok(ApiJson(collection.into()))
}

/// Renames a collection or changes its description.
#[utoipa::path(
    patch,
    path = "/{collection}",
    tag = "collections",
    params(("collection" = String, Path, description = "Collection id or name")),
    request_body = UpdateCollectionBody,
    responses(
        (status = 200, description = "The collection now", body = CollectionBody),
        (status = 400, description = "Bad name or description", body = ErrorBody),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateCollectionBody>,
) -> Result<ApiJson<CollectionBody>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.require_unlimited("rename collections")?;
    let documents = state.engine.documents();
    let id = documents.collection(&key).await?.id;
    let update = CollectionUpdate { name: body.name, description: body.description };
    Ok(ApiJson(documents.update_collection(id, update).await?.into()))
}

/// Deletes a collection; its documents stay stored.
#[utoipa::path(
    delete,
    path = "/{collection}",
    tag = "collections",
    params(("collection" = String, Path, description = "Collection id or name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 409, description = "A chat session is restricted to it", body = ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    allowed.require_unlimited("delete collections")?;
    let documents = state.engine.documents();
    let id = documents.collection(&key).await?.id;
    documents.delete_collection(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds documents to a collection (ones already in it stay).
#[utoipa::path(
    post,
    path = "/{collection}/documents",
    tag = "collections",
    params(("collection" = String, Path, description = "Collection id or name")),
    request_body = CollectionDocumentsBody,
    responses(
        (status = 200, description = "The collection now", body = CollectionBody),
        (status = 400, description = "Malformed ids or more than 1000", body = ErrorBody),
        (status = 404, description = "No such collection or document (nothing was added)", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn add_documents(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<CollectionDocumentsBody>,
) -> Result<ApiJson<CollectionBody>, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let documents = state.engine.documents();
    let id = documents.collection(&key).await?.id;
    allowed.check_collection(id, &key)?;
    allowed.check_documents(&state.engine, &body.document_ids).await?;
    Ok(ApiJson(documents.add_to_collection(id, body.document_ids).await?.into()))
}

/// Takes a document out of a collection; it stays stored.
#[utoipa::path(
    delete,
    path = "/{collection}/documents/{document_id}",
    tag = "collections",
    params(
        ("collection" = String, Path, description = "Collection id or name"),
        ("document_id" = uuid::Uuid, Path, description = "Document id")
    ),
    responses(
        (status = 204, description = "Removed (or was not in it)"),
        (status = 404, description = "No such collection", body = ErrorBody),
        (status = 400, description = "Malformed document id", body = ErrorBody)
    )
)]
pub async fn remove_document(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiPath((key, document)): ApiPath<(String, DocumentId)>,
) -> Result<StatusCode, ApiError> {
    let allowed = scope.resolve(&state.engine).await?;
    let documents = state.engine.documents();
    let id = documents.collection(&key).await?.id;
    allowed.check_collection(id, &key)?;
    allowed.check_document(&state.engine, document).await?;
    documents.remove_from_collection(id, vec![document]).await?;
    Ok(StatusCode::NO_CONTENT)
}
