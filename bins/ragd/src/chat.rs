//! `ragd chat [--session ID]`: an interactive chat REPL in the terminal, streaming tokens.
//!
//! It runs the same services as the server over the same data directory (in process, like
//! `ragd ingest`), loads the configured model (`models.autoload`), and reads one message per
//! line from stdin. `/sources` lists the chunks the last answer was given, `/session` prints
//! the session id (to resume it later with `--session`), `/quit` or end of input leaves.

use std::io::Write;
use std::time::Duration;

use ragd::Config;
use ragd_chat::{ChatEvent, Citation, CreateSession, SendMessage};
use ragd_core::{SessionId, SettingsPatch};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long to wait for the model to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Options of `ragd chat`.
#[derive(Debug, Clone)]
pub(crate) struct ChatOptions {
    /// Resume this session instead of starting one.
    pub session: Option<SessionId>,
    /// Name of a new session.
    pub name: Option<String>,
    /// Cap on tokens per answer.
    pub max_new_tokens: Option<u32>,
}

/// Runs the REPL until `/quit` or end of input.
#[allow(clippy::print_stdout)] // The conversation is this verb's output.
pub(crate) fn run(config: Config, options: ChatOptions) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // The same start-up as the server (the chat model loads in the background).
        let engine = ragd_engine::Engine::builder(config.engine_config())
            .system_monitor(false)
            .rebuild_index(false)
            .build()
            .await?;
        if let Err(err) = engine.wait_for_model(LOAD_TIMEOUT).await {
            if engine.models().status().model.is_none() {
                return Err(
                    "no model to chat with: set models.autoload (or RAGD_MODELS__AUTOLOAD) to a model"
                        .into(),
                );
            }
            return Err(err.into());
        }
        let session = match options.session {
            Some(id) => engine.chat().session(id).await?,
            None => {
                let request = CreateSession { name: options.name, ..CreateSession::default() };
                engine.chat().create_session(request).await?
            }
        };
        println!("session {} ({}); /sources, /session, /quit", session.id, session.name);
        let settings = options.max_new_tokens.map(|max_new_tokens| SettingsPatch {
            max_new_tokens: Some(max_new_tokens),
            ..SettingsPatch::default()
        });
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let mut sources: Vec<Citation> = Vec::new();
        let mut stdout = std::io::stdout();
        loop {
            print!("> ");
            stdout.flush()?;
            let Some(line) = lines.next_line().await? else { break };
            match line.trim() {
                "" => continue,
                "/quit" | "/exit" => break,
                "/session" => {
                    println!("{}", session.id);
                    continue;
                }
                "/sources" => {
                    for c in &sources {
                        let page = c.page.map(|p| format!(" p.{p}")).unwrap_or_default();
                        println!("[{}] {}{page}  chunk {}", c.number, c.filename, c.chunk_id);
                    }
                    continue;
                }
                _ => {}
            }
            let request = SendMessage { settings: settings.clone(), ..SendMessage::new(line) };
            let mut turn = match engine.chat().send(session.id, request).await {
                Ok(turn) => turn,
                Err(err) => {
                    println!("error: {err}");
                    continue;
                }
            };
            sources.clone_from(&turn.citations);
            while let Some(event) = turn.next_event().await {
                match event {
                    ChatEvent::Token(text) => {
                        print!("{text}");
                        stdout.flush()?;
                    }
                    ChatEvent::Done(reply) => {
                        let tokens = reply.usage.completion_tokens;
                        let cited = if reply.citations.is_empty() {
                            String::new()
                        } else {
                            format!(", {} sources (/sources)", reply.citations.len())
                        };
                        println!("\n  ({tokens} tokens{cited})");
                    }
                    ChatEvent::Failed { message, .. } => println!("\nerror: {message}"),
                    ChatEvent::Progress { stage, done, total } => {
                        print!("\r  ({stage} {done}/{total})");
                        if done == total {
                            println!();
                        }
                        stdout.flush()?;
                    }
                }
            }
        }
        Ok(())
    })
}
