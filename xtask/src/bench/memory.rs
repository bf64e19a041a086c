//! `cargo xtask bench memory`: ragd's resident memory at idle with both bundled models
//! loaded, and its peak while ingesting a large text.
//!
//! `ragd serve` (the serving build) starts on a fresh data directory with the bundled
//! SmolLM2 and MiniLM; `xtask/bench/memory.py` reads the resident set of ragd and every
//! process below it from `/proc`: idle once the chat model is loaded, then while a text of
//! `--text-mb` million bytes is extracted, chunked and embedded. Embedding 100 MB takes
//! more than an hour here, so the run stops after `--embed-seconds` of embedding and
//! deletes the document; the table says how far it got. There is no peer: the Python
//! pipeline's peak RSS is in `bench ingest`'s table, on the same corpus as ragd's.

use std::fmt::Write as _;

use super::{Setup, json_line, number};
use crate::Result;
use crate::local_server::{ServeOptions, serve_ragd};

const USAGE: &str = "usage: cargo xtask bench memory [--text-mb N] [--embed-seconds S]";

pub(super) fn run(args: &[String]) -> Result<()> {
    let mut text_mb = 100_u64;
    let mut embed_seconds = 120_u64;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let parsed = value.parse().map_err(|err| format!("{arg}: {err}\n{USAGE}"))?;
        match arg.as_str() {
            "--text-mb" => text_mb = parsed,
            "--embed-seconds" => embed_seconds = parsed,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let setup = Setup::new("memory")?;
    let data = setup.work.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let threads = 2;
    // 100 MB of text is about 106 000 chunks, past the default guard of 50 000 per document.
    let env = [
        ("RAGD_EMBEDDING__INTRA_OP_THREADS", threads.to_string()),
        ("RAGD_INGEST__MAX_CHUNKS_PER_DOCUMENT", "1000000".to_owned()),
    ];
    let options = ServeOptions { bundled_model: true, env: &env, ..ServeOptions::default() };
    let (server, port) = serve_ragd(&setup.out.join("ragd"), &data, &setup.assets, options)?;
    let mut script = setup.script("memory.py");
    script
        .args(["--ragd", &format!("http://127.0.0.1:{port}"), "--pid", &server.0.id().to_string()])
        .args(["--text-mb", &text_mb.to_string(), "--embed-seconds", &embed_seconds.to_string()])
        .arg("--work")
        .arg(setup.work.join("input"));
    let result = json_line(script)?;
    drop(server);
    let mut section =
        super::header("Memory", &format!("cargo xtask bench memory {}", args.join(" ")));
    section.push_str(&table(&result, threads)?);
    super::append(&section)
}

/// The description and table of `memory.py`'s result.
fn table(result: &serde_json::Value, threads: usize) -> Result<String> {
    let mut out = String::new();
    let text_mb = number(result, "text_mb")?;
    let _ = writeln!(
        out,
        "- measured: the resident set (`VmRSS`) of `ragd serve` and every process below it \
         (extraction workers), from `/proc`, twice a second; ragd with the bundled \
         SmolLM2-135M Q4_1 loaded and the embedding model (MiniLM-L6, {threads} intra-op \
         threads), on a fresh data directory, `ingest.max_chunks_per_document` raised to \
         1,000,000 (the default guard of 50,000 refuses a text this long)\n- idle: the median of ten samples over five \
         seconds once the chat model is loaded\n- ingesting: one upload of {text_mb:.0} \
         million bytes of text (`xtask/bench/memory.py`, deterministic prose-like \
         paragraphs), followed through its states; stopped after {:.0} s of embedding \
         ({:.0} % of the chunks embedded) and deleted\n",
        number(result, "embed_seconds")?,
        number(result, "embed_progress")?,
    );
    let _ = writeln!(out, "| moment | peak resident MB | seconds in the state |\n|---|---:|---:|");
    let _ =
        writeln!(out, "| idle, both models loaded | {:.0} | – |", number(result, "idle_rss_mb")?);
    let phases = result
        .get("phases")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| format!("memory.py reported no phases: {result}"))?;
    for state in ["queued", "extracting", "chunking", "embedding", "ready"] {
        if let Some(phase) = phases.get(state) {
            let _ = writeln!(
                out,
                "| ingesting {text_mb:.0} MB: {state} | {:.0} | {:.1} |",
                number(phase, "peak_rss_mb")?,
                number(phase, "seconds")?
            );
        }
    }
    let _ = writeln!(
        out,
        "| ingesting {text_mb:.0} MB: whole run | {:.0} | – |",
        number(result, "peak_rss_mb")?
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_idle_every_state_seen_and_the_peak() {
        let result = serde_json::json!({
            "idle_rss_mb": 412.4, "text_mb": 100, "peak_rss_mb": 1500.2,
            "embed_progress": 3, "embed_seconds": 120.5,
            "phases": {
                "extracting": {"peak_rss_mb": 700.0, "seconds": 2.0},
                "chunking": {"peak_rss_mb": 1500.2, "seconds": 80.0},
                "embedding": {"peak_rss_mb": 900.0, "seconds": 120.5},
            },
        });
        let section = table(&result, 2).unwrap();
        assert!(section.contains("| idle, both models loaded | 412 | – |"), "{section}");
        assert!(section.contains("| ingesting 100 MB: chunking | 1500 | 80.0 |"), "{section}");
        assert!(section.contains("| ingesting 100 MB: whole run | 1500 | – |"), "{section}");
        assert!(section.contains("(3 % of the chunks embedded)"), "{section}");
        assert!(!section.contains("MB: ready"), "{section}");
        assert!(table(&serde_json::json!({"text_mb": 1}), 2).is_err());
    }
}
