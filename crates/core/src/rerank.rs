//! The [`Reranker`] trait: a second look at the best candidates of a search.
//!
//! First-stage retrieval scores the query and each passage apart (BM25, or two vectors
//! compared by cosine). A reranker reads the query and one passage together and judges how
//! well the passage answers it: slower per passage, so it only sees the best few dozen
//! candidates of the first stage, and better at telling an answer from a passage that
//! merely shares words or topic with the query.

use std::fmt;

use async_trait::async_trait;

use crate::error::Result;

/// Scores passages against a query.
///
/// Implementations run inference off the async runtime (a dedicated thread fed by a
/// channel), so the methods take owned inputs.
#[async_trait]
pub trait Reranker: Send + Sync + fmt::Debug + 'static {
    /// The model's id, reported with the scores it gives.
    fn model_id(&self) -> &str;

    /// One relevance score per passage, in the passages' order; higher is more relevant.
    /// Scores compare passages of one query; their scale is the model's own.
    ///
    /// # Errors
    /// `Overloaded` when the inference queue is full, `Unavailable` when the model is not
    /// loaded, `ContextTooLong` when the query does not fit the model's window,
    /// `InvalidInput` for text the model cannot take, `Internal` for inference failures.
    async fn score(&self, query: String, passages: Vec<String>) -> Result<Vec<f32>>;
}
