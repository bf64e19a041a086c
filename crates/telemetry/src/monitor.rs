//! [`SystemMonitor`]: a dedicated thread that samples the system every few seconds and
//! publishes the latest [`SystemStatus`], so status requests read a cached snapshot and
//! never wait for a CPU sampling window.
//!
//! The thread also sets the system gauges of [`crate::names`] through the `metrics` facade.
//! It stops by itself once every handle is dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::collect::{Collector, CollectorConfig};
use crate::error::{Error, Result};
use crate::names;
use crate::status::SystemStatus;

/// How the monitor samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemMonitorConfig {
    /// What to collect.
    pub collector: CollectorConfig,
    /// Time between samples (and so the CPU usage window after the first one).
    pub interval: Duration,
}

/// A handle to the sampler thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SystemMonitor {
    latest: watch::Receiver<Option<Arc<SystemStatus>>>,
}

impl SystemMonitor {
    /// Starts the sampler thread. Returns at once; the first snapshot is ready after
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (see [`SystemMonitor::latest`]).
    ///
    /// # Errors
    /// When the platform reports no system information or the thread cannot start.
    pub fn start(config: SystemMonitorConfig) -> Result<Self> {
        let mut collector = Collector::new(config.collector)?;
        let interval = config.interval.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let (tx, rx) = watch::channel(None);
        std::thread::Builder::new()
            .name("ragd-system-sampler".to_owned())
            .spawn(move || {
                let mut status = collector.sample_with_window();
                loop {
                    record_gauges(&status);
                    if tx.send(Some(Arc::new(status))).is_err() {
                        tracing::debug!("system monitor dropped; sampler stops");
                        return;
                    }
                    std::thread::sleep(interval);
                    status = collector.sample();
                }
            })
            .map_err(Error::Thread)?;
        Ok(Self { latest: rx })
    }

    /// The latest snapshot; waits only for the very first one.
    ///
    /// # Errors
    /// When the sampler thread died before producing a snapshot.
    pub async fn latest(&self) -> Result<Arc<SystemStatus>, ragd_core::Error> {
        let mut rx = self.latest.clone();
        let status = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ragd_core::Error::internal("the system sampler thread stopped"))?;
        status.clone().ok_or_else(|| ragd_core::Error::internal("no system snapshot"))
    }
}

#[allow(clippy::cast_precision_loss)] // Gauges are f64; byte counts beyond 2^53 are not a concern.
fn record_gauges(status: &SystemStatus) {
    metrics::gauge!(names::SYSTEM_CPU_USAGE_PERCENT).set(f64::from(status.cpu.usage_percent));
    if let Some(load) = &status.cpu.load_average {
        metrics::gauge!(names::SYSTEM_LOAD_AVERAGE_1M).set(load.one);
    }
    metrics::gauge!(names::SYSTEM_MEMORY_TOTAL_BYTES).set(status.memory.total_bytes as f64);
    metrics::gauge!(names::SYSTEM_MEMORY_USED_BYTES).set(status.memory.used_bytes as f64);
    if let Some(disk) = &status.data_disk {
        metrics::gauge!(names::DATA_DISK_AVAILABLE_BYTES).set(disk.available_bytes as f64);
    }
    metrics::gauge!(names::PROCESS_RESIDENT_MEMORY_BYTES)
        .set(status.process.resident_memory_bytes as f64);
    if let Some(threads) = status.process.threads {
        metrics::gauge!(names::PROCESS_THREADS).set(threads as f64);
    }
    for gpu in &status.gpus {
        let label = gpu.index.to_string();
        if let Some(util) = gpu.utilization_percent {
            metrics::gauge!(names::GPU_UTILIZATION_PERCENT, "gpu" => label.clone())
                .set(f64::from(util));
        }
        if let Some(used) = gpu.memory_used_bytes {
            metrics::gauge!(names::GPU_MEMORY_USED_BYTES, "gpu" => label.clone()).set(used as f64);
        }
        if let Some(temp) = gpu.temperature_celsius {
            metrics::gauge!(names::GPU_TEMPERATURE_CELSIUS, "gpu" => label).set(f64::from(temp));
        }
    }
}
