//! The orchestrator's pages in a real browser (headless chromium over
//! WebDriver), against `projector up`: sign in, ask for a report with a
//! mistake and then without, watch it run to its chart without a reload, and
//! cancel one that waits. Each test leaves a screenshot in the test target
//! directory (`screenshots/`).

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::browser::Browser;
use support::*;

const WAIT: Duration = Duration::from_secs(60);

async fn sign_in(browser: &Browser, orchestrator: &str) {
    browser
        .client
        .goto(&format!("{orchestrator}/"))
        .await
        .unwrap();
    browser.wait_for("input#key", WAIT).await;
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/sign-in")
    );
    browser.fill("input#key", "not-a-key").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for(".error", WAIT).await;
    assert!(browser.text(".error").await.contains("not known"));
    browser.fill("input#key", KEY).await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("h1", WAIT).await;
    assert_eq!(browser.text("h1").await, "Reports");
}

/// Jobs of the same tenant, submitted straight to the gateway, that keep the
/// one worker busy for a while (the heaviest a client may ask for).
async fn queue_heavy_jobs(gateway: &str, count: usize) {
    for index in 0..count {
        let body = json!({"job_id": format!("ahead-{index}"), "parameters": {"customer_id": format!("C-{:06}", 60 + index), "time_horizon_years": 50, "risk_profile": "balanced", "paths": 200000}});
        assert_eq!(submit(gateway, &body).await.status(), 202);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_asks_for_a_report_and_watches_it_reach_its_chart() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let (orchestrator, gateway) = (projector.url("orchestrator"), projector.url("gateway"));
    queue_heavy_jobs(&gateway, 3).await;
    let browser = Browser::start().await;
    sign_in(&browser, &orchestrator).await;

    browser.click("a.button[href='/reports/new']").await;
    browser.wait_for("input#customer_id", WAIT).await;
    browser.fill("input#customer_id", "C-000051").await;
    browser.fill("input#time_horizon_years", "80").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#time_horizon_years-error", WAIT).await;
    assert!(
        browser
            .text("#time_horizon_years-error")
            .await
            .contains("between 1 and 50"),
        "the message is beside the field that caused it"
    );
    assert_eq!(
        browser
            .client
            .find(fantoccini::Locator::Css("input#customer_id"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("C-000051"),
        "what was typed is kept"
    );
    browser.screenshot("report-form-invalid").await;

    browser.fill("input#time_horizon_years", "50").await;
    browser.fill("input#monthly_contribution", "800").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#live progress", WAIT).await;
    // A mark that a reload would wipe.
    browser
        .client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    browser.wait_for("svg.chart", WAIT).await;
    let state = browser
        .client
        .execute(
            "return [window.notReloaded === true, document.body.dataset.progress];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        state,
        json!([true, "1"]),
        "progress reached 100% and the result came without a reload"
    );
    assert_eq!(browser.text("#status").await, "completed");
    let charts = browser
        .client
        .find_all(fantoccini::Locator::Css("svg.chart"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 2, "nominal and in today's money");
    for chart in charts {
        let bands = chart
            .find_all(fantoccini::Locator::Css("path.band"))
            .await
            .unwrap();
        assert_eq!(bands.len(), 5);
        let labels = chart
            .find_all(fantoccini::Locator::Css("text.axis-label"))
            .await
            .unwrap();
        let mut texts = Vec::new();
        for label in labels {
            texts.push(label.text().await.unwrap());
        }
        assert!(texts.iter().any(|text| text.starts_with('$')), "{texts:?}");
        assert!(texts.iter().any(|text| text == "50"), "{texts:?}");
    }
    let headline = browser.text(".headline").await;
    for words in [
        "Median value after 50 years",
        "Value at risk",
        "Expected shortfall",
        "largest fall",
    ] {
        assert!(headline.contains(words), "{headline}");
    }
    browser.screenshot("report-completed").await;
    browser.close().await;
    projector.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_cancels_a_report_that_waits_behind_others() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let (orchestrator, gateway) = (projector.url("orchestrator"), projector.url("gateway"));
    queue_heavy_jobs(&gateway, 12).await;
    let browser = Browser::start().await;
    sign_in(&browser, &orchestrator).await;
    browser
        .client
        .goto(&format!("{orchestrator}/reports/new"))
        .await
        .unwrap();
    browser.wait_for("input#customer_id", WAIT).await;
    browser.fill("input#customer_id", "C-000052").await;
    browser.click("main form button[type=submit]").await;
    browser.wait_for("#live", WAIT).await;
    browser.screenshot("report-waiting").await;
    browser.click("#live button.danger").await;
    browser.wait_for("span.status.cancelled", WAIT).await;
    assert_eq!(browser.text("#status").await, "cancelled");
    assert!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("#live"))
            .await
            .unwrap()
            .is_empty(),
        "no progress or cancel button once cancelled"
    );
    browser.screenshot("report-cancelled").await;

    // The list shows it, and filters by status.
    browser
        .client
        .goto(&format!("{orchestrator}/?status=cancelled"))
        .await
        .unwrap();
    browser.wait_for("table", WAIT).await;
    assert!(browser.text("tbody").await.contains("C-000052"));
    browser.screenshot("reports-cancelled").await;
    browser.close().await;
    projector.stop();
}

/// The session cookie `up`'s orchestrator gives for `key`.
async fn session_of(orchestrator: &str, key: &str) -> String {
    support::pages::sign_in(orchestrator, key).await
}

fn no_redirects() -> reqwest::Client {
    support::pages::no_redirects()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_and_cancels_only_its_own_reports() {
    let directory = scratch_dir();
    let projector = up(directory.path(), &["--workers", "1"]);
    let orchestrator = projector.url("orchestrator");
    let (mine, theirs) = (
        session_of(&orchestrator, KEY).await,
        session_of(&orchestrator, OTHER_KEY).await,
    );
    let created = no_redirects()
        .post(format!("{orchestrator}/reports/new"))
        .header("cookie", &mine)
        .form(&[
            ("customer_id", "C-000053"),
            ("time_horizon_years", "5"),
            ("risk_profile", "balanced"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let page = created.headers()["location"].to_str().unwrap().to_string();
    let get_page = |cookie: String, path: String| {
        let url = format!("{orchestrator}{path}");
        async move {
            let mut request = no_redirects().get(url).header("accept", "text/html");
            if !cookie.is_empty() {
                request = request.header("cookie", cookie);
            }
            request.send().await.unwrap()
        }
    };
    assert_eq!(get_page(mine.clone(), page.clone()).await.status(), 200);
    assert_eq!(get_page(theirs.clone(), page.clone()).await.status(), 404);
    let list = get_page(theirs.clone(), "/".into())
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("C-000053"), "another tenant's list");
    let cancelled = no_redirects()
        .post(format!("{orchestrator}{page}/cancel"))
        .header("cookie", &theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 404);
    for path in [
        page.clone(),
        format!("{page}/result.csv"),
        format!("{page}/events"),
    ] {
        let anonymous = get_page(String::new(), path.clone()).await;
        assert_eq!(anonymous.status(), 303, "{path} without signing in");
        assert!(
            anonymous.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/sign-in?next=")
        );
    }
    // A forged cookie is no session.
    let forged = format!(
        "projector_session=AAAA{}",
        &mine[mine.find('=').unwrap() + 5..]
    );
    assert_eq!(get_page(forged, page.clone()).await.status(), 303);
    projector.stop();
}
