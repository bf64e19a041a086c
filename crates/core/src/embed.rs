//! The [`Embedder`] trait: text in, vectors out.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;

use crate::error::Result;

/// One embedding vector.
pub type Embedding = Vec<f32>;

/// Turns text into vectors.
///
/// Implementations run inference off the async runtime (a dedicated thread fed by a
/// channel); the methods take owned inputs because the work crosses that thread boundary.
#[async_trait]
pub trait Embedder: Send + Sync + fmt::Debug + 'static {
    /// The model's id, stored with every vector table so a table built by another model is
    /// refused (architecture invariant 5).
    fn model_id(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// The longest input, in tokens, the model reads; longer inputs are truncated.
    fn max_tokens(&self) -> usize;

    /// How many tokens `text` is for this model, so the chunker can budget chunks.
    ///
    /// # Errors
    /// When the tokenizer rejects the text.
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// Where `text`'s tokens lie, as byte ranges into `text` in order, special tokens left
    /// out, when the implementation can say (`Ok(None)`, the default, when it cannot).
    ///
    /// The chunker sizes many overlapping pieces of one long text; with the spans it
    /// tokenizes the text once and counts each piece from them instead of tokenizing every
    /// piece. Counts from spans may differ from [`Embedder::count_tokens`] where a piece
    /// starts or ends inside a word, so the chunker re-counts the pieces it keeps.
    ///
    /// # Errors
    /// When the tokenizer rejects the text.
    fn token_spans(&self, text: &str) -> Result<Option<Vec<Range<usize>>>> {
        let _ = text;
        Ok(None)
    }

    /// The most texts one call should carry, if the implementation has a preference.
    fn max_batch_size(&self) -> Option<usize> {
        None
    }

    /// Embeds documents (the stored side of an asymmetric model).
    ///
    /// # Errors
    /// `Overloaded` when the inference queue is full, `Unavailable` when the model is not
    /// loaded, `Internal` for inference failures.
    async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Embedding>>;

    /// Embeds a query (the asking side of an asymmetric model).
    ///
    /// # Errors
    /// As [`Embedder::embed_documents`].
    async fn embed_query(&self, text: String) -> Result<Embedding>;
}
