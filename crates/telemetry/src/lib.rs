//! `ragd-telemetry`: system status, metrics names and exporters.
//!
//! It owns the `SystemStatus` snapshot (CPU, memory, disks, temperatures, GPUs through NVML,
//! the ragd process) and the names of ragd's metrics and spans.
//!
//! Architecture invariant: it only reports; it never installs a subscriber or reads the
//! environment (the binary does).

pub mod error;

pub use error::{Error, Result};
