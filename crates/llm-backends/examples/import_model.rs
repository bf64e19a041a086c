//! Imports a Hugging Face model folder into GGUF with [`import_folder`] and prints how long
//! it took: the ragd half of the import rows of `cargo xtask bench llm --imports`.
//!
//! ```text
//! import_model --folder DIR --out FILE [--quantization none|q8_0|q4_k_m] [--threads N]
//! ```
//!
//! Prints one JSON line: `{"quantization":..,"seconds":..,"size_bytes":..,"tensors":..}`.

#![allow(clippy::print_stdout)] // A command-line tool reports on stdout.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use ragd_llm_backends::import::{ImportOptions, Quantization, import_folder};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut folder, mut out) = (PathBuf::new(), PathBuf::new());
    let mut quantization = Quantization::None;
    let mut threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--folder" => folder = PathBuf::from(value),
            "--out" => out = PathBuf::from(value),
            "--quantization" => quantization = Quantization::parse(value)?,
            "--threads" => threads = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if folder.as_os_str().is_empty() || out.as_os_str().is_empty() {
        return Err(
            "usage: import_model --folder DIR --out FILE [--quantization Q] [--threads N]".into()
        );
    }
    let options = ImportOptions { quantization, name: "bench".to_owned(), threads };
    let started = Instant::now();
    let report = import_folder(&folder, &out, &options, &|_, _| {})?;
    let line = serde_json::json!({
        "quantization": quantization.as_str(),
        "seconds": started.elapsed().as_secs_f64(),
        "size_bytes": report.size_bytes,
        "tensors": report.tensors,
    });
    println!("{line}");
    Ok(())
}
