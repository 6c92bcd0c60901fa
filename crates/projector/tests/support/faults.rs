//! An HTTP proxy between the workers and the data service whose faults the
//! test sets while it runs: added latency, connections reset without an
//! answer, 500s, and a black hole that never answers. It counts the requests
//! that reach it, faulty or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added before each answer.
    pub latency: Duration,
    /// Share of requests whose connection is closed without an answer.
    pub reset_rate: f64,
    /// Share of requests answered 500.
    pub error_rate: f64,
    /// Requests are taken and never answered.
    pub black_hole: bool,
}

pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    accepting: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: String,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    http: reqwest::Client,
}

impl FaultProxy {
    /// A proxy in front of `upstream` (`http://host:port`), passing everything
    /// through until faults are set.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: Mutex::new(Faults::default()),
            requests: AtomicU64::new(0),
            http: reqwest::Client::new(),
        });
        let accepting = tokio::spawn(accept(listener, state.clone()));
        FaultProxy {
            url,
            state,
            accepting,
        }
    }

    pub fn set(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Requests that reached the proxy so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { answer(&state, request).await }
            });
            // A reset ends the connection with an error: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: &State,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let faults = state.faults.lock().unwrap().clone();
    if faults.black_hole {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(faults.latency).await;
    let roll: f64 = rand::random();
    if roll < faults.reset_rate {
        return Err(std::io::Error::other("reset by the fault proxy"));
    }
    if roll < faults.reset_rate + faults.error_rate {
        return Ok(Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("injected by the fault proxy"))
            .unwrap());
    }
    let target = format!(
        "{}{}",
        state.upstream,
        request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str())
    );
    let mut forwarded = state.http.get(target);
    for name in ["authorization", "accept"] {
        if let Some(value) = request.headers().get(name) {
            forwarded = forwarded.header(name, value);
        }
    }
    let upstream = forwarded.send().await.map_err(std::io::Error::other)?;
    let mut response = Response::builder().status(upstream.status().as_u16());
    if let Some(content_type) = upstream.headers().get("content-type") {
        response = response.header("content-type", content_type.as_bytes());
    }
    let body = upstream.bytes().await.map_err(std::io::Error::other)?;
    Ok(response.body(Body::from(body)).unwrap())
}
