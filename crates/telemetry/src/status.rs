//! The snapshot types. Units are part of every field name (`_bytes`, `_percent`, `_mhz`,
//! `_celsius`, `_watts`, `_secs`), so a JSON reader never has to guess.
//!
//! A value the platform does not report is `None` (`null` in JSON), never a made-up zero.

use chrono::{DateTime, Utc};
use serde::Serialize;

macro_rules! schema_types {
    ($($item:item)*) => {
        $(
            #[derive(Debug, Clone, PartialEq, Serialize)]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            $item
        )*
    };
}

schema_types! {
    /// Everything that affects ragd's throughput, sampled at one moment.
    pub struct SystemStatus {
        /// When this snapshot was taken.
        pub sampled_at: DateTime<Utc>,
        /// The window CPU usage was measured over, in milliseconds.
        pub cpu_window_ms: u64,
        /// Host and operating system.
        pub host: HostStatus,
        /// Processors.
        pub cpu: CpuStatus,
        /// RAM and swap.
        pub memory: MemoryStatus,
        /// Every mounted disk.
        pub disks: Vec<DiskStatus>,
        /// The disk holding the data directory, when it could be found.
        pub data_disk: Option<DiskStatus>,
        /// Network interfaces.
        pub networks: Vec<NetworkStatus>,
        /// Temperature sensors the OS exposes (often none in VMs).
        pub temperatures: Vec<TemperatureStatus>,
        /// NVIDIA GPUs seen through NVML; empty when there are none or NVML is missing.
        pub gpus: Vec<GpuStatus>,
        /// Why `gpus` is empty, when it is.
        pub gpus_unavailable_reason: Option<String>,
        /// The NVIDIA driver, when NVML is loaded.
        pub gpu_driver: Option<GpuDriver>,
        /// ragd's own process.
        pub process: ProcessStatus,
    }

    /// Host and operating system.
    pub struct HostStatus {
        /// Host name.
        pub hostname: Option<String>,
        /// OS name (`Debian GNU/Linux`).
        pub os_name: Option<String>,
        /// OS version (`12`).
        pub os_version: Option<String>,
        /// Kernel version.
        pub kernel_version: Option<String>,
        /// CPU architecture (`x86_64`).
        pub arch: String,
        /// Seconds since boot.
        pub uptime_secs: Option<u64>,
    }

    /// Processors.
    pub struct CpuStatus {
        /// Model name of the first CPU.
        pub brand: String,
        /// Vendor id (`GenuineIntel`, `AuthenticAMD`).
        pub vendor_id: String,
        /// Logical CPUs (what `nproc` counts without affinity limits).
        pub logical_cores: usize,
        /// Physical cores, when known.
        pub physical_cores: Option<usize>,
        /// Usage of all CPUs together over the sampling window, 0 to 100.
        pub usage_percent: f32,
        /// Usage of each logical CPU, 0 to 100.
        pub per_core_usage_percent: Vec<f32>,
        /// Current frequency of each logical CPU.
        pub per_core_frequency_mhz: Vec<u64>,
        /// The highest frequency any CPU may run at (Linux `cpufreq`'s `cpuinfo_max_freq`);
        /// `None` where the platform does not say (most VMs).
        pub max_frequency_mhz: Option<u64>,
        /// Load averages.
        pub load_average: Option<LoadAverage>,
    }

    /// Run-queue load averages.
    pub struct LoadAverage {
        /// Over one minute.
        pub one: f64,
        /// Over five minutes.
        pub five: f64,
        /// Over fifteen minutes.
        pub fifteen: f64,
    }

    /// RAM and swap.
    pub struct MemoryStatus {
        /// Installed RAM.
        pub total_bytes: u64,
        /// RAM in use.
        pub used_bytes: u64,
        /// RAM available for new allocations without swapping.
        pub available_bytes: u64,
        /// Swap size.
        pub swap_total_bytes: u64,
        /// Swap in use.
        pub swap_used_bytes: u64,
        /// RAM in use, 0 to 100.
        pub used_percent: f32,
        /// Swap in use, 0 to 100; `None` without swap.
        pub swap_used_percent: Option<f32>,
    }

    /// One mounted file system.
    pub struct DiskStatus {
        /// Device name.
        pub name: String,
        /// Where it is mounted.
        pub mount_point: String,
        /// File system type.
        pub file_system: String,
        /// `ssd`, `hdd` or `unknown`.
        pub kind: String,
        /// Size.
        pub total_bytes: u64,
        /// Free space usable by ragd.
        pub available_bytes: u64,
        /// Space not available to ragd, 0 to 100 (what `df` calls `Use%`, counting the
        /// blocks reserved for root as used).
        pub used_percent: f32,
        /// Removable media.
        pub removable: bool,
        /// Mounted read-only.
        pub read_only: bool,
    }

    /// One network interface, counters since boot.
    pub struct NetworkStatus {
        /// Interface name.
        pub interface: String,
        /// Bytes received since boot.
        pub received_bytes_total: u64,
        /// Bytes sent since boot.
        pub transmitted_bytes_total: u64,
    }

    /// One temperature sensor.
    pub struct TemperatureStatus {
        /// Sensor label.
        pub label: String,
        /// Current reading.
        pub temperature_celsius: Option<f32>,
        /// Highest reading seen.
        pub max_celsius: Option<f32>,
        /// Temperature at which the hardware protects itself.
        pub critical_celsius: Option<f32>,
    }

    /// The NVIDIA driver.
    pub struct GpuDriver {
        /// Driver version (`580.159.04`).
        pub driver_version: Option<String>,
        /// Highest CUDA version the driver supports (`13.0`).
        pub cuda_version: Option<String>,
    }

    /// One NVIDIA GPU. Each reading is `None` when the device does not support it.
    pub struct GpuStatus {
        /// NVML index.
        pub index: u32,
        /// Product name.
        pub name: Option<String>,
        /// Stable UUID.
        pub uuid: Option<String>,
        /// Installed memory.
        pub memory_total_bytes: Option<u64>,
        /// Memory in use.
        pub memory_used_bytes: Option<u64>,
        /// Share of time kernels ran, 0 to 100.
        pub utilization_percent: Option<u32>,
        /// Share of time memory was read or written, 0 to 100.
        pub memory_utilization_percent: Option<u32>,
        /// Die temperature.
        pub temperature_celsius: Option<u32>,
        /// Current power draw.
        pub power_draw_watts: Option<f64>,
        /// Enforced power limit.
        pub power_limit_watts: Option<f64>,
        /// Fan speed of the first fan, 0 to 100 (none on passively cooled cards).
        pub fan_speed_percent: Option<u32>,
        /// Graphics clock.
        pub graphics_clock_mhz: Option<u32>,
        /// SM clock.
        pub sm_clock_mhz: Option<u32>,
        /// Memory clock.
        pub memory_clock_mhz: Option<u32>,
        /// Why clocks are held down right now (`SW_POWER_CAP`, `HW_SLOWDOWN`, ...).
        pub throttle_reasons: Vec<String>,
        /// Compute processes on this GPU.
        pub processes: Vec<GpuProcess>,
    }

    /// A process using a GPU.
    pub struct GpuProcess {
        /// Process id.
        pub pid: u32,
        /// GPU memory it holds, when the driver reports it.
        pub used_memory_bytes: Option<u64>,
    }

    /// ragd's own process.
    pub struct ProcessStatus {
        /// Process id.
        pub pid: u32,
        /// Resident memory.
        pub resident_memory_bytes: u64,
        /// Virtual memory.
        pub virtual_memory_bytes: u64,
        /// CPU usage over the sampling window; 100 is one full core.
        pub cpu_usage_percent: f32,
        /// Threads.
        pub threads: Option<usize>,
        /// Open file descriptors.
        pub open_files: Option<usize>,
        /// Limit of open file descriptors.
        pub open_files_limit: Option<usize>,
        /// Seconds since the process started.
        pub run_time_secs: u64,
    }
}
