//! [`FakeEmbedder`]: a deterministic bag-of-words embedder.

use async_trait::async_trait;
use ragd_core::{Embedder, Embedding, Result};
use sha2::{Digest, Sha256};

/// Embeds a text as the normalised sum of one pseudo-random unit vector per lowercase word.
/// Deterministic across runs and machines; texts sharing words have positive cosine.
#[derive(Debug, Clone)]
pub struct FakeEmbedder {
    dimensions: usize,
    max_tokens: usize,
}

impl FakeEmbedder {
    /// An embedder of `dimensions`-long vectors that reads at most 256 "tokens" (words).
    #[must_use]
    pub fn new(dimensions: usize) -> Self {
        Self { dimensions, max_tokens: 256 }
    }

    fn embed(&self, text: &str) -> Embedding {
        let mut vector = vec![0.0f32; self.dimensions];
        for word in words(text).take(self.max_tokens) {
            let digest = Sha256::digest(word.as_bytes());
            for (i, value) in vector.iter_mut().enumerate() {
                let byte =
                    digest[i % digest.len()] ^ u8::try_from(i / digest.len() % 256).unwrap_or(0);
                *value += f32::from(byte) / 255.0 - 0.5;
            }
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|v| *v /= norm);
        }
        vector
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

#[async_trait]
impl Embedder for FakeEmbedder {
    fn model_id(&self) -> &str {
        "fake-bag-of-words"
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(words(text).count())
    }

    async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Embedding>> {
        Ok(texts.iter().map(|t| self.embed(t)).collect())
    }

    async fn embed_query(&self, text: String) -> Result<Embedding> {
        Ok(self.embed(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[tokio::test]
    async fn equal_texts_embed_equally_and_shared_words_are_closer() {
        let embedder = FakeEmbedder::new(32);
        let v = embedder
            .embed_documents(vec![
                "red apple pie".into(),
                "Red apple pie".into(),
                "blue ocean".into(),
            ])
            .await
            .unwrap();
        assert_eq!(v[0], v[1]);
        assert!((cosine(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        let q = embedder.embed_query("apple".into()).await.unwrap();
        assert!(cosine(&q, &v[0]) > cosine(&q, &v[2]));
    }
}
