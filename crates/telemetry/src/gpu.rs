//! NVIDIA GPUs through NVML.
//!
//! `nvml-wrapper` loads `libnvidia-ml.so` at run time, so ragd builds and runs on machines
//! without a driver: there, [`Gpus::open`] keeps the reason and every sample reports no GPUs
//! with that reason. Each reading is optional because consumer cards, MIG slices and VMs
//! leave many of them unsupported.

use std::path::Path;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;

use crate::status::{GpuDriver, GpuProcess, GpuStatus};

/// NVML, or why it is not there.
pub(crate) enum Gpus {
    Nvml(Box<Nvml>),
    Unavailable(String),
}

impl std::fmt::Debug for Gpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nvml(_) => f.write_str("Gpus::Nvml"),
            Self::Unavailable(reason) => write!(f, "Gpus::Unavailable({reason:?})"),
        }
    }
}

/// What one sample of the GPUs gives.
pub(crate) struct GpuSample {
    pub(crate) gpus: Vec<GpuStatus>,
    pub(crate) unavailable_reason: Option<String>,
    pub(crate) driver: Option<GpuDriver>,
}

impl Gpus {
    /// Loads NVML from `library` (or the system's default search path).
    pub(crate) fn open(library: Option<&Path>) -> Self {
        let result = match library {
            Some(path) => Nvml::builder().lib_path(path.as_os_str()).init(),
            None => Nvml::init(),
        };
        match result {
            Ok(nvml) => {
                tracing::info!("NVML loaded; GPUs will be reported");
                Self::Nvml(Box::new(nvml))
            }
            Err(err) => {
                let reason = format!("NVML is not available (no NVIDIA driver or GPU?): {err}");
                tracing::info!("{reason}");
                Self::Unavailable(reason)
            }
        }
    }

    pub(crate) fn sample(&self) -> GpuSample {
        let nvml = match self {
            Self::Nvml(nvml) => nvml,
            Self::Unavailable(reason) => {
                return GpuSample {
                    gpus: Vec::new(),
                    unavailable_reason: Some(reason.clone()),
                    driver: None,
                };
            }
        };
        let driver = GpuDriver {
            driver_version: nvml.sys_driver_version().ok(),
            cuda_version: nvml
                .sys_cuda_driver_version()
                .ok()
                .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
        };
        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(err) => {
                return GpuSample {
                    gpus: Vec::new(),
                    unavailable_reason: Some(format!("NVML cannot count devices: {err}")),
                    driver: Some(driver),
                };
            }
        };
        let gpus: Vec<GpuStatus> =
            (0..count).filter_map(|index| device_status(nvml, index)).collect();
        let unavailable_reason = gpus.is_empty().then(|| "NVML reports no usable GPU".to_owned());
        GpuSample { gpus, unavailable_reason, driver: Some(driver) }
    }
}

fn device_status(nvml: &Nvml, index: u32) -> Option<GpuStatus> {
    let device = match nvml.device_by_index(index) {
        Ok(device) => device,
        Err(err) => {
            tracing::debug!(index, %err, "skipping GPU NVML cannot open");
            return None;
        }
    };
    let memory = device.memory_info().ok();
    let utilization = device.utilization_rates().ok();
    let milliwatts = |mw: u32| f64::from(mw) / 1000.0;
    let processes = device
        .running_compute_processes()
        .map(|procs| {
            procs
                .into_iter()
                .map(|p| GpuProcess {
                    pid: p.pid,
                    used_memory_bytes: match p.used_gpu_memory {
                        UsedGpuMemory::Used(bytes) => Some(bytes),
                        UsedGpuMemory::Unavailable => None,
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Some(GpuStatus {
        index,
        name: device.name().ok(),
        uuid: device.uuid().ok(),
        memory_total_bytes: memory.as_ref().map(|m| m.total),
        memory_used_bytes: memory.as_ref().map(|m| m.used),
        utilization_percent: utilization.as_ref().map(|u| u.gpu),
        memory_utilization_percent: utilization.as_ref().map(|u| u.memory),
        temperature_celsius: device.temperature(TemperatureSensor::Gpu).ok(),
        power_draw_watts: device.power_usage().ok().map(milliwatts),
        power_limit_watts: device.enforced_power_limit().ok().map(milliwatts),
        fan_speed_percent: device.fan_speed(0).ok(),
        graphics_clock_mhz: device.clock_info(Clock::Graphics).ok(),
        sm_clock_mhz: device.clock_info(Clock::SM).ok(),
        memory_clock_mhz: device.clock_info(Clock::Memory).ok(),
        throttle_reasons: device
            .current_throttle_reasons()
            .map(|reasons| reasons.iter_names().map(|(name, _)| name.to_owned()).collect())
            .unwrap_or_default(),
        processes,
    })
}
