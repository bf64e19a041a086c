//! Context for a turn, on [`ChatService`]: document retrieval (hybrid search over the
//! session's documents) and long-term memory: recalling earlier exchanges by vector
//! similarity from the `memory` table, searching it on request, and embedding each new
//! exchange into it.

use std::collections::HashMap;

use ragd_catalog::Catalog;
use ragd_core::{
    CollectionId, DocumentId, ErrorKind, Message, MessageId, MetadataFilter, SearchRequest,
    SessionId, TableName, VectorFilter, VectorSpace,
};
use ragd_search::SearchQuery;

use crate::error::{Error, Result};

/// What retrieval may read: the union of `document_ids` and the documents of
/// `collection_ids` (every document when both are empty), narrowed by `filter`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scope {
    /// Documents to search.
    pub(crate) document_ids: Vec<DocumentId>,
    /// Collections to search.
    pub(crate) collection_ids: Vec<CollectionId>,
    /// Metadata the documents must have.
    pub(crate) filter: MetadataFilter,
}
use crate::metadata::ReplyMetadata;
use crate::prompt::{ContextChunk, Recollection};
use crate::service::ChatService;
use crate::types::MemoryHit;

impl ChatService {
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
        if self.parts().vectors.is_none() {
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

    /// Hybrid search within `scope` (see [`Scope`]); semantic or keyword alone when only one
    /// side is available, nothing when neither is (logged, not an error: the model can
    /// still answer). `caller` names the caller in the log.
    pub(crate) async fn retrieve(
        &self,
        query: &str,
        top_k: usize,
        scope: Scope,
        caller: &str,
    ) -> Vec<ContextChunk> {
        let Some(searcher) = &self.parts().searcher else { return Vec::new() };
        if top_k == 0 {
            return Vec::new();
        }
        let query = SearchQuery {
            text: query.to_owned(),
            top_k,
            document_ids: scope.document_ids,
            collection_ids: scope.collection_ids,
            filter: scope.filter,
        };
        let options = searcher.hybrid_options(None);
        let mut result = searcher.hybrid(&query, options).await;
        if options.rerank_candidates.is_some()
            && let Err(err) = &result
        {
            // Reranking is an improvement, not a requirement: a busy or failing reranker
            // leaves the fused order.
            tracing::warn!(scope = caller, error = %err, "reranking failed; using the fused order");
            result = searcher.hybrid(&query, searcher.hybrid_options(Some(false))).await;
        }
        let hits = match result {
            Ok(hits) => hits,
            Err(err) if err.kind() == ErrorKind::Unavailable => {
                searcher.keyword(&query).await.unwrap_or_default()
            }
            Err(err) => {
                tracing::warn!(scope = caller, error = %err, "retrieval failed; answering without documents");
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
    pub(crate) async fn recall(
        &self,
        query: &str,
        session: Option<SessionId>,
        top_k: usize,
        exclude: &[MessageId],
    ) -> Result<Vec<(SessionId, Recollection)>> {
        let space = match &self.parts().vectors {
            Some(vectors) if top_k > 0 => vectors.query_space().await,
            Some(_) | None => None,
        };
        let Some(VectorSpace { embedder, store }) = space else {
            return Ok(Vec::new());
        };
        let vector = embedder.embed_query(query.to_owned()).await?;
        let filter = VectorFilter {
            document_ids: Vec::new(),
            session_ids: session.into_iter().collect(),
            ids: Vec::new(),
        };
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
        let exchanges = self.db(move |c| exchanges(c, &ids)).await?;
        let scores: HashMap<MessageId, f32> = scored.into_iter().collect();
        Ok(exchanges
            .into_iter()
            .map(|(question, answer)| {
                (
                    answer.session_id,
                    Recollection {
                        user_message_id: question.id,
                        assistant_message_id: answer.id,
                        score: scores.get(&answer.id).copied().unwrap_or_default(),
                        user: question.content,
                        assistant: answer.content,
                    },
                )
            })
            .collect())
    }

    /// Embeds the exchange of `question` and `answer` into the `memory` table; a failure is
    /// logged, not fatal (the exchange stays in the catalog and recent history).
    pub(crate) async fn remember(&self, session: SessionId, question: &Message, answer: &Message) {
        let Some(vectors) = &self.parts().vectors else {
            return;
        };
        let text = memory_text(&question.content, &answer.content);
        // Every space being written (two while the index is rebuilt with another model).
        let spaces = vectors.write_spaces().await;
        for space in spaces.spaces() {
            let entry = (*answer.id.as_uuid(), session, text.clone());
            let written = ragd_core::write_memory_vectors(
                space.embedder.as_ref(),
                space.store.as_ref(),
                vec![entry],
            )
            .await;
            if let Err(err) = written {
                tracing::warn!(session = %session, error = %err, "embedding the exchange into memory failed");
            }
        }
    }
}

/// The exchanges (question, answer) whose answers have these ids, in the answers' order:
/// what the `memory` table's vectors stand for. Answers that are gone (a deleted session)
/// or whose question is gone are skipped.
///
/// # Errors
/// When the catalog cannot be read.
pub fn exchanges(
    catalog: &Catalog,
    answers: &[MessageId],
) -> ragd_catalog::Result<Vec<(Message, Message)>> {
    let answers = catalog.get_messages(answers)?;
    let question_ids: Vec<MessageId> =
        answers.iter().filter_map(|m| ReplyMetadata::reply_to(&m.metadata)).collect();
    let questions: HashMap<MessageId, Message> =
        catalog.get_messages(&question_ids)?.into_iter().map(|m| (m.id, m)).collect();
    Ok(answers
        .into_iter()
        .filter_map(|answer| {
            let question = questions.get(&ReplyMetadata::reply_to(&answer.metadata)?)?;
            Some((question.clone(), answer))
        })
        .collect())
}

/// The text an exchange is remembered by: what the `memory` table's vector of it embeds.
/// A rebuild of the index embeds the same text again.
#[must_use]
pub fn memory_text(user: &str, assistant: &str) -> String {
    format!("User: {user}\nAssistant: {assistant}")
}
