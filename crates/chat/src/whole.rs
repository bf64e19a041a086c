//! Whole-document context ([`ContextMode::Document`]), for questions about documents as a
//! whole ("summarise this document", "how many sections does it have").
//!
//! The session's documents (its own and those of its collections) are read whole. When
//! their text fits the prompt's document budget, each goes into the prompt as one source;
//! otherwise they are map-reduced: consecutive chunks are grouped into parts of at most
//! half the model's window, each part is summarised for the question
//! ([`ChatConfig::context_summary_concurrency`] at a time), and the answer is generated over
//! the part summaries. The turn is returned as soon as the question is stored: reading and
//! summarising report [`ChatEvent::Progress`] on the turn's events, then the reply streams
//! as in the other modes. A failure on the way is a [`ChatEvent::Failed`] and is recorded on
//! the question. Long-term memory is not recalled in this mode: the documents take the
//! budget.
//!
//! [`ChatConfig::context_summary_concurrency`]: crate::ChatConfig::context_summary_concurrency

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use ragd_catalog::Page;
use ragd_core::{
    ChatMessage, ChatRole, Chunk, CompletionRequest, DocumentId, GenerationSettings, LlmBackend,
    Message, Session,
};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, mpsc};

use crate::error::{Error, Result};
use crate::generation::{GenerationTask, elapsed_ms};
use crate::metadata::PromptInfo;
use crate::prompt::{self, BudgetConfig, ContextChunk, PromptParts};
use crate::service::ChatService;
use crate::template::PromptMeter;
use crate::types::{ChatEvent, ChatTurn, Citation, ContextMode};

/// Chunks read from the catalog per request.
const CHUNK_PAGE: u32 = 500;

/// The instruction of each part summary.
const PART_INSTRUCTIONS: &str = "You summarise one part of a document so that a question \
                                 about the whole document can be answered from the summaries \
                                 of all its parts. Keep its headings, what each section is \
                                 about, and the facts and numbers that bear on the question. \
                                 Answer with the summary only.";

/// Everything a whole-document reply needs from [`ChatService::send`].
pub(crate) struct WholeRequest {
    pub session: Session,
    pub user_message: Message,
    pub backend: Arc<dyn LlmBackend>,
    pub settings: GenerationSettings,
    pub content: String,
    pub held: (OwnedMutexGuard<()>, OwnedSemaphorePermit),
    pub started: Instant,
}

/// One source of the prompt before it is summarised.
struct Part {
    chunk: ContextChunk,
}

impl ChatService {
    /// Starts a whole-document reply; see the module docs.
    pub(crate) fn send_whole(&self, request: WholeRequest) -> ChatTurn {
        let (events, receiver) = mpsc::channel(crate::turn::EVENT_BUFFER);
        let turn = ChatTurn {
            user_message: request.user_message.clone(),
            citations: Vec::new(),
            recalled: Vec::new(),
            events: receiver,
        };
        let service = self.clone();
        tokio::spawn(async move {
            let question = request.user_message.id;
            let failed = service.whole_reply(request, events.clone()).await;
            if let Err(err) = failed {
                tracing::warn!(error = %err, "whole-document reply failed");
                service.record_failure(question, err.kind(), &err.to_string()).await;
                let _ = events
                    .send(ChatEvent::Failed { kind: err.kind(), message: err.to_string() })
                    .await;
            }
        });
        turn
    }

    async fn whole_reply(
        &self,
        request: WholeRequest,
        events: mpsc::Sender<ChatEvent>,
    ) -> Result<()> {
        let WholeRequest { session, user_message, backend, settings, content, held, started } =
            request;
        let progress = |stage: &'static str, done: usize, total: usize| {
            let events = events.clone();
            async move {
                let _ =
                    events.send(ChatEvent::Progress { stage: stage.to_owned(), done, total }).await;
            }
        };
        let ids = self.whole_document_ids(&session).await?;
        if ids.is_empty() {
            return Err(Error::InvalidInput(
                "context_mode document needs a session with documents or collections".to_owned(),
            ));
        }
        // Read each document: its text, and its first chunk (what a whole document cites);
        // a document without chunks is not ready and is left out.
        let mut documents = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            progress("reading", index, ids.len()).await;
            let id = *id;
            let document = self.db(move |c| c.get_document(id)).await?;
            let first = self.db(move |c| c.list_chunks(id, 1, 0)).await?.items.into_iter().next();
            let Some(first) = first else { continue };
            let text = self.db(move |c| c.document_text(id, None)).await?;
            documents.push((document.filename, first, text));
        }
        progress("reading", ids.len(), ids.len()).await;
        if documents.is_empty() {
            return Err(Error::InvalidInput(
                "the session's documents have no text yet (none is ready)".to_owned(),
            ));
        }

        let window = backend.context_length();
        let meter = PromptMeter::new(Arc::clone(&backend));
        let counter = |text: &str| backend.count_tokens(text).map_err(Error::from);
        let reserved = usize::try_from(settings.max_new_tokens).unwrap_or(usize::MAX)
            + self.config().margin_tokens
            + counter(&self.config().system_prompt)?
            + counter(&content)?
            + 64;
        let budget = window.saturating_sub(reserved) * 9 / 10;
        let mut whole_tokens = 0;
        for (_, _, text) in &documents {
            whole_tokens += counter(text)?;
        }
        let context_started = Instant::now();
        let (contexts, mode) = if whole_tokens <= budget {
            let contexts = documents
                .into_iter()
                .map(|(filename, first, text)| ContextChunk {
                    chunk_id: first.id,
                    document_id: first.document_id,
                    filename,
                    page: None,
                    text,
                })
                .collect::<Vec<_>>();
            (contexts, "whole")
        } else {
            let part_tokens = window / 2;
            // Only now every chunk: the parts are made of them.
            let mut chunked = Vec::with_capacity(documents.len());
            for (filename, first, _) in documents {
                chunked.push((filename, self.document_chunks(first.document_id).await?));
            }
            let parts = parts_of(chunked, part_tokens, &counter)?;
            let total = parts.len();
            progress("summarising", 0, total).await;
            let summary_settings = GenerationSettings {
                temperature: 0.0,
                max_new_tokens: self.config().context_summary_max_tokens,
                ..GenerationSettings::default()
            };
            let mut summaries = futures::stream::iter(parts)
                .map(|part| {
                    let backend = Arc::clone(&backend);
                    let settings = summary_settings.clone();
                    let question = content.clone();
                    async move {
                        let mut chunk = part.chunk;
                        let request = CompletionRequest {
                            messages: vec![
                                ChatMessage {
                                    role: ChatRole::System,
                                    content: PART_INSTRUCTIONS.to_owned(),
                                },
                                ChatMessage {
                                    role: ChatRole::User,
                                    content: format!(
                                        "Question: {}\n\nPart of {}:\n{}",
                                        question.trim(),
                                        chunk.filename,
                                        chunk.text
                                    ),
                                },
                            ],
                            settings,
                        };
                        let completion = backend.complete(request).await?;
                        chunk.text = completion.text.trim().to_owned();
                        Ok::<_, Error>(chunk)
                    }
                })
                .buffered(self.config().context_summary_concurrency.max(1));
            let mut contexts = Vec::with_capacity(total);
            while let Some(summary) = summaries.next().await {
                contexts.push(summary?);
                progress("summarising", contexts.len(), total).await;
            }
            (contexts, "map_reduce")
        };
        let context_ms = elapsed_ms(context_started);
        tracing::info!(session = %session.id, mode, sources = contexts.len(), context_ms, "whole-document context ready");

        // The prompt: the documents (or their part summaries) take most of the budget.
        let id = session.id;
        let read = self.config().history_messages.saturating_add(1);
        let history: Vec<ChatMessage> = self
            .db(move |c| c.recent_messages(id, read))
            .await?
            .into_iter()
            .filter(|m| m.id != user_message.id)
            .map(|m| ChatMessage { role: m.role, content: m.content })
            .collect();
        let measure = |messages: &[ChatMessage]| meter.measure(messages);
        let budget = BudgetConfig {
            context_length: window,
            max_new_tokens: settings.max_new_tokens,
            margin: self.config().margin_tokens,
            documents_share: 0.9,
            memory_share: 0.0,
        };
        let parts = PromptParts {
            system_prompt: &self.config().system_prompt,
            summary: session.summary.as_deref(),
            documents: &contexts,
            memories: &[],
            history: &history,
            user: &content,
        };
        let prompt = prompt::build(&parts, &budget, &measure, &counter)?;
        let citations = Citation::numbered(&contexts, prompt.documents_used);
        let prompt_info = PromptInfo {
            prompt_tokens_estimate: prompt.prompt_tokens,
            budget_tokens: prompt.available,
            documents: prompt.documents_used,
            memories: 0,
            history_messages: prompt.history_used,
            summary: prompt.summary_used,
            context_mode: ContextMode::Document,
            context_ms,
            context_summaries_cached: 0,
        };
        let stream = backend
            .stream(CompletionRequest { messages: prompt.messages, settings: settings.clone() })
            .await?;
        let task = GenerationTask {
            service: self.clone(),
            session: id,
            user_message,
            backend,
            settings,
            citations,
            recalled: Vec::new(),
            prompt_info,
            retrieval_ms: context_ms,
            started,
        };
        task.run(stream, events, held).await;
        Ok(())
    }

    /// The session's documents and those of its collections, each once, in that order.
    async fn whole_document_ids(&self, session: &Session) -> Result<Vec<DocumentId>> {
        let mut ids = session.document_ids.clone();
        if !session.collection_ids.is_empty() {
            let collections = session.collection_ids.clone();
            for id in self.db(move |c| c.collection_documents(&collections)).await? {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Every chunk of a document, in order.
    async fn document_chunks(&self, id: DocumentId) -> Result<Vec<Chunk>> {
        let mut chunks = Vec::new();
        loop {
            let offset = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
            let page: Page<Chunk> = self.db(move |c| c.list_chunks(id, CHUNK_PAGE, offset)).await?;
            let done =
                page.items.is_empty() || chunks.len() + page.items.len() >= page.total as usize;
            chunks.extend(page.items);
            if done {
                return Ok(chunks);
            }
        }
    }
}

/// Consecutive chunks of each document grouped into parts of at most `max_tokens` of the
/// model's tokens, counted by `counter` (the stored counts are the embedder's); a chunk
/// longer than that is a part of its own.
fn parts_of(
    documents: Vec<(String, Vec<Chunk>)>,
    max_tokens: usize,
    counter: &dyn Fn(&str) -> Result<usize>,
) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (filename, chunks) in documents {
        let mut current: Option<(ContextChunk, usize)> = None;
        for chunk in chunks {
            let tokens = counter(&chunk.text)?;
            match &mut current {
                Some((part, used)) if *used + tokens <= max_tokens => {
                    part.text.push_str("\n\n");
                    part.text.push_str(&chunk.text);
                    *used += tokens;
                }
                Some(_) | None => {
                    if let Some((part, _)) = current.take() {
                        parts.push(Part { chunk: part });
                    }
                    current = Some((
                        ContextChunk {
                            chunk_id: chunk.id,
                            document_id: chunk.document_id,
                            filename: filename.clone(),
                            page: chunk.page,
                            text: chunk.text,
                        },
                        tokens,
                    ));
                }
            }
        }
        if let Some((part, _)) = current {
            parts.push(Part { chunk: part });
        }
    }
    Ok(parts)
}
