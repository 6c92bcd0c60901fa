//! The pages' markup: server-rendered HTML that works without JavaScript, one
//! small script on the report page for live progress, and a stylesheet inline.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use wire::{ProjectionParameters, ProjectionResult};

use super::chart::fan_chart;
use crate::report::ReportStatus;
use crate::store::{ListFilter, ReportRow};

const STYLE: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fdf; --bad: #c62828; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); }
header nav { max-width: 960px; margin: 0 auto; padding: .75rem 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
header a.brand { font-weight: 700; color: var(--ink); text-decoration: none; margin-right: auto; }
main { max-width: 960px; margin: 0 auto; padding: 1rem; }
a { color: var(--accent); }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
table { width: 100%; border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: .5rem; border-bottom: 1px solid var(--line); }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
.status { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .85rem; background: var(--line); }
.status.completed { background: #d9f2e3; } .status.failed, .status.cancelled { background: #fde2e1; }
.status.processing, .status.dispatched { background: #dbe8fd; }
form.filters { display: flex; gap: .5rem; flex-wrap: wrap; margin-bottom: 1rem; align-items: end; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input, select, button { font: inherit; padding: .45rem .6rem; border: 1px solid #cbd2d9; border-radius: .35rem; background: #fff; }
button, .button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; text-decoration: none; display: inline-block; padding: .45rem .9rem; border-radius: .35rem; }
button.secondary { background: #fff; color: var(--ink); border-color: #cbd2d9; }
button.danger { background: var(--bad); border-color: var(--bad); }
.field { margin-bottom: 1rem; max-width: 28rem; }
.field input, .field select { width: 100%; }
.field .hint { color: var(--muted); font-size: .85rem; }
.field .error, .error { color: var(--bad); font-size: .9rem; }
.field.invalid input, .field.invalid select { border-color: var(--bad); }
.card { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; margin-bottom: 1rem; }
.headline { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr)); gap: 1rem; }
.headline .number { font-size: 1.4rem; font-weight: 700; }
.headline p { margin: .25rem 0 0; color: var(--muted); font-size: .9rem; }
progress { width: 100%; height: 1.25rem; }
svg.chart { width: 100%; height: auto; background: #fff; }
svg .grid { stroke: var(--line); }
svg .axis-label, svg .axis-title { font-size: 11px; fill: var(--muted); }
svg .range.outer { fill: #2f6fdf22; } svg .range.inner { fill: #2f6fdf44; }
svg .band { fill: none; stroke: #2f6fdf; stroke-width: 1; }
svg .band[data-percentile^="50th"] { stroke-width: 2.5; }
.pager { margin-top: 1rem; }
@media (max-width: 640px) { .hide-narrow { display: none; } th, td { padding: .4rem .25rem; } }
"#;

/// The page around `body`; `signed_in` adds the navigation and sign-out.
pub fn layout(title: &str, signed_in: bool, head: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Projector" }
                style { (PreEscaped(STYLE)) }
                (head)
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "Projector" }
                        @if signed_in {
                            a href="/" { "Reports" }
                            a.button href="/reports/new" { "New report" }
                            form method="post" action="/sign-out" {
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn sign_in(next: &str, token: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        false,
        html! {},
        html! {
            h1 { "Sign in" }
            form.card method="post" action="/sign-in" {
                input type="hidden" name="next" value=(next);
                input type="hidden" name="token" value=(token);
                div.field.invalid[error.is_some()] {
                    label for="key" { "API key" }
                    input #key type="password" name="key" autocomplete="current-password" required autofocus;
                    @if let Some(error) = error { div.error role="alert" { (error) } }
                    div.hint { "The key your organisation uses for Projector. You see only its reports." }
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn list(reports: &[ReportRow], filter: &ListFilter, older: Option<String>) -> Markup {
    layout(
        "Reports",
        true,
        html! {},
        html! {
            h1 { "Reports" }
            form.filters method="get" action="/" {
                div {
                    label for="status" { "Status" }
                    select #status name="status" {
                        option value="" { "any" }
                        @for status in ReportStatus::ALL.map(ReportStatus::as_str) {
                            option value=(status) selected[filter.status.as_deref() == Some(status)] { (status) }
                        }
                    }
                }
                div {
                    label for="customer" { "Customer" }
                    input #customer name="customer" value=(filter.customer_id.as_deref().unwrap_or("")) placeholder="C-000042";
                }
                button.secondary type="submit" { "Filter" }
            }
            @if reports.is_empty() {
                p.card { "No reports yet. " a href="/reports/new" { "Ask for one." } }
            } @else {
                table {
                    thead { tr {
                        th { "Status" } th { "Customer" } th.hide-narrow { "Profile" } th { "Horizon" }
                        th.hide-narrow { "Requested" } th { "Duration" }
                    } }
                    tbody {
                        @for report in reports {
                            @let parameters = parameters_of(report);
                            tr {
                                td { a href=(format!("/reports/{}", report.id)) { span class=(format!("status {}", report.status)) { (report.status) } } }
                                td { a href=(format!("/reports/{}", report.id)) { (report.customer_id) } }
                                td.hide-narrow { (parameters.risk_profile) }
                                td { (parameters.time_horizon_years) " years" }
                                td.hide-narrow { time datetime=(wire::rfc3339(report.created_at)) { (iso_minutes(report.created_at)) } }
                                td { (duration(report)) }
                            }
                        }
                    }
                }
            }
            @if let Some(older) = older {
                p.pager { a href=(older) { "Older reports →" } }
            }
        },
    )
}

/// What the form was sent with, to show it again beside its errors.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    pub customer_id: String,
    #[serde(default)]
    pub time_horizon_years: String,
    #[serde(default)]
    pub risk_profile: String,
    #[serde(default)]
    pub monthly_contribution: String,
    #[serde(default)]
    pub annual_fee: String,
    #[serde(default)]
    pub inflation: String,
}

/// The error beside one field.
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub fn new_report(form: &ReportForm, error: Option<&FieldError>) -> Markup {
    let field = |name: &str, label: &str, hint: &str, input: Markup| {
        let message = error
            .filter(|error| error.field == name)
            .map(|error| error.message.as_str());
        html! {
            div.field.invalid[message.is_some()] {
                label for=(name) { (label) }
                (input)
                @if let Some(message) = message { div.error role="alert" id=(format!("{name}-error")) { (message) } }
                div.hint { (hint) }
            }
        }
    };
    layout(
        "New report",
        true,
        html! {},
        html! {
            h1 { "New report" }
            form.card method="post" action="/reports/new" novalidate {
                (field("customer_id", "Customer", "Such as C-000042.", html! {
                    input #customer_id name="customer_id" value=(form.customer_id) required;
                }))
                (field("time_horizon_years", "Horizon, in years", "1 to 50.", html! {
                    input #time_horizon_years name="time_horizon_years" inputmode="numeric" value=(form.time_horizon_years) required;
                }))
                (field("risk_profile", "Risk profile", "How much of the portfolio is in shares.", html! {
                    select #risk_profile name="risk_profile" {
                        @for profile in ["conservative", "balanced", "aggressive"] {
                            option value=(profile) selected[form.risk_profile == profile] { (profile) }
                        }
                    }
                }))
                (field("monthly_contribution", "Monthly contribution", "Added at the start of each month; 500 when empty.", html! {
                    input #monthly_contribution name="monthly_contribution" inputmode="decimal" value=(form.monthly_contribution);
                }))
                (field("annual_fee", "Annual fee", "As a fraction: 0.005 is 0.5% a year; 0.005 when empty.", html! {
                    input #annual_fee name="annual_fee" inputmode="decimal" value=(form.annual_fee);
                }))
                (field("inflation", "Inflation", "As a fraction a year, for today's money; 0.025 when empty.", html! {
                    input #inflation name="inflation" inputmode="decimal" value=(form.inflation);
                }))
                button type="submit" { "Ask for the report" }
            }
        },
    )
}

/// The live-progress script: follows the report's event stream and moves the
/// bar; once the report has ended it fetches the page again and swaps its
/// content in (the result, or why there is none), without a reload. The
/// progress last shown stays on the body as `data-progress`.
const LIVE: &str = r#"
const box = document.getElementById("live");
if (box && window.EventSource) {
  const bar = box.querySelector("progress"), label = box.querySelector(".label");
  const pill = document.getElementById("status");
  const events = new EventSource(box.dataset.events);
  const show = (event) => {
    const job = JSON.parse(event.data);
    bar.value = job.progress;
    label.textContent = job.status + " · " + Math.round(job.progress * 100) + "%";
    pill.textContent = job.status;
    pill.className = "status " + job.status;
    document.body.dataset.progress = job.progress;
  };
  const swap = async () => {
    const page = await fetch(window.location.href, { headers: { accept: "text/html" } });
    const next = new DOMParser().parseFromString(await page.text(), "text/html");
    document.querySelector("main").replaceWith(next.querySelector("main"));
  };
  events.addEventListener("status", show);
  events.addEventListener("progress", show);
  for (const end of ["completed", "failed", "cancelled"]) {
    events.addEventListener(end, (event) => { show(event); events.close(); swap(); });
  }
  // The stream closed without an end event (a reconnection after the end
  // gets 204): show how the report ended.
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) swap();
  });
}
"#;

pub fn report(row: &ReportRow, progress: f64) -> Markup {
    let parameters = parameters_of(row);
    let result: Option<ProjectionResult> = row
        .result
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok());
    let running = !row.status.is_final();
    let title = format!("Report for {}", row.customer_id);
    let head = html! {
        @if running { noscript { meta http-equiv="refresh" content="5"; } }
    };
    layout(
        &title,
        true,
        head,
        html! {
            h1 { (title) " " span class=(format!("status {}", row.status)) #status { (row.status) } }
            p {
                (parameters.time_horizon_years) " years, " (parameters.risk_profile) " profile. Requested "
                time datetime=(wire::rfc3339(row.created_at)) { (iso_minutes(row.created_at)) } "."
            }
            @if running {
                div.card #live data-events=(format!("/reports/{}/events", row.id)) {
                    progress max="1" value=(progress) {}
                    p.label { (row.status) " · " (format!("{:.0}", progress * 100.0)) "%" }
                    form method="post" action=(format!("/reports/{}/cancel", row.id)) {
                        button.danger type="submit" { "Cancel this report" }
                    }
                }
                script { (PreEscaped(LIVE)) }
            }
            @if let Some(error) = &row.error {
                @if !running { p.card.error role="alert" { (error) } }
            }
            @if let Some(result) = &result { (result_view(row, result)) }
        },
    )
}

fn result_view(row: &ReportRow, result: &ProjectionResult) -> Markup {
    let nominal: Vec<_> = result
        .yearly
        .iter()
        .filter_map(|year| year.nominal)
        .collect();
    let real: Vec<_> = result.yearly.iter().filter_map(|year| year.real).collect();
    let horizon = result.time_horizon_years;
    html! {
        div.card.headline {
            div {
                div.number { (money(result.median_final)) }
                p { "Median value after " (horizon) " years: half of the " (grouped(u64::from(result.paths))) " simulated futures end above it, half below." }
            }
            div {
                div.number { (format!("{:.1}%", result.probability_below_contributions * 100.0)) }
                p { "Chance of ending with less than the " (money(result.total_contributions)) " put in." }
            }
            div {
                div.number { (money(result.var_95_level)) }
                p { "Value at risk (95%): in the worst 1 in 20 futures the portfolio ends below this, "
                    (loss_words(result.var_95)) }
            }
            div {
                div.number { (money(result.cvar_95_level)) }
                p { "Expected shortfall (95%): the average ending of those worst 1 in 20 futures, "
                    (loss_words(result.cvar_95)) }
            }
            div {
                div.number { (format!("{:.1}%", result.median_max_drawdown * 100.0)) }
                p { "Median largest fall: the typical deepest drop from a peak along the way." }
            }
        }
        div.card {
            h2 { "Portfolio value by year" }
            (fan_chart("Portfolio value by year, nominal", &nominal))
            h2 { "In today's money" }
            (fan_chart("Portfolio value by year, in today's money", &real))
            p { "Lines: the 5th, 25th, 50th (bold), 75th and 95th percentiles of the simulated futures." }
            p {
                a href=(format!("/reports/{}/result.json", row.id)) download { "Download JSON" }
                " · "
                a href=(format!("/reports/{}/result.csv", row.id)) download { "Download CSV" }
            }
        }
    }
}

/// What a loss relative to the contributions means, in words.
fn loss_words(loss: f64) -> String {
    if loss > 0.0 {
        format!("{} less than was put in.", money(loss))
    } else {
        format!("still {} more than was put in.", money(-loss))
    }
}

fn parameters_of(row: &ReportRow) -> ProjectionParameters {
    serde_json::from_str(&row.parameters).unwrap_or_default()
}

/// Whole dollars with thousands separators.
pub fn money(value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    format!("{sign}${}", grouped(value.abs().round() as u64))
}

/// A count with thousands separators: 10,000.
fn grouped(count: u64) -> String {
    use num_format::{Locale, ToFormattedString};
    count.to_formatted_string(&Locale::en)
}

/// `2026-12-02 14:05 UTC`.
fn iso_minutes(millis: i64) -> String {
    let iso = wire::rfc3339(millis);
    match (iso.get(..10), iso.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => iso,
    }
}

fn duration(row: &ReportRow) -> String {
    match row.finished_at {
        Some(finished) => {
            let seconds = (finished - row.created_at).max(0) as f64 / 1000.0;
            if seconds < 60.0 {
                format!("{seconds:.1} s")
            } else {
                format!("{:.1} min", seconds / 60.0)
            }
        }
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::chart::money_short;
    use super::*;

    #[test]
    fn money_is_grouped_by_thousands() {
        assert_eq!(money(6_102_028.13), "$6,102,028");
        assert_eq!(money(999.6), "$1,000");
        assert_eq!(money(-1_806_887.0), "-$1,806,887");
        assert_eq!(money(0.0), "$0");
        assert_eq!(grouped(10_000), "10,000");
        assert_eq!(money_short(2_500_000.0), "$2.5M");
    }
}
