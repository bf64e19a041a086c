//! `/api/v1/system/status` and `/metrics` against the real machine.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ragd::AppState;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::get_json;
use crate::test_config;

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn meminfo_total_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn system_status_is_plausible_on_this_machine() {
    let (status, body) = get_json("/api/v1/system/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nproc = std::thread::available_parallelism().unwrap().get();
    assert_eq!(body["cpu"]["logical_cores"], nproc);
    assert_eq!(body["memory"]["total_bytes"], meminfo_total_bytes());
    assert!(body["data_disk"]["mount_point"].is_string(), "the data dir's disk is present: {body}");
    // Percentages agree with the byte counts they come from.
    let memory = &body["memory"];
    let used = memory["used_bytes"].as_f64().unwrap() / memory["total_bytes"].as_f64().unwrap();
    let percent = memory["used_percent"].as_f64().unwrap();
    assert!((percent - used * 100.0).abs() < 0.01, "{memory}");
    let disk = &body["data_disk"];
    let total = disk["total_bytes"].as_f64().unwrap();
    let used = (total - disk["available_bytes"].as_f64().unwrap()) / total * 100.0;
    let percent = disk["used_percent"].as_f64().unwrap();
    assert!(percent > 0.0 && (percent - used).abs() < 0.01, "{disk}");
    // This machine's VM has no cpufreq: the maximum is unknown, not zero.
    let cpufreq = std::path::Path::new("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
    if cpufreq.exists() {
        assert!(body["cpu"]["max_frequency_mhz"].as_u64() > Some(0), "{}", body["cpu"]);
    } else {
        assert!(body["cpu"]["max_frequency_mhz"].is_null(), "{}", body["cpu"]);
    }
    assert_eq!(body["process"]["pid"], std::process::id());
    match body["gpus"].as_array().unwrap().as_slice() {
        [] => assert!(body["gpus_unavailable_reason"].as_str().is_some_and(|r| !r.is_empty())),
        gpus => assert!(gpus.iter().all(|g| g["memory_total_bytes"].as_u64() > Some(0))),
    }
    assert!(body["components"].is_object());
}

#[tokio::test]
async fn status_requests_read_the_cached_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let app = ragd::api::router(AppState::open(test_config(dir.path())).await.unwrap());
    let (_, first) = get(&app, "/api/v1/system/status").await;
    let (_, second) = get(&app, "/api/v1/system/status").await;
    let first: Value = serde_json::from_str(&first).unwrap();
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(
        first["sampled_at"], second["sampled_at"],
        "a request never triggers sampling; it reads the sampler's latest snapshot"
    );
    assert!(first["cpu_window_ms"].as_u64().unwrap() >= 100);
}

fn counter(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_count_requests() {
    let dir = tempfile::tempdir().unwrap();
    let app = ragd::api::router(AppState::open(test_config(dir.path())).await.unwrap());
    // Wait for the first system sample, so its gauges exist.
    assert_eq!(get(&app, "/api/v1/system/status").await.0, StatusCode::OK);

    let labels = [("method", "GET"), ("route", "/api/v1/info"), ("status", "200")];
    let (status, before) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let before = counter(&parse(&before), "ragd_http_requests_total", &labels);

    for _ in 0..3 {
        assert_eq!(get(&app, "/api/v1/info").await.0, StatusCode::OK);
    }
    assert_eq!(get(&app, "/no/such/route").await.0, StatusCode::NOT_FOUND);

    let (_, text) = get(&app, "/metrics").await;
    let scrape = parse(&text);
    let after = counter(&scrape, "ragd_http_requests_total", &labels);
    // Other tests in this binary share the process-wide recorder, so count at least ours.
    assert!(after - before >= 3.0, "before {before}, after {after}\n{text}");
    assert!(
        counter(&scrape, "ragd_http_requests_total", &[("route", "unmatched"), ("status", "404")])
            >= 1.0
    );
    assert!(
        scrape.samples.iter().any(|s| s.metric.starts_with("ragd_http_request_duration_seconds")),
        "latency histogram present"
    );
    assert!(counter(&scrape, "ragd_system_memory_total_bytes", &[]) > 0.0, "system gauges present");
}
