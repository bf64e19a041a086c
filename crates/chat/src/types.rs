//! What goes into and comes out of a [`ChatService`](crate::ChatService): the requests
//! ([`CreateSession`], [`SendMessage`]), a reply being generated ([`ChatTurn`] and its
//! [`ChatEvent`]s), the stored [`Reply`] with its [`Citation`]s, and memory search results
//! ([`MemoryHit`]).

use ragd_core::{ErrorKind, FinishReason, Message, SessionId, SettingsPatch, TokenUsage};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::prompt::Recollection;

/// A new session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateSession {
    /// Its name; default "New session".
    pub name: Option<String>,
    /// Documents retrieval is restricted to (with `collection_ids` empty too: all documents).
    pub document_ids: Vec<ragd_core::DocumentId>,
    /// Collections retrieval is restricted to, with `document_ids` (their union).
    pub collection_ids: Vec<ragd_core::CollectionId>,
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
    /// Metadata the documents retrieved for this reply must have (within the session's
    /// documents and collections; empty: no condition).
    pub filter: ragd_core::MetadataFilter,
    /// How the retrieved documents enter the prompt.
    pub context_mode: ContextMode,
}

/// How retrieved documents enter a reply's prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// The chunks' text (default).
    #[default]
    Chunks,
    /// Each chunk condensed by the model for the question first, so more sources fit.
    Summaries,
    /// The session's documents whole, or map-reduced when they do not fit, for questions
    /// about a document as a whole; progress is reported as [`ChatEvent::Progress`].
    Document,
}

impl SendMessage {
    /// `content` with the defaults: configured `top_k`, this session's memory, the
    /// settings in force.
    #[must_use]
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            top_k: None,
            memory_all_sessions: false,
            settings: None,
            filter: ragd_core::MetadataFilter::default(),
            context_mode: ContextMode::Chunks,
        }
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

impl Citation {
    /// The citations of the first `used` of `documents`, numbered as the prompt numbers them
    /// (`[1]`, `[2]`, ...).
    pub(crate) fn numbered(documents: &[crate::prompt::ContextChunk], used: usize) -> Vec<Self> {
        documents[..used.min(documents.len())]
            .iter()
            .enumerate()
            .map(|(index, d)| Self {
                number: index + 1,
                chunk_id: d.chunk_id,
                document_id: d.document_id,
                filename: d.filename.clone(),
                page: d.page,
            })
            .collect()
    }
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

/// What a streamed reply produces, in order: [`ChatEvent::Progress`] while whole documents
/// are read and summarised ([`ContextMode::Document`] only), [`ChatEvent::Token`]s, then
/// one [`ChatEvent::Done`] or [`ChatEvent::Failed`].
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// Preparing the context: `stage` (`reading`, `summarising`) has done `done` of `total`.
    Progress {
        /// What is being done.
        stage: String,
        /// Items done.
        done: usize,
        /// Items in all.
        total: usize,
    },
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
    /// The generation task's events.
    pub(crate) events: mpsc::Receiver<ChatEvent>,
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
                ChatEvent::Token(_) | ChatEvent::Progress { .. } => {}
                ChatEvent::Done(reply) => return Ok(*reply),
                ChatEvent::Failed { kind, message } => {
                    return Err(Error::Generation(ragd_core::Error::new(kind, message)));
                }
            }
        }
        Err(Error::Task("the generation task ended without a reply".to_owned()))
    }
}

/// An earlier exchange found by [`ChatService::search_memory`](crate::ChatService::search_memory).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryHit {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The exchange.
    #[serde(flatten)]
    pub exchange: Recollection,
}
