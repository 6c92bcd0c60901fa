//! The OpenAPI documents are the contract. schemathesis (from PyPI, in a venv
//! this test makes) sends generated requests, valid and invalid, to a running
//! gateway, data service and orchestrator: no answer may be a 5xx, and every
//! answer must match its document (status, content type, headers, body).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// The release the test runs, pinned so that a new one cannot change a result.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// The venv's `schemathesis`, installed on the first run.
fn schemathesis() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let program = venv.join("bin").join("schemathesis");
    let marker = venv.join("installed");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == SCHEMATHESIS) {
        return program;
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .unwrap_or_else(|error| {
            panic!("python3 is needed to make schemathesis's venv ({error}): install python3 and python3-venv")
        });
    assert!(
        created.success(),
        "python3 -m venv failed: install python3-venv (Debian) and run again"
    );
    let installed = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ])
        .status()
        .expect("the venv's pip runs");
    assert!(
        installed.success(),
        "pip could not install {SCHEMATHESIS} from PyPI; check the network and run again"
    );
    std::fs::write(&marker, SCHEMATHESIS).unwrap();
    program
}

/// Credentials for each scheme the documents name, and the one operation
/// whose long-poll the coverage phase would hold open for a minute.
fn config(directory: &Path) -> PathBuf {
    let path = directory.join("schemathesis.toml");
    std::fs::write(
        &path,
        format!(
            r#"[auth.openapi.tenant_key]
api_key = "{KEY}"

[auth.openapi.service_token]
bearer = "{DATASVC_TOKEN}"

[[operations]]
include-path = "/api/changes"
phases.coverage.enabled = false
"#
        ),
    )
    .unwrap();
    path
}

/// Runs schemathesis against `base`'s document; its output when it finds a failure.
fn conforms(program: &Path, config: &Path, base: &str) -> Result<(), String> {
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi");
    let output = Command::new(program)
        .arg("--config-file")
        .arg(config)
        .args(["run", &format!("{base}/openapi.json")])
        // Every check but one: a valid request may still be refused for the
        // state it meets (an id reused with other parameters is 422, by the
        // original clients' contract), which the document cannot say.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "--max-examples",
            "30",
            "--request-timeout",
            "10",
            "--seed",
            "1",
        ])
        .args(["--generation-database", "none", "--no-color"])
        .env("PYTHONPATH", hooks)
        .env("SCHEMATHESIS_HOOKS", "projector_hooks")
        .current_dir(config.parent().unwrap())
        .output()
        .expect("schemathesis runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_http_roles_matches_its_openapi_document() {
    let program = schemathesis();
    let directory = scratch_dir();
    let config = config(directory.path());
    let projector = up(directory.path(), &[]);
    for role in ["gateway", "data", "orchestrator"] {
        let base = projector.url(role);
        assert_eq!(openapi_document(&base).await["openapi"], "3.1.0", "{role}");
        let checked = tokio::task::spawn_blocking({
            let (program, config) = (program.clone(), config.clone());
            move || conforms(&program, &config, &base)
        })
        .await
        .unwrap();
        if let Err(output) = checked {
            panic!("the {role} does not keep to its document:\n{output}");
        }
    }
    projector.stop();
}
