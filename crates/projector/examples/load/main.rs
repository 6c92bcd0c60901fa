//! Measurements against a running `projector` binary (see BENCHMARKS.md):
//!
//! - `submit`: POST /generate_projection from many clients for a fixed time, at
//!   full speed or at a fixed rate, optionally while heavy jobs keep every core busy;
//!   prints p50/p99 latency and accepted jobs per second.
//! - `startup`: spawns `projector up` on a fresh directory, times the first
//!   accepted job and reads the idle resident memory.
//! - `locality`: 1,000 jobs over 100 customers through an external data service;
//!   prints data-service requests per job.
//! - `churn`: 10,000 jobs over 1,000 customers while 1% of the customers have
//!   their holdings changed by SQL each second; prints data-service requests
//!   against the distinct (customer, version) pairs the jobs used.
//! - `cluster`: every role its own process on a fresh PostgreSQL database (on the
//!   server `PROJECTOR_TEST_DATABASE_URL` names): trivial jobs worked end to end
//!   through the worker processes, commit-to-claim latency with an idle worker,
//!   and the idle resident memory of each role process.
//!
//! - `push`: two gateway processes on a fresh PostgreSQL database: the time from
//!   a cancellation sent to one gateway to its event on the other's event stream
//!   and long-poll, and the resident memory of many open event streams.
//!
//! `submit --database-url postgres://…` measures `up` on PostgreSQL instead of SQLite.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use database::testing::TestDatabase;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    /// The projector binary.
    #[arg(long, default_value = "target/release/projector", global = true)]
    binary: PathBuf,
}

#[derive(Subcommand)]
enum Mode {
    Submit {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Requests per second over all clients; as fast as possible when absent.
        #[arg(long)]
        rate: Option<u64>,
        /// Heavy jobs queued first, so that every core is busy during the measurement.
        #[arg(long, default_value_t = 0)]
        busy_jobs: usize,
        /// Run `up` on a fresh database on this PostgreSQL server (`postgres` to use
        /// the test server) instead of SQLite.
        #[arg(long)]
        postgres: bool,
    },
    Startup,
    Locality,
    Churn {
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        #[arg(long, default_value_t = 1_000)]
        customers: usize,
        /// Seconds over which the jobs are submitted, at an even pace.
        #[arg(long, default_value_t = 50)]
        seconds: u64,
        /// Share of the customers changed each second.
        #[arg(long, default_value_t = 0.01)]
        change_rate: f64,
    },
    Cluster {
        /// Worker processes.
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// Trivial jobs (1 year, 100 paths) submitted before the workers start.
        #[arg(long, default_value_t = 20_000)]
        jobs: usize,
        /// Jobs submitted one at a time to an idle worker, for the claim latency.
        #[arg(long, default_value_t = 200)]
        probes: usize,
    },
    Push {
        /// Jobs cancelled under an event stream, and as many under a long-poll.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Event streams held open at once.
        #[arg(long, default_value_t = 1000)]
        streams: usize,
    },
}

mod common;
mod push;
mod roles;
mod up;

use common::{datasvc_requests, job, post, resident_kb};
use testkit::KEY;
use up::Cluster;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Submit {
            clients,
            seconds,
            rate,
            busy_jobs,
            postgres,
        } => {
            let database = if postgres {
                Some(TestDatabase::create().await)
            } else {
                None
            };
            let extra: Vec<&str> = match &database {
                Some(database) => vec!["--database-url", database.url()],
                None => Vec::new(),
            };
            let cluster = Cluster::start(&args.binary, &extra)?;
            submit_load(
                &cluster.gateway,
                clients,
                Duration::from_secs(seconds),
                rate,
                busy_jobs,
            )
            .await
        }
        Mode::Startup => startup(&args.binary).await,
        Mode::Locality => locality(&args.binary).await,
        Mode::Churn {
            jobs,
            customers,
            seconds,
            change_rate,
        } => churn(&args.binary, jobs, customers, seconds, change_rate).await,
        Mode::Cluster {
            workers,
            jobs,
            probes,
        } => roles::measure(&args.binary, workers, jobs, probes).await,
        Mode::Push { jobs, streams } => push::measure(&args.binary, jobs, streams).await,
    }
}

async fn submit_load(
    gateway: &str,
    clients: usize,
    duration: Duration,
    rate: Option<u64>,
    busy_jobs: usize,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    for index in 0..busy_jobs {
        post(
            &client,
            gateway,
            &job(
                &format!("busy-{index}"),
                1 + index as u32 % 1000,
                200_000,
                50,
            ),
        )
        .await?;
    }
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..clients {
        let (client, gateway, counter) = (client.clone(), gateway.to_string(), counter.clone());
        // Open loop when a rate is given: each client sends on its own schedule.
        let interval = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate as f64));
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut next = Instant::now();
            while started.elapsed() < duration {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let index = counter.fetch_add(1, Ordering::Relaxed);
                let body = job(
                    &format!("load-{worker}-{index}"),
                    1 + (index % 1000) as u32,
                    1000,
                    5,
                );
                let sent = Instant::now();
                let status = post(&client, &gateway, &body).await;
                latencies.push((sent.elapsed(), status.ok() == Some(202)));
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = latencies.iter().filter(|(_, ok)| *ok).count();
    let mut times: Vec<Duration> = latencies.iter().map(|(latency, _)| *latency).collect();
    times.sort();
    let at = |quantile: f64| {
        times[((times.len() - 1) as f64 * quantile) as usize].as_secs_f64() * 1000.0
    };
    println!(
        "clients={clients} rate={} busy_jobs={busy_jobs}: {} requests, {accepted} accepted, {:.0} accepted/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rate.map_or("max".to_string(), |rate| rate.to_string()),
        latencies.len(),
        accepted as f64 / elapsed,
        at(0.50),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

async fn startup(binary: &PathBuf) -> Result<()> {
    let started = Instant::now();
    let cluster = Cluster::start(binary, &[])?;
    let client = reqwest::Client::new();
    let status = post(&client, &cluster.gateway, &job("first", 42, 1000, 5)).await?;
    let first_job = started.elapsed();
    if status != 202 {
        bail!("the first job was answered {status}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_kb = resident_kb(cluster.process.child.id())?;
    println!(
        "cold start to first accepted job: {:.0} ms; resident memory when idle: {:.1} MB",
        first_job.as_secs_f64() * 1000.0,
        rss_kb as f64 / 1024.0
    );
    Ok(())
}

async fn locality(binary: &PathBuf) -> Result<()> {
    let cluster = Cluster::start(binary, &[])?;
    let client = reqwest::Client::new();
    let jobs = 1000;
    for index in 0..jobs {
        let status = post(
            &client,
            &cluster.gateway,
            &job(&format!("loc-{index}"), 1 + index % 100, 500, 5),
        )
        .await?;
        if status != 202 {
            bail!("job {index} was answered {status}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for index in 0..jobs {
        completed(&client, &cluster.gateway, &format!("loc-{index}"), deadline).await?;
    }
    let requests = datasvc_requests(&client, &cluster.datasvc).await? as f64;
    println!(
        "{jobs} jobs over 100 customers: {requests} data-service requests, {:.3} per job",
        requests / jobs as f64
    );
    Ok(())
}

/// Jobs at an even pace while a share of the customers changes each second:
/// the data service should be asked about once per (customer, version) that
/// a job used, however many jobs there are.
async fn churn(
    binary: &PathBuf,
    jobs: usize,
    customers: usize,
    seconds: u64,
    change_rate: f64,
) -> Result<()> {
    let cluster = Cluster::start(binary, &[])?;
    let client = reqwest::Client::new();
    let data_file = cluster.directory.path().join("datasvc.sqlite");
    let writer = sqlx::SqlitePool::connect(&format!("sqlite://{}", data_file.display())).await?;
    let changes_per_second = ((customers as f64 * change_rate).round() as usize).max(1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let changing = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut changed = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                for _ in 0..changes_per_second {
                    let customer = 1 + rand::random_range(0..customers);
                    sqlx::query(
                        "UPDATE holdings SET quantity = quantity + 1 WHERE customer_id = $1
                         AND asset_id = (SELECT MIN(asset_id) FROM holdings WHERE customer_id = $1)",
                    )
                    .bind(format!("C-{customer:06}"))
                    .execute(&writer)
                    .await?;
                    changed += 1;
                }
            }
            anyhow::Ok(changed)
        })
    };
    let pace = Duration::from_secs(seconds).div_f64(jobs as f64);
    let started = Instant::now();
    for index in 0..jobs {
        tokio::time::sleep_until((started + pace.mul_f64(index as f64)).into()).await;
        let customer = 1 + rand::random_range(0..customers) as u32;
        let status = post(
            &client,
            &cluster.gateway,
            &job(&format!("churn-{index}"), customer, 500, 5),
        )
        .await?;
        if status != 202 {
            bail!("job {index} was answered {status}");
        }
    }
    let mut used = std::collections::HashSet::new();
    let mut reused = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    for index in 0..jobs {
        let job = completed(
            &client,
            &cluster.gateway,
            &format!("churn-{index}"),
            deadline,
        )
        .await?;
        used.insert((
            job["customer_id"].as_str().unwrap_or_default().to_string(),
            job["result"]["portfolio_version"]
                .as_i64()
                .unwrap_or_default(),
        ));
        if job["result"]["reused"] == true {
            reused += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let changed = changing.await??;
    let requests = datasvc_requests(&client, &cluster.datasvc).await?;
    println!(
        "{jobs} jobs over {customers} customers in {:.0} s, {changed} holdings changes ({changes_per_second} a second): \
         {requests} data-service requests for {} distinct (customer, version) pairs used ({:.3} requests per pair, {:.3} per job); {reused} results reused",
        started.elapsed().as_secs_f64(),
        used.len(),
        requests as f64 / used.len() as f64,
        requests as f64 / jobs as f64,
    );
    Ok(())
}

/// The job's status once it completed; an error if it failed or is late.
async fn completed(
    client: &reqwest::Client,
    gateway: &str,
    job_id: &str,
    deadline: Instant,
) -> Result<Value> {
    loop {
        let job: Value = client
            .get(format!("{gateway}/job_status/{job_id}"))
            .header("x-api-key", KEY)
            .send()
            .await?
            .json()
            .await?;
        match job["status"].as_str() {
            Some("completed") => return Ok(job),
            Some("failed") => bail!("job {job_id} failed: {}", job["error"]),
            _ if Instant::now() > deadline => bail!("job {job_id} did not finish in time"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
