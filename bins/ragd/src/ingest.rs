//! `ragd ingest PATH...`: ingest files and folders with a progress bar, through the same
//! documents service the server uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ragd::Config;
use ragd_core::{DocumentId, DocumentStatus};

/// How long one document may take before the CLI gives up waiting for it.
const PER_DOCUMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Collects the files under `paths` (folders recursively, hidden entries skipped), sorted.
fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if path.is_dir() {
            for entry in std::fs::read_dir(path)? {
                let entry = entry?;
                if !entry.file_name().to_string_lossy().starts_with('.') {
                    walk(&entry.path(), out)?;
                }
            }
        } else if path.is_file() {
            out.push(path.to_path_buf());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files)?;
    }
    files.sort();
    Ok(files)
}

/// Prints one result line to stdout above the progress bar (which only draws on a
/// terminal, so the lines are kept when the output is piped).
#[allow(clippy::print_stdout)] // Result lines are this verb's output.
fn report(bar: &ProgressBar, line: String) {
    bar.suspend(|| println!("{line}"));
}

/// Ingests every file, waits for each to be `ready` or `failed`, and prints a summary.
/// Fails when any file was refused or failed, so scripts can tell.
#[allow(clippy::print_stdout)] // The summary is this verb's output.
pub(crate) fn run(config: &Config, paths: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let files = collect_files(paths)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // The same start-up as the server, without the chat model this verb never uses.
        let engine = ragd_engine::Engine::builder(config.engine_config())
            .autoload_model(false)
            .rebuild_index(false)
            .build()
            .await?;
        let documents = engine.documents();

        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")?);
        let mut queued: Vec<(PathBuf, DocumentId)> = Vec::new();
        let mut problems = 0usize;
        for file in &files {
            bar.set_message(format!("uploading {}", file.display()));
            match documents.ingest_file(file).await {
                Ok(ingested) if ingested.duplicate => {
                    report(
                        &bar,
                        format!(
                            "= {} (already stored as {})",
                            file.display(),
                            ingested.document.id
                        ),
                    );
                    bar.inc(1);
                }
                Ok(ingested) => queued.push((file.clone(), ingested.document.id)),
                Err(err) => {
                    report(&bar, format!("✗ {}: {err}", file.display()));
                    bar.inc(1);
                    problems += 1;
                }
            }
        }
        for (file, id) in &queued {
            bar.set_message(format!("processing {}", file.display()));
            let document = documents.wait_until_done(*id, PER_DOCUMENT_TIMEOUT).await?;
            match document.status {
                DocumentStatus::Ready => report(&bar, format!("✓ {} ({id})", file.display())),
                DocumentStatus::Failed
                | DocumentStatus::Queued
                | DocumentStatus::Extracting
                | DocumentStatus::Chunking
                | DocumentStatus::Embedding => {
                    problems += 1;
                    let reason = document.error.unwrap_or_default();
                    report(&bar, format!("✗ {} ({id}): {reason}", file.display()));
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        println!(
            "{} files: {} ok, {problems} refused or failed",
            files.len(),
            files.len() - problems
        );
        if problems > 0 {
            return Err(
                format!("{problems} of {} files were refused or failed", files.len()).into()
            );
        }
        Ok(())
    })
}
