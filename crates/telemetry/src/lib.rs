//! `ragd-telemetry`: system status, metric names and the background sampler.
//!
//! It owns:
//! - [`SystemStatus`], a snapshot of what affects ragd's throughput: CPU (model, cores,
//!   per-core and total usage over a sampling window, load averages, frequency), memory and
//!   swap, every mounted disk and the one holding the data directory, network counters,
//!   temperatures, host and OS, GPUs through NVML, and ragd's own process.
//! - [`Collector`], which gathers a snapshot with `sysinfo` and NVML (`nvml-wrapper`, loaded
//!   at run time: a machine without an NVIDIA driver reports `gpus: []` and the reason).
//! - [`SystemMonitor`], a dedicated thread that samples every few seconds and publishes the
//!   latest snapshot, so requests read a cached value and never wait for a sampling window.
//! - [`names`], the names of ragd's metrics. Libraries only emit through the `metrics`
//!   facade; the binary installs the exporter.
//!
//! Architecture invariant: it only reports; it never installs a subscriber or a metrics
//! recorder and never reads the environment (the binary does).
//!
//! ```no_run
//! use ragd_telemetry::{Collector, CollectorConfig};
//!
//! let mut collector = Collector::new(CollectorConfig::new("data")).unwrap();
//! let status = collector.sample_with_window();
//! println!("{} cores, {} GPUs", status.cpu.logical_cores, status.gpus.len());
//! ```

pub mod collect;
pub mod error;
pub mod gpu;
pub mod monitor;
/// The names of ragd's metrics, defined in `ragd-core` so libraries that only emit metrics
/// need not depend on this crate.
pub use ragd_core::metric_names as names;
pub mod status;

pub use collect::{Collector, CollectorConfig};
pub use error::{Error, Result};
pub use monitor::{SystemMonitor, SystemMonitorConfig};
pub use status::{
    CpuStatus, DiskStatus, GpuDriver, GpuProcess, GpuStatus, HostStatus, LoadAverage, MemoryStatus,
    NetworkStatus, ProcessStatus, SystemStatus, TemperatureStatus,
};
