//! `cargo xtask bench llm --concurrency 1,2,4,8`: several chats at once on the local model,
//! ragd against llama.cpp's `llama-server --parallel N` (continuous batching) on the same
//! GGUF, the same per-request context and the same threads.
//!
//! For each concurrency N both servers are started fresh, ragd with `models.parallel = N`,
//! and `concurrency.py` (the official `openai` SDK, asynchronous) sends N streamed chat
//! completions at once, rounds alternating servers after a warm-up round each. Both are
//! measured the same way, over HTTP on loopback: aggregate tokens/s (every generated token
//! of a round over its wall time), each request's decode rate after its first token, and
//! time to first token.

use std::fmt::Write as _;
use std::process::Command;

use super::http::{PeerOptions, llama_server, loaded_models, model_of_kind};
use super::{header, number};
use crate::Result;
use crate::local_server::{ServeOptions, serve_ragd};

/// The API key ragd requires during the run.
const KEY: &str = "bench-key";

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// The concurrency levels.
    levels: Vec<usize>,
    /// Measured rounds per level and server.
    rounds: usize,
    /// Tokens each request generates.
    tokens: usize,
    /// The context of one request.
    context: u64,
    /// Append the table to `docs/BENCHMARKS.md`.
    record: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut options =
            Self { levels: Vec::new(), rounds: 3, tokens: 128, context: 1024, record: false };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            if flag == "--record" {
                options.record = true;
                continue;
            }
            let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |value: &str| -> Result<usize> {
                match value.parse::<usize>() {
                    Ok(0) | Err(_) => Err(format!("{flag} {value}: not a positive number")),
                    Ok(n) => Ok(n),
                }
            };
            match flag.as_str() {
                "--concurrency" => {
                    options.levels = value.split(',').map(number).collect::<Result<_>>()?;
                }
                "--rounds" => options.rounds = number(value)?,
                "--tokens" => options.tokens = number(value)?,
                "--context" => options.context = u64::try_from(number(value)?).unwrap_or(u64::MAX),
                other => return Err(format!("unknown option {other}\n\n{USAGE}")),
            }
        }
        if options.levels.is_empty() {
            return Err(USAGE.to_owned());
        }
        Ok(options)
    }
}

const USAGE: &str = "usage: cargo xtask bench llm --concurrency 1,2,4,8 [--rounds 3] \
                     [--tokens 128] [--context 1024] [--record]";

/// Whether `args` ask for this benchmark rather than the `llama-bench` comparison.
pub(crate) fn wanted(args: &[String]) -> bool {
    args.iter().any(|arg| arg == "--concurrency")
}

/// One concurrency level's figures.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    n: usize,
    /// ragd's then the peer's: aggregate tokens/s, per-request tokens/s, TTFT ms (medians),
    /// TTFT p90, prompt tokens (median).
    ragd: [f64; 5],
    peer: [f64; 5],
}

/// Runs the benchmark.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let assets = crate::setup()?;
    let ragd_binary = crate::Build::Serving.run()?.join("ragd");
    let python = crate::clients::python()?;
    let gguf = assets.join(ragd_core::assets::CHAT_MODEL.path);
    // ragd's default for its generation thread: half the logical CPUs, at least one.
    let threads =
        (std::thread::available_parallelism().map_or(1, std::num::NonZero::get) / 2).max(1);
    let work = crate::target_dir()?.join("ragd-bench/llm-concurrency");

    let mut rows = Vec::new();
    for &n in &options.levels {
        eprintln!("xtask: bench llm: concurrency {n}");
        let data = work.join(format!("data-{n}"));
        let _ = std::fs::remove_dir_all(&data);
        let env = [
            ("RAGD_MODELS__PARALLEL", n.to_string()),
            ("RAGD_MODELS__CONTEXT_LENGTH", options.context.to_string()),
            // The OpenAI chat route takes a chat generation slot too.
            ("RAGD_CHAT__MAX_CONCURRENT_GENERATIONS", n.to_string()),
        ];
        let (server, port) = serve_ragd(
            &ragd_binary,
            &data,
            &assets,
            ServeOptions { bundled_model: true, api_key: Some(KEY), env: &env },
        )?;
        let ragd = format!("http://127.0.0.1:{port}/v1");
        let listed = loaded_models(&ragd, KEY)?;
        let chat = model_of_kind(&listed, "chat").ok_or("ragd has no chat model")?;
        let chat_id = chat["id"].as_str().unwrap_or_default().to_owned();
        let peer_options =
            PeerOptions { context: options.context, parallel: n, threads, embeddings: false };
        let (peer, peer_port) = llama_server(&gguf, peer_options)?;

        let script = crate::workspace_root().join("xtask/src/bench/concurrency.py");
        let mut cmd = Command::new(&python);
        crate::clean_cargo_env(&mut cmd);
        cmd.arg(script)
            .args([&ragd, KEY, &chat_id])
            .args([&format!("http://127.0.0.1:{peer_port}/v1"), "none", "peer"])
            .args(["--n", &n.to_string(), "--rounds", &options.rounds.to_string()])
            .args(["--tokens", &options.tokens.to_string()]);
        let result = super::json_line(cmd)?;
        drop((peer, server));

        let figures = |server: &str| -> Result<[f64; 5]> {
            Ok([
                number(&result, &format!("{server}.aggregate.median"))?,
                number(&result, &format!("{server}.rate.median"))?,
                number(&result, &format!("{server}.ttft_ms.median"))?,
                number(&result, &format!("{server}.ttft_ms.p90"))?,
                number(&result, &format!("{server}.prompt_tokens.median"))?,
            ])
        };
        rows.push(Row { n, ragd: figures("ragd")?, peer: figures("peer")? });
    }

    let command = format!(
        "cargo xtask bench llm --concurrency {} --rounds {} --tokens {} --context {}",
        options.levels.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        options.rounds,
        options.tokens,
        options.context
    );
    let context = options.context;
    let mut out =
        header("LLM: concurrent generation, ragd vs `llama-server --parallel N`", &command);
    let _ = writeln!(
        out,
        "- setup: the bundled `{}` on both; ragd `serve` with `models.parallel = N` and \
         `models.context_length = {context}` ({threads} generation thread(s), its default), \
         `chat.max_concurrent_generations = N`; llama.cpp's `llama-server --ctx-size \
         N×{context} --parallel N --threads {threads} --kv-unified` (N = the concurrency; one KV \
         cache of N times the per-request context, as ragd's); llama.cpp {} in both, optimised in both (ragd links it as built by \
         `llama-cpp-sys-2`'s cmake in Release)",
        ragd_core::assets::CHAT_MODEL.path,
        crate::llama::ToolsDir::locate()?.llama_cpp(),
    );
    let _ = writeln!(
        out,
        "- client: `xtask/src/bench/concurrency.py`, the `openai` SDK over HTTP on loopback to \
         both: N streamed chat completions at once, each `max_tokens {}` of a very long essay \
         (the script fails a request that ends early) after the same system message, \
         temperature 0, a different question per request and round \
         (both keep their prompt caches as they ship, so each may skip the system message, \
         never a question); one warm-up round each, then {} rounds \
         alternating which server goes first",
        options.tokens, options.rounds
    );
    let _ = writeln!(out, "- load average before the last level: {}\n", super::load_average());
    let _ = writeln!(
        out,
        "| concurrency | ragd aggregate tokens/s | peer aggregate tokens/s | ragd ÷ peer | ragd \
         per-request tokens/s | peer per-request tokens/s | ragd TTFT ms (median / p90) | peer \
         TTFT ms (median / p90) | prompt tokens, ragd / peer |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for Row { n, ragd, peer } in &rows {
        let _ = writeln!(
            out,
            "| {n} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / \
             {:.0} |",
            ragd[0],
            peer[0],
            ragd[0] / peer[0],
            ragd[1],
            peer[1],
            ragd[2],
            ragd[3],
            peer[2],
            peer[3],
            ragd[4],
            peer[4]
        );
    }
    println!("{out}");
    if options.record {
        super::append(&out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::args;

    #[test]
    fn options_are_parsed() {
        let options = Options::parse(&args(&["--concurrency", "1,2,4", "--tokens", "64"])).unwrap();
        assert_eq!(options.levels, vec![1, 2, 4]);
        assert_eq!(options.tokens, 64);
        assert!(!options.record);
        assert!(Options::parse(&args(&["--concurrency", "1,0"])).is_err());
        assert!(Options::parse(&args(&["--tokens", "8"])).is_err());
        assert!(wanted(&args(&["--rounds", "2", "--concurrency", "4"])));
        assert!(!wanted(&args(&["--rounds", "2"])));
    }
}
