//! `ragd reembed`: rebuild the vector index with the configured embedding model, in the
//! foreground with a progress bar. When the configured model differs from the index's, the
//! engine has already started that rebuild at open; this verb follows it to the end.
//! Otherwise it re-embeds with the same model (after a model file changed under its id).
//! Run it with no server on the data directory: one process builds at a time.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ragd::Config;
use ragd_core::ErrorKind;

/// How often the progress bar is refreshed.
const POLL: Duration = Duration::from_millis(200);

/// Runs or follows the rebuild and prints what it did.
#[allow(clippy::print_stdout)] // The summary is this verb's output.
pub(crate) fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // The server's start-up without the chat model and the system sampler; a re-embed
        // the configured model needs starts (or resumes) at open.
        let engine = ragd_engine::Engine::builder(config.engine_config())
            .autoload_model(false)
            .system_monitor(false)
            .build()
            .await?;
        let status = engine.index_status()?;
        if status.building.is_none() {
            match engine.reembed().await {
                Ok(_) => {}
                // Started by the engine at open: follow it.
                Err(err) if err.kind() == ErrorKind::Conflict => {}
                Err(err) => return Err(err.into()),
            }
        }
        let bar = ProgressBar::new(100);
        bar.set_style(ProgressStyle::with_template("{bar:30} {pos}% {wide_msg}")?);
        let report = loop {
            let status = engine.index_status()?;
            if let Some(building) = &status.building {
                bar.set_position(u64::from(building.percent));
                bar.set_message(format!(
                    "{} {}/{} ({:?})",
                    building.target.model_id, building.done, building.total, building.phase
                ));
            } else if let Some(report) = status.last_build {
                // Done once the old tables are dropped too.
                if !status.running {
                    break report;
                }
            } else {
                let reason = status.error.unwrap_or_else(|| "the re-embed stopped".to_owned());
                return Err(reason.into());
            }
            tokio::time::sleep(POLL).await;
        };
        bar.finish_and_clear();
        println!(
            "re-embedded {} chunks and {} remembered exchanges with {} in {:.1} s ({:.1} chunks/s); \
             index generation {} is in use",
            report.chunks,
            report.memories,
            report.target.model_id,
            report.seconds,
            report.chunks_per_second,
            report.target.generation
        );
        Ok(())
    })
}
