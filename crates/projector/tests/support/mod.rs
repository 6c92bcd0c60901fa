//! Starts the real `projector` binary as separate processes on loopback and talks
//! to it over HTTP, as the original clients do.

pub mod browser;
pub mod cluster;
mod events;
pub mod faults;
pub mod pages;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use events::{event_stream, events, open_events};
pub use testkit::{DATASVC_TOKEN, KEY, OTHER_KEY, Process, Proxy, TENANT_SECRET, json_of};

/// Starts `projector ARGS` with the keys of the tests, its log in
/// `data_dir/log_name`, once it has printed its URLs.
pub fn start(args: &[&str], data_dir: &Path, log_name: &str, last_line: &str) -> Process {
    expect_urls(
        spawn(args, data_dir, log_name, last_line),
        data_dir,
        log_name,
    )
}

/// `projector up` from `command`, once it has printed its URLs.
fn start_up(command: Command, data_dir: &Path) -> Process {
    expect_urls(
        launch(command, data_dir, "up.log", "API key"),
        data_dir,
        "up.log",
    )
}

fn expect_urls(process: Process, data_dir: &Path, log_name: &str) -> Process {
    assert!(
        !process.urls.is_empty(),
        "projector printed no URLs; see {log_name} in {}",
        data_dir.display()
    );
    process
}

/// Starts `projector ARGS` and reads its stdout up to the line that starts
/// with `last_line`, keeping the `role ... http://...` lines.
pub fn spawn(args: &[&str], data_dir: &Path, log_name: &str, last_line: &str) -> Process {
    launch(projector(args), data_dir, log_name, last_line)
}

/// Starts `command` (from [`projector`]) as [`spawn`] does.
pub fn launch(mut command: Command, data_dir: &Path, log_name: &str, last_line: &str) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(log_name))
        .unwrap();
    testkit::with_test_keys(&mut command, &format!("{KEY},{OTHER_KEY}"))
        // Each change a worker applies, with its lag from the commit, and
        // each request's start and end in its span (its id and trace).
        .env("RUST_LOG", "info,worker::feed=debug,tower_http=debug")
        .stderr(log);
    Process::start(command, last_line).expect("the projector binary starts")
}

/// The `projector` binary with `args`.
pub fn projector(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
    command.args(args);
    command
}

pub fn up(data_dir: &Path, extra: &[&str]) -> Process {
    start_up(projector(&up_args(data_dir, extra)), data_dir)
}

/// `projector up` with at most `open_files` file descriptors, a limit it cannot raise.
pub fn up_with_open_files(data_dir: &Path, extra: &[&str], open_files: u64) -> Process {
    use std::os::unix::process::CommandExt;
    let mut command = projector(&up_args(data_dir, extra));
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: open_files,
                rlim_max: open_files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    start_up(command, data_dir)
}

pub fn up_args<'a>(data_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["up", "--data-dir", data_dir.to_str().unwrap()];
    args.extend(testkit::FREE_PORTS);
    args.extend_from_slice(extra);
    args
}

pub fn datasvc(data_dir: &Path, address: &str) -> Process {
    let args = [
        "datasvc",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--addr",
        address,
    ];
    start(&args, data_dir, "datasvc.log", "data service")
}

/// A gateway alone on a job store it migrates at `store` (a SQLite file),
/// logging into `log_dir`, with no worker: jobs stay queued.
pub fn lone_gateway(store: &Path, log_dir: &Path, extra: &[&str]) -> Process {
    let url = format!("sqlite://{}", store.display());
    let migrated = projector(&["migrate", "--store", "jobs", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut args = vec!["gateway", "--addr", "127.0.0.1:0", "--database-url", &url];
    args.extend_from_slice(extra);
    start(&args, log_dir, "gateway.log", "gateway")
}

pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn job_body(job_id: &str, customer: &str) -> Value {
    json!({"job_id": job_id, "parameters": {"customer_id": customer, "time_horizon_years": 10, "risk_profile": "balanced", "paths": 2000}})
}

pub async fn submit(gateway: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn status(gateway: &str, job_id: &str) -> Value {
    status_as(gateway, KEY, job_id).await
}

/// The job's status as the tenant of `api_key` sees it.
pub async fn status_as(gateway: &str, api_key: &str, job_id: &str) -> Value {
    get_as(&format!("{gateway}/job_status/{job_id}"), api_key).await
}

/// `POST url` with a JSON body as the tenant of `api_key`, the answer read as JSON.
pub async fn post_as(url: &str, api_key: &str, body: &Value) -> Value {
    json_of(client().post(url).header("x-api-key", api_key).json(body)).await
}

/// `GET url` as the tenant of `api_key`, read as JSON.
pub async fn get_as(url: &str, api_key: &str) -> Value {
    json_of(client().get(url).header("x-api-key", api_key)).await
}

/// `GET base/openapi.json`, the role's OpenAPI document (open to anyone).
pub async fn openapi_document(base: &str) -> Value {
    json_of(client().get(format!("{base}/openapi.json"))).await
}

/// Polls until the job is completed, failed or cancelled.
pub async fn finished(gateway: &str, job_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let job = status(gateway, job_id).await;
        if matches!(
            job["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        ) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {} after {within:?}",
            job["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` from the data service, as a worker calls it.
pub async fn datasvc_get(datasvc: &str, path: &str) -> Value {
    json_of(
        client()
            .get(format!("{datasvc}{path}"))
            .bearer_auth(DATASVC_TOKEN),
    )
    .await
}

/// The report once it is completed; failing or taking longer than `within`
/// fails the test.
pub async fn completed_report(
    orchestrator: &str,
    api_key: &str,
    id: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let report = get_as(&format!("{orchestrator}/reports/{id}"), api_key).await;
        if report["status"] == "completed" {
            return report;
        }
        assert!(
            Instant::now() < deadline && report["status"] != "failed",
            "{report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Portfolio requests the data service has served so far.
pub async fn datasvc_requests(datasvc: &str) -> u64 {
    let text = scrape(datasvc, None).await;
    sample(&text, "datasvc_portfolio_requests_total", &[]).expect("the counter is in /metrics")
        as u64
}

/// A role's `/metrics`, which must answer 200 in Prometheus text.
pub async fn scrape(base: &str, token: Option<&str>) -> String {
    let mut request = client().get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{base}/metrics");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    response.text().await.unwrap()
}

/// The value of the series `name` whose labels include `labels`, if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = series_name == name
                && labels.iter().all(|(label, wanted)| {
                    series_labels
                        .split(',')
                        .any(|pair| pair == format!("{label}=\"{wanted}\""))
                });
            matches.then(|| value.parse().ok()).flatten()
        })
}

pub fn job_store(data_dir: &Path) -> PathBuf {
    data_dir.join("jobs.sqlite")
}
