//! `projector demo`: the whole system on free ports in a temporary directory,
//! one report per risk profile through the orchestrator, a summary, and out.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use service::generate_key;
use wire::Report;

use crate::role::Role;
use crate::settings::Settings;
use crate::up;

const CUSTOMER: &str = "C-000042";
const HORIZON_YEARS: u32 = 30;
const DEADLINE: Duration = Duration::from_secs(50);

pub async fn demo() -> Result<()> {
    let directory = tempfile::tempdir().context("cannot create a temporary directory")?;
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let api_key = generate_key();
    let process = up::start(Settings {
        data_dir: directory.path().to_path_buf(),
        gateway_addr: any_port,
        datasvc_addr: any_port,
        orchestrator_addr: any_port,
        worker_addr: any_port,
        api_key: vec![api_key.clone()],
        tenant_secret: Some(generate_key()),
        ..Settings::default()
    })
    .await?;
    let url = |role| process.url(role).unwrap_or_default().to_string();
    let orchestrator = url(Role::Orchestrator);
    println!(
        "Projector demo: gateway {}, data service {}, orchestrator {orchestrator}",
        url(Role::Gateway),
        url(Role::Datasvc),
    );
    let outcome = request_reports(&orchestrator, &api_key).await;
    let stopped = process.stop().await;
    outcome.and(stopped)
}

async fn request_reports(orchestrator: &str, api_key: &str) -> Result<()> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        service::API_KEY_HEADER,
        api_key
            .parse()
            .context("the generated API key is not a header value")?,
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()?;
    let started = Instant::now();
    let mut report_ids = Vec::new();
    for profile in engine::RiskProfile::ALL {
        let body = json!({"customer_id": CUSTOMER, "time_horizon_years": HORIZON_YEARS, "risk_profile": profile.name()});
        let response = client
            .post(format!("{orchestrator}/reports"))
            .json(&body)
            .send()
            .await
            .context("the orchestrator did not answer POST /reports")?;
        if response.status() != 202 {
            bail!(
                "POST /reports for {profile} answered {}: {}",
                response.status(),
                response.text().await?
            );
        }
        let report: Report = response
            .json()
            .await
            .context("POST /reports answered an unreadable report")?;
        report_ids.push((profile, report.id));
    }
    println!(
        "Requested {} reports for customer {CUSTOMER}, {HORIZON_YEARS} years:",
        report_ids.len()
    );
    println!();
    println!(
        "  {:<13} {:>12} {:>27} {:>12} {:>8}",
        "profile", "median", "5-95% band", "P(below)", "time"
    );
    for (profile, id) in report_ids {
        let report = wait_for(&client, orchestrator, &id, started).await?;
        let Some(result) = report.result else {
            bail!(
                "the {profile} report {id} failed: {}",
                report.error.unwrap_or_else(|| "no reason given".into())
            );
        };
        let horizon = result
            .yearly
            .last()
            .and_then(|year| year.nominal)
            .unwrap_or_default();
        println!(
            "  {:<13} {:>12.0} {:>12.0} - {:>12.0} {:>11.2}% {:>7.1}s",
            profile.name(),
            result.median_final,
            horizon.p5,
            horizon.p95,
            100.0 * result.probability_below_contributions,
            started.elapsed().as_secs_f64()
        );
    }
    println!();
    println!(
        "All reports completed in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn wait_for(
    client: &reqwest::Client,
    orchestrator: &str,
    id: &str,
    started: Instant,
) -> Result<Report> {
    loop {
        let response = client
            .get(format!("{orchestrator}/reports/{id}"))
            .send()
            .await
            .with_context(|| format!("the orchestrator did not answer GET /reports/{id}"))?;
        let report: Report = response
            .json()
            .await
            .context("GET /reports answered an unreadable report")?;
        if matches!(report.status.as_str(), "completed" | "failed") {
            return Ok(report);
        }
        if started.elapsed() > DEADLINE {
            bail!(
                "report {id} is still {} after {} s; giving up",
                report.status,
                DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
