//! Session CRUD on [`ChatService`]: creating, reading, listing, updating and deleting
//! sessions, and paging through their messages. Deleting also removes the session's memory
//! vectors, after a reply in progress has been stored.

use ragd_catalog::{NewSession, Page, SessionQuery, SessionUpdate};
use ragd_core::{DeleteRequest, Message, Session, SessionId, TableName, VectorFilter};

use crate::error::{Error, Result};
use crate::service::ChatService;
use crate::types::CreateSession;

impl ChatService {
    /// Creates a session.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name or tag, `NotFound` for an unknown document or
    /// collection.
    pub async fn create_session(&self, request: CreateSession) -> Result<Session> {
        let model = request
            .model
            .or_else(|| self.parts().models.backend().map(|b| b.model_id().to_owned()));
        let new = NewSession {
            id: SessionId::new(),
            name: request.name.unwrap_or_else(|| "New session".to_owned()),
            model,
            document_ids: request.document_ids,
            collection_ids: request.collection_ids,
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
        if let Some(vectors) = &self.parts().vectors {
            let spaces = vectors.write_spaces().await;
            for space in spaces.spaces() {
                let filter = VectorFilter {
                    document_ids: Vec::new(),
                    session_ids: vec![id],
                    ids: Vec::new(),
                };
                let removed =
                    space.store.delete(DeleteRequest { table: TableName::Memory, filter }).await?;
                tracing::debug!(session = %id, removed, "deleted memory vectors");
            }
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
}
