//! The queue: [`Ingestor::recover`] re-queues what a previous process left unfinished and
//! clears the files it left behind; `enqueue` runs a document's stages on a task once one of
//! the `workers` permits is free, and a shared queue's claim loop does the same for the
//! documents it claims, both keeping the queue depth gauge current.

use std::sync::atomic::Ordering;

use ragd_catalog::UNFINISHED;
use ragd_core::DocumentId;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::extraction::ATTEMPT_MARKER_PREFIX;
use super::receive::PARTIAL_UPLOAD_PREFIX;
use super::{Ingestor, QueueMode};
use crate::error::Result;

impl Ingestor {
    /// Re-queues documents a previous process left unfinished (crash or kill mid-way) and
    /// returns how many. Call once at start-up, inside a Tokio runtime.
    ///
    /// With a shared queue ([`QueueMode::Shared`]) it re-queues nothing itself: it starts
    /// the claim loop, which takes over every document whose lease is free or expired, as
    /// the other replicas' loops do; it returns 0.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn recover(&self) -> Result<usize> {
        if let QueueMode::Shared { poll } = self.inner.config.queue {
            self.remove_stale_files(&[]).await;
            tokio::spawn(self.clone().claim_loop(poll));
            return Ok(0);
        }
        // This process owns the catalog: every lease in it is a dead process's.
        let cleared = self.db(|c| c.clear_leases()).await?;
        if cleared > 0 {
            tracing::info!(cleared, "cleared the work leases of the previous run");
        }
        let unfinished = self.db(|c| c.documents_with_status(&UNFINISHED)).await?;
        let keep: Vec<String> = unfinished
            .iter()
            .map(|document| format!("{ATTEMPT_MARKER_PREFIX}{}", document.id))
            .collect();
        self.remove_stale_files(&keep).await;
        for document in &unfinished {
            tracing::info!(document_id = %document.id, status = ?document.status, "resuming unfinished document");
            self.enqueue(document.id);
        }
        Ok(unfinished.len())
    }

    /// Removes `uploads/.upload-*` files (uploads cut off by a crash: none can be in flight
    /// before [`Ingestor::recover`] has run) and attempt markers other than `keep` (those of
    /// documents no longer unfinished).
    async fn remove_stale_files(&self, keep: &[String]) {
        let dir = &self.inner.config.uploads_dir;
        let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name.starts_with(PARTIAL_UPLOAD_PREFIX)
                || (name.starts_with(ATTEMPT_MARKER_PREFIX) && !keep.contains(&name));
            if stale {
                let path = entry.path();
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed a file left by a stopped process");
                    }
                    Err(err) => {
                        tracing::warn!(path = %path.display(), %err, "cannot remove a stale file");
                    }
                }
            }
        }
    }

    /// A shared queue's loop: whenever a worker is free, claims the oldest claimable
    /// document (received by any replica, or left by a dead one) and processes it; when
    /// there is none, looks again after `poll`.
    async fn claim_loop(self, poll: std::time::Duration) {
        tracing::info!(owner = %self.inner.owner, ?poll, "claiming work from the shared queue");
        loop {
            let Ok(permit) = self.inner.workers.clone().acquire_owned().await else { return };
            let lease = self.lease();
            match self.db(move |c| c.claim_document(&lease, None)).await {
                Ok(Some(document)) => {
                    tracing::info!(document_id = %document.id, status = ?document.status, "claimed a document from the shared queue");
                    self.spawn_process(document.id, Some(permit));
                }
                Ok(None) => {
                    drop(permit);
                    tokio::time::sleep(poll).await;
                }
                Err(err) => {
                    drop(permit);
                    tracing::warn!(%err, "cannot claim from the shared queue");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// Queues a document: a task waits for a worker permit, then claims the document and
    /// runs its stages.
    pub(super) fn enqueue(&self, id: DocumentId) {
        self.spawn_process(id, None);
    }

    /// Counts `id` in the queue depth and processes it on a task: at once with `claimed`,
    /// the worker permit of a claim the caller already made, else after waiting for a
    /// permit and claiming the document.
    fn spawn_process(&self, id: DocumentId, claimed: Option<OwnedSemaphorePermit>) {
        let depth = self.inner.queued.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(ragd_core::metric_names::INGEST_QUEUE_DEPTH).set(depth as f64);
        let this = self.clone();
        let work = async move {
            match claimed {
                Some(permit) => {
                    this.process(id, true).await;
                    drop(permit);
                }
                None => {
                    if let Ok(permit) = this.inner.workers.clone().acquire_owned().await {
                        this.process(id, false).await;
                        drop(permit);
                    }
                }
            }
            let depth = this.inner.queued.fetch_sub(1, Ordering::Relaxed) - 1;
            metrics::gauge!(ragd_core::metric_names::INGEST_QUEUE_DEPTH).set(depth as f64);
        };
        tokio::spawn(work.instrument(tracing::info_span!("ingest.process", document_id = %id)));
    }
}
