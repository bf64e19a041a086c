//! [`ChatService`]: sessions, and the flow of one message from prompt to stored reply.
//!
//! Sending a message, in order, while holding the session's lock (messages of one session
//! are serialised; different sessions run concurrently):
//!
//! 1. store the user message: from here on it is durable, whatever happens next;
//! 2. take the loaded model (none: [`Error::NoModel`], HTTP 503);
//! 3. retrieve context: hybrid search over the session's documents (all documents when
//!    it names none), and long-term memory: earlier exchanges of this session (or of every
//!    session, on request) recalled by vector similarity;
//! 4. fit system prompt, summary, documents, memory and recent history into the model's
//!    window ([`crate::prompt`]); when history had to be left out and is not yet covered by
//!    the session summary, ask the model to extend the summary first;
//! 5. start generation. Failures up to here are returned as errors, so HTTP can answer
//!    with a status code. From here a background task streams tokens as [`ChatEvent`]s,
//!    then stores the assistant message with its metadata (model, settings, token counts,
//!    timings, cited chunks, recalled memories), embeds the exchange into the `memory`
//!    table and refreshes the automatic tags.
//!
//! A reader that goes away stops generation between two tokens; what was generated is kept
//! as the reply, marked `cancelled`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use ragd_catalog::{
    Catalog, MAX_MESSAGE_BYTES, NewMessage, NewSession, Page, SessionQuery, SessionUpdate,
};
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, DeleteRequest, EmbeddedRecord,
    Embedder, ErrorKind, FinishReason, GenerationSettings, LlmBackend, Message, MessageId,
    SearchRequest, Session, SessionId, SettingsPatch, TableName, TokenUsage, VectorFilter,
    VectorStore,
};
use ragd_search::{HybridOptions, SearchQuery, Searcher};
use serde::Serialize;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::error::{Error, Result};
use crate::metadata::{PromptInfo, ReplyMetadata, Timings};
use crate::prompt::{self, BudgetConfig, ContextChunk, PromptParts, Recollection};
use crate::tagging::{self, TaggingMode};
use crate::template::ChatTemplate;

/// Gives the chat service the model to answer with and the settings in force.
///
/// The `ragd` binary implements it over its model manager; embedders of the crate can use
/// [`FixedModel`].
pub trait ModelProvider: Send + Sync + fmt::Debug + 'static {
    /// The loaded model, if any.
    fn backend(&self) -> Option<Arc<dyn LlmBackend>>;
    /// The generation settings in force.
    fn settings(&self) -> GenerationSettings;
}

/// A [`ModelProvider`] with one fixed backend and settings.
#[derive(Debug, Clone)]
pub struct FixedModel {
    /// The backend, or `None` for "no model loaded".
    pub backend: Option<Arc<dyn LlmBackend>>,
    /// The settings.
    pub settings: GenerationSettings,
}

impl ModelProvider for FixedModel {
    fn backend(&self) -> Option<Arc<dyn LlmBackend>> {
        self.backend.clone()
    }

    fn settings(&self) -> GenerationSettings {
        self.settings.clone()
    }
}

/// How the chat service behaves. Deserialises from a table where every key is optional
/// (missing keys keep these defaults) and unknown keys are refused, so a program can nest it
/// in its own configuration, as the `ragd` binary does under `[chat]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Instructions at the top of every prompt.
    pub system_prompt: String,
    /// Document chunks retrieved per message (0: no retrieval).
    pub top_k: usize,
    /// Earlier exchanges recalled per message (0: no memory recall).
    pub memory_top_k: usize,
    /// The most recent messages considered for the prompt's history.
    pub history_messages: u32,
    /// Share of the flexible prompt budget documents may take.
    pub documents_share: f32,
    /// Share of the flexible prompt budget memory may take.
    pub memory_share: f32,
    /// Tokens kept free for template differences.
    pub margin_tokens: usize,
    /// Summarise history that no longer fits.
    pub summarize: bool,
    /// The longest summary, in tokens.
    pub summary_max_tokens: u32,
    /// How tags are derived.
    pub tagging: TaggingMode,
    /// Tags are refreshed after the first exchange and then every this many exchanges.
    pub tag_every: u32,
    /// The most automatic tags per session.
    pub max_auto_tags: usize,
    /// Replies generated at the same time, over all sessions.
    pub max_concurrent_generations: usize,
    /// Replies that may wait for a generation slot; more are refused as `Overloaded`.
    pub max_queued_generations: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are a helpful assistant. Answer using the context documents when \
                            they are relevant and cite them as [1], [2]. If they do not contain \
                            the answer, say so."
                .to_owned(),
            top_k: 4,
            memory_top_k: 3,
            history_messages: 40,
            documents_share: 0.5,
            memory_share: 0.15,
            margin_tokens: 32,
            summarize: true,
            summary_max_tokens: 160,
            tagging: TaggingMode::Keywords,
            tag_every: 5,
            max_auto_tags: 5,
            max_concurrent_generations: 2,
            max_queued_generations: 16,
        }
    }
}

/// What the chat service works with. Retrieval and memory need the embedder and store;
/// without them chat still works, with keyword retrieval only and no memory.
#[derive(Debug, Clone)]
pub struct ChatParts {
    /// Sessions and messages.
    pub catalog: Catalog,
    /// Document retrieval.
    pub searcher: Option<Searcher>,
    /// Embeds exchanges and recall queries.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Holds the `memory` table.
    pub store: Option<Arc<dyn VectorStore>>,
    /// The model to answer with.
    pub models: Arc<dyn ModelProvider>,
}

/// A new session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateSession {
    /// Its name; default "New session".
    pub name: Option<String>,
    /// Documents retrieval is restricted to (empty: all documents).
    pub document_ids: Vec<ragd_core::DocumentId>,
    /// The model; default: the loaded one.
    pub model: Option<String>,
    /// User tags.
    pub tags: Vec<String>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendMessage {
    /// The text.
    pub content: String,
    /// Document chunks to retrieve (default: the configured `top_k`).
    pub top_k: Option<usize>,
    /// Recall exchanges of every session, not only this one.
    pub memory_all_sessions: bool,
    /// Changes to the settings in force, for this reply only; checked like the settings
    /// in force (a value out of range refuses the message before it is stored).
    pub settings: Option<SettingsPatch>,
}

impl SendMessage {
    /// `content` with the defaults: configured `top_k`, this session's memory, the
    /// settings in force.
    #[must_use]
    pub fn new(content: impl Into<String>) -> Self {
        Self { content: content.into(), top_k: None, memory_all_sessions: false, settings: None }
    }
}

/// A source the reply was given.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Citation {
    /// The number the prompt gave it (`[1]`, `[2]`, ...).
    pub number: usize,
    /// The chunk; fetch it by id for its text.
    pub chunk_id: ragd_core::ChunkId,
    /// Its document.
    pub document_id: ragd_core::DocumentId,
    /// The document's file name.
    pub filename: String,
    /// The page, when the format has pages.
    pub page: Option<u32>,
}

/// A stored reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The user message it answers.
    pub user_message: Message,
    /// The stored assistant message.
    pub assistant_message: Message,
    /// The chunks the prompt contained.
    pub citations: Vec<Citation>,
    /// Earlier exchanges the prompt contained.
    pub recalled: Vec<Recollection>,
    /// Token counts.
    pub usage: TokenUsage,
    /// Why generation stopped (`None` when the reader went away first).
    pub finish_reason: Option<FinishReason>,
}

/// What a streamed reply produces, in order: [`ChatEvent::Token`]s, then one
/// [`ChatEvent::Done`] or [`ChatEvent::Failed`].
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// Generated text.
    Token(String),
    /// The reply was stored.
    Done(Box<Reply>),
    /// Generation failed after it had started; the user message is stored.
    Failed {
        /// The error's classification.
        kind: ErrorKind,
        /// What went wrong.
        message: String,
    },
}

/// A reply being generated.
#[derive(Debug)]
pub struct ChatTurn {
    /// The stored user message.
    pub user_message: Message,
    /// The chunks the prompt contains.
    pub citations: Vec<Citation>,
    /// Earlier exchanges the prompt contains.
    pub recalled: Vec<Recollection>,
    events: mpsc::Receiver<ChatEvent>,
}

impl ChatTurn {
    /// The next event; `None` after the last.
    pub async fn next_event(&mut self) -> Option<ChatEvent> {
        self.events.recv().await
    }

    /// Waits for the stored reply.
    ///
    /// # Errors
    /// [`Error::Generation`] when generation failed after it had started.
    pub async fn finish(mut self) -> Result<Reply> {
        while let Some(event) = self.events.recv().await {
            match event {
                ChatEvent::Token(_) => {}
                ChatEvent::Done(reply) => return Ok(*reply),
                ChatEvent::Failed { kind, message } => {
                    return Err(Error::Generation(ragd_core::Error::new(kind, message)));
                }
            }
        }
        Err(Error::Task("the generation task ended without a reply".to_owned()))
    }
}

/// An earlier exchange found by [`ChatService::search_memory`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryHit {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The exchange.
    #[serde(flatten)]
    pub exchange: Recollection,
}

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
}

/// Decrements the waiting count when a wait ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Events buffered between the generation task and a slow reader.
const EVENT_BUFFER: usize = 64;

/// Messages summarised per summarisation call at most.
const SUMMARY_BATCH: u32 = 200;

impl ChatService {
    /// A service over `parts`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a configuration out of range.
    pub fn new(parts: ChatParts, config: ChatConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.documents_share)
            || !(0.0..=1.0).contains(&config.memory_share)
            || config.documents_share + config.memory_share > 1.0
        {
            return Err(Error::InvalidInput(
                "documents_share and memory_share must be in [0, 1] and sum to at most 1"
                    .to_owned(),
            ));
        }
        if config.top_k > ragd_search::MAX_TOP_K {
            return Err(Error::InvalidInput(format!(
                "top_k must be at most {}",
                ragd_search::MAX_TOP_K
            )));
        }
        if config.max_concurrent_generations == 0 {
            return Err(Error::InvalidInput(
                "max_concurrent_generations must be at least 1".to_owned(),
            ));
        }
        let generations = Arc::new(Semaphore::new(config.max_concurrent_generations));
        Ok(Self {
            inner: Arc::new(Inner {
                parts,
                config,
                locks: Mutex::new(HashMap::new()),
                generations,
                waiting: AtomicUsize::new(0),
            }),
        })
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    async fn db<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> ragd_catalog::Result<T> + Send + 'static,
    {
        Ok(self.inner.parts.catalog.run(f).await?)
    }

    async fn lock(&self, session: SessionId) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget locks nobody holds or waits for, so the map does not grow forever.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(session).or_default())
        };
        lock.lock_owned().await
    }

    /// A generation slot, waiting in a bounded queue for one.
    async fn generation_slot(&self) -> Result<OwnedSemaphorePermit> {
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

    /// Creates a session.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name or tag, `NotFound` for an unknown document.
    pub async fn create_session(&self, request: CreateSession) -> Result<Session> {
        let model = request
            .model
            .or_else(|| self.inner.parts.models.backend().map(|b| b.model_id().to_owned()));
        let new = NewSession {
            id: SessionId::new(),
            name: request.name.unwrap_or_else(|| "New session".to_owned()),
            model,
            document_ids: request.document_ids,
            tags: request.tags,
        };
        let session = self.db(move |c| c.create_session(new)).await?;
        tracing::info!(session = %session.id, "created session");
        Ok(session)
    }

    /// One session.
    ///
    /// # Errors
    /// `NotFound` for an unknown session.
    pub async fn session(&self, id: SessionId) -> Result<Session> {
        self.db(move |c| c.get_session(id)).await
    }

    /// Sessions by last activity, filtered.
    ///
    /// # Errors
    /// `InvalidInput` for a search text without words.
    pub async fn sessions(&self, query: SessionQuery) -> Result<Page<Session>> {
        self.db(move |c| c.list_sessions(&query)).await
    }

    /// Renames, re-targets or re-tags a session.
    ///
    /// # Errors
    /// `NotFound` for an unknown session or document, `InvalidInput` for bad values.
    pub async fn update_session(&self, id: SessionId, update: SessionUpdate) -> Result<Session> {
        self.db(move |c| c.update_session(id, &update)).await
    }

    /// Deletes a session: its memory vectors, then its messages, tags and links. Waits for
    /// a reply in progress to be stored first.
    ///
    /// # Errors
    /// `NotFound` for an unknown session; store failures (the session is then kept, so the
    /// delete can be retried without leaving vectors behind).
    pub async fn delete_session(&self, id: SessionId) -> Result<()> {
        let _guard = self.lock(id).await;
        self.session(id).await?;
        if let Some(store) = &self.inner.parts.store {
            let filter = VectorFilter { document_ids: Vec::new(), session_ids: vec![id] };
            let removed = store.delete(DeleteRequest { table: TableName::Memory, filter }).await?;
            tracing::debug!(session = %id, removed, "deleted memory vectors");
        }
        if !self.db(move |c| c.delete_session(id)).await? {
            return Err(Error::Catalog(ragd_catalog::Error::NotFound {
                what: "session",
                id: id.to_string(),
            }));
        }
        tracing::info!(session = %id, "deleted session");
        Ok(())
    }

    /// A page of a session's messages, oldest first.
    ///
    /// # Errors
    /// `NotFound` for an unknown session.
    pub async fn messages(&self, id: SessionId, limit: u32, offset: u32) -> Result<Page<Message>> {
        self.db(move |c| c.list_messages(id, limit, offset)).await
    }

    /// Earlier exchanges of the session most similar to `query`.
    ///
    /// # Errors
    /// `NotFound` for an unknown session, `Unavailable` without an embedder or store,
    /// `InvalidInput` for an empty query.
    pub async fn search_memory(
        &self,
        id: SessionId,
        query: &str,
        top_k: usize,
    ) -> Result<Vec<MemoryHit>> {
        if query.trim().is_empty() {
            return Err(Error::InvalidInput("the query is empty".to_owned()));
        }
        if top_k == 0 || top_k > ragd_search::MAX_TOP_K {
            return Err(Error::InvalidInput(format!(
                "top_k must be between 1 and {}",
                ragd_search::MAX_TOP_K
            )));
        }
        self.session(id).await?;
        if self.inner.parts.embedder.is_none() || self.inner.parts.store.is_none() {
            return Err(Error::Core(ragd_core::Error::unavailable(
                "no embedding model or vector store is loaded",
            )));
        }
        Ok(self
            .recall(query, Some(id), top_k, &[])
            .await?
            .into_iter()
            .map(|(session_id, exchange)| MemoryHit { session_id, exchange })
            .collect())
    }

    /// Sends a message and starts the reply; see the module docs for the steps.
    ///
    /// # Errors
    /// `NotFound` for an unknown session; `InvalidInput` for an empty or huge message or
    /// generation settings out of range;
    /// [`Error::NoModel`] when no model is loaded; `ContextTooLong` when the message does not
    /// fit the window; backend errors before the first token. The user message is stored
    /// before any of the errors after validation.
    pub async fn send(&self, id: SessionId, request: SendMessage) -> Result<ChatTurn> {
        let content = request.content.trim().to_owned();
        if content.is_empty() {
            return Err(Error::InvalidInput("the message is empty".to_owned()));
        }
        if content.len() > MAX_MESSAGE_BYTES {
            return Err(Error::InvalidInput(format!(
                "a message may be at most {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        let top_k = request.top_k.unwrap_or(self.inner.config.top_k);
        if top_k > ragd_search::MAX_TOP_K {
            return Err(Error::InvalidInput(format!(
                "top_k must be at most {}",
                ragd_search::MAX_TOP_K
            )));
        }
        // Out-of-range settings refuse the message before it is stored. Those in force
        // were checked when they were set, and are checked again here for providers that
        // do not check.
        let settings = match &request.settings {
            Some(patch) => self.inner.parts.models.settings().apply(patch)?,
            None => {
                let settings = self.inner.parts.models.settings();
                settings.validate()?;
                settings
            }
        };
        let guard = self.lock(id).await;
        // A full queue refuses before anything is stored: the client simply retries.
        let slot = self.generation_slot().await?;
        let started = Instant::now();

        // 1. The user message is durable before anything can fail.
        let user_message = self
            .db({
                let content = content.clone();
                move |c| {
                    c.append_message(NewMessage {
                        id: MessageId::new(),
                        session_id: id,
                        role: ChatRole::User,
                        content,
                        model: None,
                        metadata: json!({}),
                    })
                }
            })
            .await?;

        // 2. The model.
        let backend = self.inner.parts.models.backend().ok_or(Error::NoModel)?;
        let session = self.session(id).await?;

        // 3. Context.
        let documents = self.retrieve(&content, top_k, &session).await;
        let memory_scope = (!request.memory_all_sessions).then_some(id);
        // The user message just stored is the newest (the session lock is held): read one
        // more than the window and leave it out.
        let read = self.inner.config.history_messages.saturating_add(1);
        let history: Vec<Message> = self
            .db(move |c| c.recent_messages(id, read))
            .await?
            .into_iter()
            .filter(|m| m.id != user_message.id)
            .collect();
        let in_history: Vec<MessageId> = history.iter().map(|m| m.id).collect();
        let recalled = match self
            .recall(&content, memory_scope, self.inner.config.memory_top_k, &in_history)
            .await
        {
            Ok(recalled) => recalled.into_iter().map(|(_, r)| r).collect(),
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "memory recall failed; answering without it");
                Vec::new()
            }
        };
        let retrieval_ms = elapsed_ms(started);

        // 4. The prompt.
        let template = ChatTemplate::new(backend.chat_template());
        let counter = {
            let backend = Arc::clone(&backend);
            move |text: &str| backend.count_tokens(text).map_err(Error::from)
        };
        let budget = BudgetConfig {
            context_length: backend.context_length(),
            max_new_tokens: settings.max_new_tokens,
            margin: self.inner.config.margin_tokens,
            documents_share: self.inner.config.documents_share,
            memory_share: self.inner.config.memory_share,
        };
        let chat_history: Vec<ChatMessage> = history
            .iter()
            .map(|m| ChatMessage { role: m.role, content: m.content.clone() })
            .collect();
        let fit = |summary: Option<&str>| {
            let parts = PromptParts {
                system_prompt: &self.inner.config.system_prompt,
                summary,
                documents: &documents,
                memories: &recalled,
                history: &chat_history,
                user: &content,
            };
            prompt::build(&parts, &budget, &template, &counter)
        };
        let mut prompt = fit(session.summary.as_deref())?;
        let first_kept = history.len() - prompt.history_used;
        if self.inner.config.summarize
            && let Some(oldest_kept) = history.get(first_kept).or(Some(&user_message))
        {
            let dropped_unsummarised = self
                .db({
                    let (after, before) = (session.summary_through, oldest_kept.id);
                    move |c| c.messages_between(id, after, before, SUMMARY_BATCH)
                })
                .await?;
            if !dropped_unsummarised.is_empty() {
                match self.summarise(&backend, &session, &dropped_unsummarised, &template).await {
                    Ok(summary) => prompt = fit(Some(&summary))?,
                    Err(err) => {
                        tracing::warn!(session = %id, error = %err, "summarising old history failed; answering without it");
                    }
                }
            }
        }

        let citations: Vec<Citation> = documents[..prompt.documents_used]
            .iter()
            .enumerate()
            .map(|(index, d)| Citation {
                number: index + 1,
                chunk_id: d.chunk_id,
                document_id: d.document_id,
                filename: d.filename.clone(),
                page: d.page,
            })
            .collect();
        let recalled: Vec<Recollection> = recalled[..prompt.memories_used].to_vec();
        let prompt_info = PromptInfo {
            prompt_tokens_estimate: prompt.prompt_tokens,
            budget_tokens: prompt.available,
            documents: prompt.documents_used,
            memories: prompt.memories_used,
            history_messages: prompt.history_used,
            summary: prompt.summary_used,
        };

        // 5. Generation.
        let stream = backend
            .stream(CompletionRequest { messages: prompt.messages, settings: settings.clone() })
            .await?;
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let task = GenerationTask {
            service: self.clone(),
            session: id,
            user_message: user_message.clone(),
            backend,
            settings,
            citations: citations.clone(),
            recalled: recalled.clone(),
            prompt_info,
            retrieval_ms,
            started,
        };
        tokio::spawn(task.run(stream, events, (guard, slot)));
        Ok(ChatTurn { user_message, citations, recalled, events: receiver })
    }

    /// Hybrid search over the session's documents; semantic or keyword alone when only one
    /// side is available, nothing when neither is (logged, not an error: the model can
    /// still answer).
    async fn retrieve(&self, query: &str, top_k: usize, session: &Session) -> Vec<ContextChunk> {
        let Some(searcher) = &self.inner.parts.searcher else { return Vec::new() };
        if top_k == 0 {
            return Vec::new();
        }
        let query = SearchQuery {
            text: query.to_owned(),
            top_k,
            document_ids: session.document_ids.clone(),
        };
        let hits = match searcher.hybrid(&query, HybridOptions::default()).await {
            Ok(hits) => hits,
            Err(err) if err.kind() == ErrorKind::Unavailable => {
                searcher.keyword(&query).await.unwrap_or_default()
            }
            Err(err) => {
                tracing::warn!(session = %session.id, error = %err, "retrieval failed; answering without documents");
                Vec::new()
            }
        };
        hits.into_iter()
            .map(|hit| ContextChunk {
                chunk_id: hit.chunk.id,
                document_id: hit.chunk.document_id,
                filename: hit.filename,
                page: hit.chunk.page,
                text: hit.chunk.text,
            })
            .collect()
    }

    /// Earlier exchanges most similar to `query`, skipping those in `exclude`.
    async fn recall(
        &self,
        query: &str,
        session: Option<SessionId>,
        top_k: usize,
        exclude: &[MessageId],
    ) -> Result<Vec<(SessionId, Recollection)>> {
        let (Some(embedder), Some(store)) = (&self.inner.parts.embedder, &self.inner.parts.store)
        else {
            return Ok(Vec::new());
        };
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let vector = embedder.embed_query(query.to_owned()).await?;
        let filter =
            VectorFilter { document_ids: Vec::new(), session_ids: session.into_iter().collect() };
        let found = store
            .search(SearchRequest {
                table: TableName::Memory,
                vector,
                top_k: top_k + exclude.len(),
                filter,
            })
            .await?;
        let scored: Vec<(MessageId, f32)> = found
            .into_iter()
            .map(|record| (MessageId::from_uuid(record.id), record.score))
            .filter(|(id, _)| !exclude.contains(id))
            .take(top_k)
            .collect();
        let ids: Vec<MessageId> = scored.iter().map(|(id, _)| *id).collect();
        let answers = self.db(move |c| c.get_messages(&ids)).await?;
        let questions: Vec<MessageId> =
            answers.iter().filter_map(|m| ReplyMetadata::reply_to(&m.metadata)).collect();
        let questions = self.db(move |c| c.get_messages(&questions)).await?;
        let questions: HashMap<MessageId, Message> =
            questions.into_iter().map(|m| (m.id, m)).collect();
        let scores: HashMap<MessageId, f32> = scored.into_iter().collect();
        // Vectors whose messages are gone (a deleted session) are skipped.
        Ok(answers
            .into_iter()
            .filter_map(|answer| {
                let question = questions.get(&ReplyMetadata::reply_to(&answer.metadata)?)?;
                Some((
                    answer.session_id,
                    Recollection {
                        user_message_id: question.id,
                        assistant_message_id: answer.id,
                        user: question.content.clone(),
                        assistant: answer.content.clone(),
                        score: scores.get(&answer.id).copied().unwrap_or_default(),
                    },
                ))
            })
            .collect())
    }

    /// Extends the session summary with `messages` (the oldest history not yet in it) and
    /// stores it.
    async fn summarise(
        &self,
        backend: &Arc<dyn LlmBackend>,
        session: &Session,
        messages: &[Message],
        template: &ChatTemplate,
    ) -> Result<String> {
        let Some(last) = messages.last() else {
            return Ok(session.summary.clone().unwrap_or_default());
        };
        let max_new_tokens = self.inner.config.summary_max_tokens;
        let window = backend.context_length();
        let instructions = "Summarise the conversation below in a few sentences. Keep names, \
                            numbers, facts and decisions. Answer with the summary only.";
        // Keep the newest part of the transcript that fits next to the instructions.
        let mut transcript = String::new();
        if let Some(previous) = &session.summary {
            transcript.push_str(&format!("Earlier summary: {previous}\n"));
        }
        let mut lines: Vec<String> =
            messages.iter().map(|m| format!("{}: {}", m.role.as_str(), m.content.trim())).collect();
        let fits = |text: &str| -> Result<bool> {
            let probe = [
                ChatMessage { role: ChatRole::System, content: instructions.to_owned() },
                ChatMessage { role: ChatRole::User, content: text.to_owned() },
            ];
            let tokens = backend.count_tokens(&template.render(&probe, true)?)?;
            Ok(tokens
                + usize::try_from(max_new_tokens).unwrap_or(usize::MAX)
                + self.inner.config.margin_tokens
                <= window)
        };
        let mut body = format!("{transcript}{}", lines.join("\n"));
        while !fits(&body)? {
            if lines.len() > 1 {
                lines.remove(0);
            } else if let Some(line) = lines.first_mut() {
                let keep = line.chars().count() / 2;
                if keep == 0 {
                    break;
                }
                *line = line.chars().take(keep).collect();
            } else {
                break;
            }
            body = format!("{transcript}{}", lines.join("\n"));
        }
        let completion = backend
            .complete(CompletionRequest {
                messages: vec![
                    ChatMessage { role: ChatRole::System, content: instructions.to_owned() },
                    ChatMessage { role: ChatRole::User, content: body },
                ],
                settings: GenerationSettings {
                    temperature: 0.2,
                    max_new_tokens,
                    seed: Some(0),
                    ..GenerationSettings::default()
                },
            })
            .await?;
        let summary = completion.text.trim().to_owned();
        let (id, through, stored) = (session.id, last.id, summary.clone());
        self.db(move |c| c.set_session_summary(id, &stored, through)).await?;
        tracing::info!(session = %session.id, messages = messages.len(), "summarised old history");
        Ok(summary)
    }

    /// Refreshes the session's automatic tags after its `exchanges`-th exchange.
    async fn refresh_tags(&self, backend: &Arc<dyn LlmBackend>, id: SessionId, exchanges: u64) {
        let config = &self.inner.config;
        let due = exchanges == 1
            || (config.tag_every > 0 && exchanges.is_multiple_of(u64::from(config.tag_every)));
        if config.tagging == TaggingMode::Off || !due {
            return;
        }
        let text = match self.db(move |c| c.recent_messages(id, 40)).await {
            Ok(messages) => {
                messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n")
            }
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "could not read messages for tagging");
                return;
            }
        };
        let mut tags = Vec::new();
        if config.tagging == TaggingMode::Llm {
            let request = CompletionRequest {
                messages: vec![ChatMessage {
                    role: ChatRole::User,
                    content: tagging::llm_prompt(&truncate_chars(&text, 4000)),
                }],
                settings: GenerationSettings {
                    temperature: 0.0,
                    max_new_tokens: 32,
                    seed: Some(0),
                    ..GenerationSettings::default()
                },
            };
            match backend.complete(request).await {
                Ok(completion) => {
                    tags = tagging::parse_llm_tags(&completion.text, config.max_auto_tags);
                }
                Err(err) => {
                    tracing::warn!(session = %id, error = %err, "LLM tagging failed; using keywords");
                }
            }
        }
        if tags.is_empty() {
            tags = tagging::keyword_tags(&text, config.max_auto_tags);
        }
        match self.db(move |c| c.set_auto_tags(id, &tags)).await {
            Ok(session) => tracing::debug!(session = %id, tags = ?session.tags, "refreshed tags"),
            Err(err) => tracing::warn!(session = %id, error = %err, "storing tags failed"),
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn truncate_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max)).collect()
}

/// The text an exchange is remembered by.
fn memory_text(user: &str, assistant: &str) -> String {
    format!("User: {user}\nAssistant: {assistant}")
}

/// Everything the background half of [`ChatService::send`] needs.
struct GenerationTask {
    service: ChatService,
    session: SessionId,
    user_message: Message,
    backend: Arc<dyn LlmBackend>,
    settings: GenerationSettings,
    citations: Vec<Citation>,
    recalled: Vec<Recollection>,
    prompt_info: PromptInfo,
    retrieval_ms: u64,
    started: Instant,
}

impl GenerationTask {
    async fn run(
        self,
        mut stream: futures::stream::BoxStream<'static, ragd_core::Result<CompletionDelta>>,
        events: mpsc::Sender<ChatEvent>,
        guard: (OwnedMutexGuard<()>, OwnedSemaphorePermit),
    ) {
        let generation_started = Instant::now();
        let mut first_token_ms = None;
        let mut text = String::new();
        let mut outcome: Option<(FinishReason, TokenUsage)> = None;
        let mut cancelled = false;
        while let Some(delta) = stream.next().await {
            match delta {
                Ok(CompletionDelta::Text(piece)) => {
                    first_token_ms.get_or_insert_with(|| elapsed_ms(generation_started));
                    text.push_str(&piece);
                    if events.send(ChatEvent::Token(piece)).await.is_err() {
                        cancelled = true;
                        break;
                    }
                }
                Ok(CompletionDelta::Done { finish_reason, usage }) => {
                    outcome = Some((finish_reason, usage));
                    break;
                }
                Err(err) => {
                    tracing::warn!(session = %self.session, error = %err, "generation failed");
                    let _ = events
                        .send(ChatEvent::Failed { kind: err.kind(), message: err.to_string() })
                        .await;
                    return;
                }
            }
        }
        drop(stream);
        if outcome.is_none() && !cancelled {
            let _ = events
                .send(ChatEvent::Failed {
                    kind: ErrorKind::Internal,
                    message: "the model stopped without finishing".to_owned(),
                })
                .await;
            return;
        }
        if cancelled && text.trim().is_empty() {
            tracing::info!(session = %self.session, "reader went away before any text; nothing stored");
            return;
        }
        let generation_ms = elapsed_ms(generation_started);
        let usage = outcome.map(|(_, usage)| usage).unwrap_or_default();
        let finish_reason = outcome.map(|(reason, _)| reason);
        let tokens_per_second = if generation_ms > 0 {
            f64::from(usage.completion_tokens) * 1000.0
                / f64::from(u32::try_from(generation_ms).unwrap_or(u32::MAX))
        } else {
            0.0
        };
        let model = self.backend.model_id().to_owned();
        let metadata = ReplyMetadata {
            reply_to: Some(self.user_message.id),
            backend: self.backend.name().to_owned(),
            settings: Some(self.settings.clone()),
            usage,
            finish_reason,
            cancelled,
            timings: Timings {
                retrieval_ms: self.retrieval_ms,
                first_token_ms,
                generation_ms,
                total_ms: elapsed_ms(self.started),
                tokens_per_second,
            },
            citations: self.citations.clone(),
            recalled: self.recalled.iter().map(|r| r.assistant_message_id).collect(),
            prompt: self.prompt_info,
        }
        .to_json();
        let assistant_id = MessageId::new();
        let stored = self
            .service
            .db({
                let (session, content, model) = (self.session, text.clone(), model.clone());
                move |c| {
                    c.append_message(NewMessage {
                        id: assistant_id,
                        session_id: session,
                        role: ChatRole::Assistant,
                        content,
                        model: Some(model),
                        metadata,
                    })
                }
            })
            .await;
        let assistant_message = match stored {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(session = %self.session, error = %err, "storing the reply failed");
                let _ = events
                    .send(ChatEvent::Failed { kind: err.kind(), message: err.to_string() })
                    .await;
                return;
            }
        };
        self.remember(&assistant_message).await;
        let exchanges = self
            .service
            .db({
                let session = self.session;
                move |c| c.count_messages(session)
            })
            .await
            .map_or(0, |n| n / 2);
        self.service.refresh_tags(&self.backend, self.session, exchanges).await;
        drop(guard);
        tracing::info!(
            session = %self.session,
            model,
            completion_tokens = usage.completion_tokens,
            generation_ms,
            "stored reply"
        );
        let reply = Reply {
            user_message: self.user_message,
            assistant_message,
            citations: self.citations,
            recalled: self.recalled,
            usage,
            finish_reason,
        };
        let _ = events.send(ChatEvent::Done(Box::new(reply))).await;
    }

    /// Embeds the exchange into the `memory` table; a failure is logged, not fatal (the
    /// exchange stays in the catalog and recent history).
    async fn remember(&self, answer: &Message) {
        let (Some(embedder), Some(store)) =
            (&self.service.inner.parts.embedder, &self.service.inner.parts.store)
        else {
            return;
        };
        let text = memory_text(&self.user_message.content, &answer.content);
        let result = async {
            let mut vectors = embedder.embed_documents(vec![text]).await?;
            let vector = vectors
                .pop()
                .ok_or_else(|| ragd_core::Error::internal("the embedder returned no vector"))?;
            store
                .upsert(
                    TableName::Memory,
                    vec![EmbeddedRecord {
                        id: *answer.id.as_uuid(),
                        document_id: None,
                        session_id: Some(self.session),
                        vector,
                    }],
                )
                .await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(session = %self.session, error = %err, "embedding the exchange into memory failed");
        }
    }
}
