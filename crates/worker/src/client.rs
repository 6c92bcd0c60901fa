//! The data-service client: bounded timeouts, and retries with exponential
//! backoff and full jitter for timeouts, connection errors and 5xx only. A 404
//! is an answer, not a fault: it is never retried.
//!
//! Portfolio requests pass a bulkhead (at most `max_concurrent_fetches` at once
//! per node; the rest wait) and a circuit breaker that opens after
//! `breaker_failures` failures in a row, refuses calls at once while open, and
//! lets one probe through every `breaker_open` until one succeeds.

use std::time::{Duration, Instant};

use prost::Message;
use rand::Rng;
use service::Secret;
use service::trace::{TRACEPARENT, TraceParent};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_circuitbreaker::{CircuitBreakerConfig, CircuitBreakerError, CircuitState};
use wire::{ChangeFeed, Portfolio};

/// Portfolio requests through the bulkhead and the breaker.
type Calls = BoxCloneSyncService<reqwest::Request, reqwest::Response, BoxError>;

/// Longest wait for the data service's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the data service, such as `http://127.0.0.1:8080`.
    pub base_url: String,
    /// The data service's token, sent as a bearer token; none for a data
    /// service that serves anonymous callers.
    pub token: Option<Secret>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts per fetch, the first included.
    pub attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Portfolio requests in flight at once from this node.
    pub max_concurrent_fetches: usize,
    /// Failures in a row that open the circuit.
    pub breaker_failures: usize,
    /// How long the circuit stays open before a probe.
    pub breaker_open: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: Option<Secret>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token,
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
            attempts: 4,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            max_concurrent_fetches: 8,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("customer {0:?} not found in the data service")]
    NotFound(String),
    /// The data service did not answer usefully after every retry.
    #[error("data service at {url} unavailable after {attempts} attempts: {detail}")]
    Unavailable {
        url: String,
        attempts: u32,
        detail: String,
    },
    /// The data service refused the credential: a deployment to correct; the
    /// job is retried in case it is corrected meanwhile.
    #[error(
        "the data service at {url} refused this worker's credential: give the worker the data service's token in PROJECTOR_DATASVC_TOKEN"
    )]
    Unauthorized { url: String },
    /// The data service answered with something no retry will change.
    #[error("data service at {url} rejected the request: {detail}")]
    Rejected { url: String, detail: String },
    #[error(transparent)]
    Cache(#[from] cache::Error),
}

#[derive(Clone)]
pub struct DataClient {
    http: reqwest::Client,
    portfolio_calls: Calls,
    config: ClientConfig,
}

impl DataClient {
    /// Needs a tokio runtime: the breaker's calls are queued to a task.
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(service::server::CLIENT_IDLE_TIMEOUT)
            .build()?;
        let portfolio_calls = guarded(http.clone(), &config);
        Ok(DataClient {
            http,
            portfolio_calls,
            config,
        })
    }

    /// One portfolio request through the bulkhead and the breaker, timed
    /// from its sending to its answer's headers.
    async fn call(&self, request: reqwest::Request) -> Result<reqwest::Response, CallError> {
        let mut calls = self.portfolio_calls.clone();
        let ready = calls.ready().await.map_err(CallError::from_box)?;
        let sent = Instant::now();
        let answered = ready.call(request).await.map_err(CallError::from_box);
        let outcome = match &answered {
            Ok(response) if !response.status().is_server_error() => "answered",
            Err(CallError::Open) => "breaker_open",
            _ => "failed",
        };
        metrics::histogram!(service::metrics::DATASVC_REQUEST_DURATION, "outcome" => outcome)
            .record(sent.elapsed());
        if outcome != "answered" {
            metrics::counter!(service::metrics::DATASVC_REQUEST_ERRORS).increment(1);
        }
        answered
    }

    /// The customer's portfolio; each request carries the next hop of `trace`.
    pub async fn portfolio(
        &self,
        customer_id: &str,
        trace: Option<TraceParent>,
    ) -> Result<Portfolio, FetchError> {
        let url = format!(
            "{}/api/customers/{customer_id}/portfolio",
            self.config.base_url.trim_end_matches('/')
        );
        let mut last_failure = String::new();
        for attempt in 0..self.config.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            let mut request = self.http.get(&url).header("accept", wire::PROTOBUF);
            if let Some(token) = &self.config.token {
                request = request.bearer_auth(token.expose());
            }
            if let Some(trace) = trace {
                request = request.header(TRACEPARENT, trace.child().to_string());
            }
            let request = request
                .build()
                .map_err(|error| self.rejected(&url, describe(&error)))?;
            let response = match self.call(request).await {
                Ok(response) => response,
                Err(CallError::Open) => {
                    last_failure = format!(
                        "the circuit breaker is open after {} failures in a row; it lets a probe through every {:?}",
                        self.config.breaker_failures, self.config.breaker_open
                    );
                    continue;
                }
                Err(CallError::Http(error))
                    if error.is_timeout() || error.is_connect() || error.is_request() =>
                {
                    last_failure = describe(&error);
                    tracing::warn!(%url, attempt, failure = %last_failure, "data service call failed; retrying");
                    continue;
                }
                Err(CallError::Http(error)) => return Err(self.rejected(&url, describe(&error))),
                // The client's own queue failed, not the request: try again.
                Err(CallError::Other(detail)) => {
                    last_failure = detail;
                    continue;
                }
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(FetchError::NotFound(customer_id.to_string()));
            }
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(FetchError::Unauthorized {
                    url: database::redact_url(&self.config.base_url),
                });
            }
            if status.is_server_error() {
                last_failure = format!("HTTP {status}");
                tracing::warn!(%url, attempt, %status, "data service failed; retrying");
                continue;
            }
            if !status.is_success() {
                return Err(self.rejected(&url, format!("HTTP {status}")));
            }
            let body = match response.bytes().await {
                Ok(body) => body,
                Err(error) => {
                    last_failure = describe(&error);
                    continue;
                }
            };
            return Portfolio::decode(body).map_err(|error| {
                self.rejected(
                    &url,
                    format!("the portfolio is not valid Protobuf: {error}"),
                )
            });
        }
        Err(FetchError::Unavailable {
            url: database::redact_url(&self.config.base_url),
            attempts: self.config.attempts,
            detail: last_failure,
        })
    }

    /// Whether the data service answers at all (its health, any answer but a
    /// server error), for the node's readiness; `Err` says what is wrong.
    pub async fn answers(&self) -> Result<(), String> {
        let url = format!("{}/health", self.config.base_url.trim_end_matches('/'));
        let shown = database::redact_url(&url);
        match self.http.get(&url).timeout(HEALTH_TIMEOUT).send().await {
            Ok(response) if !response.status().is_server_error() => Ok(()),
            Ok(response) => Err(format!(
                "the data service at {shown} answers {}",
                response.status()
            )),
            Err(error) => Err(format!(
                "the data service at {shown} does not answer ({})",
                describe(&error)
            )),
        }
    }

    /// One page of the change feed after `after`, waiting up to `wait` for a
    /// change; no retries (the follower calls again).
    pub async fn changes(
        &self,
        after: i64,
        wait: Duration,
        limit: u32,
    ) -> Result<ChangeFeed, FetchError> {
        let url = format!(
            "{}/api/changes?after={after}&wait={}&limit={limit}",
            self.config.base_url.trim_end_matches('/'),
            wait.as_secs()
        );
        let mut request = self
            .http
            .get(&url)
            .header("accept", wire::PROTOBUF)
            .timeout(wait + self.config.request_timeout);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token.expose());
        }
        let unavailable = |detail: String| FetchError::Unavailable {
            url: url.clone(),
            attempts: 1,
            detail,
        };
        let response = request
            .send()
            .await
            .map_err(|error| unavailable(describe(&error)))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(FetchError::Unauthorized {
                url: database::redact_url(&self.config.base_url),
            });
        }
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| unavailable(describe(&error)))?;
        ChangeFeed::decode(body).map_err(|error| {
            self.rejected(
                &url,
                format!("the change feed is not valid Protobuf: {error}"),
            )
        })
    }

    /// Full jitter: uniform in [0, min(cap, base * 2^attempt)].
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1 << attempt.min(16))
            .min(self.config.backoff_cap);
        ceiling.mul_f64(rand::rng().random::<f64>())
    }

    fn rejected(&self, url: &str, detail: String) -> FetchError {
        FetchError::Rejected {
            url: url.to_string(),
            detail,
        }
    }
}

/// Why a guarded call did not answer.
enum CallError {
    /// The circuit is open: nothing was sent.
    Open,
    Http(reqwest::Error),
    Other(String),
}

impl CallError {
    fn from_box(error: BoxError) -> CallError {
        let error = match error.downcast::<CircuitBreakerError<reqwest::Error>>() {
            Ok(breaker) => match *breaker {
                CircuitBreakerError::OpenCircuit => return CallError::Open,
                CircuitBreakerError::Inner(error) => return CallError::Http(error),
            },
            Err(error) => error,
        };
        match error.downcast::<reqwest::Error>() {
            Ok(error) => CallError::Http(*error),
            Err(error) => CallError::Other(error.to_string()),
        }
    }
}

/// `http` behind the bulkhead and the breaker. A 5xx, a timeout or a refused
/// connection is a failure; any other answer (a 404 too) is a success.
fn guarded(http: reqwest::Client, config: &ClientConfig) -> Calls {
    let breaker = CircuitBreakerConfig::<reqwest::Response, reqwest::Error>::builder()
        .name("data service")
        .sliding_window_size(config.breaker_failures)
        .minimum_number_of_calls(config.breaker_failures)
        .failure_rate_threshold(1.0)
        .wait_duration_in_open(config.breaker_open)
        .permitted_calls_in_half_open(1)
        .failure_classifier(
            |result: &Result<reqwest::Response, reqwest::Error>| match result {
                Ok(response) => response.status().is_server_error(),
                Err(_) => true,
            },
        )
        .on_state_transition(|from, to| match to {
            CircuitState::Open => tracing::warn!(
                ?from,
                "the data service keeps failing: circuit open, probing it once a while"
            ),
            CircuitState::Closed => {
                tracing::info!(?from, "the data service answers again: circuit closed")
            }
            CircuitState::HalfOpen => tracing::debug!("probing the data service"),
        })
        .build();
    let limit = config.max_concurrent_fetches.max(1);
    let breaking = breaker.layer::<_, reqwest::Request>(http);
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .concurrency_limit(limit)
            .buffer(limit)
            .service(breaking),
    )
}

/// The error and its causes on one line ("connection refused" lives in a cause).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    // reqwest's text names the URL whole, credentials and all.
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), &database::redact_url(url.as_str()));
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
