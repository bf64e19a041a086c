//! `ragd models import`: a Hugging Face model (a folder, a hub repo id, or a folder the
//! registry lists) imported into GGUF in the models folder, with a progress bar, as a
//! server's load would do it, so that the load finds the file ready.

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ragd::Config;
use ragd_llm_backends::import::Quantization;
use ragd_llm_backends::manager::LoadState;

/// Imports `model` at `quantization` and prints where the GGUF file is.
#[allow(clippy::print_stdout)] // The result is this verb's output.
pub(crate) fn import(
    config: &Config,
    model: &str,
    quantization: Quantization,
) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let manager = ragd_engine::model_manager(&config.engine_config());
    let bar = ProgressBar::new(100);
    bar.set_style(ProgressStyle::with_template("{msg:12} {bar:30} {pos:>3}% {elapsed}")?);
    let shown = bar.clone();
    let report = Arc::new(move |state: LoadState| {
        let percent = match &state {
            LoadState::Downloading { percent, .. }
            | LoadState::Converting { percent }
            | LoadState::Quantizing { percent } => *percent,
            LoadState::NotLoaded
            | LoadState::Loading
            | LoadState::Loaded
            | LoadState::Failed { .. }
            | LoadState::Unloading => return,
        };
        shown.set_message(state.as_str());
        shown.set_position(u64::from(percent));
    });
    let started = Instant::now();
    let path = runtime.block_on(manager.import_model(model, quantization, report));
    bar.finish_and_clear();
    let path = path?;
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "{model} ({quantization}) is {} ({:.1} MB, {:.1} s); load it with `model: {model:?}` \
         and `quantization: \"{quantization}\"`",
        path.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
