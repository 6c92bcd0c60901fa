//! What every measurement shares: a job's body, a submission, and what it
//! reads of a process.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use testkit::KEY;

/// Portfolio requests the data service has served, from its `/metrics`.
pub async fn datasvc_requests(client: &reqwest::Client, datasvc: &str) -> Result<u64> {
    let metrics = client
        .get(format!("{datasvc}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("datasvc_portfolio_requests_total "))
        .and_then(|value| value.trim().parse().ok())
        .context("no request counter")
}

/// The resident memory of a process, from /proc.
pub fn resident_kb(pid: u32) -> Result<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .context("no VmRSS")
}

pub fn job(id: &str, customer: u32, paths: u32, horizon: u32) -> Value {
    json!({"job_id": id, "parameters": {"customer_id": format!("C-{customer:06}"), "time_horizon_years": horizon,
           "risk_profile": "balanced", "paths": paths}})
}

pub async fn post(client: &reqwest::Client, gateway: &str, body: &Value) -> Result<u16> {
    let response = client
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .json(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}
