//! Prompt-processing and generation speed of [`LocalLlm`], measured through its public
//! `LlmBackend` API; the ragd half of `cargo xtask bench-llm`, which runs llama.cpp's
//! `llama-bench` beside it on the same GGUF.
//!
//! ```text
//! bench_llm --model FILE [--threads N] [--pp 512] [--tg 128] [--reps 3]
//! ```
//!
//! Prints one JSON line per measurement: `{"test":"pp512","tokens":512,"seconds":..,
//! "tokens_per_s":..}`. What is timed, matching `llama-bench`'s tests as closely as the
//! API allows:
//!
//! - `ppN`: a `complete` call whose rendered prompt has N tokens and `max_new_tokens` 1,
//!   each repetition with another first word so the prompt cache cannot skip the prompt
//!   (the tokens it did skip, the template's opening, are not counted).
//!   The worker evaluates the prompt and samples one token without decoding it again, so
//!   the time is the prompt evaluation plus ragd's own work around it (chat template,
//!   tokenising, queueing, one greedy sample).
//! - `tgN`: a stream with a short prompt and `max_new_tokens` N + 1; the clock runs from
//!   the first text delta to `Done`, which covers N single-token decodes, each with a
//!   greedy sample, detokenising and a channel send. The model may end its answer early;
//!   the tokens actually generated are reported and used for the rate.
//!
//! Built by the serving build (`cargo build --profile serving-lto --workspace --bins
//! --examples`, everything optimised), which is what `cargo xtask bench llm` runs.

#![allow(clippy::print_stdout, clippy::print_stderr)] // A command-line tool reports on stdout.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;
use ragd_core::{
    ChatMessage, ChatRole, CompletionDelta, CompletionRequest, GenerationSettings, LlmBackend,
};
use ragd_llm_backends::{LocalLlm, LocalLlmConfig};

type BoxError = Box<dyn Error + Send + Sync>;

/// Command-line options.
#[derive(Debug)]
struct Options {
    model: PathBuf,
    threads: Option<i32>,
    pp: usize,
    tg: u32,
    reps: usize,
}

fn parse(args: &[String]) -> Result<Options, BoxError> {
    let mut options = Options { model: PathBuf::new(), threads: None, pp: 512, tg: 128, reps: 3 };
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => options.model = PathBuf::from(value),
            "--threads" => options.threads = Some(value.parse()?),
            "--pp" => options.pp = value.parse()?,
            "--tg" => options.tg = value.parse()?,
            "--reps" => options.reps = value.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if options.model.as_os_str().is_empty() {
        return Err(
            "usage: bench_llm --model FILE [--threads N] [--pp N] [--tg N] [--reps N]".into()
        );
    }
    Ok(options)
}

fn greedy(max_new_tokens: u32) -> GenerationSettings {
    GenerationSettings {
        temperature: 0.0,
        repetition_penalty: 1.0,
        max_new_tokens,
        ..GenerationSettings::default()
    }
}

fn ask(content: String, settings: GenerationSettings) -> CompletionRequest {
    CompletionRequest { messages: vec![ChatMessage { role: ChatRole::User, content }], settings }
}

fn report(test: &str, tokens: u32, seconds: f64) {
    let line = serde_json::json!({
        "test": test,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": f64::from(tokens) / seconds,
    });
    println!("{line}");
}

/// A user message whose rendered prompt has `target` tokens (or as close as one-token
/// words allow): the template's own tokens are measured first.
async fn prompt_of(llm: &LocalLlm, target: usize) -> Result<String, BoxError> {
    let probe = llm.complete(ask("hello".to_owned(), greedy(1))).await?;
    let overhead = usize::try_from(probe.usage.prompt_tokens)? - llm.count_tokens("hello")?;
    let words =
        target.checked_sub(overhead).ok_or("the prompt target is below the template size")?;
    let mut content = "hello".to_owned();
    content.push_str(&" hello".repeat(words.saturating_sub(1)));
    // Merged or split words would shift the count; trim or pad once.
    let counted = overhead + llm.count_tokens(&content)?;
    if counted > target {
        for _ in 0..counted - target {
            content.truncate(content.rfind(' ').unwrap_or(content.len()));
        }
    }
    Ok(content)
}

/// First words that make each repetition's prompt differ from the one before, so the
/// prompt cache (which keeps what a sequence still holds) shares only the template's opening.
const FIRST_WORDS: [&str; 8] =
    ["apple", "river", "green", "stone", "cloud", "music", "table", "light"];

async fn prompt_processing(llm: &LocalLlm, options: &Options) -> Result<(), BoxError> {
    let content = prompt_of(llm, options.pp).await?;
    for rep in 0..options.reps {
        let content = content.replacen("hello", FIRST_WORDS[rep % FIRST_WORDS.len()], 1);
        let started = Instant::now();
        let completion = llm.complete(ask(content, greedy(1))).await?;
        let seconds = started.elapsed().as_secs_f64();
        // Only the tokens evaluated count: a cached prefix was not read again.
        let usage = completion.usage;
        let tokens = usage.prompt_tokens - usage.cached_prompt_tokens;
        report(&format!("pp{}", options.pp), tokens, seconds);
    }
    Ok(())
}

async fn generation(llm: &LocalLlm, options: &Options) -> Result<(), BoxError> {
    const PROMPT: &str = "Count from 1 to 1000, separated by commas.";
    for _ in 0..options.reps {
        let mut stream = llm.stream(ask(PROMPT.to_owned(), greedy(options.tg + 1))).await?;
        let mut first_delta: Option<Instant> = None;
        let mut generated = 0;
        while let Some(delta) = stream.next().await {
            match delta? {
                CompletionDelta::Text(_) => {
                    first_delta.get_or_insert_with(Instant::now);
                }
                CompletionDelta::Done { usage, .. } => generated = usage.completion_tokens,
            }
        }
        let first = first_delta.ok_or("the model generated no text")?;
        let seconds = first.elapsed().as_secs_f64();
        // The first token is sampled from the prompt's logits; every later one is a decode.
        report(&format!("tg{}", options.tg), generated.saturating_sub(1), seconds);
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    let mut config = LocalLlmConfig::new(&options.model);
    config.threads = options.threads;
    let context = options.pp + usize::try_from(options.tg)? + 64;
    config.context_length = Some(u32::try_from(context.max(512))?);
    // One request at a time, as llama-bench runs one sequence.
    config.parallel = 1;
    let llm = tokio::task::spawn_blocking(move || LocalLlm::load(&config)).await??;
    // Warm-up, as llama-bench does one run before measuring.
    llm.complete(ask("hello".to_owned(), greedy(8))).await?;
    prompt_processing(&llm, &options).await?;
    generation(&llm, &options).await?;
    Ok(())
}
