//! [`Engine`]: the one start-up sequence, and the services it hands out.
//!
//! The sequence, the same for the server, every CLI verb and a program embedding ragd:
//!
//! 1. check the configuration and create the data directory;
//! 2. open the SQLite catalog (migrating it);
//! 3. load the embedder: the one given to the builder, or the ONNX Runtime embedder with
//!    its files from the assets, a path or the Hugging Face hub;
//! 4. open the vector store: the one given, or LanceDB with its tables stamped with the
//!    *loaded* embedder's model id and dimension (a table built by another model is refused);
//! 5. remove vectors whose chunk or message no longer exists ([`VectorStore::retain`]);
//! 6. build the documents, search (with the reranker `rerank.model` names), model and chat
//!    services;
//! 7. resume or fail documents a previous run left unfinished;
//! 8. start loading the chat model (`models.autoload`) in the background.
//!
//! Steps 5 and 7 change the data directory; a read-only program that may run next to a
//! server skips them ([`EngineBuilder::recover`]).
//!
//! An embedder or store that cannot be had does not stop the engine: uploads and semantic
//! search then answer `Unavailable` with the reason, and [`Engine::health`] says why.

use ragd_llm_backends::import::Quantization;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragd_catalog::Catalog;
use ragd_chat::{ChatParts, ChatService, ModelProvider};
use ragd_core::{Embedder, GenerationSettings, LlmBackend, Reranker, TableName, VectorStore};
use ragd_ingest::{IngestParts, Ingestor};
use ragd_llm_backends::manager::{BackendKind, LoadRequest, LoadState, ModelManager};
use ragd_search::{RerankStage, Searcher, SearcherParts};
use ragd_telemetry::SystemMonitor;
use tokio::sync::watch;

use crate::config::EngineConfig;
use crate::defaults;
use crate::error::{Error, Result};
use crate::health::{Component, Health};
use crate::index::{self, Index, IndexStatus, IndexSwitch, StartError};

/// The engine: every service over one data directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    started_at: Instant,
    catalog: Catalog,
    documents: Ingestor,
    search: Searcher,
    models: ModelManager,
    chat: ChatService,
    embedder: Option<Arc<dyn Embedder>>,
    embedder_description: Option<String>,
    vectors: Option<Arc<dyn ragd_core::Vectors>>,
    index: Option<Arc<Index>>,
    /// The lock on `<data_dir>/ragd.lock` while this engine owns the data directory.
    owner_lock: Option<std::fs::File>,
    monitor: Option<SystemMonitor>,
    health: watch::Sender<Health>,
}

/// The configured embedder and the vector spaces opened for it: used together or not at
/// all.
struct Vectors {
    embedder: Arc<dyn Embedder>,
    /// The embedder for status reports.
    description: String,
    opened: crate::index::Opened,
    /// Whether the spaces are generations of the default store.
    rebuildable: bool,
}

/// Builds an [`Engine`] with some backends of the caller's choosing; the rest are the
/// defaults [`Engine::open`] uses.
#[derive(Debug)]
pub struct EngineBuilder {
    config: EngineConfig,
    embedder: Option<Arc<dyn Embedder>>,
    store: Option<Arc<dyn VectorStore>>,
    llm: Option<Arc<dyn LlmBackend>>,
    reranker: Option<Arc<dyn Reranker>>,
    autoload: bool,
    system_monitor: bool,
    recover: bool,
    rebuild_index: bool,
}

impl EngineBuilder {
    /// Embeds with `embedder` instead of loading the ONNX model.
    #[must_use]
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Stores vectors in `store` instead of LanceDB under the data directory.
    #[must_use]
    pub fn vector_store(mut self, store: Arc<dyn VectorStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Answers with `llm` (installed in the model manager, kind `custom`) instead of the
    /// model `models.autoload` names; `POST`-style loads can still replace it later.
    #[must_use]
    pub fn llm(mut self, llm: Arc<dyn LlmBackend>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// Reranks hybrid candidates with `reranker` instead of the model `rerank.model` names
    /// (`rerank.by_default` and `rerank.candidates` still apply).
    #[must_use]
    pub fn reranker(mut self, reranker: Arc<dyn Reranker>) -> Self {
        self.reranker = Some(reranker);
        self
    }

    /// Whether step 8 (loading the `models.autoload` chat model) runs; on by default. A
    /// program that never chats (the `ingest` and `search` verbs) turns it off.
    #[must_use]
    pub fn autoload_model(mut self, autoload: bool) -> Self {
        self.autoload = autoload;
        self
    }

    /// Whether steps 5 and 7 (removing orphan vectors; removing partial uploads and
    /// resuming unfinished documents) run; on by default. A read-only program that may run
    /// next to a server on the same data directory (the `search` and `eval` verbs) turns
    /// it off, so it never deletes an upload the server is receiving or processes a
    /// document the server is processing.
    ///
    /// Recovery also needs the data directory to itself: the engine that recovers holds a
    /// lock on `<data_dir>/ragd.lock` while it lives, and another engine opened meanwhile
    /// with recovery on (a CLI verb next to a server) skips recovery and rebuilds, with a
    /// warning; [`Engine::owns_data_dir`] says which one it is.
    #[must_use]
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Whether this engine starts or resumes re-embedding the vector index when the
    /// configured embedding model differs from the index's (and drops leftover
    /// generations); on by default, and only with [`EngineBuilder::recover`]. One process
    /// per data directory should build: the `ragd` verbs other than `serve` and `reembed`
    /// turn it off and use the generation in force.
    #[must_use]
    pub fn rebuild_index(mut self, rebuild: bool) -> Self {
        self.rebuild_index = rebuild;
        self
    }

    /// Whether the background system sampler runs (for [`Engine::monitor`]); on by default.
    #[must_use]
    pub fn system_monitor(mut self, on: bool) -> Self {
        self.system_monitor = on;
        self
    }

    /// Runs the start-up sequence (see the module docs).
    ///
    /// # Errors
    /// When the configuration is inconsistent, the data directory or the catalog cannot be
    /// set up, or recovery fails.
    pub async fn build(self) -> Result<Engine> {
        let config = self.config;
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| Error::DataDir { path: config.data_dir.clone(), source })?;
        // The engine that recovers owns the data directory for its lifetime; another one
        // that would recover meanwhile (a CLI verb next to a server) runs as a guest, without
        // recovery or rebuilds, so it never takes over the owner's unfinished work.
        let owner_lock = if self.recover { own_data_dir(&config.data_dir)? } else { None };
        let recover = owner_lock.is_some();
        let rebuild_index = self.rebuild_index && recover;

        // 2. The catalog: a shared Postgres when configured, else SQLite in the data dir.
        let catalog = match config.catalog.url.clone() {
            Some(url) => {
                tokio::task::spawn_blocking(move || Catalog::connect_postgres(&url)).await??
            }
            None => {
                let catalog_path = config.data_dir.join("ragd.sqlite3");
                tokio::task::spawn_blocking(move || Catalog::open(&catalog_path)).await??
            }
        };

        // 3. The embedder, with its description for status reports.
        let own_embedder = self.embedder.is_none();
        let embedder = match self.embedder {
            Some(embedder) => {
                let description = embedder.model_id().to_owned();
                Ok((embedder, description))
            }
            None => defaults::default_embedder(&config, defaults::EmbedderUse::Serving).await,
        };

        // 4. The vector spaces: a store given to the builder holds the embedder's vectors;
        // the default store keeps one generation of tables per embedding model, opens the
        // one queries use with the model it was built with, and finds the rebuild to run
        // when the configured model is another.
        let opened = match (embedder, self.store) {
            (Ok((embedder, description)), Some(store)) => {
                let space = crate::index::GenerationSpace {
                    generation: 0,
                    model_id: embedder.model_id().to_owned(),
                    dimensions: embedder.dimensions(),
                    space: ragd_core::VectorSpace::new(Arc::clone(&embedder), store),
                };
                Ok(Vectors {
                    embedder,
                    description,
                    opened: crate::index::Opened {
                        switch: IndexSwitch::new(Some(space)),
                        build: None,
                        reason: None,
                        unserved: None,
                    },
                    rebuildable: false,
                })
            }
            (Ok((embedder, description)), None) => crate::index::open(
                &config,
                &catalog,
                &embedder,
                &description,
                recover,
                rebuild_index,
            )
            .await
            .map(|opened| Vectors { embedder, description, opened, rebuildable: true }),
            (Err(reason), _) => Err(reason),
        };
        if let Err(reason) = &opened {
            tracing::warn!("document uploads and semantic search are disabled: {reason}");
        }
        let (embedder, embedder_description, switch, build, query_reason, rebuildable, unserved) =
            match opened {
                Ok(v) => (
                    Some(v.embedder),
                    Some(v.description),
                    Some(Arc::new(v.opened.switch)),
                    v.opened.build,
                    v.opened.reason,
                    v.rebuildable,
                    v.opened.unserved,
                ),
                Err(reason) => (None, None, None, None, Some(reason), false, None),
            };
        let vectors: Option<Arc<dyn ragd_core::Vectors>> =
            switch.clone().map(|s| s as Arc<dyn ragd_core::Vectors>);

        // 5. Orphan vectors, before any worker writes vectors.
        if let Some(store) = switch.as_deref().and_then(index::active_store).filter(|_| recover) {
            let removed = remove_orphan_vectors(&catalog, store.as_ref()).await;
            if removed > 0 {
                tracing::info!(removed, "removed vectors whose chunk or message no longer exists");
            }
        }

        // 6. The services.
        // The chunker counts tokens through the configured embedder: one source for the
        // count, and chunks sized for the model the index is (re)built with.
        let chunker = match (&embedder, &query_reason, &switch) {
            (Some(embedder), _, Some(_)) => defaults::chunker(&config, Arc::clone(embedder)),
            (_, Some(reason), _) => Err(reason.clone()),
            (_, None, _) => Err("no embedding model is loaded".to_owned()),
        };
        let documents_reason = chunker.as_ref().err().cloned();
        let documents = Ingestor::new(
            IngestParts {
                catalog: catalog.clone(),
                chunker,
                vectors: vectors.clone(),
                uploads: defaults::upload_store(&config)?,
            },
            defaults::ingest_config(&config),
        )?;
        let reranker = match self.reranker {
            Some(reranker) => Some(reranker),
            None => defaults::default_reranker(&config).await.unwrap_or_else(|reason| {
                tracing::warn!(%reason, model = %config.rerank.model, "no reranker: searches that ask for reranking fail");
                None
            }),
        };
        let search =
            Searcher::new(SearcherParts { catalog: catalog.clone(), vectors: vectors.clone() })
                .with_rerank(reranker.map(|reranker| RerankStage {
                    reranker,
                    candidates: config.rerank.candidates,
                    by_default: config.rerank.by_default,
                }));
        let models = defaults::model_manager(&config);
        let chat = ChatService::new(
            ChatParts {
                catalog: catalog.clone(),
                searcher: Some(search.clone()),
                vectors: vectors.clone(),
                models: Arc::new(ManagedModel(models.clone())),
            },
            config.chat.clone(),
        )?;
        let index = switch.as_ref().map(|switch| {
            Index::new(
                config.clone(),
                catalog.clone(),
                Arc::clone(switch),
                embedder.clone(),
                rebuildable,
                own_embedder,
                unserved,
            )
        });

        // 7. Documents left unfinished.
        let resumed = if recover { documents.recover().await? } else { 0 };
        if resumed > 0 {
            tracing::info!(resumed, "resumed documents left unfinished by the previous run");
        }

        // 8. The chat model.
        match self.llm {
            Some(llm) => {
                models.install(llm).map_err(Error::Model)?;
            }
            None if self.autoload => autoload(&config, &models),
            None => {}
        }

        let monitor = if self.system_monitor {
            SystemMonitor::start(defaults::monitor_config(&config))
                .inspect_err(|err| tracing::warn!(%err, "system status is unavailable"))
                .ok()
        } else {
            None
        };

        let mut components = vec![Component::available("catalog", "SQLite")];
        match (&embedder_description, &query_reason) {
            (Some(description), None) => components.extend([
                Component::available("embedder", description),
                Component::available("vector_store", &config.vector_store_uri()),
            ]),
            (Some(description), Some(reason)) => components.extend([
                Component::available("embedder", description),
                Component::unavailable("vector_store", reason),
            ]),
            (None, reason) => {
                let reason = reason.as_deref().unwrap_or("no embedding model is loaded");
                components.extend([
                    Component::unavailable("embedder", reason),
                    Component::unavailable("vector_store", reason),
                ]);
            }
        }
        components.push(match &documents_reason {
            None => Component::available("documents", "uploads accepted"),
            Some(reason) => Component::unavailable("documents", reason),
        });
        // The engine keeps the sender, so watchers stay subscribed for later changes.
        let (health, _) = watch::channel(Health::from_components(components));
        if let Some(index) = &index {
            index.report_to(health.clone());
            if let Some(build) = build {
                index.spawn_build(build);
            }
        }

        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                started_at: Instant::now(),
                catalog,
                documents,
                search,
                models,
                chat,
                embedder,
                embedder_description,
                vectors,
                index,
                owner_lock,
                monitor,
                health,
            }),
        })
    }
}

impl Engine {
    /// Opens the engine with the default backends (ONNX Runtime embedder, LanceDB store,
    /// SQLite catalog, model manager with llama.cpp) under `config.data_dir`.
    ///
    /// # Errors
    /// As [`EngineBuilder::build`].
    pub async fn open(config: EngineConfig) -> Result<Self> {
        Self::builder(config).build().await
    }

    /// A builder to swap backends before opening.
    #[must_use]
    pub fn builder(config: EngineConfig) -> EngineBuilder {
        EngineBuilder {
            config,
            embedder: None,
            store: None,
            llm: None,
            reranker: None,
            autoload: true,
            system_monitor: true,
            recover: true,
            rebuild_index: true,
        }
    }

    /// The configuration the engine opened with.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// When the engine finished opening.
    #[must_use]
    pub fn started_at(&self) -> Instant {
        self.inner.started_at
    }

    /// Documents: uploads, the ingest pipeline, reads.
    #[must_use]
    pub fn documents(&self) -> &Ingestor {
        &self.inner.documents
    }

    /// Keyword, semantic and hybrid search.
    #[must_use]
    pub fn search(&self) -> &Searcher {
        &self.inner.search
    }

    /// Chat sessions.
    #[must_use]
    pub fn chat(&self) -> &ChatService {
        &self.inner.chat
    }

    /// Chat models: load status, the loaded backend, generation settings.
    #[must_use]
    pub fn models(&self) -> &ModelManager {
        &self.inner.models
    }

    /// The catalog (documents, chunks, sessions, messages).
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The embedder, when it loaded.
    #[must_use]
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.inner.embedder.as_ref()
    }

    /// The embedder for status reports: its model id and, for the ONNX embedder, the
    /// execution provider.
    #[must_use]
    pub fn embedder_description(&self) -> Option<&str> {
        self.inner.embedder_description.as_deref()
    }

    /// Whether this engine owns its data directory (it recovered it and may rebuild the
    /// index), or is a guest next to the engine that does.
    #[must_use]
    pub fn owns_data_dir(&self) -> bool {
        self.inner.owner_lock.is_some()
    }

    /// The vector spaces queries and writes use, when the embedder and store opened.
    #[must_use]
    pub fn vectors(&self) -> Option<&Arc<dyn ragd_core::Vectors>> {
        self.inner.vectors.as_ref()
    }

    /// The vector index: the generation queries use, the re-embed in progress, the last
    /// one finished.
    ///
    /// # Errors
    /// `Unavailable` when no embedder or store opened.
    pub fn index_status(&self) -> ragd_core::Result<IndexStatus> {
        self.index().map(|index| index.status())
    }

    /// Re-embeds the index with the configured embedding model in the background (see
    /// the `index` module docs), and returns the status with the rebuild started.
    ///
    /// # Errors
    /// `Conflict` while a re-embed runs, `Unavailable` when there is no embedder or the
    /// store was given to the builder.
    pub async fn reembed(&self) -> ragd_core::Result<IndexStatus> {
        match self.index()?.start_reembed().await {
            Ok(status) => Ok(status),
            Err(StartError::Running(reason)) => Err(ragd_core::Error::new(
                ragd_core::ErrorKind::Conflict,
                format!("a re-embed is already running: {reason}"),
            )),
            Err(StartError::Unavailable(reason)) => Err(ragd_core::Error::unavailable(reason)),
        }
    }

    fn index(&self) -> ragd_core::Result<&Arc<Index>> {
        self.inner.index.as_ref().ok_or_else(|| {
            ragd_core::Error::unavailable("no embedding model or vector store is loaded")
        })
    }

    /// The background system sampler; `None` when turned off or the platform reports nothing.
    #[must_use]
    pub fn monitor(&self) -> Option<&SystemMonitor> {
        self.inner.monitor.as_ref()
    }

    /// The components' health, as a watch channel (`borrow()` for now, `changed()` to wait).
    #[must_use]
    pub fn health(&self) -> watch::Receiver<Health> {
        self.inner.health.subscribe()
    }

    /// Waits until the chat model has loaded, at most `timeout`.
    ///
    /// # Errors
    /// `Unavailable` with the reason when the load failed or nothing is loading, `Timeout`
    /// when it takes longer.
    pub async fn wait_for_model(&self, timeout: Duration) -> ragd_core::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.models().status();
            match status.state {
                LoadState::Loaded => return Ok(()),
                LoadState::Failed { reason } => {
                    return Err(ragd_core::Error::unavailable(format!(
                        "the chat model failed to load: {reason}"
                    )));
                }
                LoadState::NotLoaded => {
                    return Err(ragd_core::Error::unavailable("no chat model is loaded"));
                }
                LoadState::Loading
                | LoadState::Downloading { .. }
                | LoadState::Converting { .. }
                | LoadState::Quantizing { .. }
                | LoadState::Unloading => {}
            }
            if Instant::now() >= deadline {
                return Err(ragd_core::Error::new(
                    ragd_core::ErrorKind::Timeout,
                    format!("the chat model did not load within {} s", timeout.as_secs()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Chat answers with whatever model the manager has loaded, with the settings in force.
#[derive(Debug, Clone)]
struct ManagedModel(ModelManager);

impl ModelProvider for ManagedModel {
    fn backend(&self) -> Option<Arc<dyn LlmBackend>> {
        self.0.backend()
    }

    fn settings(&self) -> GenerationSettings {
        self.0.settings()
    }
}

/// Takes the lock on `<data_dir>/ragd.lock`: the file when this engine now owns the data
/// directory, `None` when another process (or engine) holds it.
fn own_data_dir(data_dir: &std::path::Path) -> Result<Option<std::fs::File>> {
    let path = data_dir.join("ragd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::DataDir { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(
                path = %path.display(),
                "another ragd process owns this data directory; this one skips recovery and \
                 index rebuilds"
            );
            Ok(None)
        }
        Err(std::fs::TryLockError::Error(source)) => Err(Error::DataDir { path, source }),
    }
}

/// Removes vectors whose chunk or message no longer exists in the catalog, as a crash
/// between the catalog delete and the vector delete can leave them. Returns how many went;
/// failures are logged, not fatal.
async fn remove_orphan_vectors(catalog: &Catalog, store: &dyn VectorStore) -> u64 {
    let ids = catalog.run(|c| Ok((c.all_chunk_ids()?, c.all_message_ids()?))).await;
    let (chunks, messages): (HashSet<_>, HashSet<_>) = match ids {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(%err, "cannot list catalog ids; orphan vectors are kept");
            return 0;
        }
    };
    let mut removed = 0;
    for (table, keep) in [(TableName::Chunks, &chunks), (TableName::Memory, &messages)] {
        match store.retain(table, keep).await {
            Ok(count) => removed += count,
            Err(err) => tracing::warn!(%err, table = table.as_str(), "orphan removal failed"),
        }
    }
    removed
}

/// Starts loading `models.autoload` in the background (`bundled`: the bundled SmolLM2 when
/// its file is there; `none`: nothing).
fn autoload(config: &EngineConfig, models: &ModelManager) {
    let model = match config.models.autoload.as_str() {
        "none" | "" => return,
        "bundled" => {
            let path: PathBuf = config.bundled_chat_model();
            if !path.is_file() {
                tracing::info!(path = %path.display(), "bundled chat model not present; none loaded at start");
                return;
            }
            path.to_string_lossy().into_owned()
        }
        other => other.to_owned(),
    };
    let request = LoadRequest {
        backend: BackendKind::Local,
        model,
        hub: None,
        base_url: None,
        api_key: None,
        context_length: config.models.context_length,
        gpu_layers: 0,
        quantization: Quantization::None,
        settings: None,
    };
    if let Err(err) = models.load(request) {
        tracing::warn!(%err, "cannot start loading the chat model");
    }
}
