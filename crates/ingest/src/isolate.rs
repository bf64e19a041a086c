//! Extraction in a worker process: the only way to really stop a parser that loops, and
//! to bound the memory a hostile file can take.
//!
//! [`Isolation`] says where the pipeline runs [`extract_with`]:
//!
//! - [`Isolation::Thread`] (the library default): on a thread of the calling process with
//!   a deadline. A parser stuck where it never checks the cancel flag keeps running after
//!   the deadline, and an abort or stack overflow takes the whole process down.
//! - [`Isolation::Process`]: in a child process started from a [`WorkerCommand`] (the
//!   `ragd` binary runs itself as `ragd extract-worker`). The child limits its own memory
//!   (`RLIMIT_DATA`, so whatever slips past [`crate::guard`] ends in a failed allocation,
//!   not a swapping server), and the parent kills it at the deadline. A crash
//!   of the child fails only that document, with the signal and the child's last words
//!   as the reason.
//!
//! The protocol is private to this crate, so both ends always come from the same build:
//! the parent writes one JSON line ([`Request`]) and then the document's bytes to the
//! child's stdin; the child answers on stdout with the line [`WORKER_MAGIC`] and one JSON
//! [`Reply`]. Anything else (no magic line, a signal, a non-zero exit) is a crash. While
//! it works, the child reports [`ExtractLimits::progress`] on stderr as lines of
//! [`PROGRESS_PREFIX`] and a percentage, which the parent takes out of the stderr it keeps.
//! [`run_worker`] is the child's side; a program embedding this crate calls it from its own
//! `main` when started as the worker.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::detect::DocumentKind;
use crate::error::{Error, Result};
use crate::extract::{Extracted, extract_with, format_name};
use crate::guard::ExtractLimits;
use crate::ocr::OcrSettings;

/// The first line of every answer of a worker; anything else on its stdout means the
/// program is not a worker of this version.
pub const WORKER_MAGIC: &str = "ragd-extract-worker/1";

/// The stack of the thread that extracts (in the worker or in process): deep but finite
/// recursion in a parser (nested tables, long reference chains) finishes here where 2 MiB
/// would overflow. Only the pages touched are committed.
pub(crate) const EXTRACT_STACK_BYTES: usize = 256 * 1024 * 1024;

/// A builder for the thread that runs one extraction, in the worker or in process.
pub(crate) fn extraction_thread() -> std::thread::Builder {
    std::thread::Builder::new().name("ragd-extract".to_owned()).stack_size(EXTRACT_STACK_BYTES)
}

/// The most bytes of a worker's stderr kept (its last ones) for the failure reason.
const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// The start of a worker's stderr line that reports progress; the percentage follows.
pub const PROGRESS_PREFIX: &str = "ragd-extract-progress ";

/// How often a worker looks whether its progress changed.
const PROGRESS_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Where the pipeline runs extraction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Isolation {
    /// On a thread of this process, abandoned (not killed) at the deadline.
    #[default]
    Thread,
    /// In a child process with a memory limit, killed at the deadline.
    Process(WorkerCommand),
}

/// How to start an extraction worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program; its `main` must call [`run_worker`] when given `args`.
    pub program: PathBuf,
    /// Its arguments (for `ragd`: `["extract-worker"]`).
    pub args: Vec<String>,
    /// The most memory the worker may allocate (`RLIMIT_DATA`), including the document's
    /// bytes and a 256 MiB stack reservation.
    pub max_memory_bytes: u64,
}

/// What the parent asks of a worker; the document's bytes follow this line.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// The format, by [`format_name`].
    kind: String,
    /// [`ExtractLimits::max_extracted_bytes`].
    max_extracted_bytes: u64,
    /// [`ExtractLimits::timeout`], in milliseconds: OCR stops its program by then.
    timeout_ms: u64,
    /// [`ExtractLimits::ocr`].
    ocr: OcrSettings,
    /// [`ExtractLimits::pdfium`].
    #[serde(default)]
    pdfium: Option<std::path::PathBuf>,
    /// [`WorkerCommand::max_memory_bytes`].
    max_memory_bytes: u64,
    /// How many bytes of document follow.
    len: u64,
}

/// A worker's answer.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The text.
    Extracted(Extracted),
    /// The document has no bytes.
    Empty,
    /// The document is malformed, hostile or too large: [`Error::Extraction`]'s reason.
    Failed(String),
}

/// The format named `name` by [`format_name`].
fn kind_from_name(name: &str) -> Option<DocumentKind> {
    DocumentKind::ALL.into_iter().find(|kind| format_name(*kind) == name)
}

/// The worker's side: reads a request and the document from `input`, limits this
/// process's memory, extracts on a thread with a large stack, and writes the answer to
/// `output`.
///
/// Call it from `main` of the program named in [`WorkerCommand`], before anything else
/// allocates much; the process should exit after it returns.
///
/// # Errors
/// I/O errors on `input` or `output`, a malformed request, or a memory limit the system
/// refuses; the parent reports them as a worker failure.
pub fn run_worker(mut input: impl BufRead, output: impl Write) -> std::io::Result<()> {
    let request = read_request(&mut input)?;
    let limit = request.max_memory_bytes.saturating_add(EXTRACT_STACK_BYTES as u64);
    rlimit::setrlimit(rlimit::Resource::DATA, limit, limit)?;
    answer(&request, input, output)
}

/// Reads the request line of [`run_worker`].
fn read_request(input: &mut impl BufRead) -> std::io::Result<Request> {
    let mut line = String::new();
    input.take(4096).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|err| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed worker request: {err}"),
        )
    })
}

/// Reads the document after the request line, extracts it on a thread with a large stack
/// and writes the answer.
///
/// The thread is started first, so that its stack reservation is in place before the
/// document is read, and the document's buffer is reserved in one piece: a document that
/// alone passes the memory limit gets a clean answer instead of a failed allocation.
fn answer(request: &Request, input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    let kind = kind_from_name(&request.kind).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unknown document kind {:?}", request.kind),
        )
    })?;
    let limits = ExtractLimits {
        max_extracted_bytes: request.max_extracted_bytes,
        timeout: std::time::Duration::from_millis(request.timeout_ms),
        ocr: request.ocr.clone(),
        pdfium: request.pdfium.clone(),
        // This process is killed at the deadline and limited in memory.
        unchecked_pdfs: true,
        ..ExtractLimits::default()
    };
    let progress = Arc::clone(&limits.progress);
    let (send, receive) = std::sync::mpsc::channel::<Vec<u8>>();
    let extracting = extraction_thread().spawn(move || {
        let bytes = receive.recv().unwrap_or_default();
        extract_with(kind, &bytes, &limits)
    })?;
    let mut bytes = Vec::new();
    let len = usize::try_from(request.len).unwrap_or(usize::MAX);
    let reply = if bytes.try_reserve_exact(len).is_err() {
        drop(send);
        Reply::Failed(format!(
            "the document ({} bytes) does not fit the extraction worker's memory limit \
             (ingest.extract_memory_bytes, {} bytes)",
            request.len, request.max_memory_bytes
        ))
    } else {
        input.take(request.len).read_to_end(&mut bytes)?;
        // The thread only ends early by panicking, which `join` reports below.
        let _ = send.send(bytes);
        // Dropping `finished` wakes the reporter at once: the answer does not wait for its
        // next look at the progress.
        let (finished, done) = std::sync::mpsc::channel::<()>();
        let reporter = std::thread::spawn(move || report_progress(&progress, &done));
        let joined = extracting.join();
        drop(finished);
        let _ = reporter.join();
        match joined {
            Ok(Ok(extracted)) => Reply::Extracted(extracted),
            Ok(Err(Error::Empty)) => Reply::Empty,
            Ok(Err(Error::Extraction { reason, .. })) => Reply::Failed(reason),
            Ok(Err(other)) => Reply::Failed(other.to_string()),
            Err(_) => Reply::Failed("the parser panicked on malformed input".to_owned()),
        }
    };
    writeln!(output, "{WORKER_MAGIC}")?;
    serde_json::to_writer(&mut output, &reply).map_err(std::io::Error::other)?;
    writeln!(output)?;
    output.flush()
}

/// The worker's side of progress: writes [`PROGRESS_PREFIX`] lines to stderr whenever
/// `progress` changed, until `done`'s sender is dropped.
fn report_progress(progress: &AtomicU8, done: &std::sync::mpsc::Receiver<()>) {
    let mut shown = 0;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(PROGRESS_POLL) {
        let now = progress.load(Ordering::Relaxed);
        if now != shown {
            shown = now;
            // Progress is a courtesy: a closed stderr does not stop the extraction.
            let _ = writeln!(std::io::stderr(), "{PROGRESS_PREFIX}{now}");
        }
    }
}

/// A [`PROGRESS_PREFIX`] line's percentage (the line without its `\n`).
fn progress_line(line: &[u8]) -> Option<u8> {
    let rest = line.strip_prefix(PROGRESS_PREFIX.as_bytes())?;
    std::str::from_utf8(rest).ok()?.trim().parse::<u8>().ok().filter(|percent| *percent <= 100)
}

/// The parent's side: extracts `bytes` of `kind` in a worker started from `command`,
/// killing it when `limits.timeout` passes.
///
/// # Errors
/// [`Error::Extraction`] when the document fails, the worker crashes (the reason names
/// the signal and the worker's last line of stderr) or takes too long (the worker is
/// killed); [`Error::Empty`] for no bytes; [`Error::Spawn`] when the worker cannot start.
pub async fn extract_in_worker(
    command: &WorkerCommand,
    kind: DocumentKind,
    bytes: Vec<u8>,
    limits: &ExtractLimits,
) -> Result<Extracted> {
    let format = format_name(kind);
    let failed = |reason: String| Error::Extraction { format, reason };
    let mut child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A backtrace of the worker's own crash would only bury its reason.
        .env("RUST_BACKTRACE", "0")
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            what: format!("cannot start the extraction worker {}", command.program.display()),
            source,
        })?;
    let pid = child.id();
    tracing::debug!(?pid, format, bytes = bytes.len(), "extraction worker started");

    let request = Request {
        kind: format.to_owned(),
        max_extracted_bytes: limits.max_extracted_bytes,
        timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        ocr: limits.ocr.clone(),
        pdfium: limits.pdfium.clone(),
        max_memory_bytes: command.max_memory_bytes,
        len: bytes.len() as u64,
    };
    let mut header = serde_json::to_vec(&request).map_err(Error::Encode)?;
    header.push(b'\n');
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::Task("the extraction worker has no pipes".to_owned()));
    };
    let write = async move {
        // A worker that dies early closes its stdin; its exit status tells why.
        let _ = stdin.write_all(&header).await;
        let _ = stdin.write_all(&bytes).await;
        drop(stdin);
    };
    // JSON escapes at most six bytes per byte of text, plus the spans.
    let answer_limit = limits.max_extracted_bytes.saturating_mul(8).saturating_add(1 << 20);
    let read_out = async move {
        let mut answer = Vec::new();
        let _ = stdout.take(answer_limit).read_to_end(&mut answer).await;
        answer
    };
    // All of stderr is read (a worker blocked on a full pipe would hang until the deadline),
    // progress lines go to `limits.progress`, and the last bytes of the rest are kept.
    let progress = Arc::clone(&limits.progress);
    let read_err = async move {
        let mut tail = Vec::new();
        let mut line = Vec::new();
        let mut chunk = vec![0_u8; 8192];
        while let Ok(read @ 1..) = stderr.read(&mut chunk).await {
            for &byte in &chunk[..read] {
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                match progress_line(&line) {
                    Some(percent) => progress.store(percent, Ordering::Relaxed),
                    None => {
                        tail.append(&mut line);
                        tail.push(b'\n');
                    }
                }
                line.clear();
            }
            if line.len() > STDERR_TAIL_BYTES {
                tail.append(&mut line);
            }
            let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
            tail.drain(..excess);
        }
        tail.append(&mut line);
        let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
        tail.drain(..excess);
        tail
    };
    let work = async {
        let ((), answer, tail) = tokio::join!(write, read_out, read_err);
        (child.wait().await, answer, tail)
    };
    let outcome = tokio::time::timeout(limits.timeout, work).await;
    let Ok((status, answer, tail)) = outcome else {
        // The futures holding the pipes are gone; the child itself is killed here, for real.
        if let Err(err) = child.start_kill() {
            tracing::warn!(?pid, %err, "cannot kill the extraction worker");
        }
        let _ = child.wait().await;
        tracing::warn!(?pid, timeout = ?limits.timeout, "extraction timed out; its worker was killed");
        return Err(failed(format!(
            "extraction took longer than {} s (ingest.extract_timeout_secs); the file may be \
             crafted to make the parser loop, and its worker process was killed",
            limits.timeout.as_secs_f64()
        )));
    };
    let status = status
        .map_err(|source| Error::Spawn { what: "waiting for the worker".to_owned(), source })?;
    let answer = String::from_utf8_lossy(&answer);
    let reply = answer
        .strip_prefix(WORKER_MAGIC)
        .and_then(|rest| rest.strip_prefix('\n'))
        .and_then(|json| serde_json::from_str::<Reply>(json.trim_end()).ok());
    match reply {
        Some(Reply::Extracted(extracted)) if status.success() => Ok(extracted),
        Some(Reply::Empty) => Err(Error::Empty),
        Some(Reply::Failed(reason)) => Err(failed(reason)),
        _ => Err(failed(crash_reason(status, &tail, command))),
    }
}

/// Why a worker ended without an answer, for the document's failure reason.
fn crash_reason(
    status: std::process::ExitStatus,
    stderr: &[u8],
    command: &WorkerCommand,
) -> String {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(stderr);
    // A failed allocation says so on one line; otherwise the last line is the best clue.
    let lines = || stderr.lines().rev().map(str::trim);
    let last = lines()
        .find(|line| line.starts_with("memory allocation of"))
        .or_else(|| lines().find(|line| !line.is_empty()));
    let how = match status.signal() {
        Some(signal) => format!("was killed by signal {signal} ({})", signal_name(signal)),
        None => format!("exited with {status} without an answer"),
    };
    let mut reason = format!("the extraction worker {how}");
    if let Some(last) = last {
        reason.push_str(&format!(": {last}"));
    }
    if stderr.contains("memory allocation of") {
        reason.push_str(&format!(
            " (the document needs more memory than ingest.extract_memory_bytes, {} bytes)",
            command.max_memory_bytes
        ));
    }
    reason
}

/// The usual name of a fatal signal.
const fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "a fatal signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_read_and_other_lines_are_not() {
        assert_eq!(progress_line(b"ragd-extract-progress 42"), Some(42));
        assert_eq!(progress_line(b"ragd-extract-progress 100"), Some(100));
        assert_eq!(progress_line(b"ragd-extract-progress 101"), None);
        assert_eq!(progress_line(b"ragd-extract-progress x"), None);
        assert_eq!(progress_line(b"memory allocation failed"), None);
    }

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in DocumentKind::ALL {
            assert_eq!(kind_from_name(format_name(kind)), Some(kind));
        }
        assert_eq!(kind_from_name("exe"), None);
    }

    #[test]
    fn the_worker_answers_in_process() -> std::io::Result<()> {
        let text = b"# Title\nbody";
        let request = Request {
            kind: "markdown".to_owned(),
            max_extracted_bytes: 1024,
            timeout_ms: 10_000,
            ocr: OcrSettings::default(),
            pdfium: None,
            max_memory_bytes: 8 << 30,
            len: text.len() as u64,
        };
        let mut input = serde_json::to_vec(&request).map_err(std::io::Error::other)?;
        input.push(b'\n');
        input.extend_from_slice(text);
        let mut output = Vec::new();
        // Not `run_worker`: its memory limit would bind this whole test process.
        let mut input = std::io::Cursor::new(input);
        let request = read_request(&mut input)?;
        answer(&request, input, &mut output)?;
        let output = String::from_utf8_lossy(&output);
        let (magic, json) = output.split_once('\n').unwrap_or_default();
        assert_eq!(magic, WORKER_MAGIC);
        let reply: Reply = serde_json::from_str(json.trim_end()).map_err(std::io::Error::other)?;
        let Reply::Extracted(extracted) = reply else { panic!("unexpected {reply:?}") };
        assert_eq!(extracted.text, "# Title\nbody");
        assert_eq!(extracted.headings.len(), 1);
        Ok(())
    }
}
