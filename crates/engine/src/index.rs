//! The vector index across embedding models: [`IndexSwitch`] hands out the spaces queries
//! and writes use, and a re-embed builds the index of a new model beside the one in service
//! and swaps to it.
//!
//! Each embedding model's vectors live in their own generation of tables (recorded in the
//! catalog's `vector_generations`). A re-embed:
//!
//! 1. records a `building` generation for the configured model and installs its space as a
//!    second write target, so from then on every upload and every remembered exchange is
//!    embedded with both models;
//! 2. embeds every chunk of the catalog, and every exchange the old `memory` table holds,
//!    that the new tables lack (so a rebuild interrupted by a crash resumes where it was);
//! 3. takes the write lock (writes in flight finish first, new ones wait), embeds what
//!    appeared meanwhile, drops vectors whose chunk or exchange went away, and activates the
//!    new generation in one catalog transaction; then queries use the new space;
//! 4. drops the old generation's tables once no query holds them (or after 10 s).
//!
//! One rebuild runs at a time per process; only a process that may build (the server, `ragd
//! reembed`) starts or resumes one, the others use the active generation.
//!
//! Queries take one space for the whole query (embedding and search), so a query never
//! compares vectors of two models; a half-built generation is never active, because only
//! step 3 activates one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ragd_catalog::{Catalog, GenerationState};
use ragd_core::{
    ChunkId, MessageId, TableName, VectorSpace, VectorStore, Vectors, WriteSpaces,
    write_chunk_vectors, write_memory_vectors,
};
use serde::Serialize;
use uuid::Uuid;

use crate::config::EngineConfig;
use crate::defaults;

/// Texts embedded per batch by a rebuild.
const BUILD_BATCH: usize = 64;
/// How long the swap waits for queries still holding the old tables before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One generation's space.
#[derive(Debug, Clone)]
pub(crate) struct GenerationSpace {
    pub(crate) generation: u32,
    pub(crate) model_id: String,
    pub(crate) dimensions: usize,
    pub(crate) space: VectorSpace,
}

impl GenerationSpace {
    fn info(&self) -> GenerationInfo {
        GenerationInfo {
            generation: self.generation,
            model_id: self.model_id.clone(),
            dimensions: self.dimensions,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Spaces {
    active: Option<GenerationSpace>,
    building: Option<GenerationSpace>,
}

/// The engine's [`Vectors`]: the active space, and during a rebuild the one being built.
#[derive(Debug, Default)]
pub(crate) struct IndexSwitch {
    spaces: RwLock<Spaces>,
    /// Writers hold it shared for each write; installing or swapping a space holds it
    /// exclusively, so no write is split across a change.
    writes: Arc<tokio::sync::RwLock<()>>,
}

impl IndexSwitch {
    pub(crate) fn new(active: Option<GenerationSpace>) -> Self {
        Self { spaces: RwLock::new(Spaces { active, building: None }), ..Self::default() }
    }

    fn spaces(&self) -> Spaces {
        self.spaces.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Spaces)) {
        f(&mut self.spaces.write().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn active(&self) -> Option<GenerationSpace> {
        self.spaces().active
    }
}

#[async_trait]
impl Vectors for IndexSwitch {
    async fn query_space(&self) -> Option<VectorSpace> {
        self.spaces().active.map(|active| active.space)
    }

    async fn write_spaces(&self) -> WriteSpaces {
        let hold = Arc::clone(&self.writes).read_owned().await;
        let spaces = self.spaces();
        let list = spaces.active.into_iter().chain(spaces.building).map(|g| g.space).collect();
        WriteSpaces::new(list, Some(Box::new(hold)))
    }
}

/// A generation of the index, as status reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationInfo {
    /// Its number (its tables are named after it).
    pub generation: u32,
    /// The embedding model whose vectors it holds.
    pub model_id: String,
    /// Their length.
    pub dimensions: usize,
}

/// Where a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildPhase {
    /// Embedding document chunks.
    Chunks,
    /// Embedding remembered exchanges.
    Memory,
    /// Embedding what arrived meanwhile and swapping.
    Swapping,
}

/// A rebuild in progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildProgress {
    /// The generation being built.
    #[serde(flatten)]
    pub target: GenerationInfo,
    /// Where it is.
    pub phase: BuildPhase,
    /// Chunks and exchanges in the new tables.
    pub done: u64,
    /// Chunks and exchanges to be in them.
    pub total: u64,
    /// `done` of `total`, 0 to 100.
    pub percent: u8,
    /// Seconds since it started.
    pub elapsed_secs: f64,
}

/// A finished rebuild.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildReport {
    /// The generation built, now active.
    #[serde(flatten)]
    pub target: GenerationInfo,
    /// Chunks embedded by this run (a resumed run counts only its own).
    pub chunks: u64,
    /// Exchanges embedded by this run.
    pub memories: u64,
    /// How long it took.
    pub seconds: f64,
    /// `chunks` per second.
    pub chunks_per_second: f64,
}

/// The state of the vector index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexStatus {
    /// The generation queries use; `None` when no embedder or store is loaded for it.
    pub active: Option<GenerationInfo>,
    /// The configured embedding model, which the index is built with.
    pub configured_model: Option<String>,
    /// The rebuild in progress.
    pub building: Option<BuildProgress>,
    /// The last rebuild this process finished.
    pub last_build: Option<BuildReport>,
    /// Why the last rebuild stopped, when it failed (it resumes at the next start or
    /// re-embed).
    pub error: Option<String>,
    /// Whether a rebuild task runs: from its start until the old tables are dropped (a
    /// little after the swap); another re-embed is refused meanwhile.
    pub running: bool,
}

/// The index and its rebuilds. Cheap to share.
#[derive(Debug)]
pub(crate) struct Index {
    config: EngineConfig,
    catalog: Catalog,
    switch: Arc<IndexSwitch>,
    /// The configured embedder: what a rebuild embeds with.
    target: Option<Arc<dyn ragd_core::Embedder>>,
    /// Whether the spaces are generations of the default store (a store given to the
    /// engine builder cannot be rebuilt).
    rebuildable: bool,
    /// Whether a rebuild task runs (until it dropped the old tables).
    running: AtomicBool,
    /// Whether the configured embedder is the engine's own (loaded from the configuration),
    /// so a rebuild may load another instance of it.
    own_embedder: bool,
    status: Mutex<IndexStatus>,
    /// The active generation's store when its model could not be loaded: it cannot answer
    /// queries, but a rebuild reads which exchanges it remembers.
    unserved: Mutex<Option<Arc<dyn VectorStore>>>,
    /// The engine's health, told when a swap makes the vector store available.
    health: std::sync::OnceLock<tokio::sync::watch::Sender<crate::health::Health>>,
}

/// Why a re-embed cannot start.
#[derive(Debug)]
pub(crate) enum StartError {
    /// One is running.
    Running(String),
    /// No embedder or store for it.
    Unavailable(String),
}

impl Index {
    pub(crate) fn new(
        config: EngineConfig,
        catalog: Catalog,
        switch: Arc<IndexSwitch>,
        target: Option<Arc<dyn ragd_core::Embedder>>,
        rebuildable: bool,
        own_embedder: bool,
        unserved: Option<Arc<dyn VectorStore>>,
    ) -> Arc<Self> {
        let configured_model = target.as_ref().map(|e| e.model_id().to_owned());
        Arc::new(Self {
            config,
            catalog,
            switch,
            target,
            rebuildable,
            running: AtomicBool::new(false),
            own_embedder,
            status: Mutex::new(IndexStatus {
                active: None,
                configured_model,
                building: None,
                last_build: None,
                error: None,
                running: false,
            }),
            unserved: Mutex::new(unserved),
            health: std::sync::OnceLock::new(),
        })
    }

    /// Tells `health` when a rebuild makes the vector store available.
    pub(crate) fn report_to(&self, health: tokio::sync::watch::Sender<crate::health::Health>) {
        let _ = self.health.set(health);
    }

    pub(crate) fn status(&self) -> IndexStatus {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner).clone();
        // What the switch and the task say now, not a copy that could lag behind them.
        status.active = self.switch.active().map(|a| a.info());
        status.running = self.running.load(Ordering::Acquire);
        status
    }

    fn set_status(&self, f: impl FnOnce(&mut IndexStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Starts a rebuild with the configured model in the background.
    pub(crate) async fn start_reembed(self: &Arc<Self>) -> Result<IndexStatus, StartError> {
        if !self.rebuildable {
            return Err(StartError::Unavailable(
                "the vector store given to the engine builder cannot be rebuilt".to_owned(),
            ));
        }
        let Some(target) = self.target.clone() else {
            return Err(StartError::Unavailable("no embedding model is loaded".to_owned()));
        };
        // One rebuild at a time in this process, until its old tables are dropped.
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(StartError::Running("a re-embed is in progress".to_owned()));
        }
        let started = self.claim_generation(target.as_ref()).await;
        let started = match started {
            Ok(started) => started,
            Err(err) => {
                self.running.store(false, Ordering::Release);
                return Err(err);
            }
        };
        let store = defaults::generation_store(
            &self.config,
            &started.model_id,
            started.dimensions,
            started.generation,
        )
        .await;
        let store = match store {
            Ok(store) => store,
            Err(reason) => {
                self.running.store(false, Ordering::Release);
                return Err(StartError::Unavailable(reason));
            }
        };
        let space = GenerationSpace {
            generation: started.generation,
            model_id: started.model_id,
            dimensions: started.dimensions,
            space: VectorSpace::new(target, store),
        };
        self.spawn_build(space);
        Ok(self.status())
    }

    /// The generation a re-embed with `target` fills: one a failed or interrupted run left
    /// `building` for the same model (resumed), else a new one (a leftover for another
    /// model is dropped first).
    async fn claim_generation(
        &self,
        target: &dyn ragd_core::Embedder,
    ) -> Result<ragd_catalog::VectorGeneration, StartError> {
        let unavailable = |err: ragd_catalog::Error| StartError::Unavailable(err.to_string());
        let (model, dimensions) = (target.model_id().to_owned(), target.dimensions());
        let recorded =
            self.catalog.run(|catalog| catalog.vector_generations()).await.map_err(unavailable)?;
        if let Some(leftover) = recorded.iter().find(|g| g.state == GenerationState::Building) {
            if leftover.model_id == model && leftover.dimensions == dimensions {
                return Ok(leftover.clone());
            }
            self.drop_generation(leftover.generation).await;
        }
        self.catalog.run(move |c| c.start_generation(&model, dimensions)).await.map_err(|err| {
            if matches!(err, ragd_catalog::Error::InUse { .. }) {
                StartError::Running(err.to_string())
            } else {
                StartError::Unavailable(err.to_string())
            }
        })
    }

    /// Runs the rebuild of `target` in the background.
    pub(crate) fn spawn_build(self: &Arc<Self>, target: GenerationSpace) {
        self.running.store(true, Ordering::Release);
        let index = Arc::clone(self);
        self.set_status(|s| {
            s.building = Some(BuildProgress {
                target: target.info(),
                phase: BuildPhase::Chunks,
                done: 0,
                total: 0,
                percent: 0,
                elapsed_secs: 0.0,
            });
            s.error = None;
        });
        tokio::spawn(async move {
            let generation = target.generation;
            match index.build(target).await {
                Ok(report) => {
                    tracing::info!(
                        generation,
                        chunks = report.chunks,
                        memories = report.memories,
                        seconds = report.seconds,
                        "re-embedded the vector index"
                    );
                }
                Err(reason) => {
                    tracing::error!(generation, %reason, "re-embedding the vector index failed; it resumes at the next start or re-embed");
                    index.switch.update(|s| s.building = None);
                    index.set_status(|s| {
                        s.building = None;
                        s.error = Some(reason);
                    });
                }
            }
            index.running.store(false, Ordering::Release);
        });
    }

    async fn build(&self, target: GenerationSpace) -> Result<BuildReport, String> {
        let started = Instant::now();
        let embedder = self.build_embedder(&target).await;
        // 1. From now on every write goes to both spaces.
        {
            let _exclusive = self.switch.writes.write().await;
            self.switch.update(|s| s.building = Some(target.clone()));
        }
        tracing::info!(generation = target.generation, model = %target.model_id, "re-embedding the vector index");

        // 2. What the new tables lack.
        let (all_chunks, missing_chunks) = self.missing_chunks(&target).await?;
        let (old_memory, missing_memories) = self.missing_memories(&target).await?;
        let total = (all_chunks.len() + old_memory.len()) as u64;
        let mut done = total - (missing_chunks.len() + missing_memories.len()) as u64;
        let progress = |phase, done: u64| {
            self.set_status(|s| {
                if let Some(b) = &mut s.building {
                    b.phase = phase;
                    b.done = done;
                    b.total = total;
                    b.percent = percent(done, total);
                    b.elapsed_secs = started.elapsed().as_secs_f64();
                }
            });
        };
        progress(BuildPhase::Chunks, done);
        let mut chunks = 0;
        for batch in missing_chunks.chunks(BUILD_BATCH) {
            let embedded = self.embed_chunks(&target, embedder.as_ref(), batch).await?;
            chunks += embedded;
            done += batch.len() as u64;
            progress(BuildPhase::Chunks, done);
        }
        progress(BuildPhase::Memory, done);
        let mut memories = 0;
        for batch in missing_memories.chunks(BUILD_BATCH) {
            memories += self.embed_memories(&target, embedder.as_ref(), batch).await?;
            done += batch.len() as u64;
            progress(BuildPhase::Memory, done);
        }

        // 3. Catch up and swap, with writes held off. A first catch-up without the lock
        // leaves little for the pass under it.
        progress(BuildPhase::Swapping, done);
        let (_, missing) = self.missing_chunks(&target).await?;
        for batch in missing.chunks(BUILD_BATCH) {
            chunks += self.embed_chunks(&target, embedder.as_ref(), batch).await?;
        }
        let exclusive = self.switch.writes.write().await;
        let (all_chunks, missing) = self.missing_chunks(&target).await?;
        for batch in missing.chunks(BUILD_BATCH) {
            chunks += self.embed_chunks(&target, embedder.as_ref(), batch).await?;
        }
        let (_, missing) = self.missing_memories(&target).await?;
        for batch in missing.chunks(BUILD_BATCH) {
            memories += self.embed_memories(&target, embedder.as_ref(), batch).await?;
        }
        // Vectors of chunks and exchanges deleted while the rebuild ran (exchanges
        // remembered meanwhile are in the catalog and stay).
        let keep_memory = self.db(|catalog| catalog.all_message_ids()).await?;
        let store = &target.space.store;
        store.retain(TableName::Chunks, &all_chunks).await.map_err(|e| e.to_string())?;
        store.retain(TableName::Memory, &keep_memory).await.map_err(|e| e.to_string())?;
        let generation = target.generation;
        let retired = self.db(move |c| c.activate_generation(generation)).await?;
        let mut old = None;
        self.switch.update(|s| {
            old = s.active.take();
            s.active = s.building.take();
        });
        self.unserved.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(exclusive);
        tracing::info!(generation, model = %target.model_id, "the re-embedded index is in use");
        if let Some(health) = self.health.get() {
            let detail = self.config.vector_store_uri();
            health.send_modify(|h| {
                *h = h.clone().with(crate::health::Component::available("vector_store", &detail));
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        let report = BuildReport {
            target: target.info(),
            chunks,
            memories,
            seconds,
            chunks_per_second: if seconds > 0.0 { chunks as f64 / seconds } else { 0.0 },
        };
        self.set_status(|s| {
            s.building = None;
            s.last_build = Some(report.clone());
        });

        // 4. The old tables, once no query holds them.
        if let Some(old) = old {
            let deadline = Instant::now() + DRAIN_TIMEOUT;
            while Arc::strong_count(&old.space.store) > 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(old);
        }
        if let Some(retired) = retired {
            self.drop_generation(retired).await;
        }
        Ok(report)
    }

    /// What the rebuild embeds with: the configured model loaded once more with half the
    /// cores (at least one) and its inference thread at the lowest CPU priority, so searches
    /// served meanwhile keep the other half and preempt it on the rest; the writers'
    /// instance when the model was given to the engine builder or cannot load twice.
    async fn build_embedder(&self, target: &GenerationSpace) -> Arc<dyn ragd_core::Embedder> {
        let shared = Arc::clone(&target.space.embedder);
        if !self.own_embedder {
            return shared;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut config = self.config.clone();
        config.embedding.intra_op_threads = Some((cores / 2).max(1));
        match defaults::default_embedder(&config, defaults::EmbedderUse::Rebuild).await {
            Ok((embedder, _)) if embedder.model_id() == target.model_id => embedder,
            Ok(_) => shared,
            Err(reason) => {
                tracing::warn!(%reason, "the re-embed uses the shared embedder");
                shared
            }
        }
    }

    /// Drops a generation's tables and forgets it (see [`drop_generation`]).
    async fn drop_generation(&self, generation: u32) {
        drop_generation(&self.config, &self.catalog, generation).await;
    }

    /// Every chunk of the catalog, and those `target` has no vector for.
    async fn missing_chunks(
        &self,
        target: &GenerationSpace,
    ) -> Result<(HashSet<Uuid>, Vec<Uuid>), String> {
        let all = self.db(|catalog| catalog.all_chunk_ids()).await?;
        let have = ids(target, TableName::Chunks).await?;
        let missing = all.difference(&have).copied().collect();
        Ok((all, missing))
    }

    /// Every exchange the active memory table remembers, and those `target` lacks.
    async fn missing_memories(
        &self,
        target: &GenerationSpace,
    ) -> Result<(HashSet<Uuid>, Vec<Uuid>), String> {
        let remembered = self.old_memory_ids().await?;
        let have = ids(target, TableName::Memory).await?;
        let missing = remembered.difference(&have).copied().collect();
        Ok((remembered, missing))
    }

    /// The active generation's store, served or not.
    fn old_store(&self) -> Option<Arc<dyn VectorStore>> {
        self.switch
            .active()
            .map(|active| active.space.store)
            .or_else(|| self.unserved.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// The exchanges the active memory table remembers (none without an active store).
    async fn old_memory_ids(&self) -> Result<HashSet<Uuid>, String> {
        match self.old_store() {
            Some(store) => store.ids(TableName::Memory).await.map_err(|e| e.to_string()),
            None => Ok(HashSet::new()),
        }
    }

    /// Embeds the chunks with these ids (those still in the catalog) into `target`.
    async fn embed_chunks(
        &self,
        target: &GenerationSpace,
        embedder: &dyn ragd_core::Embedder,
        batch: &[Uuid],
    ) -> Result<u64, String> {
        let ids: Vec<ChunkId> = batch.iter().map(|id| ChunkId::from_uuid(*id)).collect();
        let chunks = self.db(move |c| c.get_chunks(&ids)).await?;
        write_chunk_vectors(embedder, target.space.store.as_ref(), &chunks)
            .await
            .map_err(|e| e.to_string())
    }

    /// Embeds the exchanges whose answers have these ids into `target`'s memory.
    async fn embed_memories(
        &self,
        target: &GenerationSpace,
        embedder: &dyn ragd_core::Embedder,
        batch: &[Uuid],
    ) -> Result<u64, String> {
        let ids: Vec<MessageId> = batch.iter().map(|id| MessageId::from_uuid(*id)).collect();
        let exchanges = self.db(move |c| ragd_chat::exchanges(c, &ids)).await?;
        let entries = exchanges
            .into_iter()
            .map(|(question, answer)| {
                let text = ragd_chat::memory_text(&question.content, &answer.content);
                (*answer.id.as_uuid(), answer.session_id, text)
            })
            .collect();
        write_memory_vectors(embedder, target.space.store.as_ref(), entries)
            .await
            .map_err(|e| e.to_string())
    }

    async fn db<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        self.catalog.run(f).await.map_err(|err| err.to_string())
    }
}

/// The ids in `space`'s `table`.
async fn ids(space: &GenerationSpace, table: TableName) -> Result<HashSet<Uuid>, String> {
    space.space.store.ids(table).await.map_err(|e| e.to_string())
}

fn percent(done: u64, total: u64) -> u8 {
    (done.min(total) * 100).checked_div(total).map_or(100, |p| u8::try_from(p).unwrap_or(100))
}

/// What the start-up found and set up: the switch with the active space, and the
/// generation to build, if any.
pub(crate) struct Opened {
    pub(crate) switch: IndexSwitch,
    pub(crate) build: Option<GenerationSpace>,
    /// Why queries have no space, when they have none.
    pub(crate) reason: Option<String>,
    /// The active generation's store when its model cannot be loaded.
    pub(crate) unserved: Option<Arc<dyn VectorStore>>,
}

/// Opens the generations for `target` (the configured embedder): the active one with the
/// model it was built with (recording generation 0 for an older data directory when
/// `recover` is on), and, when `rebuild` is on, the rebuild to run (a new one when
/// the configured model differs from the active one's, or the one a previous run left
/// unfinished); leftover generations are dropped.
pub(crate) async fn open(
    config: &EngineConfig,
    catalog: &Catalog,
    target: &Arc<dyn ragd_core::Embedder>,
    target_description: &str,
    recover: bool,
    rebuild: bool,
) -> Result<Opened, String> {
    let db_err = |err: ragd_catalog::Error| err.to_string();
    let (model, dimensions) = (target.model_id().to_owned(), target.dimensions());
    // A data directory from before generations: its tables are generation 0, built with
    // the model their metadata records.
    let recorded = catalog.run(|catalog| catalog.vector_generations()).await.map_err(db_err)?;
    let active = if let Some(active) = recorded.iter().find(|g| g.state == GenerationState::Active)
    {
        active.clone()
    } else {
        let (m, d) = defaults::recorded_model(config, 0)
            .await?
            .unwrap_or_else(|| (model.clone(), dimensions));
        if recover {
            catalog.run(move |c| c.ensure_active_generation(0, &m, d)).await.map_err(db_err)?
        } else {
            // A read-only start-up records nothing.
            let now = chrono::Utc::now();
            ragd_catalog::VectorGeneration {
                generation: 0,
                model_id: m,
                dimensions: d,
                state: GenerationState::Active,
                created_at: now,
                updated_at: now,
            }
        }
    };
    let same = |m: &str, d: usize| m == model && d == dimensions;

    // The active space: the configured embedder when the index was built with it, else the
    // model it was built with, to keep serving it while it is rebuilt.
    let active_embedder = if same(&active.model_id, active.dimensions) {
        Ok(Arc::clone(target))
    } else {
        tracing::warn!(
            index_model = %active.model_id,
            configured = %target_description,
            "the vector index was built with another embedding model than the configured one"
        );
        defaults::embedder_for(config, &active.model_id, active.dimensions).await.map(|(e, _)| e)
    };
    let store =
        defaults::generation_store(config, &active.model_id, active.dimensions, active.generation)
            .await?;
    let (active_space, reason, unserved) = match active_embedder {
        Ok(embedder) => {
            let space = GenerationSpace {
                generation: active.generation,
                model_id: active.model_id.clone(),
                dimensions: active.dimensions,
                space: VectorSpace::new(embedder, store),
            };
            (Some(space), None, None)
        }
        Err(why) => {
            let reason = format!(
                "the index was built with {} which cannot be loaded ({why}); semantic search \
                 is back once the re-embed with {model} finishes",
                active.model_id
            );
            tracing::warn!("{reason}");
            (None, Some(reason), Some(store))
        }
    };

    let mut build = None;
    if rebuild {
        for generation in &recorded {
            let leftover = match generation.state {
                GenerationState::Retired => true,
                GenerationState::Building => !same(&generation.model_id, generation.dimensions),
                GenerationState::Active => false,
            };
            if leftover {
                drop_generation(config, catalog, generation.generation).await;
            }
        }
        let building = recorded
            .iter()
            .find(|g| g.state == GenerationState::Building && same(&g.model_id, g.dimensions));
        let building = match building {
            Some(resumed) => {
                tracing::info!(generation = resumed.generation, model = %resumed.model_id, "resuming the re-embed a previous run left unfinished");
                Some(resumed.clone())
            }
            None if !same(&active.model_id, active.dimensions) => {
                let (m, d) = (model.clone(), dimensions);
                Some(catalog.run(move |c| c.start_generation(&m, d)).await.map_err(db_err)?)
            }
            None => None,
        };
        if let Some(building) = building {
            let store = defaults::generation_store(
                config,
                &building.model_id,
                building.dimensions,
                building.generation,
            )
            .await?;
            build = Some(GenerationSpace {
                generation: building.generation,
                model_id: building.model_id,
                dimensions: building.dimensions,
                space: VectorSpace::new(Arc::clone(target), store),
            });
        }
    }
    // The space being built takes writes from the start, before the rebuild task runs: with
    // no active space (its model cannot load) writes would otherwise go nowhere.
    let switch = IndexSwitch::new(active_space);
    switch.update(|s| s.building.clone_from(&build));
    Ok(Opened { switch, build, reason, unserved })
}

/// Drops a retired or abandoned generation's tables and forgets it; failures are logged
/// (the next start tries again).
async fn drop_generation(config: &EngineConfig, catalog: &Catalog, generation: u32) {
    match defaults::drop_generation(config, generation).await {
        Ok(()) => {
            if let Err(err) = catalog.run(move |c| c.forget_generation(generation)).await {
                tracing::warn!(generation, %err, "cannot forget a dropped vector generation");
            } else {
                tracing::info!(generation, "dropped a vector generation");
            }
        }
        Err(err) => {
            tracing::warn!(generation, %err, "cannot drop a vector generation; retried at the next start");
        }
    }
}

/// The store queries use now, for status reports and orphan removal.
pub(crate) fn active_store(switch: &IndexSwitch) -> Option<Arc<dyn VectorStore>> {
    switch.active().map(|a| a.space.store)
}
