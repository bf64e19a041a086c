//! Gathering a [`SystemStatus`] with `sysinfo` and NVML.
//!
//! A [`Collector`] keeps its `sysinfo` handles between samples: CPU usage is the difference
//! between two refreshes, so the first usable reading needs two samples at least
//! [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart ([`Collector::sample_with_window`] does
//! that). Sampling blocks for file-system and NVML calls; run it off the async runtime
//! ([`crate::SystemMonitor`] does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use sysinfo::{
    Components, CpuRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

use crate::error::{Error, Result};
use crate::gpu::Gpus;
use crate::status::{
    CpuStatus, DiskStatus, HostStatus, LoadAverage, MemoryStatus, NetworkStatus, ProcessStatus,
    SystemStatus, TemperatureStatus,
};

/// What to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    /// ragd's data directory; the disk holding it is reported as `data_disk`.
    pub data_dir: PathBuf,
    /// `libnvidia-ml.so` to load instead of the system's default.
    pub nvml_library: Option<PathBuf>,
}

impl CollectorConfig {
    /// Collects for `data_dir`, with NVML from the default library path.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), nvml_library: None }
    }
}

/// Takes [`SystemStatus`] snapshots.
#[derive(Debug)]
pub struct Collector {
    config: CollectorConfig,
    system: System,
    disks: Option<Disks>,
    networks: Option<Networks>,
    components: Option<Components>,
    gpus: Gpus,
    pid: Option<Pid>,
    last_cpu_refresh: Option<Instant>,
}

impl Collector {
    /// Opens the platform's sources. Optional sources (disks, networks, sensors, NVML) that
    /// are missing are reported as empty, not as errors.
    ///
    /// # Errors
    /// When the platform reports no system information at all.
    pub fn new(config: CollectorConfig) -> Result<Self> {
        let system = System::new().map_err(Error::Unsupported)?;
        let gpus = Gpus::open(config.nvml_library.as_deref());
        Ok(Self {
            system,
            disks: Disks::new_with_refreshed_list().ok(),
            networks: Networks::new_with_refreshed_list().ok(),
            components: Components::new_with_refreshed_list().ok(),
            gpus,
            pid: sysinfo::get_current_pid().ok(),
            last_cpu_refresh: None,
            config,
        })
    }

    /// Samples twice, [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart, so CPU usage is
    /// measured over a real window. Blocks for that long.
    pub fn sample_with_window(&mut self) -> SystemStatus {
        if self.last_cpu_refresh.is_none() {
            self.refresh();
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        }
        self.sample()
    }

    /// Refreshes everything and returns the snapshot. CPU usage covers the time since the
    /// previous call (0 on the first call).
    pub fn sample(&mut self) -> SystemStatus {
        let window = self.refresh();
        self.snapshot(window)
    }

    fn refresh(&mut self) -> Duration {
        let now = Instant::now();
        let window = self.last_cpu_refresh.map_or(Duration::ZERO, |last| now - last);
        self.last_cpu_refresh = Some(now);
        self.system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_usage().with_frequency());
        self.system.refresh_memory_specifics(MemoryRefreshKind::everything());
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_memory().with_cpu().with_tasks(),
            );
        }
        if let Some(disks) = &mut self.disks {
            disks.refresh(true);
        }
        if let Some(networks) = &mut self.networks {
            networks.refresh(true);
        }
        if let Some(components) = &mut self.components {
            components.refresh(true);
        }
        window
    }

    fn snapshot(&self, window: Duration) -> SystemStatus {
        let disks: Vec<DiskStatus> =
            self.disks.iter().flat_map(|d| d.iter()).map(disk_status).collect();
        let data_disk = disk_holding(&disks, &self.config.data_dir);
        let gpu = self.gpus.sample();
        SystemStatus {
            sampled_at: Utc::now(),
            cpu_window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            host: HostStatus {
                hostname: System::host_name().ok(),
                os_name: System::name().ok(),
                os_version: System::os_version().ok(),
                kernel_version: System::kernel_version().ok(),
                arch: System::cpu_arch(),
                uptime_secs: System::uptime().ok(),
            },
            cpu: self.cpu_status(),
            memory: MemoryStatus {
                total_bytes: self.system.total_memory(),
                used_bytes: self.system.used_memory(),
                available_bytes: self.system.available_memory(),
                swap_total_bytes: self.system.total_swap(),
                swap_used_bytes: self.system.used_swap(),
                used_percent: percent_of(self.system.used_memory(), self.system.total_memory())
                    .unwrap_or(0.0),
                swap_used_percent: percent_of(self.system.used_swap(), self.system.total_swap()),
            },
            disks,
            data_disk,
            networks: self.network_status(),
            temperatures: self
                .components
                .iter()
                .flat_map(|c| c.iter())
                .map(|c| TemperatureStatus {
                    label: c.label().to_owned(),
                    temperature_celsius: c.temperature(),
                    max_celsius: c.max(),
                    critical_celsius: c.critical(),
                })
                .collect(),
            gpus: gpu.gpus,
            gpus_unavailable_reason: gpu.unavailable_reason,
            gpu_driver: gpu.driver,
            process: self.process_status(),
        }
    }

    fn cpu_status(&self) -> CpuStatus {
        let cpus = self.system.cpus();
        CpuStatus {
            brand: cpus.first().map(|c| c.brand().trim().to_owned()).unwrap_or_default(),
            vendor_id: cpus.first().map(|c| c.vendor_id().to_owned()).unwrap_or_default(),
            logical_cores: cpus.len(),
            physical_cores: System::physical_core_count().ok(),
            usage_percent: self.system.global_cpu_usage(),
            per_core_usage_percent: cpus.iter().map(sysinfo::Cpu::usage).collect(),
            per_core_frequency_mhz: cpus.iter().map(sysinfo::Cpu::frequency).collect(),
            max_frequency_mhz: max_frequency_mhz(Path::new(CPU_SYSFS)),
            load_average: System::load_average().ok().map(|l| LoadAverage {
                one: l.one,
                five: l.five,
                fifteen: l.fifteen,
            }),
        }
    }

    fn network_status(&self) -> Vec<NetworkStatus> {
        let mut networks: Vec<NetworkStatus> = self
            .networks
            .iter()
            .flat_map(|n| n.iter())
            .map(|(name, data)| NetworkStatus {
                interface: name.to_string_lossy().into_owned(),
                received_bytes_total: data.total_received(),
                transmitted_bytes_total: data.total_transmitted(),
            })
            .collect();
        networks.sort_by(|a, b| a.interface.cmp(&b.interface));
        networks
    }

    fn process_status(&self) -> ProcessStatus {
        let process = self.pid.and_then(|pid| self.system.process(pid));
        ProcessStatus {
            pid: self.pid.map_or(std::process::id(), Pid::as_u32),
            resident_memory_bytes: process.map_or(0, sysinfo::Process::memory),
            virtual_memory_bytes: process.map_or(0, sysinfo::Process::virtual_memory),
            cpu_usage_percent: process.map_or(0.0, sysinfo::Process::cpu_usage),
            // sysinfo lists the threads besides the main one; a process has at least one.
            threads: process.and_then(|p| p.tasks()).map(|tasks| tasks.len().max(1)),
            open_files: process.and_then(sysinfo::Process::open_files),
            open_files_limit: process.and_then(sysinfo::Process::open_files_limit),
            run_time_secs: process.map_or(0, sysinfo::Process::run_time),
        }
    }
}

fn disk_status(disk: &sysinfo::Disk) -> DiskStatus {
    DiskStatus {
        name: disk.name().to_string_lossy().into_owned(),
        mount_point: disk.mount_point().to_string_lossy().into_owned(),
        file_system: disk.file_system().to_string_lossy().into_owned(),
        kind: match disk.kind() {
            sysinfo::DiskKind::SSD => "ssd".to_owned(),
            sysinfo::DiskKind::HDD => "hdd".to_owned(),
            sysinfo::DiskKind::Unknown(_) => "unknown".to_owned(),
        },
        total_bytes: disk.total_space(),
        available_bytes: disk.available_space(),
        used_percent: percent_of(
            disk.total_space().saturating_sub(disk.available_space()),
            disk.total_space(),
        )
        .unwrap_or(0.0),
        removable: disk.is_removable(),
        read_only: disk.is_read_only(),
    }
}

/// `part` of `whole` in percent, `None` when `whole` is zero.
#[allow(clippy::cast_precision_loss)] // A percentage needs no more than f32's precision.
fn percent_of(part: u64, whole: u64) -> Option<f32> {
    (whole > 0).then(|| (part.min(whole) as f64 / whole as f64 * 100.0) as f32)
}

/// Where Linux describes its CPUs.
const CPU_SYSFS: &str = "/sys/devices/system/cpu";

/// The highest `cpu*/cpufreq/cpuinfo_max_freq` (kHz) under `sysfs`, in MHz; `None` when no
/// CPU has one (VMs, other platforms).
fn max_frequency_mhz(sysfs: &Path) -> Option<u64> {
    std::fs::read_dir(sysfs)
        .ok()?
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|entry| {
            let text =
                std::fs::read_to_string(entry.path().join("cpufreq/cpuinfo_max_freq")).ok()?;
            text.trim().parse::<u64>().ok()
        })
        .max()
        .map(|khz| khz / 1000)
}

/// The disk whose mount point is the longest prefix of `path` (made absolute; the path may
/// not exist yet, so its nearest existing ancestor is resolved).
fn disk_holding(disks: &[DiskStatus], path: &Path) -> Option<DiskStatus> {
    let absolute = std::path::absolute(path).ok()?;
    let absolute = absolute.ancestors().find_map(|p| p.canonicalize().ok())?;
    disks
        .iter()
        .filter(|d| absolute.starts_with(&d.mount_point))
        .max_by_key(|d| d.mount_point.len())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(mount_point: &str) -> DiskStatus {
        DiskStatus {
            name: "d".to_owned(),
            mount_point: mount_point.to_owned(),
            file_system: "ext4".to_owned(),
            kind: "ssd".to_owned(),
            total_bytes: 1,
            available_bytes: 1,
            used_percent: 0.0,
            removable: false,
            read_only: false,
        }
    }

    #[test]
    fn data_disk_is_the_longest_mount_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let disks = [disk("/"), disk(root.to_str().unwrap()), disk("/nonexistent")];
        let not_yet_created = root.join("data/sub");
        let found = disk_holding(&disks, &not_yet_created).unwrap();
        assert_eq!(found.mount_point, root.to_str().unwrap());
    }

    #[test]
    fn max_frequency_is_the_highest_cpu_s_in_mhz() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(max_frequency_mhz(dir.path()), None, "no cpufreq: unknown");
        for (cpu, khz) in [("cpu0", "3400000\n"), ("cpu1", "4200000\n")] {
            let freq = dir.path().join(cpu).join("cpufreq");
            std::fs::create_dir_all(&freq).unwrap();
            std::fs::write(freq.join("cpuinfo_max_freq"), khz).unwrap();
        }
        // Not CPUs: cpufreq policies, `cpuidle`.
        std::fs::create_dir_all(dir.path().join("cpuidle/cpufreq")).unwrap();
        std::fs::write(dir.path().join("cpuidle/cpufreq/cpuinfo_max_freq"), "9999999").unwrap();
        assert_eq!(max_frequency_mhz(dir.path()), Some(4200));
    }

    #[test]
    fn percentages_of_nothing_are_unknown() {
        assert_eq!(percent_of(1, 4), Some(25.0));
        assert_eq!(percent_of(5, 4), Some(100.0));
        assert_eq!(percent_of(0, 0), None);
    }
}
