//! Child processes that serve on loopback for xtask commands (`fuzz`, `bench http`): a free
//! port, waiting until something listens, killing the child however the command ends, and
//! `ragd serve` itself over a data directory without a chat model.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::Result;

/// A child process killed (and reaped) when dropped.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Spawns `cmd`, then waits (up to 60 s) until it accepts connections on `port`.
pub(crate) fn spawn_listening(mut cmd: Command, port: u16) -> Result<KillOnDrop> {
    let mut child =
        KillOnDrop(cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.0.try_wait() {
            return Err(format!("{:?} exited before listening: {status}", cmd.get_program()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("nothing listens on port {port} after 60 s"))
}

/// `ragd serve` from the test build on a free loopback port over `data`, with no chat model
/// (chat answers 503 at once instead of generating) and the hub offline (a fuzzed model
/// load by repo id must not reach for the network); returns it and its port.
pub(crate) fn serve_ragd(data: &Path, assets: &Path) -> Result<(KillOnDrop, u16)> {
    let port = free_port()?;
    let mut cmd = Command::new(crate::target_dir()?.join("debug/ragd"));
    crate::clean_cargo_env(&mut cmd);
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--data-dir"])
        .arg(data)
        .env("RAGD_ASSETS_DIR", assets)
        .env("RAGD_MODELS__AUTOLOAD", "none")
        .env("RAGD_HUB__OFFLINE", "true")
        .env("RUST_LOG", "warn");
    crate::passive_openmp(&mut cmd);
    Ok((spawn_listening(cmd, port)?, port))
}
