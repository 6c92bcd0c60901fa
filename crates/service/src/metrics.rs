//! Prometheus metrics: one recorder per process, which every listener of the
//! process renders at `/metrics`; the names every role records under; and the
//! layer that times each request by route and status.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use metrics::{Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

pub const HTTP_REQUEST_DURATION: &str = "projector_http_request_duration_seconds";
pub const JOBS_SUBMITTED: &str = "projector_jobs_submitted_total";
pub const JOBS_CLAIMED: &str = "projector_jobs_claimed_total";
pub const JOBS_COMPLETED: &str = "projector_jobs_completed_total";
pub const JOBS_FAILED: &str = "projector_jobs_failed_total";
pub const JOBS_CANCELLED: &str = "projector_jobs_cancelled_total";
pub const JOBS_RETRIED: &str = "projector_jobs_retried_total";
pub const JOBS: &str = "projector_jobs";
pub const OPEN_STREAMS: &str = "projector_open_streams";
pub const COMMIT_TO_CLAIM: &str = "projector_job_commit_to_claim_seconds";
pub const JOB_RUN: &str = "projector_job_run_seconds";
pub const JOB_ATTEMPT: &str = "projector_job_attempt";
pub const CACHE_HITS: &str = "projector_cache_hits_total";
pub const CACHE_MISSES: &str = "projector_cache_misses_total";
pub const CACHE_EXPIRED: &str = "projector_cache_expired_total";
pub const CACHE_EVICTIONS: &str = "projector_cache_evictions_total";
pub const CACHE_STALE_SERVED: &str = "projector_cache_stale_served_total";
pub const RESULTS_REUSED: &str = "projector_results_reused_total";
pub const DATASVC_REQUEST_DURATION: &str = "projector_datasvc_request_duration_seconds";
pub const DATASVC_REQUEST_ERRORS: &str = "projector_datasvc_request_errors_total";
pub const ENGINE_PATH_STEPS: &str = "projector_engine_path_steps_total";
pub const ENGINE_PATH_STEPS_PER_SECOND: &str = "projector_engine_path_steps_per_second";
/// The original data service's own counter, under its original name.
pub const PORTFOLIO_REQUESTS: &str = "datasvc_portfolio_requests_total";

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric, with its help text: what `/metrics` describes, and what the
/// dashboard in `docs/grafana` draws. Counters carry no labels, so each is
/// shown from the start at 0 rather than missing until its first event.
const CATALOGUE: &[(&str, Kind, Unit, &str)] = &[
    (
        HTTP_REQUEST_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Time to answer a request's headers, by method, route and status",
    ),
    (
        JOBS_SUBMITTED,
        Kind::Counter,
        Unit::Count,
        "Jobs accepted by the gateway (idempotent replays are not counted)",
    ),
    (
        JOBS_CLAIMED,
        Kind::Counter,
        Unit::Count,
        "Job attempts claimed by the workers",
    ),
    (
        JOBS_COMPLETED,
        Kind::Counter,
        Unit::Count,
        "Job attempts stored as completed",
    ),
    (
        JOBS_FAILED,
        Kind::Counter,
        Unit::Count,
        "Jobs failed for good: a permanent error, or their last attempt",
    ),
    (
        JOBS_RETRIED,
        Kind::Counter,
        Unit::Count,
        "Job attempts that failed and go back to the queue to be tried again",
    ),
    (
        JOBS_CANCELLED,
        Kind::Counter,
        Unit::Count,
        "Jobs cancelled by their tenant while queued or running",
    ),
    (
        JOBS,
        Kind::Gauge,
        Unit::Count,
        "Jobs in the job store by status, read at scrape time",
    ),
    (
        OPEN_STREAMS,
        Kind::Gauge,
        Unit::Count,
        "Event streams and long-polls open now, within their budget",
    ),
    (
        COMMIT_TO_CLAIM,
        Kind::Histogram,
        Unit::Seconds,
        "Time from a job's submission to its first claim",
    ),
    (
        JOB_RUN,
        Kind::Histogram,
        Unit::Seconds,
        "Time a job attempt ran on a worker, by outcome",
    ),
    (
        JOB_ATTEMPT,
        Kind::Histogram,
        Unit::Count,
        "Which attempt of its job each claim is (1 for the first)",
    ),
    (
        CACHE_HITS,
        Kind::Counter,
        Unit::Count,
        "Portfolios served fresh from the worker's cache",
    ),
    (
        CACHE_MISSES,
        Kind::Counter,
        Unit::Count,
        "Portfolios not in the worker's cache, or expired",
    ),
    (
        CACHE_EXPIRED,
        Kind::Counter,
        Unit::Count,
        "Cache entries found past their time to live",
    ),
    (
        CACHE_EVICTIONS,
        Kind::Counter,
        Unit::Count,
        "Cache entries evicted because their customer changed",
    ),
    (
        CACHE_STALE_SERVED,
        Kind::Counter,
        Unit::Count,
        "Expired portfolios served while the data service could not answer",
    ),
    (
        RESULTS_REUSED,
        Kind::Counter,
        Unit::Count,
        "Results taken from the worker's cache for the same inputs",
    ),
    (
        DATASVC_REQUEST_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Time the data service took to answer a worker, by outcome",
    ),
    (
        DATASVC_REQUEST_ERRORS,
        Kind::Counter,
        Unit::Count,
        "Data-service requests that got no usable answer (refused, failed or timed out)",
    ),
    (
        ENGINE_PATH_STEPS,
        Kind::Counter,
        Unit::Count,
        "Paths times monthly steps the engine projected",
    ),
    (
        ENGINE_PATH_STEPS_PER_SECOND,
        Kind::Gauge,
        Unit::CountPerSecond,
        "Path-steps per second of the latest projection",
    ),
    (
        PORTFOLIO_REQUESTS,
        Kind::Counter,
        Unit::Count,
        "Portfolio requests the data service served",
    ),
];

/// Bucket bounds of every duration, from a fast answer to a long projection.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];
const ATTEMPTS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 10.0];

/// The process's recorder, installed on first use. Metrics recorded before it
/// is installed are lost, so each command installs it as it starts.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(JOB_ATTEMPT.into()), ATTEMPTS)
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
        }
        for (name, kind, unit, help) in CATALOGUE {
            match kind {
                Kind::Counter => {
                    metrics::describe_counter!(*name, *unit, *help);
                    metrics::counter!(*name).increment(0);
                }
                Kind::Gauge => metrics::describe_gauge!(*name, *unit, *help),
                Kind::Histogram => metrics::describe_histogram!(*name, *unit, *help),
            }
        }
        handle
    })
}

/// Reads what a role does not count as it happens (the queue depth, from its
/// store) into the recorder just before a scrape renders.
pub type Collect = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Reads the queue depth (jobs queued, jobs processing) with `read` into the
/// `projector_jobs` gauge when a scrape asks, rather than on every write.
pub fn queue_depth<F, Fut, E>(read: F) -> Collect
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(u64, u64), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let read = Arc::new(read);
    Arc::new(move || {
        let read = read.clone();
        Box::pin(async move {
            match read().await {
                Ok((queued, processing)) => {
                    metrics::gauge!(JOBS, "status" => "queued").set(queued as f64);
                    metrics::gauge!(JOBS, "status" => "processing").set(processing as f64);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the queue depth for /metrics; the last one read is shown")
                }
            }
        })
    })
}

/// The Prometheus text of every metric of the process.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// Times each request from its arrival to its answer's headers, labelled by
/// the route that matched (never the raw path, which would make a series per
/// job id) and the status. A layer of its own rather than a middleware
/// function, which would box the rest of the stack on every request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeRequests;

impl<S> Layer<S> for TimeRequests {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Timed<S>(S);

impl<S, B> Service<Request<B>> for Timed<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Timing<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        Timing {
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            started: Instant::now(),
            answer: self.0.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct Timing<F> {
        #[pin]
        answer: F,
        method: &'static str,
        route: Option<MatchedPath>,
        started: Instant,
    }
}

impl<F, E> Future for Timing<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answered = std::task::ready!(this.answer.poll(cx));
        if let Ok(response) = &answered {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            request_histogram(this.method, route, response.status()).record(this.started.elapsed());
        }
        Poll::Ready(answered)
    }
}

/// The methods of HTTP itself (RFC 9110), each its own label; every other
/// method (which routing answers 405) is counted as `other`, so that no
/// client can add a series by inventing methods.
pub(crate) fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// A series of the request histogram: method, route (by where its template
/// lives, which is fixed while the router lives), status.
type Series = (&'static str, usize, StatusCode);

/// Each series seen, with its route's template and its histogram.
type Known = RwLock<HashMap<Series, (Box<str>, Histogram)>>;

/// The histogram of a series, looked up without building its labels: a
/// registry lookup allocates each label, which showed in the intake's
/// throughput. The template is compared too, in case a dropped router's
/// place was reused.
fn request_histogram(method: &'static str, route: &str, status: StatusCode) -> Histogram {
    static SERIES: LazyLock<Known> = LazyLock::new(RwLock::default);
    let series = (method, route.as_ptr() as usize, status);
    let known = SERIES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&series)
        .filter(|(template, _)| **template == *route)
        .map(|(_, histogram)| histogram.clone());
    known.unwrap_or_else(|| {
        let histogram = metrics::histogram!(
            HTTP_REQUEST_DURATION,
            "method" => series.0,
            "route" => route.to_owned(),
            "status" => status.as_str().to_owned(),
        );
        SERIES
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(series, (route.into(), histogram.clone()));
        histogram
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metric names in a PromQL expression, without a histogram's suffixes.
    fn names_in(expression: &str) -> Vec<String> {
        expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("projector_"))
            .map(|word| {
                ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| word.strip_suffix(suffix))
                    .filter(|base| CATALOGUE.iter().any(|(name, ..)| name == base))
                    .unwrap_or(word)
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn the_dashboard_draws_every_metric_and_only_catalogued_ones() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana/projector.json"))
                .expect("the dashboard is JSON");
        let drawn: Vec<String> = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
            .flat_map(|target| names_in(target["expr"].as_str().unwrap_or_default()))
            .collect();
        for name in &drawn {
            assert!(
                CATALOGUE.iter().any(|(catalogued, ..)| catalogued == name),
                "the dashboard draws {name}, which no role records"
            );
        }
        for (name, ..) in CATALOGUE
            .iter()
            .filter(|(name, ..)| *name != PORTFOLIO_REQUESTS)
        {
            assert!(
                drawn.iter().any(|drawn| drawn == name),
                "the dashboard does not draw {name}"
            );
        }
    }

    #[test]
    fn every_catalogued_counter_is_rendered_from_the_start() {
        let text = render();
        for (name, kind, ..) in CATALOGUE {
            if matches!(kind, Kind::Counter) {
                assert!(
                    text.contains(&format!("\n{name} 0\n")),
                    "{name} missing from\n{text}"
                );
            }
        }
    }
}
