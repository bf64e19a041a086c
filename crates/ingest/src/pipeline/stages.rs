//! The stage machine a worker runs for one document: `queued -> extracting -> chunking ->
//! embedding -> ready | failed(reason)`. [`Stop`] is why it ended early; `process` records
//! the outcome, `run_stages` does the work.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ragd_core::{Chunk, ChunkId, DocumentId, DocumentStatus};

use super::{ChunkDiff, Ingestor};
use crate::chunk::{ChunkPiece, Chunker};
use crate::detect::DocumentKind;
use crate::error::Error;
use crate::extract::Extracted;

/// How often the chunking progress is recorded (and a delete noticed).
const CHUNK_PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Why a worker stopped early.
pub(super) enum Stop {
    /// The document was deleted while it was processed; nothing to record.
    Gone,
    /// The document failed; the reason is recorded.
    Failed(String),
    /// This process's lease on the document was lost (it stalled past the lease and
    /// another replica took the document over); nothing more is recorded.
    LeaseLost,
}

impl<E: Into<Error>> From<E> for Stop {
    fn from(err: E) -> Self {
        let err: Error = err.into();
        if let Error::Catalog(catalog) = &err
            && catalog.kind() == ragd_core::ErrorKind::NotFound
        {
            return Self::Gone;
        }
        Self::Failed(err.to_string())
    }
}

impl Ingestor {
    /// Claims a document (a lease in the catalog) unless `claimed` says the caller did,
    /// runs every stage while renewing the claim, records the outcome and releases the
    /// claim. Does nothing when another replica holds the document or it is finished.
    pub(super) async fn process(&self, id: DocumentId, claimed: bool) {
        if !claimed {
            let lease = self.lease();
            match self.db(move |c| c.claim_document(&lease, Some(id))).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::debug!(document_id = %id, "not claimed: finished, or another replica works on it");
                    return;
                }
                Err(err) => {
                    tracing::warn!(document_id = %id, %err, "cannot claim the document; leaving it queued");
                    return;
                }
            }
        }
        let heartbeat = tokio::spawn(self.clone().renew_until_lost(id));
        self.process_claimed(id).await;
        heartbeat.abort();
        self.lost_lease(id, false);
        let owner = self.inner.owner.clone();
        if let Err(err) = self.db(move |c| c.release_lease(id, &owner)).await {
            tracing::warn!(document_id = %id, %err, "cannot release the lease (it will expire)");
        }
    }

    /// The lease this process claims documents with.
    pub(super) fn lease(&self) -> ragd_catalog::Lease {
        ragd_catalog::Lease::new(self.inner.owner.clone(), self.inner.config.lease)
    }

    /// Renews the lease on `id` every third of its duration; when the catalog says another
    /// replica holds it now, marks it lost (the stages stop at their next step) and ends.
    async fn renew_until_lost(self, id: DocumentId) {
        let every = (self.inner.config.lease / 3).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(every).await;
            let lease = self.lease();
            match self.db(move |c| c.renew_lease(id, &lease)).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(document_id = %id, "lease lost to another replica; stopping");
                    self.lost_lease(id, true);
                    return;
                }
                Err(err) => tracing::warn!(document_id = %id, %err, "cannot renew the lease"),
            }
        }
    }

    /// Marks (`lost`) or forgets the loss of this process's lease on `id`.
    fn lost_lease(&self, id: DocumentId, lost: bool) {
        let mut set =
            self.inner.lost_leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if lost {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// Whether this process's lease on `id` was lost.
    fn lease_is_lost(&self, id: DocumentId) -> bool {
        self.inner
            .lost_leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&id)
    }

    /// Whether this process still holds the lease on `id`, asked of the catalog now (and
    /// renewed): the heartbeat alone notices a loss only at its next beat, too late before
    /// a write that would undo the new owner's. `None` when the catalog cannot answer.
    async fn lease_state(&self, id: DocumentId) -> Option<bool> {
        if self.lease_is_lost(id) {
            return Some(false);
        }
        let lease = self.lease();
        match self.db(move |c| c.renew_lease(id, &lease)).await {
            Ok(held) => {
                if !held {
                    self.lost_lease(id, true);
                }
                Some(held)
            }
            Err(err) => {
                tracing::warn!(document_id = %id, %err, "cannot renew the lease");
                None
            }
        }
    }

    /// Goes on only while this process holds the lease on `id`: called before a write the
    /// catalog cannot fence, such as removing the document's vectors. [`Stop::LeaseLost`]
    /// when it was lost; a failure when the catalog cannot tell (nothing is removed then).
    pub(super) async fn confirm_lease(&self, id: DocumentId) -> std::result::Result<(), Stop> {
        match self.lease_state(id).await {
            Some(true) => Ok(()),
            Some(false) => Err(Stop::LeaseLost),
            None => Err(Stop::Failed("the catalog could not confirm the work lease".to_owned())),
        }
    }

    /// Runs every stage for one claimed document and records the outcome.
    async fn process_claimed(&self, id: DocumentId) {
        match self.run_stages(id).await {
            Ok(chunks) => {
                metrics::counter!(ragd_core::metric_names::INGEST_DOCUMENTS_TOTAL, "status" => "ready").increment(1);
                tracing::info!(document_id = %id, chunks, "document ready");
            }
            Err(Stop::LeaseLost) => {
                tracing::warn!(document_id = %id, "stopped: another replica took the document over");
            }
            Err(Stop::Gone) => {
                tracing::info!(document_id = %id, "document deleted while processing");
                if let Err(err) = self.delete_vectors(id).await {
                    tracing::warn!(document_id = %id, %err, "cannot remove vectors of a deleted document");
                }
            }
            Err(Stop::Failed(reason)) => {
                tracing::warn!(document_id = %id, %reason, "document failed");
                // Recorded first, under the lease: once the document is `failed` no other
                // replica claims it, so removing its content cannot undo a new owner's.
                let stored = reason.clone();
                let owner = self.inner.owner.clone();
                let recorded = self
                    .db(move |c| {
                        let progress = c.get_document(id)?.progress;
                        c.set_status_leased(
                            id,
                            &owner,
                            DocumentStatus::Failed,
                            progress,
                            Some(&stored),
                        )
                    })
                    .await;
                match recorded {
                    Ok(true) => {
                        metrics::counter!(ragd_core::metric_names::INGEST_DOCUMENTS_TOTAL, "status" => "failed").increment(1);
                    }
                    Ok(false) => {
                        tracing::warn!(document_id = %id, "failure not recorded: another replica took the document over");
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(document_id = %id, %err, "cannot record the failure");
                        return;
                    }
                }
                // Nothing of an earlier content stays searchable (a replaced or reindexed
                // document that now fails): the row and the stored file remain.
                if let Err(err) = self.db(move |c| c.clear_document_content(id)).await {
                    tracing::warn!(document_id = %id, %err, "cannot remove the chunks of a failed document");
                }
                if let Err(err) = self.delete_vectors(id).await {
                    tracing::warn!(document_id = %id, %err, "cannot remove the vectors of a failed document");
                }
            }
        }
    }

    /// Records the stage and its progress (in percent) while this process holds the
    /// lease: [`Stop::LeaseLost`] once another replica took the document over.
    pub(super) async fn set_status(
        &self,
        id: DocumentId,
        status: DocumentStatus,
        progress: u8,
    ) -> std::result::Result<(), Stop> {
        if self.lease_is_lost(id) {
            return Err(Stop::LeaseLost);
        }
        let owner = self.inner.owner.clone();
        if self.db(move |c| c.set_status_leased(id, &owner, status, progress, None)).await? {
            Ok(())
        } else {
            self.lost_lease(id, true);
            Err(Stop::LeaseLost)
        }
    }

    /// Extract, chunk, store, embed. Returns the number of chunks.
    async fn run_stages(&self, id: DocumentId) -> std::result::Result<usize, Stop> {
        // Taken at the start, so that a mark or an old diff never outlives this run.
        let reuse = self.take_reuse(id);
        let _ = self.take_diff(id);
        let document = self.db(move |c| c.get_document(id)).await?;
        // A replaced document reuses the vectors of its ready chunks; once another run
        // began (one that stalled and lost its lease), the stored chunks may be that run's,
        // whose vectors were never written or are being removed: embed everything then.
        let reuse = reuse && document.status == DocumentStatus::Queued;
        let kind = DocumentKind::from_mime(&document.mime).ok_or_else(|| {
            Stop::Failed(format!("unsupported stored media type {}", document.mime))
        })?;
        let chunker = match &self.inner.chunker {
            Ok(chunker) => Arc::clone(chunker),
            Err(reason) => return Err(Stop::Failed(format!("no chunker: {reason}"))),
        };

        self.set_status(id, DocumentStatus::Extracting, 0).await?;
        let path = self.upload_path(&document.sha256);
        if let Some(uploads) = &self.inner.uploads
            && !tokio::fs::try_exists(&path).await.unwrap_or(false)
        {
            // Received by another replica.
            uploads.get(&document.sha256, &path).await?;
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        let extracted = self.extract_guarded(id, kind, bytes).await?;
        let warnings = extracted.warnings.clone();
        self.db(move |c| c.set_warnings(id, &warnings)).await?;
        if extracted.text.trim().is_empty() {
            return Err(Stop::Failed(
                "no text could be extracted (a scanned PDF without a text layer?)".to_owned(),
            ));
        }

        self.set_status(id, DocumentStatus::Chunking, 0).await?;
        let (extracted, pieces) = self.chunk_text(id, chunker, kind, extracted).await?;
        let max_chunks = self.inner.config.max_chunks_per_document;
        if pieces.len() > max_chunks {
            return Err(Stop::Failed(format!(
                "the document has {} chunks, more than ingest.max_chunks_per_document ({max_chunks})",
                pieces.len()
            )));
        }
        let mut chunks: Vec<Chunk> = pieces.into_iter().map(|piece| piece.into_chunk(id)).collect();
        let count = chunks.len();
        // A replaced document that was ready keeps the ids, and so the vectors, of the
        // chunks whose text did not change.
        let reuse = if reuse {
            let old = self.db(move |c| c.list_chunks(id, u32::MAX, 0)).await?.items;
            Some(reuse_ids(&mut chunks, old))
        } else {
            None
        };
        let text = extracted.text;
        let stored = chunks.clone();
        let owner = self.inner.owner.clone();
        if !self.db(move |c| c.replace_chunks_leased(id, &owner, &text, &stored)).await? {
            self.lost_lease(id, true);
            return Err(Stop::LeaseLost);
        }
        metrics::counter!(ragd_core::metric_names::INGEST_CHUNKS_TOTAL).increment(count as u64);

        // The chunks this run embeds: new ids, unlike the kept ones, so they are this run's
        // alone and may be removed again without touching another run's vectors.
        let written: Vec<ChunkId> = chunks
            .iter()
            .filter(|chunk| reuse.as_ref().is_none_or(|(kept, _)| !kept.contains(&chunk.id)))
            .map(|chunk| chunk.id)
            .collect();
        let finished = self.embed_and_finish(id, &chunks, reuse).await;
        if let Err(stop) = &finished
            && !matches!(stop, Stop::Gone)
        {
            // Unless this run still owns the document, its vectors belong to chunks that
            // another replica has replaced by now (or may): they go, and only they.
            let state = self.lease_state(id).await;
            if state != Some(true)
                && let Err(err) = self.delete_chunk_vectors(id, &written).await
            {
                tracing::warn!(document_id = %id, %err, "cannot remove the vectors of a run that lost its lease");
            }
            if state == Some(false) {
                return Err(Stop::LeaseLost);
            }
        }
        finished.map(|()| count)
    }

    /// Embeds the stored chunks (only the changed ones with `reuse`: the kept ids and the
    /// removed ones) and marks the document ready.
    async fn embed_and_finish(
        &self,
        id: DocumentId,
        chunks: &[Chunk],
        reuse: Option<(HashSet<ChunkId>, Vec<ChunkId>)>,
    ) -> std::result::Result<(), Stop> {
        self.set_status(id, DocumentStatus::Embedding, 0).await?;
        match reuse {
            Some((kept, removed)) => {
                self.embed_changed(id, chunks, &kept, &removed).await?;
                let diff = ChunkDiff {
                    kept: kept.len(),
                    added: chunks.len() - kept.len(),
                    removed: removed.len(),
                };
                tracing::info!(document_id = %id, ?diff, "replaced document: unchanged chunks kept their vectors");
                self.record_diff(id, diff);
            }
            None => self.embed_chunks(id, chunks).await?,
        }

        // A delete that raced with the stages above leaves nothing to mark ready.
        self.db(move |c| c.get_document(id)).await?;
        self.set_status(id, DocumentStatus::Ready, 100).await
    }
}

impl Ingestor {
    /// Chunks on the blocking pool, recording the progress (share of the text done) every
    /// [`CHUNK_PROGRESS_EVERY`]. The work stops at its next block when the document is
    /// deleted meanwhile (`Stop::Gone`) or when this future is dropped (the runtime shutting
    /// down), instead of running on for minutes on a large text.
    async fn chunk_text(
        &self,
        id: DocumentId,
        chunker: Arc<Chunker>,
        kind: DocumentKind,
        extracted: Extracted,
    ) -> std::result::Result<(Extracted, Vec<ChunkPiece>), Stop> {
        let stop = tokio_util::sync::CancellationToken::new();
        // Cancels the work whenever this future ends, returned or dropped.
        let _cancel = stop.clone().drop_guard();
        let percent = Arc::new(AtomicU8::new(0));
        let done = Arc::clone(&percent);
        let mut work = tokio::task::spawn_blocking(move || {
            let pieces = chunker.chunk_with_progress(kind, &extracted, |bytes, total| {
                done.store(percent_of(bytes, total), Ordering::Relaxed);
                if stop.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })?;
            Ok::<_, Error>((extracted, pieces))
        });
        let mut recorded = 0;
        loop {
            tokio::select! {
                joined = &mut work => {
                    return match joined {
                        Ok(Err(Error::Cancelled)) => Err(Stop::Gone),
                        Ok(result) => Ok(result?),
                        Err(join) => Err(Error::from(join).into()),
                    };
                }
                () = tokio::time::sleep(CHUNK_PROGRESS_EVERY) => {
                    if self.lease_is_lost(id) {
                        return Err(Stop::LeaseLost);
                    }
                    let now = percent.load(Ordering::Relaxed);
                    let checked = if now == recorded {
                        self.db(move |c| c.get_document(id)).await.map(drop).map_err(Stop::from)
                    } else {
                        self.set_status(id, DocumentStatus::Chunking, now).await
                    };
                    match checked {
                        Ok(()) => recorded = now,
                        // Deleted: the drop guard on the way out stops the work.
                        Err(Stop::Gone) => return Err(Stop::Gone),
                        Err(Stop::LeaseLost) => return Err(Stop::LeaseLost),
                        // A progress report that failed (a busy database) is not the
                        // document's failure; the next one may succeed.
                        Err(Stop::Failed(reason)) => {
                            tracing::debug!(document_id = %id, %reason, "chunking progress not recorded");
                        }
                    }
                }
            }
        }
    }
}

/// `done` of `total` in whole percent, below 100 until the stage is over.
fn percent_of(done: usize, total: usize) -> u8 {
    if total == 0 {
        return 0;
    }
    let share = (done.saturating_mul(99) / total).min(99);
    u8::try_from(share).unwrap_or(99)
}

/// Gives each new chunk whose text equals an old chunk's the old chunk's id (each old id
/// once, in order). Returns the ids kept and the old ids no new chunk took.
fn reuse_ids(chunks: &mut [Chunk], old: Vec<Chunk>) -> (HashSet<ChunkId>, Vec<ChunkId>) {
    let mut by_text: HashMap<String, VecDeque<ChunkId>> = HashMap::new();
    for chunk in old {
        by_text.entry(chunk.text).or_default().push_back(chunk.id);
    }
    let mut kept = HashSet::new();
    for chunk in chunks.iter_mut() {
        if let Some(id) = by_text.get_mut(&chunk.text).and_then(VecDeque::pop_front) {
            chunk.id = id;
            kept.insert(id);
        }
    }
    let removed = by_text.into_values().flatten().collect();
    (kept, removed)
}
