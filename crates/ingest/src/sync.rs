//! Folder sync: make the documents that came from a folder match the folder, by content
//! hash. New files are ingested, changed ones replaced, deleted ones removed, unchanged ones
//! left alone; a second run with nothing changed changes nothing and says so.
//!
//! A synced document carries two metadata keys: [`SOURCE_ROOT`] (the folder's canonical
//! path) and [`SOURCE_PATH`] (the file's path relative to it, `/`-separated), so the folder's
//! documents are found with a metadata filter and a file is matched to its document by
//! path. A changed file replaces its document's content (`Ingestor::replace_stream`: same
//! id, collections and metadata; unchanged chunks keep their vectors). A crash leaves the
//! folder half synced, which the next run finishes (extra documents for a path, if any, are
//! resolved to one). Optionally every synced document is put in a collection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ragd_catalog::DocumentQuery;
use ragd_core::{
    CollectionId, Condition, Document, DocumentId, Metadata, MetadataFilter, MetadataValue,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::pipeline::Ingestor;

/// How long a sync waits for a changed file's document that is still being processed
/// before it gives up on that file (`Timeout`, reported as a failed item).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// The metadata key holding the synced folder's canonical path.
pub const SOURCE_ROOT: &str = "source_root";
/// The metadata key holding a synced file's path relative to the folder.
pub const SOURCE_PATH: &str = "source_path";

/// What happened to one file (or one document whose file is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    /// A new file, ingested as this document.
    Added(DocumentId),
    /// A changed file: its document's content was replaced (same id; unchanged chunks keep
    /// their vectors).
    Updated(DocumentId),
    /// The file's content is the stored one.
    Unchanged(DocumentId),
    /// The file is gone; its document was deleted.
    Removed(DocumentId),
    /// The file's bytes are already stored as another document (uploaded otherwise, from
    /// another folder, or another file of this one); that document is left as it is and
    /// is not synced from this file.
    Duplicate(DocumentId),
    /// The file could not be read or was refused.
    Failed(String),
}

/// One line of a sync's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncItem {
    /// The file's path relative to the folder.
    pub path: String,
    /// What happened.
    pub change: SyncChange,
}

/// The files of `root` (recursively, hidden entries skipped) as relative `/` paths, sorted.
fn files_under(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        let entries = std::fs::read_dir(dir)
            .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.is_file()
                && let Ok(relative) = path.strip_prefix(root)
            {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((parts.join("/"), path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort();
    Ok(files)
}

/// The hex sha256 of a file.
async fn sha256_of(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|source| Error::Io { path, source })?;
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await?
}

fn text(value: &str) -> MetadataValue {
    MetadataValue::String(value.to_owned())
}

impl Ingestor {
    /// The documents that came from the folder `root` (canonical), by relative path.
    async fn synced_documents(&self, root: &str) -> Result<HashMap<String, Vec<Document>>> {
        let filter = MetadataFilter {
            conditions: vec![(SOURCE_ROOT.to_owned(), Condition::Equals(text(root)))],
        };
        let mut by_path: HashMap<String, Vec<Document>> = HashMap::new();
        let mut offset = 0;
        loop {
            let query = DocumentQuery {
                metadata: filter.clone(),
                limit: 500,
                offset,
                ..DocumentQuery::default()
            };
            let page = self.documents(query).await?;
            let count = page.items.len();
            for document in page.items {
                if let Some(MetadataValue::String(path)) = document.metadata.get(SOURCE_PATH) {
                    by_path.entry(path.clone()).or_default().push(document);
                }
            }
            if count < 500 {
                return Ok(by_path);
            }
            offset += 500;
        }
    }

    /// Ingests a file as the document of `path` under `root`; a file whose bytes another
    /// document already holds is [`SyncChange::Duplicate`], and that document is neither
    /// tagged nor, later, deleted by this folder's syncs.
    async fn ingest_synced(
        &self,
        root: &str,
        path: &str,
        file: &Path,
        collection: Option<CollectionId>,
    ) -> Result<SyncChange> {
        // The tags are stored with the document, in one transaction: a sync killed between
        // the two once left an untagged document that later syncs took for another file's.
        let metadata: Metadata =
            [(SOURCE_ROOT.to_owned(), text(root)), (SOURCE_PATH.to_owned(), text(path))].into();
        let ingested = self.ingest_file_with(file, metadata).await?;
        let id = ingested.document.id;
        if ingested.duplicate {
            return Ok(SyncChange::Duplicate(id));
        }
        if let Some(collection) = collection {
            self.add_to_collection(collection, vec![id]).await?;
        }
        Ok(SyncChange::Added(id))
    }

    /// Makes the documents that came from `folder` match it (see the module docs), calling
    /// `progress(done, total, item)` after each file. Returns what happened to each file.
    ///
    /// # Errors
    /// `NotFound`/I/O errors for a folder that cannot be read, `NotFound` for an unknown
    /// collection, catalog errors. A single file that cannot be read or is refused is a
    /// [`SyncChange::Failed`] item, not an error.
    pub async fn sync_folder(
        &self,
        folder: &Path,
        collection: Option<CollectionId>,
        mut progress: impl FnMut(usize, usize, &SyncItem),
    ) -> Result<Vec<SyncItem>> {
        let root_path = std::fs::canonicalize(folder)
            .map_err(|source| Error::Io { path: folder.to_path_buf(), source })?;
        let root = root_path.to_string_lossy().into_owned();
        if let Some(collection) = collection {
            // Fail before anything changes.
            self.collection(&collection.to_string()).await?;
        }
        let files = files_under(&root_path)?;
        let mut stored = self.synced_documents(&root).await?;
        let gone: Vec<(String, Vec<Document>)> = {
            let present: std::collections::HashSet<&str> =
                files.iter().map(|(path, _)| path.as_str()).collect();
            let mut gone: Vec<_> = stored
                .iter()
                .filter(|(path, _)| !present.contains(path.as_str()))
                .map(|(p, d)| (p.clone(), d.clone()))
                .collect();
            gone.sort_by(|a, b| a.0.cmp(&b.0));
            gone
        };
        let total = files.len() + gone.len();
        let mut items = Vec::with_capacity(total);
        for (path, file) in &files {
            let change = match self
                .sync_one(&root, path, file, stored.remove(path).unwrap_or_default(), collection)
                .await
            {
                Ok(change) => change,
                Err(err) => SyncChange::Failed(err.to_string()),
            };
            let item = SyncItem { path: path.clone(), change };
            progress(items.len() + 1, total, &item);
            items.push(item);
        }
        for (path, documents) in gone {
            for document in documents {
                self.delete(document.id).await?;
                let item =
                    SyncItem { path: path.clone(), change: SyncChange::Removed(document.id) };
                progress(items.len() + 1, total, &item);
                items.push(item);
            }
        }
        tracing::info!(root, items = items.len(), "synced folder");
        Ok(items)
    }

    /// Brings one file's document up to date; `documents` are those stored for its path.
    async fn sync_one(
        &self,
        root: &str,
        path: &str,
        file: &Path,
        documents: Vec<Document>,
        collection: Option<CollectionId>,
    ) -> Result<SyncChange> {
        let sha = sha256_of(file).await?;
        let (current, stale): (Vec<Document>, Vec<Document>) =
            documents.into_iter().partition(|d| d.sha256 == sha);
        let change = match (current.first(), stale.first()) {
            (Some(current), _) => {
                if let Some(collection) = collection {
                    self.add_to_collection(collection, vec![current.id]).await?;
                }
                SyncChange::Unchanged(current.id)
            }
            (None, Some(old)) => {
                let id = old.id;
                // A document still processing (resumed after a crash, or uploaded just now)
                // cannot be replaced yet: its current processing finishes first.
                if !old.status.is_terminal() {
                    self.wait_until_done(id, BUSY_WAIT).await?;
                }
                let content = tokio::fs::File::open(file)
                    .await
                    .map_err(|source| Error::Io { path: file.to_path_buf(), source })?;
                let name =
                    file.file_name().map_or_else(|| "upload".into(), |n| n.to_string_lossy());
                let stream = tokio_util::io::ReaderStream::new(content);
                // The replacement's processing is waited for by the caller, not here.
                self.replace_stream(id, &name, stream, std::time::Duration::ZERO).await?;
                if let Some(collection) = collection {
                    self.add_to_collection(collection, vec![id]).await?;
                }
                SyncChange::Updated(id)
            }
            (None, None) => self.ingest_synced(root, path, file, collection).await?,
        };
        // Extra documents for the path (from an interrupted earlier run): keep one.
        let kept = match &change {
            SyncChange::Added(id) | SyncChange::Updated(id) | SyncChange::Unchanged(id) => {
                Some(*id)
            }
            SyncChange::Removed(_) | SyncChange::Duplicate(_) | SyncChange::Failed(_) => None,
        };
        for document in stale.iter().chain(current.iter()) {
            if Some(document.id) != kept {
                self.delete(document.id).await?;
            }
        }
        Ok(change)
    }
}
