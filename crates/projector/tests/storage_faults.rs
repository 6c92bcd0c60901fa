//! Stores that were emptied, damaged or made read-only are refused at start,
//! saying what to do, against the real binary: never taken for a new store,
//! never a healthy start followed by an error on every write.

mod support;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::{job_body, job_store, scratch_dir, submit, up, up_args};

/// Runs `up` on `data_dir` to a stop, with a few jobs in its job store.
async fn used_store(data_dir: &Path) {
    let cluster = up(data_dir, &[]);
    let gateway = cluster.url("gateway");
    for index in 0..20 {
        let id = format!("kept-{index}");
        assert_eq!(
            submit(&gateway, &job_body(&id, "C-000001")).await.status(),
            202
        );
    }
    support::finished(&gateway, "kept-19", Duration::from_secs(60)).await;
    cluster.stop();
}

/// `up` on `data_dir`, expected to refuse: its stderr.
fn refused_start(data_dir: &Path) -> String {
    let output: Output = support::projector(&up_args(data_dir, &[]))
        .env("PROJECTOR_DATASVC_TOKEN", support::DATASVC_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "up started on a bad store:\n{stderr}"
    );
    stderr
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_job_store_is_refused_not_taken_for_a_new_one() {
    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    std::fs::File::create(job_store(data_dir.path())).unwrap();
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("exists but is empty"), "{stderr}");
    assert!(stderr.contains("Restore it from a backup"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbled_job_store_is_refused_at_start() {
    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    let store = job_store(data_dir.path());
    let size = std::fs::metadata(&store).unwrap().len();
    assert!(
        size > 3 * 4096,
        "the store holds several pages ({size} bytes)"
    );
    overwrite(&store, 2 * 4096, &[0x5a; 4096]);
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("is damaged"), "{stderr}");
    assert!(stderr.contains("restore it from a backup"), "{stderr}");

    overwrite(&store, 0, b"definitely not an SQLite header!");
    let stderr = refused_start(data_dir.path());
    assert!(stderr.contains("is damaged"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_store_this_process_cannot_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let data_dir = scratch_dir();
    used_store(data_dir.path()).await;
    let store = job_store(data_dir.path());
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The directory stays open to all, so the write-ahead log could be made:
    // only the store itself is read-only.
    std::fs::set_permissions(data_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path != store {
            let mode = if path.is_dir() { 0o777 } else { 0o666 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
    let mut command = support::projector(&up_args(data_dir.path(), &[]));
    command.env("PROJECTOR_DATASVC_TOKEN", support::DATASVC_TOKEN);
    // Permissions do not bind root: run as nobody when the test is root.
    if unsafe { libc::geteuid() } == 0 {
        const NOBODY: u32 = 65534;
        command.uid(NOBODY).gid(NOBODY);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "up started on a read-only store:\n{stderr}"
    );
    assert!(
        stderr.contains("job store") && stderr.contains("cannot be written"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_postgres_database_is_refused_at_start() {
    let database = database::testing::TestDatabase::create().await;
    let migrated = support::projector(&["migrate", "--database-url", database.url()])
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let name = database.url().rsplit('/').next().unwrap();
    let session = sqlx::PgPool::connect(database.url()).await.unwrap();
    // The test database's own name, made of hex digits by the test harness.
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    ))
    .execute(&session)
    .await
    .unwrap();
    session.close().await;
    let output = support::projector(&[
        "gateway",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        database.url(),
    ])
    .env("PROJECTOR_API_KEY", support::KEY)
    .env("PROJECTOR_TENANT_SECRET", support::TENANT_SECRET)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("default_transaction_read_only"), "{stderr}");
}
