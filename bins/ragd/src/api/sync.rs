//! `POST /api/v1/documents/sync`: make the documents that came from a server-side folder
//! match it, as `ragd sync` does (`ragd_ingest::sync`): new files added, changed ones
//! replaced keeping their ids, deleted ones removed, by content hash. Only folders under
//! `server.sync_dirs` may be synced, one sync at a time; new and changed documents are
//! processed in the background (their status is in the documents list).

use std::path::PathBuf;

use axum::extract::State;
use ragd_core::{DocumentId, ErrorKind};
use ragd_ingest::{SyncChange, SyncItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::scope::KeyScope;
use crate::api::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// What to sync.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// The folder on the server, inside one of `server.sync_dirs`.
    pub folder: String,
    /// Put the folder's documents in this collection (id or name; created when missing).
    #[serde(default)]
    pub collection: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncItemBody {
    /// The file's path relative to the folder.
    pub path: String,
    /// `added`, `updated`, `unchanged`, `removed`, `duplicate` (its bytes are another
    /// document's, left as it is) or `failed`.
    pub change: &'static str,
    /// The document it is (or was).
    #[schema(value_type = Option<String>)]
    pub document_id: Option<DocumentId>,
    /// Why it failed.
    pub reason: Option<String>,
}

impl From<SyncItem> for SyncItemBody {
    fn from(item: SyncItem) -> Self {
        let (change, document_id, reason) = match item.change {
            SyncChange::Added(id) => ("added", Some(id), None),
            SyncChange::Updated(id) => ("updated", Some(id), None),
            SyncChange::Unchanged(id) => ("unchanged", Some(id), None),
            SyncChange::Removed(id) => ("removed", Some(id), None),
            SyncChange::Duplicate(id) => ("duplicate", Some(id), None),
            SyncChange::Failed(reason) => ("failed", None, Some(reason)),
        };
        Self { path: item.path, change, document_id, reason }
    }
}

/// The outcome of a sync.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResponse {
    /// The folder, as synced (absolute, links resolved).
    pub folder: String,
    /// Whether anything changed (a second sync of an unchanged folder says `false`).
    pub changed: bool,
    /// Each file, in path order, then the removed ones.
    pub items: Vec<SyncItemBody>,
}

/// Syncs a folder on the server into the documents (see the module docs).
#[utoipa::path(
    post,
    path = "/sync",
    tag = "documents",
    request_body = SyncBody,
    responses(
        (status = 200, description = "Synced; new and changed documents are processing", body = SyncResponse),
        (status = 400, description = "The folder is not inside server.sync_dirs, or cannot be read", body = ErrorBody),
        (status = 403, description = "The key is limited to some collections", body = ErrorBody),
        (status = 409, description = "Another sync is running", body = ErrorBody),
        (status = 415, description = "The body is not JSON (`Content-Type: application/json`)", body = ErrorBody)
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    scope: KeyScope,
    ApiJson(body): ApiJson<SyncBody>,
) -> Result<ApiJson<SyncResponse>, ApiError> {
    // A sync removes documents; what a folder holds is not a collection's business.
    scope.resolve(&state.engine).await?.require_unlimited("sync folders")?;
    let folder = allowed_folder(&state.config.server.sync_dirs, &body.folder)?;
    let Ok(_one_at_a_time) = state.sync.try_lock() else {
        return Err(ApiError::new(ErrorKind::Conflict, "another sync is running; retry later"));
    };
    let documents = state.engine.documents();
    let collection = match &body.collection {
        None => None,
        Some(key) => Some(match documents.collection(key).await {
            Ok(found) => found.id,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                documents.create_collection(key.clone(), None).await?.id
            }
            Err(err) => return Err(err.into()),
        }),
    };
    let items = documents.sync_folder(&folder, collection, |_, _, _| {}).await?;
    let changed = items.iter().any(|item| !matches!(item.change, SyncChange::Unchanged(_)));
    Ok(ApiJson(SyncResponse {
        folder: folder.to_string_lossy().into_owned(),
        changed,
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// `folder`, resolved, when it is inside one of `roots` (both resolved, so `..` and links
/// cannot lead out).
fn allowed_folder(roots: &[PathBuf], folder: &str) -> Result<PathBuf, ApiError> {
    let refuse =
        |message: String| ApiError::new(ErrorKind::InvalidInput, message).with_param("folder");
    if roots.is_empty() {
        return Err(refuse(
            "no folder may be synced through the API: list the folders in server.sync_dirs"
                .to_owned(),
        ));
    }
    let resolved = std::fs::canonicalize(folder)
        .map_err(|err| refuse(format!("cannot read the folder {folder:?}: {err}")))?;
    if !resolved.is_dir() {
        return Err(refuse(format!("{folder:?} is not a folder")));
    }
    let inside = roots
        .iter()
        .filter_map(|root| std::fs::canonicalize(root).ok())
        .any(|root| resolved.starts_with(&root));
    if inside {
        Ok(resolved)
    } else {
        Err(refuse(format!("the folder {folder:?} is not inside server.sync_dirs")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_under_the_roots_pass() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shared");
        std::fs::create_dir_all(root.join("team")).unwrap();
        std::fs::create_dir_all(dir.path().join("private")).unwrap();
        let roots = [root.clone()];
        assert!(allowed_folder(&roots, root.join("team").to_str().unwrap()).is_ok());
        let escape = root.join("../private");
        for folder in [escape.to_str().unwrap(), dir.path().to_str().unwrap(), "/nonexistent"] {
            let err = allowed_folder(&roots, folder).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{folder}");
        }
        assert!(allowed_folder(&[], root.to_str().unwrap()).is_err());
    }
}
