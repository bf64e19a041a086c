//! Extraction within limits: the crash markers (`uploads/.extracting-<document id>`) that
//! count interrupted attempts, and extraction on a thread of its own with a deadline (or in
//! a worker process, see [`crate::isolate`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ragd_core::{DocumentId, DocumentStatus};

use super::Ingestor;
use super::stages::Stop;
use crate::detect::DocumentKind;
use crate::error::{Error, Result};
use crate::extract::{extract_with, format_name};
use crate::guard::ExtractLimits;
use crate::isolate::{Isolation, extract_in_worker, extraction_thread};

/// How often the extraction's progress is looked at (and recorded when it changed).
const EXTRACT_PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Extractions of one document interrupted by a crash before it fails instead of retrying.
const MAX_EXTRACT_ATTEMPTS: u32 = 2;

/// The prefix of extraction attempt markers in the uploads directory.
pub(super) const ATTEMPT_MARKER_PREFIX: &str = ".extracting-";

impl Ingestor {
    /// Extracts in a worker process or on a thread of its own within the configured limits
    /// and deadline, counting the attempt in a marker file so that a file that crashes the
    /// process is not retried forever (see the documentation of [`crate::pipeline`]).
    pub(super) async fn extract_guarded(
        &self,
        id: DocumentId,
        kind: DocumentKind,
        bytes: Vec<u8>,
    ) -> std::result::Result<crate::Extracted, Stop> {
        let marker = self.inner.config.uploads_dir.join(format!("{ATTEMPT_MARKER_PREFIX}{id}"));
        let attempts: u32 = tokio::fs::read_to_string(&marker)
            .await
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if attempts >= MAX_EXTRACT_ATTEMPTS {
            let _ = tokio::fs::remove_file(&marker).await;
            return Err(Stop::Failed(format!(
                "extraction was interrupted {attempts} times (the server stopped while reading \
                 this file, possibly because of it); it is not retried: reindex to try again"
            )));
        }
        tokio::fs::write(&marker, (attempts + 1).to_string())
            .await
            .map_err(|source| Error::Io { path: marker.clone(), source })?;
        let limits = ExtractLimits {
            max_extracted_bytes: self.inner.config.max_extracted_bytes,
            timeout: self.inner.config.extract_timeout,
            ocr: self.inner.config.ocr.clone(),
            pdfium: self.inner.config.pdfium.clone(),
            ..ExtractLimits::default()
        };
        let progress = Arc::clone(&limits.progress);
        let isolation = self.inner.config.isolation.clone();
        let extraction = async move {
            match isolation {
                Isolation::Thread => extract_on_thread(kind, bytes, limits).await,
                Isolation::Process(command) => {
                    extract_in_worker(&command, kind, bytes, &limits).await
                }
            }
        };
        let outcome = self.recording_progress(id, &progress, extraction).await;
        if let Err(err) = tokio::fs::remove_file(&marker).await {
            tracing::warn!(path = %marker.display(), %err, "cannot remove the extraction marker");
        }
        Ok(outcome?)
    }
}

impl Ingestor {
    /// Awaits `work`, recording `progress` as the `extracting` stage's progress whenever it
    /// changed (every [`EXTRACT_PROGRESS_EVERY`] at most).
    async fn recording_progress<T>(
        &self,
        id: DocumentId,
        progress: &AtomicU8,
        work: impl Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(EXTRACT_PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut shown = 0;
        loop {
            tokio::select! {
                outcome = &mut work => return outcome,
                _ = tick.tick() => {
                    let now = progress.load(Ordering::Relaxed);
                    if now != shown {
                        shown = now;
                        // A report that failed (a busy database) is not the extraction's
                        // failure; the next one may pass.
                        if self.set_status(id, DocumentStatus::Extracting, now).await.is_err() {
                            tracing::debug!(document_id = %id, "extraction progress not recorded");
                        }
                    }
                }
            }
        }
    }
}

/// Runs [`extract_with`] on a new thread with a large stack and waits at most
/// `limits.timeout`; on time-out the cancel flag is set and the thread abandoned.
async fn extract_on_thread(
    kind: DocumentKind,
    bytes: Vec<u8>,
    limits: ExtractLimits,
) -> Result<crate::Extracted> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let timeout = limits.timeout;
    let cancel = Arc::clone(&limits.cancel);
    extraction_thread()
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                extract_with(kind, &bytes, &limits)
            }))
            .unwrap_or_else(|_| {
                Err(Error::Extraction {
                    format: format_name(kind),
                    reason: "the parser panicked on malformed input".to_owned(),
                })
            });
            if tx.send(result).is_err() {
                tracing::warn!(elapsed = ?started.elapsed(), "an abandoned extraction finished");
            }
        })
        .map_err(|source| Error::Spawn {
            what: "cannot start an extraction thread".to_owned(),
            source,
        })?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::Task("the extraction thread stopped without an answer".into())),
        Err(_) => {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(?timeout, "extraction timed out; its thread is abandoned");
            Err(Error::Extraction {
                format: format_name(kind),
                reason: format!(
                    "extraction took longer than {} s (ingest.extract_timeout_secs); the file \
                     may be crafted to make the parser loop",
                    timeout.as_secs_f64()
                ),
            })
        }
    }
}
