//! Retrieval-augmented generation with nothing but `ragd-engine`: open an engine on a
//! temporary data directory with the bundled models, ingest a file, search it, ask a
//! question and print the answer with the chunk it cites.
//!
//! `cargo run -p ragd-engine --example rag -- ~/.cache/ragd/assets fixtures/docs/handbook.md "How many days of leave?"`

#![allow(clippy::print_stdout)] // Printing is what this example is for.

use std::time::Duration;

use ragd_engine::chat::{CreateSession, SendMessage};
use ragd_engine::search::{HybridOptions, SearchQuery};
use ragd_engine::{Engine, EngineConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: rag ASSETS_DIR FILE [QUESTION]";
    let mut args = std::env::args().skip(1);
    let (assets, file) = (args.next().ok_or(usage)?, args.next().ok_or(usage)?);
    let question = args.next().unwrap_or_else(|| "What is this document about?".to_owned());
    let data = tempfile::tempdir()?;

    let engine = Engine::open(EngineConfig::new(data.path(), assets)).await?;
    let ingested = engine.documents().ingest_file(file.as_ref()).await?;
    let id = ingested.document.id;
    let document = engine.documents().wait_until_done(id, Duration::from_secs(120)).await?;
    println!("{}: {:?}", document.filename, document.status);

    let query = SearchQuery {
        text: question.clone(),
        top_k: 3,
        document_ids: vec![id],
        collection_ids: Vec::new(),
        filter: ragd_core::MetadataFilter::default(),
    };
    for hit in engine.search().hybrid(&query, HybridOptions::default()).await? {
        println!("  {:.3} {}", hit.score, hit.chunk.text.lines().next().unwrap_or_default());
    }

    engine.wait_for_model(Duration::from_secs(120)).await?;
    let session = engine.chat().create_session(CreateSession::default()).await?;
    let reply = engine.chat().send(session.id, SendMessage::new(question)).await?;
    let reply = reply.finish().await?;
    println!("{}", reply.assistant_message.content.trim());
    let cited = reply.citations.first().ok_or("the answer cites no chunk")?;
    let chunk = engine.documents().chunk(cited.chunk_id).await?;
    println!("[{}] {}: {}", cited.number, cited.filename, chunk.text);
    Ok(())
}
