//! Receiving uploads: [`Ingestor::ingest_stream`] and [`Ingestor::ingest_file`] stream a
//! file to a temporary `uploads/.upload-*` file while hashing it (never holding it whole in
//! memory), enforce the size limit, detect the type from the first bytes, move it to
//! `uploads/<sha256>`, record it in the catalog (deduplicated by sha256) and queue it.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use ragd_catalog::{InsertOutcome, NewDocument};
use ragd_core::DocumentId;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{ChunkDiff, Ingested, Ingestor};
use crate::detect::{DocumentKind, detect};
use crate::error::{Error, Result};

/// How many leading bytes of an upload are kept for type detection.
const DETECT_PREFIX_BYTES: usize = 8 * 1024;

/// The prefix of partial uploads in the uploads directory.
pub(super) const PARTIAL_UPLOAD_PREFIX: &str = ".upload-";

impl Ingestor {
    /// Stores an upload and queues it. `stream` yields the file's bytes.
    ///
    /// # Errors
    /// `PayloadTooLarge` past `max_upload_bytes`, `InvalidInput` for an empty file or a
    /// broken stream, `UnsupportedMediaType` for formats ragd cannot read, `Unavailable`
    /// when no tokenizer is loaded. Nothing is kept after an error.
    pub async fn ingest_stream<S, B, E>(&self, filename: &str, stream: S) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        self.ingest_stream_with(filename, stream, ragd_core::Metadata::new()).await
    }

    /// [`Ingestor::ingest_stream`], a new document getting `metadata` in the transaction
    /// that stores it (a duplicate's metadata is left as it is).
    ///
    /// # Errors
    /// As [`Ingestor::ingest_stream`]; `InvalidInput` for too many metadata keys.
    pub async fn ingest_stream_with<S, B, E>(
        &self,
        filename: &str,
        stream: S,
        metadata: ragd_core::Metadata,
    ) -> Result<Ingested>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        if let Err(reason) = &self.inner.chunker {
            return Err(Error::Unavailable(reason.clone()));
        }
        let filename = clean_filename(filename);
        let upload = self.receive(&filename, stream).await?;
        let new = NewDocument {
            id: DocumentId::new(),
            filename,
            mime: upload.kind.mime().to_owned(),
            sha256: upload.sha256,
            bytes: upload.bytes,
        };
        match self.db(move |c| c.insert_document_with_metadata(new, &metadata)).await? {
            InsertOutcome::Created(document) => {
                tracing::info!(document_id = %document.id, filename = %document.filename, bytes = document.bytes, "document queued");
                self.enqueue(document.id);
                Ok(Ingested { document, duplicate: false })
            }
            InsertOutcome::Existing(document) => {
                tracing::info!(document_id = %document.id, "duplicate upload; existing document returned");
                Ok(Ingested { document, duplicate: true })
            }
        }
    }

    /// Replaces the file of a finished document, keeping its id, collections and metadata,
    /// and processes it again; the chunks whose text is unchanged keep their vectors when
    /// the document was `ready`. Waits up to `wait` for the processing and returns the
    /// document with what happened to its chunks (`None` when it was not done in time or
    /// nothing was reused). Identical bytes change nothing (`changed: false`).
    ///
    /// # Errors
    /// As [`Ingestor::ingest_stream`]; `NotFound` for an unknown document; `Conflict` while
    /// it is being processed or when another document holds the same bytes.
    pub async fn replace_stream<S, B, E>(
        &self,
        id: DocumentId,
        filename: &str,
        stream: S,
        wait: std::time::Duration,
    ) -> Result<Replaced>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        if let Err(reason) = &self.inner.chunker {
            return Err(Error::Unavailable(reason.clone()));
        }
        // Refuse before reading the body when the document is missing or busy.
        let current = self.db(move |c| c.get_document(id)).await?;
        if !current.status.is_terminal() {
            return Err(Error::Busy(format!(
                "document {id} is still being processed; replace it once it is ready or failed"
            )));
        }
        let filename = clean_filename(filename);
        let upload = self.receive(&filename, stream).await?;
        if upload.sha256 == current.sha256 {
            return Ok(Replaced { document: current, changed: false, chunks: None });
        }
        let new = NewDocument {
            id,
            filename,
            mime: upload.kind.mime().to_owned(),
            sha256: upload.sha256,
            bytes: upload.bytes,
        };
        let before = self.db(move |c| c.replace_document_file(id, &new)).await?;
        // The old bytes belong to no document any more.
        let old = self.upload_path(&before.sha256);
        if let Err(err) = tokio::fs::remove_file(&old).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %old.display(), %err, "cannot remove the replaced file");
        }
        if before.status == ragd_core::DocumentStatus::Ready {
            self.allow_reuse(id);
        }
        tracing::info!(document_id = %id, "document content replaced; queued again");
        self.enqueue(id);
        let document = match self.wait_until_done(id, wait).await {
            Ok(document) => document,
            Err(Error::Timeout(_)) => self.db(move |c| c.get_document(id)).await?,
            Err(err) => return Err(err),
        };
        let chunks = if document.status.is_terminal() { self.take_diff(id) } else { None };
        Ok(Replaced { document, changed: true, chunks })
    }

    /// Stores a file from disk and queues it, like an upload.
    ///
    /// # Errors
    /// As [`Ingestor::ingest_stream`], plus I/O errors reading `path`.
    pub async fn ingest_file(&self, path: &Path) -> Result<Ingested> {
        self.ingest_file_with(path, ragd_core::Metadata::new()).await
    }

    /// [`Ingestor::ingest_file`] with [`Ingestor::ingest_stream_with`]'s `metadata`.
    ///
    /// # Errors
    /// As [`Ingestor::ingest_stream_with`], and `Io` when the file cannot be opened.
    pub async fn ingest_file_with(
        &self,
        path: &Path,
        metadata: ragd_core::Metadata,
    ) -> Result<Ingested> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let name = path.file_name().map_or_else(|| "upload".into(), |n| n.to_string_lossy());
        self.ingest_stream_with(&name, tokio_util::io::ReaderStream::new(file), metadata).await
    }

    /// Streams `stream` into a temporary file while hashing it, checks size and type, and
    /// moves it to `uploads/<sha256>`. The file is synced before the document is recorded,
    /// so an acknowledged upload survives a crash.
    async fn receive<S, B, E>(&self, filename: &str, mut stream: S) -> Result<Upload>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let dir = &self.inner.config.uploads_dir;
        let limit = self.inner.config.max_upload_bytes;
        let temp = TempFile {
            path: dir.join(format!("{PARTIAL_UPLOAD_PREFIX}{}", DocumentId::new())),
            keep: false,
        };
        let io_err = |source| Error::Io { path: temp.path.clone(), source };
        let mut file = tokio::fs::File::create(&temp.path).await.map_err(io_err)?;
        let mut hasher = Sha256::new();
        let mut prefix = Vec::with_capacity(DETECT_PREFIX_BYTES);
        let mut bytes: u64 = 0;
        while let Some(piece) = stream.next().await {
            let piece = piece
                .map_err(|err| Error::Upload(format!("reading {filename:?} failed: {err}")))?;
            let piece = piece.as_ref();
            bytes += piece.len() as u64;
            if bytes > limit {
                return Err(Error::TooLarge { limit });
            }
            hasher.update(piece);
            let room = DETECT_PREFIX_BYTES.saturating_sub(prefix.len());
            prefix.extend_from_slice(&piece[..room.min(piece.len())]);
            file.write_all(piece).await.map_err(io_err)?;
        }
        let kind = detect(&prefix, filename)?;
        file.sync_all().await.map_err(io_err)?;
        drop(file);

        let sha256: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let stored = self.upload_path(&sha256);
        if !tokio::fs::try_exists(&stored).await.unwrap_or(false) {
            tokio::fs::rename(&temp.path, &stored)
                .await
                .map_err(|source| Error::Io { path: stored.clone(), source })?;
        }
        // Shared before it is recorded: any replica may claim the document at once.
        if let Some(uploads) = &self.inner.uploads {
            uploads.put(&sha256, &stored).await?;
        }
        Ok(Upload { kind, sha256, bytes })
    }
}

/// What [`Ingestor::replace_stream`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Replaced {
    /// The document now (`ready`, `failed`, or still processing when the wait ran out).
    pub document: ragd_core::Document,
    /// `false` when the new bytes were the stored ones (nothing was done).
    pub changed: bool,
    /// What happened to its chunks, when it was `ready` before and is done now.
    pub chunks: Option<ChunkDiff>,
}

/// A received upload, stored under its sha256.
struct Upload {
    kind: DocumentKind,
    sha256: String,
    bytes: u64,
}

/// Removes a partial upload unless it was kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep
            && let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove partial upload");
        }
    }
}

/// The name as given, without any directory part (so `../../etc/passwd` is stored as
/// `passwd`) and without control characters; `upload` when nothing is left.
pub(crate) fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "upload".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_directories_and_control_chars() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\docs\\a.pdf"), "a.pdf");
        assert_eq!(clean_filename("a\u{0}b\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "upload");
        assert_eq!(clean_filename(""), "upload");
    }
}
