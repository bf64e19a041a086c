//! `ragd sync DIR [--collection NAME]`: make the documents that came from a folder match
//! it (`ragd_ingest::sync`): new files are added, changed ones replaced, deleted ones
//! removed, with a progress bar; a second run with nothing changed says so.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ragd::Config;
use ragd_core::DocumentStatus;
use ragd_ingest::{SyncChange, SyncItem};

/// How long one document may take before the CLI gives up waiting for it.
const PER_DOCUMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// The line printed for one item.
fn line(item: &SyncItem) -> Option<String> {
    match &item.change {
        SyncChange::Added(id) => Some(format!("+ {} ({id})", item.path)),
        SyncChange::Updated(id) => Some(format!("~ {} ({id})", item.path)),
        SyncChange::Removed(id) => Some(format!("- {} ({id})", item.path)),
        SyncChange::Failed(reason) => Some(format!("✗ {}: {reason}", item.path)),
        SyncChange::Duplicate(id) => {
            Some(format!("= {} (same bytes as document {id}; not synced)", item.path))
        }
        SyncChange::Unchanged(_) => None,
    }
}

/// Syncs, waits for new documents to be processed, prints a summary; fails when a file
/// was refused or failed.
#[allow(clippy::print_stdout)] // The summary is this verb's output.
pub(crate) fn run(
    config: &Config,
    folder: &Path,
    collection: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = crate::offline_engine(config, true).await?;
        let documents = engine.documents();
        // A named collection that does not exist yet is created.
        let collection = match collection {
            None => None,
            Some(name) => Some(match documents.collection(name).await {
                Ok(found) => found.id,
                Err(err) if err.kind() == ragd_core::ErrorKind::NotFound => {
                    documents.create_collection(name.to_owned(), None).await?.id
                }
                Err(err) => return Err(err.into()),
            }),
        };

        let bar = ProgressBar::new(0);
        bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")?);
        let items = documents
            .sync_folder(folder, collection, |done, total, item| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(item.path.clone());
                if let Some(text) = line(item) {
                    bar.suspend(|| println!("{text}"));
                }
            })
            .await?;

        let mut failed = items.iter().filter(|i| matches!(i.change, SyncChange::Failed(_))).count();
        let new: Vec<_> = items
            .iter()
            .filter_map(|item| match &item.change {
                SyncChange::Added(id) | SyncChange::Updated(id) => Some((item, *id)),
                SyncChange::Unchanged(_)
                | SyncChange::Removed(_)
                | SyncChange::Duplicate(_)
                | SyncChange::Failed(_) => None,
            })
            .collect();
        bar.set_length(new.len() as u64);
        bar.set_position(0);
        for (item, id) in &new {
            bar.set_message(format!("processing {}", item.path));
            let document = documents.wait_until_done(*id, PER_DOCUMENT_TIMEOUT).await?;
            if document.status != DocumentStatus::Ready {
                failed += 1;
                let reason = document.error.unwrap_or_default();
                bar.suspend(|| println!("✗ {} ({id}): {reason}", item.path));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();

        let count = |f: fn(&SyncChange) -> bool| items.iter().filter(|i| f(&i.change)).count();
        let added = count(|c| matches!(c, SyncChange::Added(_)));
        let updated = count(|c| matches!(c, SyncChange::Updated(_)));
        let removed = count(|c| matches!(c, SyncChange::Removed(_)));
        let unchanged = count(|c| matches!(c, SyncChange::Unchanged(_)));
        let duplicates = count(|c| matches!(c, SyncChange::Duplicate(_)));
        let skipped = if duplicates > 0 {
            format!(" ({duplicates} duplicates of other documents skipped)")
        } else {
            String::new()
        };
        if added + updated + removed + failed == 0 {
            println!("nothing changed: {unchanged} files up to date{skipped}");
        } else {
            println!(
                "{added} added, {updated} updated, {removed} removed, {unchanged} unchanged, {failed} failed{skipped}"
            );
        }
        if failed > 0 {
            return Err(format!("{failed} files were refused or failed").into());
        }
        Ok(())
    })
}
