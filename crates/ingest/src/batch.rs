//! [`UploadBatch`]: the files of one upload request, with one rule for refusals.
//!
//! A request is taken whole or not at all when it breaks the limits: a file past
//! `max_upload_bytes` or one file too many refuses the request, and every document the
//! batch queued is removed again (duplicates it found are left alone, they were there
//! before). Every other early end, a malformed request the caller notices, a dropped
//! connection, an error returned with `?`, drops the batch unfinished, which removes what it
//! queued the same way. Files that fail on their own (empty, unsupported type) are reported
//! per file and do not refuse the others.

use futures::Stream;

use crate::error::{Error, Result};
use crate::pipeline::{Ingested, Ingestor};

/// The outcome of one file of a batch.
#[derive(Debug)]
pub struct BatchFile {
    /// The file name the upload gave.
    pub filename: String,
    /// The stored (or already present) document, or why this file was refused.
    pub outcome: Result<Ingested>,
    /// `true` when the file replaced the content of a document of the same name in the
    /// batch's collection (see [`Ingestor::batch_replacing`]).
    pub replaced: bool,
}

/// The files of one upload; see the module docs. Create it with [`Ingestor::batch`], feed
/// it with [`UploadBatch::add`], end it with [`UploadBatch::finish`].
#[derive(Debug)]
pub struct UploadBatch {
    ingestor: Ingestor,
    files: Vec<BatchFile>,
    finished: bool,
    /// Files named like a document of this collection replace its content.
    replace_in: Option<ragd_core::CollectionId>,
}

impl Ingestor {
    /// An empty upload batch over this ingestor.
    #[must_use]
    pub fn batch(&self) -> UploadBatch {
        UploadBatch { ingestor: self.clone(), files: Vec::new(), finished: false, replace_in: None }
    }

    /// An empty upload batch in which a file with the name of a document of `collection`
    /// replaces that document's content ([`Ingestor::replace_stream`]: same id, unchanged
    /// chunks keep their vectors) instead of becoming a new document. A replacement is not
    /// undone when the request is refused later.
    #[must_use]
    pub fn batch_replacing(&self, collection: ragd_core::CollectionId) -> UploadBatch {
        let mut batch = self.batch();
        batch.replace_in = Some(collection);
        batch
    }
}

impl UploadBatch {
    /// Stores and queues one file of the batch.
    ///
    /// # Errors
    /// `PayloadTooLarge` when the file is past `max_upload_bytes` or the batch already
    /// holds `max_files_per_upload` files: the request is refused, and what the batch
    /// queued has been removed. Other failures of the file are recorded for
    /// [`UploadBatch::finish`] and are not errors here.
    pub async fn add<S, B, E>(&mut self, filename: &str, stream: S) -> Result<()>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let max = self.ingestor.config().max_files_per_upload;
        if self.files.len() >= max {
            self.rollback().await;
            return Err(Error::TooManyFiles { max });
        }
        let target = match self.replace_in {
            Some(collection) => {
                let name = crate::pipeline::clean_filename(filename);
                self.ingestor.db(move |c| c.collection_document_named(collection, &name)).await?
            }
            None => None,
        };
        let (outcome, replaced) = match target {
            Some(id) => {
                let outcome = self
                    .ingestor
                    .replace_stream(id, filename, stream, std::time::Duration::ZERO)
                    .await
                    .map(|r| Ingested { document: r.document, duplicate: !r.changed });
                (outcome, true)
            }
            None => (self.ingestor.ingest_stream(filename, stream).await, false),
        };
        match outcome {
            Err(err @ Error::TooLarge { .. }) => {
                // Going on would mean reading the rest of an oversized body to find the next
                // file: the request is refused as a whole, at once.
                self.rollback().await;
                Err(err)
            }
            outcome => {
                self.files.push(BatchFile { filename: filename.to_owned(), outcome, replaced });
                Ok(())
            }
        }
    }

    /// Ends the batch like [`UploadBatch::finish`], then gives every stored document of it
    /// (new ones and duplicates) `metadata` (keys set, others kept) and puts it into
    /// `collection`.
    ///
    /// # Errors
    /// As [`UploadBatch::finish`]; `NotFound` when the collection is gone (the documents
    /// stay stored, outside it).
    pub async fn complete(
        self,
        collection: Option<ragd_core::CollectionId>,
        metadata: ragd_core::Metadata,
    ) -> Result<Vec<BatchFile>> {
        let ingestor = self.ingestor.clone();
        let files = self.finish()?;
        let stored: Vec<ragd_core::DocumentId> = files
            .iter()
            .filter_map(|file| file.outcome.as_ref().ok().map(|ingested| ingested.document.id))
            .collect();
        if !metadata.is_empty() {
            for id in &stored {
                ingestor.update_metadata(*id, metadata.clone(), Vec::new()).await?;
            }
        }
        if let Some(collection) = collection {
            ingestor.add_to_collection(collection, stored).await?;
        }
        Ok(files)
    }

    /// The files, each with its outcome.
    ///
    /// # Errors
    /// `InvalidInput` when the batch is empty; the first file's error when every file
    /// failed (nothing was queued then).
    pub fn finish(mut self) -> Result<Vec<BatchFile>> {
        self.finished = true;
        let files = std::mem::take(&mut self.files);
        if files.is_empty() {
            return Err(Error::NoFiles);
        }
        if files.iter().all(|file| file.outcome.is_err()) {
            let first = files.into_iter().find_map(|file| file.outcome.err());
            return Err(first.unwrap_or(Error::NoFiles));
        }
        Ok(files)
    }

    /// Removes the documents this batch created (not the duplicates it found).
    async fn rollback(&mut self) {
        self.finished = true;
        for id in self.created() {
            if let Err(err) = self.ingestor.delete(id).await {
                tracing::warn!(document_id = %id, %err, "cannot remove a document of a refused upload");
            }
        }
        self.files.clear();
    }

    fn created(&self) -> Vec<ragd_core::DocumentId> {
        self.files
            .iter()
            .filter(|file| !file.replaced)
            .filter_map(|file| file.outcome.as_ref().ok())
            .filter(|ingested| !ingested.duplicate)
            .map(|ingested| ingested.document.id)
            .collect()
    }
}

impl Drop for UploadBatch {
    /// An unfinished batch (the caller gave up on the request) removes what it queued, on
    /// the runtime it ran on.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let created = self.created();
        if created.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                documents = created.len(),
                "an unfinished upload is left queued: no runtime to remove it"
            );
            return;
        };
        let ingestor = self.ingestor.clone();
        runtime.spawn(async move {
            for id in created {
                if let Err(err) = ingestor.delete(id).await {
                    tracing::warn!(document_id = %id, %err, "cannot remove a document of an abandoned upload");
                }
            }
        });
    }
}
