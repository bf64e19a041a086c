//! Child processes that serve on loopback for xtask commands (`fuzz`, `bench http`): a free
//! port, waiting until something listens, killing the child however the command ends, and
//! `ragd serve` itself over a data directory.

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

/// How [`serve_ragd`] configures the server beyond its defaults.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServeOptions<'a> {
    /// Load the bundled chat model at start (else none: chat answers 503 at once).
    pub(crate) bundled_model: bool,
    /// Require this API key (else the API is open).
    pub(crate) api_key: Option<&'a str>,
    /// More environment variables (configuration keys such as `RAGD_MODELS__PARALLEL`).
    pub(crate) env: &'a [(&'a str, String)],
}

/// `ragd serve` (the binary `ragd`, of either build) on a free loopback port over `data`,
/// with the hub offline (a fuzzed model load by repo id must not reach for the network);
/// returns it and its port.
pub(crate) fn serve_ragd(
    ragd: &Path,
    data: &Path,
    assets: &Path,
    options: ServeOptions<'_>,
) -> Result<(KillOnDrop, u16)> {
    let port = free_port()?;
    let mut cmd = Command::new(ragd);
    crate::clean_cargo_env(&mut cmd);
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--data-dir"])
        .arg(data)
        .env("RAGD_ASSETS_DIR", assets)
        .env("RAGD_MODELS__AUTOLOAD", if options.bundled_model { "bundled" } else { "none" })
        .env("RAGD_HUB__OFFLINE", "true")
        .env("RUST_LOG", "warn");
    if let Some(key) = options.api_key {
        cmd.env("RAGD_AUTH__KEYS", key);
    }
    cmd.envs(options.env.iter().map(|(name, value)| (name, value)));
    crate::passive_openmp(&mut cmd);
    Ok((spawn_listening(cmd, port)?, port))
}
