//! What a role lets out, against the real binary: credentials in the URLs it
//! prints, data files other local users could read, and log lines a client's
//! values could forge.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use support::{KEY, client, scratch_dir};

fn output_of(args: &[&str]) -> (bool, String) {
    let output = support::projector(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_in_a_url_is_printed() {
    let database = database::testing::TestDatabase::create().await;
    let with_password = format!("{}?password=s3cret-in-query", database.url());
    let (migrated, text) = output_of(&["migrate", "--database-url", &with_password]);
    assert!(migrated, "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("password=***"), "{text}");

    let gateway_on = |database_url: &str| {
        output_of(&[
            "gateway",
            "--addr",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--tenant-secret",
            support::TENANT_SECRET,
            "--database-url",
            database_url,
        ])
    };
    let (started, text) = gateway_on(
        "postgres://projector:s3cret-in-authority@127.0.0.1:1/jobs?sslpassword=s3cret-ssl",
    );
    assert!(!started, "{text}");
    assert!(text.contains("projector:***@127.0.0.1:1"), "{text}");
    assert!(
        text.contains("\"sslpassword\", which is not supported"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    let (started, text) = gateway_on(
        "postgres://projector:s3cret-in-authority@127.0.0.1:1/jobs?password=s3cret-in-query",
    );
    assert!(!started, "{text}");
    assert!(text.contains("cannot reach the job store"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    let shown = support::projector(&["config"])
        .env(
            "PROJECTOR_DATASVC_URL",
            "http://worker:s3cret-datasvc@127.0.0.1:8080/api?token=s3cret-token",
        )
        .env(
            "PROJECTOR_GATEWAY_URL",
            "http://relay:s3cret-gateway@127.0.0.1:8000",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("worker:***@127.0.0.1:8080"), "{text}");
}

/// Every file and directory under `root` with its permission bits.
fn modes_under(root: &Path) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        found.push((
            path.display().to_string(),
            metadata.permissions().mode() & 0o777,
        ));
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn data_files_are_readable_by_their_user_only() {
    let scratch = scratch_dir();
    let data_dir = scratch.path().join("data");
    let logs = scratch.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut command = support::projector(&support::up_args(&data_dir, &[]));
    command.current_dir(scratch.path());
    let cluster = support::launch(command, &logs, "up.log", "API key");
    let accepted = support::submit(
        &cluster.url("gateway"),
        &support::job_body("private", "C-000001"),
    )
    .await;
    assert_eq!(accepted.status(), 202);
    let job = support::finished(&cluster.url("gateway"), "private", Duration::from_secs(60)).await;
    assert_eq!(job["status"], "completed");
    let modes = modes_under(&data_dir);
    assert!(
        modes
            .iter()
            .any(|(path, _)| path.ends_with("jobs.sqlite-wal")),
        "{modes:?}"
    );
    for (path, mode) in &modes {
        let is_dir = Path::new(path).is_dir();
        let allowed = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode & !allowed, 0, "{path} has mode {mode:o}");
    }
    drop(cluster);

    let shared = scratch.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _cluster = support::launch(
        support::projector(&support::up_args(&shared, &[])),
        &logs,
        "shared.log",
        "API key",
    );
    let log = std::fs::read_to_string(logs.join("shared.log")).unwrap();
    assert!(
        log.contains("other users can open this data directory") && log.contains("chmod 700"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clients_request_id_or_job_id_cannot_forge_a_log_line() {
    let data_dir = scratch_dir();
    let cluster = support::up(data_dir.path(), &[]);
    let gateway = cluster.url("gateway");
    let health_with = |id: Vec<u8>| {
        let gateway = gateway.clone();
        async move {
            let answer = client()
                .get(format!("{gateway}/healthz"))
                .header(
                    "x-request-id",
                    reqwest::header::HeaderValue::from_bytes(&id).unwrap(),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            answer.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(health_with(b"rails-req-42".to_vec()).await, "rails-req-42");
    for refused in [
        b"abc} ERROR fake: forged".to_vec(),
        vec![b'x'; 10_000],
        "caf\u{e9}".as_bytes().to_vec(),
    ] {
        let given = health_with(refused.clone()).await;
        assert_ne!(given.as_bytes(), refused.as_slice());
        assert!(
            given.len() == 36
                && given
                    .bytes()
                    .all(|byte| byte.is_ascii_hexdigit() || byte == b'-'),
            "a new UUID in its place: {given}"
        );
    }

    // Job ids are printable ASCII without spaces: a brace and quotes are enough
    // to forge a field.
    let forged_id = "abc}\"ERROR=fake\"";
    let body = serde_json::json!({"job_id": forged_id, "parameters": {"customer_id": "C-000001", "time_horizon_years": 1, "risk_profile": "balanced", "paths": 100}});
    let accepted = client()
        .post(format!("{gateway}/generate_projection"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let encoded = "abc%7D%22ERROR=fake%22";
    support::finished(&gateway, encoded, Duration::from_secs(60)).await;
    drop(cluster);
    let log = std::fs::read_to_string(data_dir.path().join("up.log")).unwrap();
    assert!(log.contains("request_id_replaced=true"), "{log}");
    assert!(
        !log.contains(&"x".repeat(200)),
        "a long id was logged whole"
    );
    assert!(
        log.contains(r#"job_id="abc}\"ERROR=fake\"""#),
        "the job id is quoted: {log}"
    );
    assert!(!log.contains("job_id=abc}"), "{log}");
}
