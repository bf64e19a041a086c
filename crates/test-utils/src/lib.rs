//! `ragd-test-utils`: deterministic fakes of the `ragd-core` traits.
//!
//! They make unit tests of orchestration logic (ingest pipeline, chat flow) fast and
//! independent of ONNX Runtime and LanceDB. Every behaviour tested with a fake is also
//! tested on the real components elsewhere.
//!
//! - [`FakeEmbedder`]: vectors derived from a hash of each word, so equal texts embed
//!   equally and texts sharing words are close.
//! - [`InMemoryStore`]: brute-force cosine search over a `Vec`.
//! - [`ScriptedLlm`]: a chat model answering from a [`Script`], counting words as tokens
//!   and recording every prompt it receives.
//! - [`FakeHub`]: the Hugging Face hub's file API on loopback (gated repos, LFS redirects
//!   to another origin, range requests), for download tests without the internet.
//! - [`assets_dir`], [`corpus_dir`], [`corpus_documents`]: where tests find what `cargo
//!   xtask` prepared.
//! - [`S3Bucket`]: a new bucket on an S3-compatible server on loopback (moto), for the
//!   vector store on object storage.
//! - [`PgDatabase`]: a new database on a throwaway Postgres server on loopback, for the
//!   catalog on Postgres.

mod embedder;
mod hub;
mod llm;
mod paths;
mod postgres;
mod s3;
mod store;

pub use embedder::FakeEmbedder;
pub use hub::FakeHub;
pub use llm::{Script, ScriptedLlm};
pub use paths::{assets_dir, corpus_dir, corpus_documents};
pub use postgres::PgDatabase;
pub use s3::{S3_REGION, S3Bucket};
pub use store::InMemoryStore;
