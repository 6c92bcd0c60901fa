//! The data-service client: bounded timeouts, and retries with exponential
//! backoff and full jitter for timeouts, connection errors and 5xx only. A 404
//! is an answer, not a fault: it is never retried.

use std::time::Duration;

use api::Secret;
use api::wire::{ChangeFeed, Portfolio};
use prost::Message;
use rand::Rng;

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
    config: ClientConfig,
}

impl DataClient {
    pub fn new(config: ClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(api::server::CLIENT_IDLE_TIMEOUT)
            .build()?;
        Ok(DataClient { http, config })
    }

    pub async fn portfolio(&self, customer_id: &str) -> Result<Portfolio, FetchError> {
        let url = format!(
            "{}/api/customers/{customer_id}/portfolio",
            self.config.base_url.trim_end_matches('/')
        );
        let mut last_failure = String::new();
        for attempt in 0..self.config.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            let mut request = self.http.get(&url).header("accept", api::PROTOBUF);
            if let Some(token) = &self.config.token {
                request = request.bearer_auth(token.expose());
            }
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(error) if error.is_timeout() || error.is_connect() || error.is_request() => {
                    last_failure = describe(&error);
                    tracing::warn!(%url, attempt, failure = %last_failure, "data service call failed; retrying");
                    continue;
                }
                Err(error) => return Err(self.rejected(&url, describe(&error))),
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(FetchError::NotFound(customer_id.to_string()));
            }
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(FetchError::Unauthorized {
                    url: self.config.base_url.clone(),
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
            url: self.config.base_url.clone(),
            attempts: self.config.attempts,
            detail: last_failure,
        })
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
            .header("accept", api::PROTOBUF)
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
                url: self.config.base_url.clone(),
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

/// The error and its causes on one line ("connection refused" lives in a cause).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
