//! The `ragd` command line: reads configuration, installs logging, wires the concrete
//! implementations together and runs the requested verb.
//!
//! This is the only place (with `xtask`) that reads the process environment (architecture
//! invariant 4).

#![allow(clippy::disallowed_methods)] // The binary is where the environment is read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod chat;
mod eval;
mod ingest;
mod models;
mod reembed;
mod search;
mod sync;

use clap::{Parser, Subcommand};
use ragd::config::{Config, ConfigFile, Env, LogFormat, Overrides};
use ragd::{AppState, Server};
use ragd_llm_backends::import::Quantization;
use search::SearchMode;
use tracing_subscriber::EnvFilter;

/// Retrieval-augmented LLM server.
#[derive(Debug, Parser)]
#[command(name = "ragd", version, about)]
struct Cli {
    /// Config file (TOML); defaults to `./ragd.toml` when it exists.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server.
    Serve {
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Address to bind.
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Ingest files or folders (recursively) into the data directory, with progress.
    Ingest {
        /// Files or folders to ingest.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Search the stored documents and print the hits.
    Search {
        /// What to look for.
        query: String,
        /// `keyword` (BM25), `semantic` (vectors) or `hybrid` (both, fused).
        #[arg(long, value_enum, default_value_t = SearchMode::Hybrid)]
        mode: SearchMode,
        /// How many hits.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// Rerank the hybrid candidates with the configured reranker (`[rerank]`), or not;
        /// without the flag `rerank.by_default` decides.
        #[arg(long, value_name = "BOOL")]
        rerank: Option<bool>,
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Make the documents that came from a folder match it: add new files, replace changed
    /// ones, remove deleted ones (by content hash); running it again changes nothing.
    Sync {
        /// The folder.
        #[arg(value_name = "DIR")]
        folder: PathBuf,
        /// Put the folder's documents in this collection (created when missing).
        #[arg(long, value_name = "NAME")]
        collection: Option<String>,
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Score keyword, semantic and hybrid search on a labelled set of queries (JSON; see
    /// `fixtures/eval/README.md`) against the documents of the data directory.
    Eval {
        /// The labelled set.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Recall is counted in the top K hits, 1 to 100 (MRR and nDCG at 10).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        k: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Re-embed every chunk and remembered exchange with the configured embedding model,
    /// with a progress bar (a server does this by itself when the model changed).
    Reembed {
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage local models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Chat with the loaded model in the terminal (a new session, or `--session ID`).
    Chat {
        /// Resume this session.
        #[arg(long, value_name = "ID")]
        session: Option<ragd_core::SessionId>,
        /// Name of a new session.
        #[arg(long)]
        name: Option<String>,
        /// Most tokens per answer (default: the generation settings).
        #[arg(long)]
        max_new_tokens: Option<u32>,
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Serve the MCP (Model Context Protocol) server over stdin/stdout, for an assistant that
    /// starts ragd itself; returns when the client closes stdin. Logs go to stderr.
    Mcp {
        /// Directory for the database, vectors and uploads.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the SHA-256 digest of an API key, for `[auth] key_sha256`.
    HashKey {
        /// The key.
        key: String,
    },
    /// Print the configuration in force (TOML, secrets left out) and exit.
    Config,
    /// Print system status (CPU, memory, disks, GPUs, ...) as a table, or JSON.
    Status {
        /// Print the full snapshot as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Extract one document sent on stdin (the server's isolated extraction worker).
    #[command(name = ragd_engine::EXTRACT_WORKER_VERB, hide = true)]
    ExtractWorker,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Import a Hugging Face model (a folder of config.json, tokenizer and safetensors files,
    /// or a hub repo id `org/name`) into GGUF in the models folder, with a progress bar; a
    /// later load of the same model and quantization uses the file.
    Import {
        /// The folder, the hub repo id, or an id from `GET /api/v1/models/available`.
        #[arg(value_name = "REPO_OR_DIR")]
        model: String,
        /// `none` (F16), `q8_0` (8-bit) or `q4_k_m` (4-bit).
        #[arg(long, default_value = "none", value_parser = parse_quantization)]
        quantization: Quantization,
    },
}

fn parse_quantization(name: &str) -> Result<Quantization, String> {
    Quantization::parse(name).map_err(|err| err.message().to_owned())
}

/// The engine the offline verbs (`search`, `eval`, `sync`) work on: the server's start-up,
/// without the chat model and the system sampler they never use, and without re-embedding
/// the index (a server on the same data directory may be doing that). The read-only ones
/// (`writes: false`) also skip recovery, so they can run next to a server on the same data
/// directory without deleting an upload it is receiving or resuming a document it is
/// processing.
async fn offline_engine(
    config: &Config,
    writes: bool,
) -> Result<ragd_engine::Engine, ragd_engine::Error> {
    ragd_engine::Engine::builder(config.engine_config())
        .autoload_model(false)
        .system_monitor(false)
        .recover(writes)
        .rebuild_index(false)
        .build()
        .await
}

#[allow(clippy::print_stderr)] // Errors before logging is installed go to stderr directly.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::ExtractWorker) {
        // Before the configuration: the worker needs none, and the server that started it
        // has already read it.
        return extract_worker();
    }
    let overrides = match &cli.command {
        Command::Serve { data_dir, host, port } => {
            Overrides { data_dir: data_dir.clone(), host: host.clone(), port: *port }
        }
        Command::Ingest { data_dir, .. }
        | Command::Search { data_dir, .. }
        | Command::Eval { data_dir, .. }
        | Command::Sync { data_dir, .. }
        | Command::Reembed { data_dir }
        | Command::Chat { data_dir, .. }
        | Command::Mcp { data_dir } => {
            Overrides { data_dir: data_dir.clone(), ..Overrides::default() }
        }
        Command::Config
        | Command::Models { .. }
        | Command::Status { .. }
        | Command::HashKey { .. }
        | Command::ExtractWorker => Overrides::default(),
    };
    let config = match load_config(cli.config, &overrides) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ragd: {err}");
            return ExitCode::from(2);
        }
    };
    // Interactive verbs keep the terminal for their own output unless asked otherwise.
    let quiet = !matches!(cli.command, Command::Serve { .. });
    if let Err(err) = init_tracing(&config, quiet) {
        eprintln!("ragd: invalid log filter {:?}: {err}", config.log.filter);
        return ExitCode::from(2);
    }

    let result = match cli.command {
        Command::Serve { .. } => serve(config),
        Command::Ingest { paths, .. } => ingest::run(&config, &paths),
        Command::Search { query, mode, top_k, rerank, .. } => {
            search::run(&config, &query, mode, top_k, rerank)
        }
        Command::Eval { file, k, json, .. } => eval::run(&config, &file, usize::from(k), json),
        Command::Reembed { .. } => reembed::run(&config),
        Command::Sync { folder, collection, .. } => {
            sync::run(&config, &folder, collection.as_deref())
        }
        Command::Chat { session, name, max_new_tokens, .. } => {
            chat::run(config, chat::ChatOptions { session, name, max_new_tokens })
        }
        Command::Mcp { .. } => serve_mcp(&config),
        Command::Models { command: ModelsCommand::Import { model, quantization } } => {
            models::import(&config, &model, quantization)
        }
        Command::HashKey { key } => print_hash(&key),
        Command::Config => print_config(&config),
        Command::Status { json } => print_status(&config, json),
        Command::ExtractWorker => return extract_worker(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `ragd extract-worker`: one isolated extraction, request on stdin, answer on stdout.
#[allow(clippy::print_stderr)] // The server shows the worker's last stderr line as the reason.
fn extract_worker() -> ExitCode {
    match ragd_ingest::run_worker(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ragd extract-worker: {err}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(
    file: Option<PathBuf>,
    overrides: &Overrides,
) -> Result<Config, Box<dyn std::error::Error>> {
    let env = Env::with_dotenv(Path::new(".env"), std::env::vars())?;
    let file = ConfigFile::resolve(file, &env);
    Ok(Config::load(&file, &env, overrides)?)
}

/// Installs the log subscriber: `RUST_LOG` wins, then `log.filter`; `quiet` verbs log
/// warnings only unless `RUST_LOG` says otherwise.
fn init_tracing(
    config: &Config,
    quiet: bool,
) -> Result<(), tracing_subscriber::filter::ParseError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.is_empty() => EnvFilter::try_new(filter)?,
        _ if quiet => EnvFilter::try_new("warn")?,
        _ => EnvFilter::try_new(&config.log.filter)?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            data_dir = %config.data_dir.display(),
            assets_dir = %config.assets_dir.display(),
            "starting ragd"
        );
        match &config.hf_token {
            Some(token) => tracing::info!(source = %token.source, "Hugging Face token present"),
            None => tracing::info!(
                "no Hugging Face token (HF_TOKEN, HUGGING_FACE_HUB_TOKEN or `huggingface-cli login`); \
                 public and local models still work"
            ),
        }
        let state = AppState::open(config).await?;
        let server = Server::bind(state).await?;
        server.run(ragd::server::shutdown_signal()).await?;
        Ok(())
    })
}

/// `ragd mcp`: the MCP server over stdin/stdout. stdout carries only the protocol: logging
/// goes to stderr, and nothing here prints.
fn serve_mcp(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        // The server's start-up (with the chat model, for `ask`), without the system monitor
        // no MCP tool reports.
        let engine = ragd_engine::Engine::builder(config.engine_config())
            .system_monitor(false)
            .rebuild_index(false)
            .build()
            .await?;
        ragd::mcp::serve_stdio(engine).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    // Once the client is gone, background work (a model still loading, an ingestion worker)
    // must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

#[allow(clippy::print_stdout)] // The digest is this verb's output.
fn print_hash(key: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("{}", ragd::api::auth::hash_key(key));
    Ok(())
}

#[allow(clippy::print_stdout)] // Printing the config is this verb's output.
fn print_config(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    println!("{}", toml::to_string_pretty(config)?);
    Ok(())
}

#[allow(clippy::print_stdout)] // The status table is this verb's output.
fn print_status(config: &Config, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut collector = ragd_telemetry::Collector::new(
        ragd_engine::monitor_config(&config.engine_config()).collector,
    )?;
    let status = collector.sample_with_window();
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", ragd::status_table::render(&status));
    }
    Ok(())
}
