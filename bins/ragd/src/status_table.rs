//! The human-readable table `ragd status` prints.

use std::fmt::Write;

use ragd_telemetry::SystemStatus;

/// Bytes in the largest binary unit that keeps the number at least 1, one decimal.
#[allow(clippy::cast_precision_loss)] // Display only.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Renders the snapshot as aligned `key  value` lines, grouped by section.
#[must_use]
pub fn render(status: &SystemStatus) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |key: &str, value: String| rows.push((key.to_owned(), value));

    let host = &status.host;
    row("host", format!("{} ({})", or_dash(host.hostname.clone()), host.arch));
    row(
        "os",
        format!(
            "{} {} / kernel {}",
            or_dash(host.os_name.clone()),
            or_dash(host.os_version.clone()),
            or_dash(host.kernel_version.clone())
        ),
    );
    row(
        "uptime",
        host.uptime_secs
            .map_or_else(|| "-".to_owned(), |s| format!("{}h {}m", s / 3600, s % 3600 / 60)),
    );

    let cpu = &status.cpu;
    row(
        "cpu",
        format!(
            "{} ({} logical, {} physical, max {})",
            cpu.brand,
            cpu.logical_cores,
            or_dash(cpu.physical_cores),
            cpu.max_frequency_mhz.map_or_else(|| "-".to_owned(), |f| format!("{f} MHz"))
        ),
    );
    let per_core: Vec<String> =
        cpu.per_core_usage_percent.iter().map(|u| format!("{u:.0}%")).collect();
    row(
        "cpu usage",
        format!(
            "{:.1}% over {} ms [{}]",
            cpu.usage_percent,
            status.cpu_window_ms,
            per_core.join(" ")
        ),
    );
    if let Some(load) = &cpu.load_average {
        row("load average", format!("{:.2} {:.2} {:.2}", load.one, load.five, load.fifteen));
    }

    let mem = &status.memory;
    row(
        "memory",
        format!(
            "{} used / {} total ({:.0}%), {} available",
            human_bytes(mem.used_bytes),
            human_bytes(mem.total_bytes),
            mem.used_percent,
            human_bytes(mem.available_bytes)
        ),
    );
    row(
        "swap",
        format!(
            "{} used / {} total",
            human_bytes(mem.swap_used_bytes),
            human_bytes(mem.swap_total_bytes)
        ),
    );

    for disk in &status.disks {
        row(
            &format!("disk {}", disk.mount_point),
            format!(
                "{} free / {} ({:.0}% used, {}, {})",
                human_bytes(disk.available_bytes),
                human_bytes(disk.total_bytes),
                disk.used_percent,
                disk.file_system,
                disk.kind
            ),
        );
    }
    row(
        "data disk",
        status.data_disk.as_ref().map_or_else(
            || "-".to_owned(),
            |d| format!("{} ({} free)", d.mount_point, human_bytes(d.available_bytes)),
        ),
    );
    for sensor in &status.temperatures {
        row(
            &format!("temp {}", sensor.label),
            sensor.temperature_celsius.map_or_else(|| "-".to_owned(), |t| format!("{t:.0} °C")),
        );
    }

    if status.gpus.is_empty() {
        row("gpus", format!("none ({})", or_dash(status.gpus_unavailable_reason.clone())));
    }
    for gpu in &status.gpus {
        let memory = match (gpu.memory_used_bytes, gpu.memory_total_bytes) {
            (Some(used), Some(total)) => format!("{} / {}", human_bytes(used), human_bytes(total)),
            _ => "-".to_owned(),
        };
        row(
            &format!("gpu {}", gpu.index),
            format!(
                "{}: {} util, {} mem, {} °C, {} W",
                or_dash(gpu.name.clone()),
                gpu.utilization_percent.map_or_else(|| "-".to_owned(), |u| format!("{u}%")),
                memory,
                or_dash(gpu.temperature_celsius),
                gpu.power_draw_watts.map_or_else(|| "-".to_owned(), |w| format!("{w:.0}")),
            ),
        );
    }

    let process = &status.process;
    row(
        "ragd process",
        format!(
            "pid {}, {} resident, {} threads, {} open files",
            process.pid,
            human_bytes(process.resident_memory_bytes),
            or_dash(process.threads),
            or_dash(process.open_files)
        ),
    );

    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().fold(String::new(), |mut out, (key, value)| {
        let _ = writeln!(out, "{key:<width$}  {value}");
        out
    })
}
