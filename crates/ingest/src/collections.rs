//! Collections and document metadata on the [`Ingestor`]: named sets of documents and
//! user key-values, kept in the catalog
//! (`ragd_catalog` holds the rules: unique names, documents in several collections, a
//! collection a session uses cannot be deleted). These are the service calls the HTTP API
//! and embedding programs use; each is one catalog transaction.

use ragd_catalog::{CollectionUpdate, NewCollection, Page};
use ragd_core::{Collection, CollectionId, DocumentId};

use crate::error::Result;
use crate::pipeline::Ingestor;

impl Ingestor {
    /// Creates an empty collection.
    ///
    /// # Errors
    /// `InvalidInput` for a bad name or description, `Conflict` for a name in use.
    pub async fn create_collection(
        &self,
        name: String,
        description: Option<String>,
    ) -> Result<Collection> {
        let new = NewCollection { id: CollectionId::new(), name, description };
        let collection = self.db(move |c| c.create_collection(new)).await?;
        tracing::info!(collection = %collection.id, name = %collection.name, "created collection");
        Ok(collection)
    }

    /// The collection with this id, or else this name.
    ///
    /// # Errors
    /// `NotFound` when there is none.
    pub async fn collection(&self, id_or_name: &str) -> Result<Collection> {
        let key = id_or_name.to_owned();
        self.db(move |c| c.find_collection(&key)).await
    }

    /// A page of collections, by name.
    ///
    /// # Errors
    /// When the catalog cannot be read.
    pub async fn collections(&self, limit: u32, offset: u32) -> Result<Page<Collection>> {
        self.db(move |c| c.list_collections(limit, offset)).await
    }

    /// Renames a collection or changes its description.
    ///
    /// # Errors
    /// `NotFound`, `InvalidInput`, or `Conflict` for a name in use.
    pub async fn update_collection(
        &self,
        id: CollectionId,
        update: CollectionUpdate,
    ) -> Result<Collection> {
        self.db(move |c| c.update_collection(id, update)).await
    }

    /// Deletes a collection; its documents stay stored.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while a chat session is restricted to it.
    pub async fn delete_collection(&self, id: CollectionId) -> Result<()> {
        self.db(move |c| c.delete_collection(id)).await?;
        tracing::info!(collection = %id, "deleted collection");
        Ok(())
    }

    /// Adds documents to a collection (all or none).
    ///
    /// # Errors
    /// `NotFound` for the collection or a document, `InvalidInput` for too many at once.
    pub async fn add_to_collection(
        &self,
        id: CollectionId,
        documents: Vec<DocumentId>,
    ) -> Result<Collection> {
        self.db(move |c| c.add_to_collection(id, &documents)).await
    }

    /// Sets metadata keys of a document and removes others; the document now.
    ///
    /// # Errors
    /// `NotFound` for an unknown document, `InvalidInput` past 64 keys.
    pub async fn update_metadata(
        &self,
        id: DocumentId,
        set: ragd_core::Metadata,
        remove: Vec<String>,
    ) -> Result<ragd_core::Document> {
        self.db(move |c| c.update_document_metadata(id, &set, &remove)).await
    }

    /// Takes documents out of a collection; they stay stored.
    ///
    /// # Errors
    /// `NotFound` for the collection, `InvalidInput` for too many at once.
    pub async fn remove_from_collection(
        &self,
        id: CollectionId,
        documents: Vec<DocumentId>,
    ) -> Result<Collection> {
        self.db(move |c| c.remove_from_collection(id, &documents)).await
    }
}
