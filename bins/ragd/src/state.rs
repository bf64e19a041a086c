//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;

/// What handlers share. Cheap to clone: everything is behind `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// When the server started, for uptime.
    pub started_at: Instant,
}

impl AppState {
    /// State for a server running `config`.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self { config: Arc::new(config), started_at: Instant::now() }
    }
}
