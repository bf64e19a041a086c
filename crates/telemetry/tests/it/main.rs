//! Tests of `ragd-telemetry` on the real machine: values must be plausible here, and the GPU
//! path must hold on machines with and without NVIDIA GPUs.

#![allow(clippy::unwrap_used)] // Test helpers fail loudly; that is their job.

use std::time::Duration;

use ragd_telemetry::{
    Collector, CollectorConfig, SystemMonitor, SystemMonitorConfig, SystemStatus,
};

fn sample(data_dir: &std::path::Path) -> SystemStatus {
    Collector::new(CollectorConfig::new(data_dir)).unwrap().sample_with_window()
}

fn meminfo_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn cpu_counts_and_usage_are_plausible() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample(dir.path());
    let nproc = std::thread::available_parallelism().unwrap().get();
    assert_eq!(status.cpu.logical_cores, nproc, "logical cores == nproc");
    assert_eq!(status.cpu.per_core_usage_percent.len(), nproc);
    assert!(status.cpu_window_ms >= 100, "usage measured over a window: {}", status.cpu_window_ms);
    assert!((0.0..=100.0).contains(&status.cpu.usage_percent), "{}", status.cpu.usage_percent);
    assert!(status.cpu.physical_cores.is_none_or(|p| p >= 1 && p <= nproc));
    assert!(!status.cpu.brand.is_empty());
    assert!(status.cpu.load_average.is_some(), "Linux has load averages");
}

#[cfg(target_os = "linux")]
#[test]
fn memory_matches_proc_meminfo() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample(dir.path());
    assert_eq!(status.memory.total_bytes, meminfo_kib("MemTotal") * 1024);
    assert!(status.memory.used_bytes <= status.memory.total_bytes);
    assert!(status.memory.available_bytes <= status.memory.total_bytes);
    assert_eq!(status.memory.swap_total_bytes, meminfo_kib("SwapTotal") * 1024);
}

#[test]
fn the_disk_holding_the_data_dir_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let status = sample(&data_dir);
    assert!(!status.disks.is_empty());
    let disk = status.data_disk.expect("the data dir's disk is reported");
    let absolute = dir.path().canonicalize().unwrap();
    assert!(
        absolute.starts_with(&disk.mount_point),
        "{} on {}",
        absolute.display(),
        disk.mount_point
    );
    assert!(disk.total_bytes > 0 && disk.available_bytes <= disk.total_bytes);
}

#[test]
fn a_relative_data_dir_that_does_not_exist_yet_is_placed_on_a_disk() {
    let status = sample(std::path::Path::new("no-such-dir/data"));
    assert!(status.data_disk.is_some(), "resolved against the working directory");
}

#[test]
fn own_process_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample(dir.path());
    assert_eq!(status.process.pid, std::process::id());
    assert!(status.process.resident_memory_bytes > 1024 * 1024, "a test binary uses over 1 MiB");
    assert!(status.process.threads.unwrap() >= 1);
    assert!(status.process.open_files.unwrap() >= 3, "stdin, stdout, stderr at least");
    assert!(status.host.uptime_secs.unwrap() > 0);
}

#[test]
fn gpus_are_listed_or_absent_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let status = sample(dir.path());
    if status.gpus.is_empty() {
        let reason = status.gpus_unavailable_reason.expect("no GPUs comes with a reason");
        assert!(!reason.is_empty());
    } else {
        assert!(status.gpus_unavailable_reason.is_none());
        let driver = status.gpu_driver.as_ref().unwrap();
        assert!(driver.driver_version.is_some());
        for gpu in &status.gpus {
            assert!(gpu.name.as_deref().is_some_and(|n| !n.is_empty()));
            assert!(gpu.memory_total_bytes.unwrap() > 0);
            assert!(gpu.memory_used_bytes.unwrap() <= gpu.memory_total_bytes.unwrap());
        }
    }
}

#[test]
fn a_missing_nvml_library_is_a_reason_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = CollectorConfig {
        data_dir: dir.path().to_path_buf(),
        nvml_library: Some("/nonexistent/libnvidia-ml.so.1".into()),
    };
    let status = Collector::new(config).unwrap().sample();
    assert!(status.gpus.is_empty());
    assert!(status.gpus_unavailable_reason.unwrap().contains("NVML"));
}

#[test]
fn snapshot_serialises_with_units_in_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_value(sample(dir.path())).unwrap();
    assert!(json["memory"]["total_bytes"].is_u64());
    assert!(json["cpu"]["usage_percent"].is_number());
    assert!(json["gpus"].is_array());
    assert!(json["process"]["resident_memory_bytes"].is_u64());
}

#[tokio::test]
async fn monitor_serves_cached_snapshots_between_samples() {
    let dir = tempfile::tempdir().unwrap();
    let monitor = SystemMonitor::start(SystemMonitorConfig {
        collector: CollectorConfig::new(dir.path()),
        interval: Duration::from_secs(3600),
    })
    .unwrap();
    let first = monitor.latest().await.unwrap();
    let second = monitor.latest().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second), "reads do not sample again");
    assert!(first.cpu_window_ms >= 100);
}
