//! Integration tests of `LanceStore` against a real LanceDB, one suite on two backends:
//! each test runs once on a temporary directory (`local::`) and once on a new bucket of an
//! S3-compatible server on loopback (`s3::`, moto; see `ragd_test_utils::S3Bucket`).

// Tests fail loudly on the first unexpected error; unwrapping is how they do it.
#![allow(clippy::unwrap_used)]

/// Defines each listed `async fn test(backend: Backend)` of the module as two tests,
/// `local::test` and `s3::test`.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::Backend::Local).await;
                }
            )+
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::Backend::S3).await;
                }
            )+
        }
    };
}

mod concurrent;
mod index;
mod shape;
mod store;

use ragd_core::{DocumentId, EmbeddedRecord, SessionId};
use ragd_test_utils::S3Bucket;
use ragd_vector_store::{LanceStore, LanceStoreConfig, StoreLocation};
use tempfile::TempDir;
use uuid::Uuid;

/// The model id the tests open stores with.
const MODEL: &str = "test-model";

/// Where a test's database lives.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// A temporary directory.
    Local,
    /// A new bucket on the test process's S3 server.
    S3,
}

/// A test's database: a temporary directory or a bucket, and how to reach it.
struct Place {
    /// Keeps the directory of a local database until the test ends.
    _dir: Option<TempDir>,
    /// The database's location, as every store of the test opens it.
    location: StoreLocation,
}

impl Place {
    /// A new, empty place on `backend`. Reads look for other stores' commits every time,
    /// as on replicas sharing one database.
    fn new(backend: Backend) -> Self {
        let read_consistency = Some(std::time::Duration::ZERO);
        match backend {
            Backend::Local => {
                let dir = TempDir::new().unwrap();
                let uri = dir.path().join("lance").to_str().unwrap().to_owned();
                let location = StoreLocation { read_consistency, ..StoreLocation::new(uri) };
                Self { _dir: Some(dir), location }
            }
            Backend::S3 => {
                let bucket = S3Bucket::create();
                let location = StoreLocation {
                    uri: bucket.uri("ragd/lance"),
                    storage_options: bucket.storage_options(),
                    read_consistency,
                };
                Self { _dir: None, location }
            }
        }
    }
}

/// A configuration for a store at `place`.
fn config(place: &Place, model_id: &str, dimensions: usize) -> LanceStoreConfig {
    LanceStoreConfig::new("", model_id, dimensions).with_location(place.location.clone())
}

/// A fresh store with `dimensions`-long vectors at a new place on `backend`.
async fn open_store(backend: Backend, dimensions: usize) -> (Place, LanceStore) {
    let place = Place::new(backend);
    let store = LanceStore::open(config(&place, MODEL, dimensions)).await.unwrap();
    (place, store)
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
