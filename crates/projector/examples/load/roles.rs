//! `load cluster`: every role its own process on a fresh PostgreSQL database.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use database::testing::TestDatabase;
use testkit::{KEY, Process};

use crate::common::{datasvc_requests, job, post, resident_kb};

/// A role process, killed when dropped.
pub struct Role {
    name: String,
    pub process: Process,
    pub url: Option<String>,
}

/// Starts `binary ARGS` as the role `name`, with the load tool's keys, once
/// it has printed the line with its URL.
pub fn start(binary: &Path, name: &str, args: &[&str]) -> Result<Role> {
    let mut command = Command::new(binary);
    command.args(args);
    testkit::with_test_keys(&mut command, KEY)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    // Every line starts with "": the first one, which names the role's URL.
    let process = Process::start(command, "")
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let url = process.urls.first().map(|(_, url)| url.clone());
    Ok(Role {
        name: name.to_string(),
        process,
        url,
    })
}

/// A fresh database on the test server, migrated by `binary`, and its URL.
pub async fn migrated_database(binary: &Path) -> Result<(TestDatabase, String)> {
    let database = TestDatabase::create().await;
    let url = database.url().to_string();
    let migrated = Command::new(binary)
        .args(["migrate", "--database-url", &url])
        .status()?;
    if !migrated.success() {
        bail!("projector migrate failed");
    }
    Ok((database, url))
}

pub async fn measure(binary: &Path, workers: usize, jobs: usize, probes: usize) -> Result<()> {
    let (_database, url) = migrated_database(binary).await?;
    let cache = tempfile::tempdir()?;
    let datasvc = start(
        binary,
        "datasvc",
        &["datasvc", "--addr", "127.0.0.1:0", "--database-url", &url],
    )?;
    let datasvc_url = datasvc.url.clone().context("no data service URL")?;
    let gateway = start(
        binary,
        "gateway",
        &["gateway", "--addr", "127.0.0.1:0", "--database-url", &url],
    )?;
    let gateway_url = gateway.url.clone().context("no gateway URL")?;
    let pool = sqlx::PgPool::connect(&url).await?;

    // Queue the jobs first, then let the workers at them.
    let client = reqwest::Client::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(64));
    let mut submissions = tokio::task::JoinSet::new();
    for index in 0..jobs {
        let permit = semaphore.clone().acquire_owned().await?;
        let (client, gateway) = (client.clone(), gateway_url.clone());
        submissions.spawn(async move {
            let status = post(
                &client,
                &gateway,
                &job(&format!("t-{index}"), 1 + index as u32 % 1000, 100, 1),
            )
            .await;
            drop(permit);
            status
        });
    }
    while let Some(status) = submissions.join_next().await {
        if status?? != 202 {
            bail!("a submission was refused");
        }
    }
    let mut nodes = Vec::new();
    for index in 1..=workers {
        let node_id = format!("node-{index}");
        let cache_dir = cache.path().join(&node_id);
        nodes.push(start(
            binary,
            &node_id,
            &[
                "worker",
                "--node-id",
                &node_id,
                "--cache-dir",
                cache_dir.to_str().context("cache path")?,
                "--datasvc-url",
                &datasvc_url,
                "--database-url",
                &url,
            ],
        )?);
    }
    // Polled through the queue's own indexes and seldom: a count over the whole
    // table would cost the database more than the workers' statements.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (pending,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM jobstore.jobs WHERE status = 'queued')
                 OR EXISTS (SELECT 1 FROM jobstore.jobs WHERE status = 'processing')",
        )
        .fetch_one(&pool)
        .await?;
        if !pending {
            break;
        }
        if Instant::now() > deadline {
            bail!("jobs still not completed after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (first_start, last_finish): (i64, i64) =
        sqlx::query_as("SELECT MIN(started_at), MAX(finished_at) FROM jobstore.jobs")
            .fetch_one(&pool)
            .await?;
    let seconds = (last_finish - first_start) as f64 / 1000.0;
    println!(
        "{jobs} trivial jobs through {workers} worker processes: {seconds:.2} s from first claim to last result, {:.0} completed/s",
        jobs as f64 / seconds
    );
    println!(
        "data-service requests for those jobs, over {} customers: {}",
        jobs.min(1000),
        datasvc_requests(&client, &datasvc_url).await?
    );

    // Commit-to-claim with idle workers, on the database's clock.
    for index in 0..probes {
        let id = format!("probe-{index}");
        if post(&client, &gateway_url, &job(&id, 7, 100, 1)).await? != 202 {
            bail!("a probe was refused");
        }
        loop {
            let (done,): (bool,) =
                sqlx::query_as("SELECT status = 'completed' FROM jobstore.jobs WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await?;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<i64> = sqlx::query_as::<_, (i64,)>(
        "SELECT started_at - created_at FROM jobstore.jobs WHERE id LIKE 'probe-%'",
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .map(|(latency,)| latency)
    .collect();
    latencies.sort_unstable();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
    println!(
        "commit-to-claim with idle workers over {probes} jobs: p50 {} ms, p99 {} ms, max {} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );

    let orchestrator = start(
        binary,
        "orchestrator",
        &[
            "orchestrator",
            "--addr",
            "127.0.0.1:0",
            "--gateway-url",
            &gateway_url,
            "--database-url",
            &url,
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for role in [&datasvc, &gateway, &orchestrator]
        .into_iter()
        .chain(&nodes)
    {
        println!(
            "idle resident memory of {}: {:.1} MB",
            role.name,
            resident_kb(role.process.child.id())? as f64 / 1024.0
        );
    }
    pool.close().await;
    Ok(())
}
