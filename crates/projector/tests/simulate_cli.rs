//! `projector simulate` as a user runs it: the real binary, real files.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn projector(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_projector"))
        .args(args)
        .output()
        .expect("the projector binary runs")
}

fn json(args: &[&str]) -> Value {
    let output = projector(&[&["simulate", "--format", "json"], args].concat());
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is the result object")
}

fn stderr_of_failure(args: &[&str]) -> String {
    let output = projector(args);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line, got: {stderr}"
    );
    stderr
}

fn scratch_file(name: &str, contents: &[u8]) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("projector-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn close(actual: &Value, expected: f64) -> bool {
    let actual = actual.as_f64().expect("a number");
    ((actual - expected) / expected).abs() <= 1e-12
}

#[test]
fn zero_shocks_json_has_the_model_values_and_the_original_key() {
    let result = json(&["--zero-shocks", "--paths", "5"]);
    assert!(close(&result["projection_value"], 602192.0897533142));
    assert!(close(
        &result["yearly"][0]["nominal"]["p50"],
        110202.13401807421
    ));
    assert!(close(
        &result["yearly"][29]["real"]["p95"],
        287090.67386373546
    ));
    assert_eq!(result["shocks"], "zero");
    assert_eq!(result["yearly"].as_array().unwrap().len(), 30);
}

#[test]
fn scenario_file_infers_the_paths_and_reproduces_the_reference() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../engine/tests/data/shocks-777-m360-n500-k8.f64"
    );
    let result = json(&["--scenario", file, "--threads", "2"]);
    assert_eq!(result["paths"], 500);
    assert!(close(&result["median_final"], 662370.9454193218));
    assert!(close(&result["cvar_95_level"], 386147.2641285293));
}

#[test]
fn same_seed_same_numbers_whatever_the_threads() {
    let one = json(&["--seed", "9", "--paths", "2000", "--threads", "1"]);
    let four = json(&["--seed", "9", "--paths", "2000", "--threads", "4"]);
    assert_eq!(one, four);
    let derived = json(&["--paths", "2000"]);
    assert_eq!(
        derived,
        json(&["--paths", "2000"]),
        "a derived seed is stable"
    );
}

#[test]
fn portfolio_file_in_the_data_service_shape() {
    let portfolio = br#"{"customer_id": "C-000042", "name": "Ada", "base_currency": "EUR",
        "as_of": "2026-11-28", "version": 3, "assets": [
        {"asset_id": 1, "symbol": "VTI", "asset_class": "us_equity", "quantity": 10, "price": 5000, "market_value": 50000},
        {"asset_id": 2, "symbol": "BND", "asset_class": "govt_bonds", "quantity": 5, "price": 10000, "market_value": 50000}]}"#;
    let path = scratch_file("portfolio.json", portfolio);
    let result = json(&[
        "--portfolio",
        path.to_str().unwrap(),
        "--zero-shocks",
        "--paths",
        "1",
        "--horizon",
        "1",
        "--contribution",
        "0",
        "--fee",
        "0",
        "--no-rebalance",
    ]);
    // One year of drift: 50000 e^(0.07 - 0.0128) + 50000 e^(0.03 - 0.00125).
    let expected = 50000.0 * (0.07f64 - 0.0128).exp() + 50000.0 * (0.03f64 - 0.00125).exp();
    let actual = result["median_final"].as_f64().unwrap();
    assert!(
        (actual - expected).abs() / expected < 1e-12,
        "{actual} vs {expected}"
    );
    assert_eq!(result["total_contributions"], 100000.0);
}

#[test]
fn table_format_is_readable() {
    let output = projector(&[
        "simulate",
        "--paths",
        "300",
        "--horizon",
        "5",
        "--risk",
        "aggressive",
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("Projection: aggressive profile, 5 years, 300 paths"),
        "{text}"
    );
    assert!(text.contains("Median final value") && text.contains("P(final < contributions)"));
    let years: Vec<u32> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(years, [1, 2, 3, 4, 5]);
}

#[test]
fn bad_flags_and_files_get_one_clear_line() {
    let horizon = stderr_of_failure(&["simulate", "--horizon", "51"]);
    assert!(
        horizon.contains("time_horizon_years") && horizon.contains("between 1 and 50"),
        "{horizon}"
    );
    let risk = stderr_of_failure(&["simulate", "--risk", "reckless"]);
    assert!(
        risk.contains("conservative, balanced, aggressive"),
        "{risk}"
    );
    let not_a_number = stderr_of_failure(&["simulate", "--paths", "many"]);
    assert!(not_a_number.contains("--paths"), "{not_a_number}");
    let unknown = stderr_of_failure(&["simulate", "--frobnicate"]);
    assert!(unknown.contains("--frobnicate"), "{unknown}");
    let missing = stderr_of_failure(&["simulate", "--portfolio", "/nonexistent/portfolio.json"]);
    assert!(missing.contains("cannot read portfolio file"), "{missing}");
    let garbage = scratch_file("garbage.json", b"{\"assets\": [1, 2");
    let malformed = stderr_of_failure(&["simulate", "--portfolio", garbage.to_str().unwrap()]);
    assert!(malformed.contains("is not a PortfolioDTO"), "{malformed}");
    let gold = scratch_file(
        "gold.json",
        br#"{"assets": [{"asset_class": "gold", "market_value": 1}]}"#,
    );
    let class = stderr_of_failure(&["simulate", "--portfolio", gold.to_str().unwrap()]);
    assert!(class.contains("unknown asset class \"gold\""), "{class}");
    let short = scratch_file("short.f64", &[0; 100]);
    let scenario = stderr_of_failure(&["simulate", "--scenario", short.to_str().unwrap()]);
    assert!(
        scenario.contains("not a whole number of paths"),
        "{scenario}"
    );
    let fee = stderr_of_failure(&["simulate", "--fee", "2"]);
    assert!(fee.contains("annual_fee"), "{fee}");
}

#[test]
fn every_instruction_set_the_cpu_runs_gives_the_same_numbers() {
    let run = ["--paths", "700", "--horizon", "7", "--seed", "99"];
    let auto = json(&[&run[..], &["--isa", "auto"]].concat());
    let mut compared = 0;
    for isa in ["avx512", "avx2", "portable"] {
        let output =
            projector(&[&["simulate", "--format", "json", "--isa", isa], &run[..]].concat());
        if output.status.success() {
            let forced: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(forced, auto, "--isa {isa}");
            compared += 1;
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("does not run"), "--isa {isa}: {stderr}");
        }
    }
    assert!(compared >= 1, "the portable path runs everywhere");
}
