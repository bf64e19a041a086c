//! What an API key may see: [`KeyScope`], put into each request by the key middleware
//! (`auth.rs`), and [`Allowed`], the collection ids it resolves to for that request.
//!
//! A key scoped to collections (`[[auth.scoped_keys]]`) sees only:
//! - the documents in at least one of its collections;
//! - its collections (a collection named in the configuration that does not exist yet
//!   grants nothing);
//! - the chat sessions restricted to some of its collections and to nothing else;
//! - search hits, retrieval and memory within those.
//!
//! Anything else answers 404 exactly as if it did not exist (never 403 with its name), and
//! what every key shares (creating, renaming or deleting collections, uploads outside its
//! collections, loading models, changing generation settings, re-embedding the index)
//! answers 403 `forbidden`. Keys without limits, and a server without keys, see everything.
//! The MCP tools read the same scope from the HTTP request rmcp hands them (`mcp.rs`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use ragd_core::{CollectionId, DocumentId, ErrorKind, Session, SessionId};
use ragd_engine::Engine;

use crate::api::ApiError;

/// The scope of the request's key.
#[derive(Debug, Clone, Default)]
pub enum KeyScope {
    /// No limits (an unlimited key, or a server without keys).
    #[default]
    All,
    /// These collections, by name or id as configured.
    Collections(Arc<[String]>),
}

impl<S: Send + Sync> FromRequestParts<S> for KeyScope {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

impl KeyScope {
    /// The collection ids this scope allows now.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn resolve(&self, engine: &Engine) -> Result<Allowed, ApiError> {
        let Self::Collections(keys) = self else {
            return Ok(Allowed { collections: None });
        };
        let mut ids = HashSet::new();
        for key in keys.iter() {
            match engine.documents().collection(key).await {
                Ok(collection) => {
                    ids.insert(collection.id);
                }
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Allowed { collections: Some(ids) })
    }
}

/// The collections a request may use: all, or these.
#[derive(Debug, Clone)]
pub struct Allowed {
    collections: Option<HashSet<CollectionId>>,
}

/// The 404 of something a scoped key may not see: the same words as for something missing.
fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("{what} {id} not found"))
}

impl Allowed {
    /// `None` for no limits, else the allowed collection ids.
    #[must_use]
    pub fn collections(&self) -> Option<Vec<CollectionId>> {
        self.collections.as_ref().map(|ids| {
            let mut ids: Vec<CollectionId> = ids.iter().copied().collect();
            ids.sort_unstable_by_key(ToString::to_string);
            ids
        })
    }

    /// Refuses, with 403, an action that changes what every key shares.
    ///
    /// # Errors
    /// `Forbidden` for a scoped key.
    pub fn require_unlimited(&self, action: &str) -> Result<(), ApiError> {
        if self.collections.is_none() {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("this API key is limited to some collections and cannot {action}"),
            ))
        }
    }

    /// Whether the collection is visible.
    #[must_use]
    pub fn sees_collection(&self, id: CollectionId) -> bool {
        self.collections.as_ref().is_none_or(|ids| ids.contains(&id))
    }

    /// 404 for a collection the key may not see.
    ///
    /// # Errors
    /// `NotFound`, worded as for a missing collection.
    pub fn check_collection(&self, id: CollectionId, as_given: &str) -> Result<(), ApiError> {
        if self.sees_collection(id) { Ok(()) } else { Err(not_found("collection", as_given)) }
    }

    /// 404 for a document in none of the key's collections.
    ///
    /// # Errors
    /// `NotFound`, worded as for a missing document; catalog failures.
    pub async fn check_document(&self, engine: &Engine, id: DocumentId) -> Result<(), ApiError> {
        let Some(allowed) = &self.collections else { return Ok(()) };
        let of_document = engine
            .catalog()
            .run(move |c| c.collections_of_document(id))
            .await
            .map_err(ragd_core::Error::from)?;
        if of_document.iter().any(|c| allowed.contains(c)) {
            Ok(())
        } else {
            Err(not_found("document", id))
        }
    }

    /// Checks every document of `ids`.
    ///
    /// # Errors
    /// As [`Allowed::check_document`].
    pub async fn check_documents(
        &self,
        engine: &Engine,
        ids: &[DocumentId],
    ) -> Result<(), ApiError> {
        for id in ids {
            self.check_document(engine, *id).await?;
        }
        Ok(())
    }

    /// The collections a search or a new session is restricted to: those asked for (each
    /// must be visible), or for a scoped key that asked for none, all of its collections.
    ///
    /// # Errors
    /// `NotFound` for a collection the key may not see, or when none of its collections
    /// exists (nothing could be searched).
    pub fn restrict(&self, asked: Vec<CollectionId>) -> Result<Vec<CollectionId>, ApiError> {
        let Some(allowed) = self.collections() else { return Ok(asked) };
        if asked.is_empty() {
            if allowed.is_empty() {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    "none of this API key's collections exists",
                ));
            }
            return Ok(allowed);
        }
        for id in &asked {
            self.check_collection(*id, &id.to_string())?;
        }
        Ok(asked)
    }

    /// [`Allowed::restrict`] where asking for documents alone is enough (search): documents
    /// must be visible; with documents and no collections the search stays on them.
    ///
    /// # Errors
    /// As [`Allowed::restrict`] and [`Allowed::check_document`].
    pub async fn restrict_search(
        &self,
        engine: &Engine,
        documents: &[DocumentId],
        collections: Vec<CollectionId>,
    ) -> Result<Vec<CollectionId>, ApiError> {
        self.check_documents(engine, documents).await?;
        if !documents.is_empty() && collections.is_empty() {
            return Ok(collections);
        }
        self.restrict(collections)
    }

    /// 404 for a session the key may not see: one restricted to some of its collections and
    /// to nothing outside them.
    ///
    /// # Errors
    /// `NotFound`, worded as for a missing session; catalog failures.
    pub async fn check_session(&self, engine: &Engine, session: &Session) -> Result<(), ApiError> {
        let Some(allowed) = &self.collections else { return Ok(()) };
        let inside = !session.collection_ids.is_empty()
            && session.collection_ids.iter().all(|c| allowed.contains(c));
        if !inside {
            return Err(not_found("session", session.id));
        }
        for document in &session.document_ids {
            if self.check_document(engine, *document).await.is_err() {
                return Err(not_found("session", session.id));
            }
        }
        Ok(())
    }

    /// Reads a session and checks it is visible.
    ///
    /// # Errors
    /// As [`Allowed::check_session`]; `NotFound` for a missing one.
    pub async fn session(&self, engine: &Engine, id: SessionId) -> Result<Session, ApiError> {
        let session = engine.chat().session(id).await?;
        self.check_session(engine, &session).await?;
        Ok(session)
    }
}
