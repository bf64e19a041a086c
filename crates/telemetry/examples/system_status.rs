//! Prints the system status ragd reports, as one JSON line per sample.
//!
//! The same [`Collector`] that serves `/api/v1/system/status`, without the server: useful to
//! check what a machine reports (GPUs through NVML, sensors, disks) before running ragd there.
//!
//! ```text
//! cargo run --release -p ragd-telemetry --example system_status -- [SAMPLES] [INTERVAL_MS] [DATA_DIR]
//! ```
//!
//! Defaults: 1 sample, 1000 ms apart, the current directory as the data directory.

#![allow(clippy::print_stdout)] // The JSON lines are this program's output.

use std::time::Duration;

use ragd_telemetry::{Collector, CollectorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let samples: u32 = args.next().map_or(Ok(1), |s| s.parse())?;
    let interval = Duration::from_millis(args.next().map_or(Ok(1000), |s| s.parse())?);
    let data_dir = args.next().unwrap_or_else(|| ".".to_owned());

    let mut collector = Collector::new(CollectorConfig::new(data_dir))?;
    for n in 0..samples {
        let status = if n == 0 { collector.sample_with_window() } else { collector.sample() };
        println!("{}", serde_json::to_string(&status)?);
        if n + 1 < samples {
            std::thread::sleep(interval);
        }
    }
    Ok(())
}
