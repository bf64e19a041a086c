//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use ragd_telemetry::{CollectorConfig, SystemMonitor, SystemMonitorConfig};

use crate::config::Config;

/// What handlers share. Cheap to clone: everything is behind `Arc` or a handle.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// When the server started, for uptime.
    pub started_at: Instant,
    /// The background system sampler; `None` when the platform reports nothing.
    pub monitor: Option<SystemMonitor>,
    /// The process-wide Prometheus recorder.
    pub metrics: PrometheusHandle,
}

impl AppState {
    /// State for a server running `config`: starts the system sampler thread.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let monitor = SystemMonitor::start(monitor_config(&config))
            .inspect_err(|err| tracing::warn!(%err, "system status is unavailable"))
            .ok();
        Self {
            config: Arc::new(config),
            started_at: Instant::now(),
            monitor,
            metrics: crate::metrics::prometheus(),
        }
    }
}

/// What the system sampler needs from the configuration.
#[must_use]
pub fn monitor_config(config: &Config) -> SystemMonitorConfig {
    SystemMonitorConfig {
        collector: CollectorConfig {
            data_dir: config.data_dir.clone(),
            nvml_library: config.telemetry.nvml_library.clone(),
        },
        interval: Duration::from_secs(config.telemetry.sample_interval_secs),
    }
}
