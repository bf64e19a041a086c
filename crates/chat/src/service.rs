//! [`ChatService`]: the handle, and the shared state every part of the chat flow uses: the
//! parts and configuration, the per-session locks (messages of one session are serialised;
//! different sessions run concurrently), the bounded generation queue, and the catalog
//! helper `db`.
//!
//! The service's methods live in `impl ChatService` blocks by responsibility: sessions in
//! `sessions.rs`, sending a message in `turn.rs` (its module docs list the steps), document
//! retrieval and memory in `retrieval.rs`, summaries and tags in `upkeep.rs`; the background
//! half of a turn is `generation.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ragd_catalog::Catalog;
use ragd_core::SessionId;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::config::{ChatConfig, ChatParts};
use crate::error::{Error, Result};

/// The chat service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    parts: ChatParts,
    config: ChatConfig,
    locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    /// Generation slots.
    generations: Arc<Semaphore>,
    /// Sends waiting for a slot.
    waiting: AtomicUsize,
    /// Chunk summaries of `context_mode: summaries`.
    summaries: crate::condense::SummaryCache,
}

/// Decrements the waiting count when a wait ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ChatService {
    /// A service over `parts`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a configuration out of range.
    pub fn new(parts: ChatParts, config: ChatConfig) -> Result<Self> {
        config.validate()?;
        let generations = Arc::new(Semaphore::new(config.max_concurrent_generations));
        Ok(Self {
            inner: Arc::new(Inner {
                parts,
                config,
                locks: Mutex::new(HashMap::new()),
                generations,
                waiting: AtomicUsize::new(0),
                summaries: crate::condense::SummaryCache::default(),
            }),
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    /// The chunk summaries of `context_mode: summaries`.
    pub(crate) fn summaries(&self) -> &crate::condense::SummaryCache {
        &self.inner.summaries
    }

    /// The parts the service works with.
    pub(crate) fn parts(&self) -> &ChatParts {
        &self.inner.parts
    }

    /// Runs `f` on the catalog on Tokio's blocking pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        Ok(self.inner.parts.catalog.run(f).await?)
    }

    /// The session's lock, held while a message is sent and its reply stored, and while
    /// the session is deleted.
    pub(crate) async fn lock(&self, session: SessionId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget locks nobody holds or waits for, so the map does not grow forever.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(session).or_default())
        };
        lock.lock_owned().await
    }

    /// A generation slot, waiting in a bounded queue for one.
    pub(crate) async fn generation_slot(&self) -> Result<OwnedSemaphorePermit> {
        let semaphore = Arc::clone(&self.inner.generations);
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            return Ok(permit);
        }
        let before = self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner.waiting);
        if before >= self.inner.config.max_queued_generations {
            return Err(Error::Overloaded(format!(
                "{} replies are being generated and {before} are waiting; retry later",
                self.inner.config.max_concurrent_generations
            )));
        }
        semaphore
            .acquire_owned()
            .await
            .map_err(|_| Error::Task("the generation queue is closed".to_owned()))
    }
}
