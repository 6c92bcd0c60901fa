//! `load push`: status pushed across the gateways of a cluster on a fresh
//! PostgreSQL database. Two gateway processes and no worker, so that every
//! change is one the tool makes: each job is cancelled through gateway A while
//! a client of gateway B waits for it on an event stream or a long-poll. The
//! latency runs from sending the cancellation to receiving the event, so it
//! also counts the cancellation's own request and commit: an upper bound on
//! commit-to-client. Then many event streams are held open on gateway B and
//! its resident memory is read before and after.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::{EventStream, JobEvent, KEY};

use crate::common::{job, post, resident_kb};
use crate::roles::{migrated_database, start};

pub async fn measure(binary: &Path, jobs: usize, streams: usize) -> Result<()> {
    service::server::raise_open_file_limit();
    let (_database, url) = migrated_database(binary).await?;
    let gateway = |name| {
        start(
            binary,
            name,
            &["gateway", "--addr", "127.0.0.1:0", "--database-url", &url],
        )
    };
    let (submitting, watching) = (gateway("gateway A")?, gateway("gateway B")?);
    let a = submitting.url.clone().context("no gateway URL")?;
    let b = watching.url.clone().context("no gateway URL")?;
    let client = reqwest::Client::new();
    let total = 2 * jobs + streams;
    for index in 0..total {
        if post(
            &client,
            &a,
            &job(&format!("p-{index}"), 1 + index as u32 % 1000, 100, 1),
        )
        .await?
            != 202
        {
            bail!("a submission was refused");
        }
    }

    let mut stream_latencies = Vec::with_capacity(jobs);
    for index in 0..jobs {
        let id = format!("p-{index}");
        let mut events = open_events(&client, &b, &id).await?;
        let first = next_event(&mut events).await?;
        if first.name != "status" {
            bail!("the first event of {id} was {first:?}");
        }
        let sent = Instant::now();
        cancel(&client, &a, &id).await?;
        let pushed = next_event(&mut events).await?;
        stream_latencies.push(sent.elapsed());
        if pushed.name != "cancelled" {
            bail!("{id} was pushed {pushed:?}");
        }
    }
    report("event stream", &mut stream_latencies);

    let mut poll_latencies = Vec::with_capacity(jobs);
    for index in jobs..2 * jobs {
        let id = format!("p-{index}");
        let waiting = tokio::spawn({
            let (client, url) = (client.clone(), format!("{b}/job_status/{id}?wait=30"));
            async move { client.get(url).header("x-api-key", KEY).send().await }
        });
        // The long-poll is waiting once the gateway has read the job.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        cancel(&client, &a, &id).await?;
        let answer: serde_json::Value = waiting.await??.json().await?;
        poll_latencies.push(sent.elapsed());
        if answer["status"] != "cancelled" {
            bail!("the long-poll of {id} answered {answer}");
        }
    }
    report("long-poll", &mut poll_latencies);

    let before = resident_kb(watching.process.child.id())?;
    let mut open = Vec::with_capacity(streams);
    for index in 2 * jobs..total {
        let mut events = open_events(&client, &b, &format!("p-{index}")).await?;
        next_event(&mut events).await?;
        open.push(events);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = resident_kb(watching.process.child.id())?;
    println!(
        "{streams} open event streams on one gateway: resident memory {:.1} MB before, {:.1} MB after, {:.1} MB for the streams ({:.1} KB each)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 / streams as f64
    );
    drop(open);
    Ok(())
}

async fn open_events(client: &reqwest::Client, gateway: &str, id: &str) -> Result<EventStream> {
    let response = client
        .get(format!("{gateway}/jobs/{id}/events"))
        .header("x-api-key", KEY)
        .send()
        .await?;
    EventStream::of(response)
}

async fn next_event(events: &mut EventStream) -> Result<JobEvent> {
    events.next().await?.context("the stream ended")
}

async fn cancel(client: &reqwest::Client, gateway: &str, id: &str) -> Result<()> {
    let response = client
        .post(format!("{gateway}/jobs/{id}/cancel"))
        .header("x-api-key", KEY)
        .send()
        .await?;
    if response.status() != 200 {
        bail!("cancelling {id} answered {}", response.status());
    }
    Ok(())
}

fn report(what: &str, latencies: &mut [Duration]) {
    latencies.sort_unstable();
    let at = |quantile: f64| {
        latencies[((latencies.len() - 1) as f64 * quantile).round() as usize].as_secs_f64() * 1e3
    };
    println!(
        "{what}, cancellation sent on gateway A to its event on gateway B, over {} jobs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
