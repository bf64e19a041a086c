//! Integration tests of `LanceStore` against a real embedded LanceDB in a temporary
//! directory per test.

// Tests fail loudly on the first unexpected error; unwrapping is how they do it.
#![allow(clippy::unwrap_used)]

mod index;
mod shape;
mod store;

use ragd_core::{DocumentId, EmbeddedRecord, SessionId};
use ragd_vector_store::{LanceStore, LanceStoreConfig};
use tempfile::TempDir;
use uuid::Uuid;

/// The model id the tests open stores with.
const MODEL: &str = "test-model";

/// A configuration for a store under `dir`.
fn config(dir: &TempDir, model_id: &str, dimensions: usize) -> LanceStoreConfig {
    LanceStoreConfig::new(dir.path().join("lance").to_str().unwrap(), model_id, dimensions)
}

/// A fresh store with `dimensions`-long vectors under a new temporary directory.
async fn open_store(dimensions: usize) -> (TempDir, LanceStore) {
    let dir = TempDir::new().unwrap();
    let store = LanceStore::open(config(&dir, MODEL, dimensions)).await.unwrap();
    (dir, store)
}

/// A chunk vector of `document`.
fn chunk(document: DocumentId, vector: Vec<f32>) -> EmbeddedRecord {
    EmbeddedRecord { id: Uuid::now_v7(), document_id: Some(document), session_id: None, vector }
}

/// A memory vector of `session`.
fn memory(session: SessionId, vector: Vec<f32>) -> EmbeddedRecord {
    EmbeddedRecord { id: Uuid::now_v7(), document_id: None, session_id: Some(session), vector }
}

/// Deterministic pseudo-random vectors (xorshift64*), so index tests are reproducible.
struct Vectors {
    /// The generator state; never zero.
    state: u64,
}

impl Vectors {
    /// A generator starting from `seed`.
    fn seeded(seed: u64) -> Self {
        Self { state: seed.max(1) }
    }

    /// The next vector, with components in [-1, 1).
    fn next(&mut self, dimensions: usize) -> Vec<f32> {
        (0..dimensions)
            .map(|_| {
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                let bits = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
                // 24 random bits mapped onto [-1, 1).
                (bits as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect()
    }
}
