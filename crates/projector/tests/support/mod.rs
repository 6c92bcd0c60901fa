//! Starts the real `projector` binary as separate processes on loopback and talks
//! to it over HTTP, as the original clients do.

pub mod browser;
pub mod cluster;
mod events;
pub mod faults;
pub mod pages;
pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use events::{event_stream, events, open_events};

pub const KEY: &str = "test-key-a";
pub const OTHER_KEY: &str = "test-key-b";
/// The secret job owners are derived with, given to every process a test starts.
pub const TENANT_SECRET: &str = "test-tenant-secret";
/// The data service's token, given to every process a test starts.
pub const DATASVC_TOKEN: &str = "test-datasvc-token";

/// A running `projector up` (or `projector datasvc`) process, SIGKILLed if dropped.
pub struct Process {
    child: Child,
    pub urls: Vec<(String, String)>,
}

impl Process {
    pub fn start(args: &[&str], data_dir: &Path, log_name: &str, last_line: &str) -> Process {
        let process = Process::spawn(args, data_dir, log_name, last_line);
        process.expect_urls(data_dir, log_name)
    }

    /// `projector up` from `command`, once it has printed its URLs.
    fn start_command(command: Command, data_dir: &Path) -> Process {
        Process::launch(command, data_dir, "up.log", "API key").expect_urls(data_dir, "up.log")
    }

    fn expect_urls(self, data_dir: &Path, log_name: &str) -> Process {
        assert!(
            !self.urls.is_empty(),
            "projector printed no URLs; see {log_name} in {}",
            data_dir.display()
        );
        self
    }

    /// Starts `projector ARGS` and reads its stdout up to the line that starts
    /// with `last_line`, keeping the `role ... http://...` lines.
    pub fn spawn(args: &[&str], data_dir: &Path, log_name: &str, last_line: &str) -> Process {
        Process::launch(projector(args), data_dir, log_name, last_line)
    }

    /// Starts `command` (from [`projector`]) as [`Process::spawn`] does.
    pub fn launch(
        mut command: Command,
        data_dir: &Path,
        log_name: &str,
        last_line: &str,
    ) -> Process {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join(log_name))
            .unwrap();
        let mut child = command
            .env("PROJECTOR_API_KEY", format!("{KEY},{OTHER_KEY}"))
            .env("PROJECTOR_DATASVC_TOKEN", DATASVC_TOKEN)
            .env("PROJECTOR_TENANT_SECRET", TENANT_SECRET)
            // Tests submit in bursts; the one test of the limit sets its own.
            .env("PROJECTOR_SUBMISSIONS_PER_SECOND", "0")
            // Worker nodes answer health and metrics on a free port each.
            .env("PROJECTOR_WORKER_ADDR", "127.0.0.1:0")
            // Each change a worker applies, with its lag from the commit, and
            // each request's start and end in its span (its id and trace).
            .env("RUST_LOG", "info,worker::feed=debug,tower_http=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the projector binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut urls = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("readable stdout");
            let mut words = line.split_whitespace();
            if let (Some(first), Some(last)) = (words.next(), line.split_whitespace().last())
                && last.starts_with("http://")
            {
                urls.push((first.to_string(), last.trim_end_matches("/api").to_string()));
            }
            if line.trim_start().starts_with(last_line) {
                break;
            }
        }
        Process { child, urls }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit by itself and returns its status.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    pub fn url(&self, role: &str) -> String {
        self.urls
            .iter()
            .find(|(name, _)| name == role)
            .map(|(_, url)| url.clone())
            .unwrap_or_else(|| panic!("no {role} URL in {:?}", self.urls))
    }

    /// SIGTERM, then wait for the orderly exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "projector exited with {exit}");
    }

    /// SIGTERM without waiting: the process drains and stops on its own.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `projector` binary with `args`.
pub fn projector(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
    command.args(args);
    command
}

pub fn up(data_dir: &Path, extra: &[&str]) -> Process {
    Process::start_command(projector(&up_args(data_dir, extra)), data_dir)
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
    Process::start_command(command, data_dir)
}

pub fn up_args<'a>(data_dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let dir = data_dir.to_str().unwrap();
    let mut args = vec![
        "up",
        "--data-dir",
        dir,
        "--gateway-addr",
        "127.0.0.1:0",
        "--datasvc-addr",
        "127.0.0.1:0",
        "--orchestrator-addr",
        "127.0.0.1:0",
    ];
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
    Process::start(&args, data_dir, "datasvc.log", "data service")
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
    Process::start(&args, log_dir, "gateway.log", "gateway")
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

/// Sends `request` and reads the answer as JSON.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
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
    client()
        .get(format!("{datasvc}{path}"))
        .bearer_auth(DATASVC_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
