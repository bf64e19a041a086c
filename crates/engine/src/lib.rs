//! The embeddable ragd engine: one start-up sequence that wires the embedder, the vector
//! store, the catalog and the model manager, and hands out the services over them.
//!
//! A Rust program that embeds ragd depends on this crate alone and gets the same start-up
//! rules as the `ragd` server and its CLI verbs, which are thin views over it:
//!
//! - [`Engine::open`] wires the defaults (the ONNX Runtime embedder with feature `ort`,
//!   LanceDB with feature `lance`, the model manager with llama.cpp with feature `llama`,
//!   all on by default; SQLite) under one data directory;
//! - [`Engine::builder`] takes trait objects ([`ragd_core::Embedder`],
//!   [`ragd_core::VectorStore`], [`ragd_core::LlmBackend`]) to swap any backend;
//! - [`Engine::documents`], [`Engine::search`], [`Engine::chat`], [`Engine::models`] and
//!   [`Engine::monitor`] hand out the services; [`Engine::health`] watches the components.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use ragd_engine::{Engine, EngineConfig};
//! use ragd_engine::chat::{CreateSession, SendMessage};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open(EngineConfig::new("data", "/opt/ragd/assets")).await?;
//! let ingested = engine.documents().ingest_file("notes.md".as_ref()).await?;
//! engine.documents().wait_until_done(ingested.document.id, Duration::from_secs(60)).await?;
//! engine.wait_for_model(Duration::from_secs(60)).await?;
//! let session = engine.chat().create_session(CreateSession::default()).await?;
//! let reply = engine.chat().send(session.id, SendMessage::new("What do my notes say?")).await?;
//! let reply = reply.finish().await?;
//! println!("{} ({} sources)", reply.assistant_message.content, reply.citations.len());
//! # Ok(())
//! # }
//! ```
//!
//! `examples/rag.rs` runs the same steps against the bundled models.

pub mod config;
mod defaults;
mod engine;
mod error;
mod health;
mod index;
#[cfg(feature = "ort")]
mod onnx;
#[cfg(feature = "lance")]
mod uploads;

pub use config::{EXTRACT_WORKER_VERB, EngineConfig};
pub use defaults::{hub_config, model_manager, monitor_config};
pub use engine::{Engine, EngineBuilder};
pub use error::{Error, Result};
pub use health::{Component, Health, HealthStatus};
pub use index::{BuildPhase, BuildProgress, BuildReport, GenerationInfo, IndexStatus};
#[cfg(feature = "lance")]
pub use uploads::ObjectUploads;

/// The services' crates, so a program needs no other ragd dependency for their types.
pub use ragd_catalog as catalog;
pub use ragd_chat as chat;
pub use ragd_core as core;
pub use ragd_ingest as ingest;
pub use ragd_llm_backends as llm;
pub use ragd_search as search;
pub use ragd_telemetry as telemetry;
