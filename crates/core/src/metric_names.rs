//! Names of ragd's metrics, in one place so dashboards and code agree. Here, in the API
//! boundary crate, so every library that emits a metric (through the `metrics` facade)
//! names it without depending on `ragd-telemetry` and its system probes.
//!
//! Conventions (Prometheus): `ragd_` prefix, base units in the name (`_bytes`, `_seconds`,
//! `_percent`), `_total` for counters.

/// Counter: HTTP requests, labels `method`, `route` (the matched route template), `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "ragd_http_requests_total";
/// Histogram: HTTP request latency, labels `method`, `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "ragd_http_request_duration_seconds";

/// Counter: documents that finished ingestion, label `status` (`ready` or `failed`).
pub const INGEST_DOCUMENTS_TOTAL: &str = "ragd_ingest_documents_total";
/// Counter: chunks written by ingestion.
pub const INGEST_CHUNKS_TOTAL: &str = "ragd_ingest_chunks_total";
/// Gauge: documents waiting for or in processing.
pub const INGEST_QUEUE_DEPTH: &str = "ragd_ingest_queue_depth";
/// Counter: texts embedded, label `table`.
pub const EMBEDDING_TEXTS_TOTAL: &str = "ragd_embedding_texts_total";
/// Histogram: duration of one embedding batch.
pub const EMBEDDING_BATCH_DURATION_SECONDS: &str = "ragd_embedding_batch_duration_seconds";
/// Counter: tokens generated, label `backend`.
pub const GENERATION_TOKENS_TOTAL: &str = "ragd_generation_tokens_total";
/// Gauge: generation speed of the last completion, label `backend`.
pub const GENERATION_TOKENS_PER_SECOND: &str = "ragd_generation_tokens_per_second";

/// Gauge: total CPU usage over the last sampling window.
pub const SYSTEM_CPU_USAGE_PERCENT: &str = "ragd_system_cpu_usage_percent";
/// Gauge: one-minute load average.
pub const SYSTEM_LOAD_AVERAGE_1M: &str = "ragd_system_load_average_1m";
/// Gauge: total RAM.
pub const SYSTEM_MEMORY_TOTAL_BYTES: &str = "ragd_system_memory_total_bytes";
/// Gauge: RAM in use.
pub const SYSTEM_MEMORY_USED_BYTES: &str = "ragd_system_memory_used_bytes";
/// Gauge: free space on the disk holding the data directory.
pub const DATA_DISK_AVAILABLE_BYTES: &str = "ragd_data_disk_available_bytes";
/// Gauge: ragd's resident memory.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "ragd_process_resident_memory_bytes";
/// Gauge: ragd's threads.
pub const PROCESS_THREADS: &str = "ragd_process_threads";
/// Gauge: GPU utilisation, label `gpu` (index).
pub const GPU_UTILIZATION_PERCENT: &str = "ragd_gpu_utilization_percent";
/// Gauge: GPU memory in use, label `gpu` (index).
pub const GPU_MEMORY_USED_BYTES: &str = "ragd_gpu_memory_used_bytes";
/// Gauge: GPU temperature, label `gpu` (index).
pub const GPU_TEMPERATURE_CELSIUS: &str = "ragd_gpu_temperature_celsius";
