//! How every HTTP role serves: on a listener it is given, with `/health`, and a
//! shutdown in two steps. From the first signal the role drains (health answers
//! 503, so a load balancer stops sending new work, while requests are still
//! served); when it stops, the server finishes the requests in flight and exits.
//!
//! No client can hold the server: headers must arrive within a deadline (which
//! is also how long a keep-alive connection may sit idle), a body within
//! another, connections are capped below the process's open-file limit (the
//! longest-idle one is closed to admit a new one), and accept errors back off.
//! HTTP/1.1 only: every client of these roles speaks it, and an HTTP/2
//! connection could stay open on pings alone.

mod connections;
mod guard;
pub(crate) mod operations;
mod streams;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::Secret;
use crate::metrics::{self, Collect};
use crate::trace;
use connections::{BusyBody, Connections, Slot};
pub use guard::echo;
use guard::{MAX_HEAD_BYTES, MAX_HEADERS};
pub use streams::{StreamBudget, StreamPermit};

/// The two steps of a role's shutdown, shared by everything in the process,
/// and the work that must end between them (a worker's running jobs).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    draining: CancellationToken,
    stopping: CancellationToken,
    work: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Health turns 503 and intake ends; requests are still served.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Servers finish the requests in flight and return. Implies draining.
    pub fn stop(&self) {
        self.draining.cancel();
        self.stopping.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    pub async fn draining(&self) {
        self.draining.cancelled().await
    }

    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// The token that fires when draining starts, for tasks that stop on it.
    pub fn draining_token(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// A shutdown that follows this one and can also be stopped on its own:
    /// for a part of a role that ends when the role fails.
    pub fn child(&self) -> Shutdown {
        Shutdown {
            draining: self.draining.child_token(),
            stopping: self.stopping.child_token(),
            work: self.work.clone(),
        }
    }

    /// Runs `work`, which ends once draining starts; [`Shutdown::drained`]
    /// waits for it before the servers stop.
    pub fn track<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.work.spawn(work)
    }

    /// Resolves once every tracked piece of work has ended.
    pub async fn drained(&self) {
        self.work.close();
        self.work.wait().await
    }
}

/// What one listener allows a client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections open at once; the longest-idle one is closed to admit another.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, and for an idle keep-alive
    /// connection to send its next request.
    pub header_timeout: Duration,
    /// Time for a request's whole body to arrive.
    pub body_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Time for a request's answer to start (above the longest long-poll, 60 s;
    /// an event stream's body is not limited); beyond, 503.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: connection_budget(),
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(15),
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(75),
        }
    }
}

/// How long our own clients keep an idle connection: below the servers'
/// shortest default keep-alive, so that a client never sends on a connection
/// the server is closing.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A quarter of the open-file limit, for each listener: the process also holds
/// database connections and cache files, and `up` runs three listeners.
fn connection_budget() -> usize {
    const MIN: u64 = 16;
    const MAX: u64 = 4096;
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    usize::try_from((soft / 4).clamp(MIN, MAX)).unwrap_or(MIN as usize)
}

/// Raises the soft open-file limit to the hard one, as a server should: the
/// default soft limit (often 1024) is a compatibility setting for `select`.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit; connections are capped below the current one")
        }
    }
}

/// A bound listener, what it allows its clients, and the bearer token a
/// scrape of `/metrics` must present (none: open, like the health checks).
#[derive(Debug)]
pub struct HttpListener {
    pub tcp: TcpListener,
    pub limits: Limits,
    pub scrape_token: Option<Secret>,
}

impl From<TcpListener> for HttpListener {
    fn from(tcp: TcpListener) -> Self {
        HttpListener {
            tcp,
            limits: Limits::default(),
            scrape_token: None,
        }
    }
}

/// Whether a role can serve now: `Err` names what does not answer.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What a role serves: its routes, how to tell whether it is ready, and what
/// it reads into its metrics before a scrape.
pub struct App {
    pub router: Router,
    pub readiness: ReadinessCheck,
    pub collect: Option<Collect>,
    /// The role's OpenAPI document, served at `/openapi.json` with the
    /// operations every role shares.
    pub openapi: Option<utoipa::openapi::OpenApi>,
}

impl App {
    pub fn new(router: Router, readiness: ReadinessCheck) -> Self {
        App {
            router,
            readiness,
            collect: None,
            openapi: None,
        }
    }

    pub fn with_openapi(self, document: utoipa::openapi::OpenApi) -> Self {
        App {
            openapi: Some(document),
            ..self
        }
    }

    pub fn with_collect(self, collect: Collect) -> Self {
        App {
            collect: Some(collect),
            ..self
        }
    }
}

/// A role with nothing to check: ready whenever it serves.
impl From<Router> for App {
    fn from(router: Router) -> Self {
        App::new(router, Arc::new(|| Box::pin(async { Ok(()) })))
    }
}

/// Longest pause after repeated accept errors (out of file descriptors, say).
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// Serves `app` with `/health`, `/healthz`, `/readyz` and `/metrics` until
/// `shutdown` stops, then waits for the requests in flight. Every route of
/// every role passes the same layers: a request id and a span, timing, the
/// size limits and deadlines, and the answer's timeout.
pub async fn serve(
    listener: impl Into<HttpListener>,
    app: impl Into<App>,
    shutdown: Shutdown,
) -> io::Result<()> {
    metrics::handle();
    let HttpListener {
        tcp,
        limits,
        scrape_token,
    } = listener.into();
    let App {
        router,
        readiness,
        collect,
        openapi,
    } = app.into();
    let operations = operations::Operations {
        shutdown: shutdown.clone(),
        readiness,
        scrape_token,
        collect,
    };
    let router = router
        .merge(operations::routes(operations, openapi))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard::Rules {
                max_bytes: limits.max_body_bytes,
                deadline: limits.body_timeout,
                answer_within: limits.request_timeout,
            },
            guard::guard,
        ))
        .layer(metrics::TimeRequests)
        // Every request gets an id, the client's `X-Request-Id` or a new
        // UUID, and the answer carries it back.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        // Roles log a failure with its cause (the job store
                        // away, say), and a readiness probe's 503 is an
                        // answer: the layer's own line, without a cause,
                        // stays at debug rather than repeat them at ERROR.
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        );
    let connections = Connections::new(limits.max_connections);
    let tasks = TaskTracker::new();
    let mut pause = FIRST_ACCEPT_PAUSE;
    loop {
        let accepted = tokio::select! {
            () = shutdown.stopping() => break,
            accepted = tcp.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                pause = FIRST_ACCEPT_PAUSE;
                stream
            }
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "cannot accept connections; pausing");
                tokio::select! {
                    () = shutdown.stopping() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                continue;
            }
        };
        let slot = tokio::select! {
            () = shutdown.stopping() => break,
            slot = connections.admit() => slot,
        };
        tasks.spawn(serve_connection(
            stream,
            router.clone(),
            slot,
            shutdown.clone(),
            limits.header_timeout,
        ));
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// A request's span: every log line of the request names its id and its
/// trace (worked out only when the span is recorded).
fn request_span(request: &Request) -> tracing::Span {
    let headers = request.headers();
    let span = tracing::info_span!(
        "request",
        method = metrics::method_label(request.method()),
        path = %trace::Quoted(request.uri().path()),
        request_id = %headers
            .get(trace::REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default(),
        trace_id = %trace::of_request(headers).trace_id(),
        request_id_replaced = tracing::field::Empty,
    );
    if request
        .extensions()
        .get::<trace::ReplacedRequestId>()
        .is_some()
    {
        span.record("request_id_replaced", true);
    }
    span
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    slot: Slot,
    shutdown: Shutdown,
    header_timeout: Duration,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let peer = stream.peer_addr().ok();
    let evicted = slot.evicted();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let busy = slot.busy();
        trace::refuse_unsafe_request_id(&mut request);
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let answered = router.clone().oneshot(request.map(Body::new));
        async move {
            let response = answered.await;
            response.map(|response| response.map(|body| Body::new(BusyBody::new(body, busy))))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_headers(MAX_HEADERS * 2)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.stopping() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = evicted.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended with an error");
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
