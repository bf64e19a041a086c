//! Prometheus metrics: the process-wide recorder and the per-request HTTP metrics layer.
//!
//! Libraries emit through the `metrics` facade; this module installs the one recorder (the
//! binary's job, architecture invariant 4) and renders it at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ragd_telemetry::names;

/// Latency buckets in seconds: from a cached status read to a long generation.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process-wide Prometheus recorder, installed on first use. Every server in the
/// process (tests start several) shares it.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Only an empty bucket list is refused, and `LATENCY_BUCKETS` is not empty.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .unwrap_or_else(|err| {
                    tracing::warn!(%err, "latency histograms fall back to summaries");
                    PrometheusBuilder::new()
                });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if let Err(err) = metrics::set_global_recorder(recorder) {
                tracing::warn!(%err, "another metrics recorder is installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// Middleware counting requests and timing them, labelled by the matched route template
/// (`/api/v1/documents/{id}`, not the concrete path) so label cardinality stays bounded.
pub async fn track_http(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS_TOTAL, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(names::HTTP_REQUEST_DURATION_SECONDS, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
